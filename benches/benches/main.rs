//! The workspace's criterion benchmarks, one module per kernel.
//!
//! Every benchmark reports `Throughput::Elements` in floating-point
//! operations, so criterion's "Gelem/s" reads as GFLOP/s, and is named
//! `group/form/MxKxN/implementation/tN` (N threads), which is what
//! `cargo xtask bench` parses into its table.

mod featurize;
mod matmul;
mod sparse;
mod train_step;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use ferrochem_kernels::subnormal::{Subnormals, pool_builder};

/// The allocator the `ferrochem` binary uses, so that benchmarks see what
/// training sees; see the binary's `main.rs` for why.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Short warm-up and measurement: the kernels are steady after a few
/// iterations, and the whole suite must fit in a few minutes on two cores.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1200))
        .sample_size(20)
        .configure_from_args()
}

/// A rayon pool of exactly `n_threads`, so one- and two-thread runs sit
/// side by side whatever `RAYON_NUM_THREADS` says, whose workers flush
/// subnormal numbers to zero as the binary's do.
pub fn pool(n_threads: usize) -> rayon::ThreadPool {
    pool_builder(n_threads, Subnormals::FlushToZero).build().expect("rayon pool")
}

/// Deterministic values in [-0.5, 0.5) from a xorshift generator.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

/// ECFP4 bits of 512 real Tox21 molecules (about 30 of 1024 bits on each,
/// with the skew of real chemistry: common bits recur across a batch).
const TOX21_FINGERPRINTS: &str = include_str!("../data/tox21_ecfp4_512.txt");

/// The first `batch` molecules of [`TOX21_FINGERPRINTS`] as a sparse
/// batch.
pub fn tox21_fingerprints(batch: usize) -> ferrochem_kernels::SparseBinary {
    let rows =
        TOX21_FINGERPRINTS.lines().filter(|line| !line.starts_with('#')).take(batch).map(|line| {
            line.split_whitespace()
                .map(|bit| bit.parse::<u32>().expect("bit indices"))
                .collect::<Vec<_>>()
        });
    let x = ferrochem_kernels::SparseBinary::from_rows(1024, rows).expect("sorted bits below 1024");
    assert_eq!(x.nrows(), batch, "the sample holds 512 molecules");
    x
}

criterion_group! {
    name = benches;
    config = config();
    targets = matmul::bench, sparse::bench, train_step::bench, featurize::bench
}
criterion_main!(benches);
