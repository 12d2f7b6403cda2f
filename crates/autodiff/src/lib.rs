//! Reverse-mode automatic differentiation over the kernels' [`Matrix`]
//! values.
//!
//! A [`Tape`] records a computation op by op; [`Tape::backward`] then gives
//! the gradient of a scalar loss with respect to every parameter. The ops
//! are what fully connected multitask networks need: the three matrix
//! product forms, the sparse fingerprint product, entry-wise arithmetic and
//! activations, dropout, sums and means, weight norms, and masked weighted
//! classification losses.
//!
//! ```
//! use ferrochem_autodiff::{Labels, LossReduction, Tape};
//! use ferrochem_kernels::{Form, Matrix};
//!
//! // One logistic unit on two examples, one of which has no label.
//! let w = Matrix::from_vec(2, 1, vec![0.5f64, -0.5]);
//! let x = Matrix::from_vec(2, 2, vec![1.0, 2.0, 3.0, 4.0]);
//! let targets = Matrix::from_vec(2, 1, vec![1.0, 0.0]);
//! let weights = Matrix::filled(2, 1, 1.0);
//! let mask = Matrix::from_vec(2, 1, vec![1.0, 0.0]);
//!
//! let mut tape = Tape::new();
//! let (x, w_var) = (tape.constant_ref(&x), tape.param(&w));
//! let logits = tape.matmul(x, w_var, Form::Plain)?;
//! let labels = Labels { targets: &targets, weights: &weights, mask: &mask };
//! let loss = tape.bce_with_logits(logits, labels, LossReduction::MeanOverLabelled)?;
//! let grads = tape.backward(loss)?;
//!
//! // Only the labelled example counts: z = −0.5, ∂ℓ/∂w = (σ(z) − 1)·x₀.
//! let expected = 1.0 / (1.0 + 0.5f64.exp()) - 1.0;
//! assert!((grads.get(w_var).unwrap()[(0, 0)] - expected).abs() < 1e-12);
//! # Ok::<(), ferrochem_autodiff::Error>(())
//! ```
//!
//! Shape errors are returned, not raised: every op checks its operands and
//! reports the op and both shapes in an [`Error`]. The crate does no I/O
//! and no logging.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod ops;
mod tape;

pub use error::{Error, Result};
pub use ops::loss::{Labels, LossReduction};
pub use ops::reduce::Axis;
pub use tape::{Grad, GradientLayout, Gradients, Tape, Var};

pub use ferrochem_kernels::Matrix;
