//! The training loop for multitask networks, independent of where batches
//! come from: metrics, early stopping, a divergence guard, exact resume
//! from checkpoints, and the model file.
//!
//! ```
//! use ferrochem_data::{Features, InMemoryDataset};
//! use ferrochem_kernels::{Matrix, SparseBinary};
//! use ferrochem_nn::MultitaskConfig;
//! use ferrochem_train::{Control, TrainConfig, Trainer, TrainingState};
//!
//! // Eight molecules, one task: positive when bit 0 is on.
//! let x = SparseBinary::from_rows(4, (0..8).map(|i| if i % 2 == 0 { vec![0, 3] } else { vec![1] }))?;
//! let targets = Matrix::from_fn(8, 1, |i, _| if i % 2 == 0 { 1.0 } else { 0.0 });
//! let ones = Matrix::filled(8, 1, 1.0);
//! let data = InMemoryDataset::new(Features::Sparse(x), targets, ones.clone(), ones);
//!
//! let model = MultitaskConfig { hidden_layers: vec![8], ..MultitaskConfig::classifier(4, 1) }.init(0);
//! let config = TrainConfig { epochs: 20, batch_size: 4, ..TrainConfig::default() };
//! let mut state = TrainingState::new(model, config);
//! Trainer::new().run(&mut state, &data, Some(&data), &mut |_| Control::Continue)?;
//! assert!(state.is_finished());
//! assert_eq!(state.history().len(), 20);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The crate reads no input files and parses no arguments. It logs one info
//! line per epoch, a warning when a divergent step is skipped, and a trace
//! line per checkpoint, through `log`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The container of checkpoint and model files (it lives in the data crate,
/// which also stores its feature cache in it).
pub use ferrochem_data::container as checkpoint;
pub mod metrics;
mod trainer;

pub use trainer::{
    Control, DEFAULT_L2, Divergence, EXPLOSION_FACTOR, EpochRecord, MAX_HALVINGS, OnDivergence,
    Progress, TrainConfig, TrainError, Trainer, TrainingState, labels_of, predict_dataset,
};

use std::path::Path;

use ferrochem_nn::Multitask;

/// Writes a trained model (configuration and weights, nothing that differs
/// between identical runs) to `path` atomically.
///
/// # Errors
///
/// Fails if the file cannot be written.
pub fn save_model(model: &Multitask<f32>, path: &Path) -> Result<(), checkpoint::FileError> {
    checkpoint::save(checkpoint::FileKind::Model, model, path)
}

/// Reads a model written by [`save_model`].
///
/// # Errors
///
/// Fails, naming the file, if it cannot be read or is not a valid model
/// file.
pub fn load_model(path: &Path) -> Result<Multitask<f32>, checkpoint::FileError> {
    checkpoint::load(checkpoint::FileKind::Model, path)
}
