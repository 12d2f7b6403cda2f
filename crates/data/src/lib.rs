//! Molecular data sets: the batch type and trait the training loop
//! consumes, and (to come) CSV reading, featurization, splits and weights.
//!
//! # Status
//!
//! Batches are in place: [`Batch`], the [`Dataset`] trait, the in-memory
//! [`InMemoryDataset`] and the seeded [`EpochPlan`]. Still to come: CSV and
//! gzipped CSV reading with errors that name the file, line and column;
//! missing labels as masks; parallel featurization through `ferrochem-chem`
//! with a cache keyed by file contents and featurizer settings; random,
//! index, scaffold and stratified splitters, k-fold cross-validation and
//! split files; and DeepChem's balancing weights.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod batch;

pub use batch::{
    Batch, Dataset, EpochPlan, Features, InMemoryDataset, LastBatch, select_matrix_rows,
};
pub use ferrochem_chem as chem;
pub use ferrochem_kernels::{Matrix, SparseBinary};
