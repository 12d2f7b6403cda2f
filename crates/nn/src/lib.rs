//! Layers, initializers, multitask networks, losses and penalties,
//! optimizers and learning-rate schedules, on `ferrochem-autodiff`.
//!
//! A network is a plain value ([`Multitask`]) built from a serde config
//! ([`MultitaskConfig`]). One training step records the forward pass and
//! the loss on a [`Tape`](ferrochem_autodiff::Tape), takes the gradients,
//! and hands them to an [`Optimizer`]:
//!
//! ```
//! use ferrochem_autodiff::{Labels, Tape};
//! use ferrochem_kernels::{Matrix, SparseBinary};
//! use ferrochem_nn::{LossConfig, Mode, ModelInput, MultitaskConfig, Optimizer, OptimizerConfig};
//!
//! let config = MultitaskConfig { hidden_layers: vec![8], ..MultitaskConfig::classifier(16, 2) };
//! let mut model = config.init::<f32>(0);
//! let mut optimizer = Optimizer::new(OptimizerConfig::adam(), &model.parameters());
//!
//! let x = SparseBinary::from_rows(16, [vec![1, 5], vec![0, 9, 15]])?;
//! let targets = Matrix::from_vec(2, 2, vec![1.0, 0.0, 0.0, 1.0]);
//! let (weights, mask) = (Matrix::filled(2, 2, 1.0), Matrix::filled(2, 2, 1.0));
//! let labels = Labels { targets: &targets, weights: &weights, mask: &mask };
//!
//! let grads = {
//!     let mut tape = Tape::new();
//!     let forward = model.forward(&mut tape, ModelInput::Sparse(&x), Mode::Train { key: [0, 0, 0] })?;
//!     let loss = model.loss(&mut tape, &forward, labels, &LossConfig::default())?;
//!     let mut grads = tape.backward(loss)?;
//!     forward.params.iter().map(|&p| grads.take(p).unwrap()).collect::<Vec<_>>()
//! };
//! optimizer.step(&mut model.parameters_mut(), &grads.iter().collect::<Vec<_>>(), 1e-3);
//! assert_eq!(model.predict(ModelInput::Sparse(&x))?.shape(), (2, 2));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Losses and missing labels
//!
//! Missing labels have mask 0 and count in neither the numerator nor the
//! denominator of the loss: a batch's loss is the weighted sum over its
//! measured entries divided by their number. DeepChem instead divides by
//! `batch_size × n_tasks`, counting missing entries as zeros, so its loss
//! (and effective learning rate) shrinks as a batch has more holes;
//! [`LossConfig::reduction`] selects either.
//!
//! The crate does no I/O and no logging.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod init;
mod layer;
mod model;
mod optim;
mod schedule;

pub use ferrochem_autodiff::LossReduction;
pub use init::Init;
pub use layer::{Dense, LayerInput};
pub use model::{
    Activation, DropoutPlacement, Forward, Head, LossConfig, Mode, ModelInput, Multitask,
    MultitaskConfig, dropout_mask,
};
pub use optim::{Optimizer, OptimizerConfig, clip_grad_norm, grad_norm};
pub use schedule::{LearningRate, Schedule};
