//! Numeric kernels for ferrochem: dense `f32`/`f64` matrices, their
//! products on faer, sparse binary (fingerprint) products, entry-wise maps,
//! fixed-order reductions and fused optimizer updates.
//!
//! This is the only crate of the workspace that reaches for vector
//! instructions, and it knows nothing of tensors with gradients, molecules or
//! files. The layers above hold [`Matrix`] values and call these functions
//! with a caller-provided `dst`, so allocation stays visible at the call
//! site:
//!
//! ```
//! use ferrochem_kernels::{matmul_into, sparse_matmul_into, Accumulate, Form, Matrix,
//!                         Parallelism, SparseBinary};
//!
//! // A batch of two fingerprints with four bits, through a 4 → 3 layer.
//! let x = SparseBinary::from_rows(4, [vec![0, 2], vec![3]])?;
//! let w = Matrix::from_fn(4, 3, |i, j| (i + j) as f32);
//! let mut hidden = Matrix::zeros(2, 3);
//! sparse_matmul_into(&mut hidden, &x, &w, Some(&[0.0; 3]), Parallelism::Auto);
//! assert_eq!(hidden.row(0), &[2.0, 4.0, 6.0]);
//!
//! // The gradient with respect to the input of a dense 3 → 2 layer.
//! let w2 = Matrix::from_fn(3, 2, |i, j| (i * j) as f32);
//! let grad_out = Matrix::filled(2, 2, 1.0);
//! let mut grad_in = Matrix::zeros(2, 3);
//! matmul_into(grad_in.as_mut(), Accumulate::Overwrite, grad_out.as_ref(), w2.as_ref(),
//!             Form::RhsTransposed, 1.0, Parallelism::Auto);
//! assert_eq!(grad_in.row(1), &[0.0, 1.0, 2.0]);
//! # Ok::<(), ferrochem_kernels::SparseBinaryError>(())
//! ```
//!
//! # Determinism
//!
//! Every kernel gives bit-identical results whatever the number of rayon
//! threads and whatever vector width the processor offers: parallel work is
//! split so that each output entry is summed by one thread in a fixed order,
//! and reductions fix their order in the code (see [`reduce`]). That holds
//! for threads that treat subnormal numbers alike; a program that flushes
//! them to zero for speed does so on every thread (see [`subnormal`]).
//!
//! # Shape errors
//!
//! A shape mismatch is a bug in the caller, so the kernels check shapes once
//! at entry and panic with a message naming the operation and every shape.

mod check;
pub mod elementwise;
mod float;
mod matmul;
mod matrix;
pub mod optim;
mod parallel;
pub mod random;
pub mod reduce;
mod row_sparse;
mod sparse;
pub mod subnormal;

pub use float::Float;
pub use matmul::{Accumulate, Form, matmul, matmul_into};
pub use matrix::Matrix;
pub use parallel::Parallelism;
pub use row_sparse::{RowSparse, sparse_transpose_matmul_rows};
pub use sparse::{
    SparseBinary, SparseBinaryError, SparseBinaryErrorKind, sparse_matmul_into,
    sparse_transpose_matmul_into,
};
