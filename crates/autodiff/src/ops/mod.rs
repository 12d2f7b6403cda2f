//! The differentiable ops, each forward method beside its backward half.
//! They are methods of [`Tape`](crate::Tape) and appear in its docs.

pub(crate) mod elementwise;
pub(crate) mod linear;
pub(crate) mod loss;
pub(crate) mod reduce;
