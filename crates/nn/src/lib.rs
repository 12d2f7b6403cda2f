//! Layers, losses, penalties, optimizers and learning-rate schedules for
//! fully connected multitask networks, on top of `ferrochem-autodiff`.
//!
//! # Status
//!
//! This crate is a placeholder in the workspace's layering and has no
//! public items yet. It will own: dense layers with named `in_dim` and
//! `out_dim` and their initializers (normal, Xavier/Glorot, He); inverted
//! dropout and optional residual connections; `MultitaskClassifier` and
//! `MultitaskRegressor` with serde configs and a DeepChem preset; masked
//! weighted losses and L1/L2 penalties; SGD with momentum and Nesterov,
//! Adam and AdamW over the kernels' fused update loops; gradient-norm
//! clipping and learning-rate schedules. It does no I/O.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use ferrochem_autodiff as autodiff;
