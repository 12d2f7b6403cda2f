//! The training loop for multitask networks, independent of where batches
//! come from.
//!
//! # Status
//!
//! This crate is a placeholder in the workspace's layering and has no
//! public items yet. It will own: seeded epochs of minibatches with
//! validation every epoch; masked ROC-AUC, PRC-AUC, RMSE, MAE and R²;
//! early stopping that restores the best epoch; a divergence guard that
//! undoes a non-finite step and says what to change; bit-reproducible runs
//! on any thread count; and checksummed, atomically written checkpoints
//! from which a run resumes exactly. It reads no input files and parses no
//! arguments; it logs one info line per epoch through `log`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use ferrochem_data as data;
pub use ferrochem_nn as nn;
