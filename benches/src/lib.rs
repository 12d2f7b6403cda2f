//! Criterion benchmarks of the ferrochem workspace.
//!
//! This library is empty: the benchmarks live in `benches/main.rs`, one
//! module per kernel, and run with `cargo bench` or, with a summary table,
//! `cargo xtask bench`.
