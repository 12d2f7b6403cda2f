//! The error type of the tape.

/// What can go wrong while recording or differentiating a computation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operands of an op have shapes it cannot combine.
    #[error("{op}: {lhs_name} is {}x{}, {rhs_name} is {}x{}: {requirement}",
            .lhs.0, .lhs.1, .rhs.0, .rhs.1)]
    Shape {
        /// The op that refused its operands.
        op: &'static str,
        /// What the first operand is to the op.
        lhs_name: &'static str,
        /// Shape of the first operand.
        lhs: (usize, usize),
        /// What the second operand is to the op.
        rhs_name: &'static str,
        /// Shape of the second operand.
        rhs: (usize, usize),
        /// The rule the shapes break.
        requirement: &'static str,
    },
    /// Backward reached an op that has no derivative.
    #[error(
        "{op} has no gradient, so backward cannot pass through it; \
         compute it on a value that does not require a gradient"
    )]
    NoGradient {
        /// The op without a gradient.
        op: &'static str,
    },
    /// Backward was asked to start from something other than a scalar.
    #[error("backward starts from a 1x1 loss, but the value given is {}x{}", .shape.0, .shape.1)]
    NotScalar {
        /// Shape of the value given.
        shape: (usize, usize),
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Fails with [`Error::Shape`] unless `ok`.
pub(crate) fn require(
    ok: bool,
    op: &'static str,
    (lhs_name, lhs): (&'static str, (usize, usize)),
    (rhs_name, rhs): (&'static str, (usize, usize)),
    requirement: &'static str,
) -> Result<()> {
    if ok { Ok(()) } else { Err(Error::Shape { op, lhs_name, lhs, rhs_name, rhs, requirement }) }
}
