//! The sparse first layer against the dense product it replaces, on real
//! Tox21 fingerprints: 1024 bits with about 30 on, into 1000 hidden units. Throughput counts the dense product's FLOPs, so the GFLOP/s of the
//! two implementations compare directly and their ratio is the speed-up.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use ferrochem_kernels::{
    Accumulate, Form, Matrix, Parallelism, matmul_into, sparse_matmul_into,
    sparse_transpose_matmul_into, sparse_transpose_matmul_rows,
};

use crate::{pool, pseudo_random, tox21_fingerprints};

const N_BITS: usize = 1024;
const N_HIDDEN: usize = 1000;

pub fn bench(c: &mut Criterion) {
    for batch in [50, 512] {
        let x = tox21_fingerprints(batch);
        let x_dense = x.to_dense::<f32>();
        let w = Matrix::from_vec(N_BITS, N_HIDDEN, pseudo_random(N_BITS * N_HIDDEN, 3));
        let bias = vec![0.1f32; N_HIDDEN];
        let grad_out = Matrix::from_vec(batch, N_HIDDEN, pseudo_random(batch * N_HIDDEN, 4));
        let shape = format!("{batch}x{N_BITS}x{N_HIDDEN}");

        let mut forward = c.benchmark_group("sparse/forward");
        forward.throughput(Throughput::Elements((2 * batch * N_BITS * N_HIDDEN) as u64));
        let mut out = Matrix::zeros(batch, N_HIDDEN);
        for n_threads in [1, 2] {
            let pool = pool(n_threads);
            forward.bench_function(
                BenchmarkId::new(format!("{shape}/sparse"), format!("t{n_threads}")),
                |b| {
                    pool.install(|| {
                        b.iter(|| {
                            sparse_matmul_into(&mut out, &x, &w, Some(&bias), Parallelism::Auto);
                            black_box(out.as_slice()[0]);
                        })
                    })
                },
            );
            forward.bench_function(
                BenchmarkId::new(format!("{shape}/dense"), format!("t{n_threads}")),
                |b| {
                    pool.install(|| {
                        b.iter(|| {
                            matmul_into(
                                out.as_mut(),
                                Accumulate::Overwrite,
                                x_dense.as_ref(),
                                w.as_ref(),
                                Form::Plain,
                                1.0,
                                Parallelism::Auto,
                            );
                            ferrochem_kernels::elementwise::add_bias_rows(&mut out, &bias);
                            black_box(out.as_slice()[0]);
                        })
                    })
                },
            );
        }
        forward.finish();

        // Both implementations accumulate, `grad_w += xᵀ · grad_out`, the
        // way gradients add up in training: the sparse one then skips the
        // rows of bits that no molecule in the batch has.
        let mut backward = c.benchmark_group("sparse/weight_grad");
        backward.throughput(Throughput::Elements((2 * batch * N_BITS * N_HIDDEN) as u64));
        let mut grad_w = Matrix::zeros(N_BITS, N_HIDDEN);
        for n_threads in [1, 2] {
            let pool = pool(n_threads);
            backward.bench_function(
                BenchmarkId::new(format!("{shape}/sparse"), format!("t{n_threads}")),
                |b| {
                    pool.install(|| {
                        b.iter(|| {
                            sparse_transpose_matmul_into(
                                &mut grad_w,
                                Accumulate::Overwrite,
                                &x,
                                &grad_out,
                                Parallelism::Auto,
                            );
                            black_box(grad_w.as_slice()[0]);
                        })
                    })
                },
            );
            backward.bench_function(
                BenchmarkId::new(format!("{shape}/dense"), format!("t{n_threads}")),
                |b| {
                    pool.install(|| {
                        b.iter(|| {
                            matmul_into(
                                grad_w.as_mut(),
                                Accumulate::Overwrite,
                                x_dense.as_ref(),
                                grad_out.as_ref(),
                                Form::LhsTransposed,
                                1.0,
                                Parallelism::Auto,
                            );
                            black_box(grad_w.as_slice()[0]);
                        })
                    })
                },
            );
        }
        backward.finish();

        // What training computes: only the touched rows, freshly allocated,
        // against the dense product into fresh storage.
        let mut rows_group = c.benchmark_group("sparse/weight_grad_rows");
        rows_group.throughput(Throughput::Elements((2 * batch * N_BITS * N_HIDDEN) as u64));
        for n_threads in [1, 2] {
            let pool = pool(n_threads);
            rows_group.bench_function(
                BenchmarkId::new(format!("{shape}/sparse"), format!("t{n_threads}")),
                |b| {
                    pool.install(|| {
                        b.iter(|| {
                            black_box(sparse_transpose_matmul_rows(
                                &x,
                                &grad_out,
                                Parallelism::Auto,
                            ))
                        })
                    })
                },
            );
            rows_group.bench_function(
                BenchmarkId::new(format!("{shape}/dense"), format!("t{n_threads}")),
                |b| {
                    pool.install(|| {
                        b.iter(|| {
                            black_box(ferrochem_kernels::matmul(
                                x_dense.as_ref(),
                                grad_out.as_ref(),
                                Form::LhsTransposed,
                                Parallelism::Auto,
                            ))
                        })
                    })
                },
            );
        }
        rows_group.finish();
    }
}
