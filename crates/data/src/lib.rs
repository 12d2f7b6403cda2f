//! Molecular data sets: CSV reading, label masks, featurization, splits,
//! class-balancing weights and batches.
//!
//! # Status
//!
//! This crate is a placeholder in the workspace's layering and has no
//! public items yet. It will own: CSV and gzipped CSV reading with errors
//! that name the file, line and column; missing labels as masks; parallel
//! featurization through `ferrochem-chem` with a cache keyed by file
//! contents and featurizer settings; random, index, scaffold and stratified
//! splitters, k-fold cross-validation and split files; DeepChem's balancing
//! weights; and the batch type and trait the training loop consumes, with
//! fingerprints as the kernels' `SparseBinary` matrices.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use ferrochem_chem as chem;
pub use ferrochem_kernels::{Matrix, SparseBinary};
