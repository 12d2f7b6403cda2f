//! One training step of the Tox21 network, 1024 → 1000 → 12 at batch 50
//! with real Tox21 fingerprints as input, whole and in parts, beside the memory traffic
//! floor of its optimizer pass.
//!
//! Throughput counts parameters (1 049 012), so "Gelem/s" reads as
//! parameters per nanosecond. The parts are cumulative: `forward`,
//! `forward_backward` (the gradients), `full` (plus Adam); `adam` is the
//! optimizer alone, and `floor` a loop that moves exactly Adam's bytes (read
//! w, g, m, v; write w, m, v) with one addition each, which is what the
//! memory system allows when the 16 MiB of state stay in the last-level
//! cache. `floor_dram` runs the same loop over arrays sixteen times larger,
//! which measures main-memory bandwidth.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use ferrochem_autodiff::{Grad, GradientLayout, Labels, Tape};
use ferrochem_kernels::{Matrix, SparseBinary};
use ferrochem_nn::{
    LossConfig, Mode, ModelInput, Multitask, MultitaskConfig, Optimizer, OptimizerConfig,
};

use crate::{pool, pseudo_random, tox21_fingerprints};

const BATCH: usize = 50;
const N_BITS: usize = 1024;
const N_TASKS: usize = 12;

/// Entries per array for the main-memory floor: four arrays of 64 MiB,
/// eight times the last-level cache, so every byte comes from DRAM.
const DRAM_ENTRIES: usize = 1 << 24;

struct Fixture {
    model: Multitask<f32>,
    optimizer: Optimizer<f32>,
    x: SparseBinary,
    targets: Matrix<f32>,
    weights: Matrix<f32>,
    mask: Matrix<f32>,
}

fn fixture() -> Fixture {
    // The chapter's network, whatever the library's defaults become.
    let model = MultitaskConfig {
        hidden_layers: vec![1000],
        dropout: vec![0.25],
        ..MultitaskConfig::classifier(N_BITS, N_TASKS)
    }
    .init::<f32>(0);
    let optimizer = Optimizer::new(OptimizerConfig::adam(), &model.parameters());
    let x = tox21_fingerprints(BATCH);
    let targets = Matrix::from_vec(
        BATCH,
        N_TASKS,
        pseudo_random(BATCH * N_TASKS, 12)
            .iter()
            .map(|&u| if u > 0.3 { 1.0 } else { 0.0 })
            .collect(),
    );
    let mask = Matrix::from_vec(
        BATCH,
        N_TASKS,
        pseudo_random(BATCH * N_TASKS, 13)
            .iter()
            .map(|&u| if u > -0.3 { 1.0 } else { 0.0 })
            .collect(),
    );
    Fixture { model, optimizer, x, targets, weights: Matrix::filled(BATCH, N_TASKS, 1.0), mask }
}

/// Forward, loss and (when `backward`) gradients, as the training loop
/// computes them (the first layer's row-sparse); returns the gradients.
fn gradients(f: &Fixture, step: u64, backward: bool) -> Vec<Grad<f32>> {
    let mut tape = Tape::new();
    let forward = f
        .model
        .forward(&mut tape, ModelInput::Sparse(&f.x), Mode::Train { key: [0, 0, step] })
        .unwrap();
    let labels = Labels { targets: &f.targets, weights: &f.weights, mask: &f.mask };
    let loss = f.model.loss(&mut tape, &forward, labels, &LossConfig::default()).unwrap();
    if !backward {
        black_box(tape.value(loss)[(0, 0)]);
        return Vec::new();
    }
    let mut grads = tape.backward_with(loss, GradientLayout::RowSparseWherePossible).unwrap();
    forward.params.iter().map(|&p| grads.take_grad(p).unwrap()).collect()
}

pub fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("train/step");
    let shape = format!("{BATCH}x{N_BITS}x1000x{N_TASKS}");
    let mut f = fixture();
    let n_params = f.model.n_parameters();
    group.throughput(Throughput::Elements(n_params as u64));
    for n_threads in [1, 2] {
        let pool = pool(n_threads);
        let id = |part: &str| BenchmarkId::new(format!("{shape}/{part}"), format!("t{n_threads}"));
        let mut step = 0u64;
        group
            .bench_function(id("forward"), |b| pool.install(|| b.iter(|| gradients(&f, 0, false))));
        group.bench_function(id("forward_backward"), |b| {
            pool.install(|| b.iter(|| black_box(gradients(&f, 0, true))))
        });
        let grads = gradients(&f, 0, true);
        group.bench_function(id("adam"), |b| {
            pool.install(|| {
                b.iter(|| {
                    f.optimizer.step_grads(&mut f.model.parameters_mut(), &grads, 1e-6);
                })
            })
        });
        group.bench_function(id("full"), |b| {
            pool.install(|| {
                b.iter(|| {
                    step += 1;
                    let grads = gradients(&f, step, true);
                    f.optimizer.step_grads(&mut f.model.parameters_mut(), &grads, 1e-6);
                })
            })
        });
        for (part, n_entries) in [("floor", n_params), ("floor_dram", DRAM_ENTRIES)] {
            let (mut w, g, mut m, mut v) = (
                vec![0.1f32; n_entries],
                vec![0.2f32; n_entries],
                vec![0.3f32; n_entries],
                vec![0.4f32; n_entries],
            );
            group.throughput(Throughput::Elements(n_entries as u64));
            group.bench_function(id(part), |b| {
                pool.install(|| {
                    b.iter(|| {
                        traffic_floor(&mut w, &g, &mut m, &mut v);
                        black_box(w[0]);
                    })
                })
            });
        }
        group.throughput(Throughput::Elements(n_params as u64));
    }
    group.finish();
}

/// Reads w, g, m, v and writes w, m, v, one addition each: Adam's memory
/// traffic without its arithmetic, split over the pool like Adam is.
fn traffic_floor(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    use rayon::prelude::*;
    const CHUNK: usize = 1 << 15;
    w.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .for_each(|(((w, g), m), v)| {
            for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                *m += g;
                *v += g;
                *w += g;
            }
        });
}
