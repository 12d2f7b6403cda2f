//! Dense products at the shapes one Tox21 training step uses, in the three
//! forms, for our kernel, for faer's own `matmul` called directly, and for
//! a plain loop.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use faer::{Accum, MatMut, MatRef, Par};
use ferrochem_kernels::{Accumulate, Form, Matrix, Parallelism, matmul_into};

use crate::{pool, pseudo_random};

/// (M, K, N): batch 50 through the 1024 → 1000 → 12 network, forward and
/// backward, then a large batch and a square reference.
const SHAPES: [(usize, usize, usize); 5] =
    [(50, 1024, 1000), (1000, 50, 1024), (50, 1000, 12), (512, 1024, 1000), (1024, 1024, 1024)];

const FORMS: [(Form, &str); 3] =
    [(Form::Plain, "nn"), (Form::LhsTransposed, "tn"), (Form::RhsTransposed, "nt")];

pub fn bench(c: &mut Criterion) {
    for (form, form_name) in FORMS {
        let mut group = c.benchmark_group(format!("matmul/{form_name}"));
        for (m, k, n) in SHAPES {
            let shape = format!("{m}x{k}x{n}");
            group.throughput(Throughput::Elements((2 * m * k * n) as u64));
            // Operands stored as the form reads them: lhsᵀ is kept K×M.
            let (lhs_rows, lhs_cols) = if form == Form::LhsTransposed { (k, m) } else { (m, k) };
            let (rhs_rows, rhs_cols) = if form == Form::RhsTransposed { (n, k) } else { (k, n) };
            let lhs = Matrix::from_vec(lhs_rows, lhs_cols, pseudo_random(m * k, 1));
            let rhs = Matrix::from_vec(rhs_rows, rhs_cols, pseudo_random(k * n, 2));
            let mut dst = Matrix::<f32>::zeros(m, n);

            for n_threads in [1, 2] {
                let pool = pool(n_threads);
                group.sampling_mode(SamplingMode::Auto);
                group.bench_function(
                    BenchmarkId::new(format!("{shape}/ours"), format!("t{n_threads}")),
                    |b| {
                        pool.install(|| {
                            b.iter(|| {
                                matmul_into(
                                    dst.as_mut(),
                                    Accumulate::Overwrite,
                                    lhs.as_ref(),
                                    rhs.as_ref(),
                                    form,
                                    1.0,
                                    Parallelism::Auto,
                                );
                                black_box(dst.as_slice()[0]);
                            })
                        })
                    },
                );
                let par = if n_threads == 1 { Par::Seq } else { Par::rayon(n_threads) };
                group.bench_function(
                    BenchmarkId::new(format!("{shape}/faer"), format!("t{n_threads}")),
                    |b| {
                        pool.install(|| {
                            b.iter(|| {
                                faer_direct(dst.as_mut(), lhs.as_ref(), rhs.as_ref(), form, par);
                                black_box(dst.as_slice()[0]);
                            })
                        })
                    },
                );
            }

            // The loop is slow enough at the large shapes that criterion's
            // default sampling would take minutes.
            group.sampling_mode(SamplingMode::Flat);
            group.sample_size(10);
            group.measurement_time(Duration::from_millis(1500));
            group.bench_function(BenchmarkId::new(format!("{shape}/loop"), "t1"), |b| {
                b.iter(|| {
                    plain_loop(&mut dst, &lhs, &rhs, form);
                    black_box(dst.as_slice()[0]);
                })
            });
            group.sample_size(20);
            group.measurement_time(Duration::from_millis(1200));
        }
        group.finish();
    }
}

/// faer's `matmul` on the same views, with no decision of ours in between.
fn faer_direct(
    dst: MatMut<'_, f32>,
    lhs: MatRef<'_, f32>,
    rhs: MatRef<'_, f32>,
    form: Form,
    par: Par,
) {
    let (lhs, rhs) = match form {
        Form::Plain => (lhs, rhs),
        Form::LhsTransposed => (lhs.transpose(), rhs),
        Form::RhsTransposed => (lhs, rhs.transpose()),
    };
    faer::linalg::matmul::matmul(dst, Accum::Replace, lhs, rhs, 1.0, par);
}

/// The textbook triple loop over row-major storage, in each form's
/// cache-friendly order: the innermost loop walks rows (i-k-j for `lhs·rhs`,
/// k-i-j for `lhsᵀ·rhs`) or takes a dot product of two rows (`lhs·rhsᵀ`).
fn plain_loop(dst: &mut Matrix<f32>, lhs: &Matrix<f32>, rhs: &Matrix<f32>, form: Form) {
    let (m, n) = dst.shape();
    let dst = dst.as_mut_slice();
    let (lhs_s, rhs_s) = (lhs.as_slice(), rhs.as_slice());
    match form {
        Form::Plain => {
            let k = lhs.ncols();
            dst.fill(0.0);
            for i in 0..m {
                for p in 0..k {
                    let a = lhs_s[i * k + p];
                    for j in 0..n {
                        dst[i * n + j] += a * rhs_s[p * n + j];
                    }
                }
            }
        }
        Form::LhsTransposed => {
            let k = lhs.nrows();
            dst.fill(0.0);
            for p in 0..k {
                for i in 0..m {
                    let a = lhs_s[p * m + i];
                    for j in 0..n {
                        dst[i * n + j] += a * rhs_s[p * n + j];
                    }
                }
            }
        }
        Form::RhsTransposed => {
            let k = lhs.ncols();
            for i in 0..m {
                for j in 0..n {
                    let mut acc = 0.0;
                    for p in 0..k {
                        acc += lhs_s[i * k + p] * rhs_s[j * k + p];
                    }
                    dst[i * n + j] = acc;
                }
            }
        }
    }
}
