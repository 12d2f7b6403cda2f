//! Molecular data sets: labelled CSV tables, splits, class-balancing
//! weights and target scaling, and the batch type and trait the training
//! loop consumes.
//!
//! # Status
//!
//! In place: [`read_table`] for plain and gzipped CSV from a file or
//! standard input, with missing labels as masks, identifier columns and
//! skipped rows recorded by line; random, index, stratified and scaffold
//! splitters, k-fold cross-validation and split files ([`split`]);
//! DeepChem's balancing weights and per-task target scaling ([`weights`]);
//! parallel ECFP featurization in input order ([`featurize`]) and its cache
//! keyed by file contents and settings ([`cache`]); the file container of
//! checkpoints, models and cached features ([`container`]); batches
//! ([`Batch`], [`Dataset`], [`InMemoryDataset`], [`EpochPlan`]).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod batch;
pub mod cache;
pub mod container;
mod error;
pub mod featurize;
pub mod split;
pub mod stream;
mod table;
pub mod weights;

pub use batch::{
    Batch, Dataset, EpochPlan, Features, InMemoryDataset, LastBatch, select_matrix_rows,
};
pub use error::{DataError, DataErrorKind};
pub use ferrochem_chem as chem;
pub use ferrochem_kernels::{Matrix, SparseBinary};
pub use table::{
    AbsentTasks, Identifier, Input, Skipped, SmilesRows, Table, TableOptions, read_input_bytes,
    read_smiles_rows, read_table,
};
