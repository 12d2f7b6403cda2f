//! Sums in a fixed order.
//!
//! Floating-point addition is not associative, so a sum is only
//! reproducible if its order is. Every reduction here fixes the order in the
//! code, independent of the thread count and of the vector width the
//! processor offers:
//!
//! - within a block, entry `i` goes to accumulator `i % LANES`, and the
//!   `LANES` accumulators are combined pairwise in a fixed tree at the end;
//! - a long slice is cut into blocks of `BLOCK` entries whatever the number
//!   of threads, the blocks are summed (in parallel or not), and the block
//!   sums are added left to right.
//!
//! The explicit lanes are also what lets the compiler vectorize the loop,
//! which it may not do for a plain left-to-right sum.

use multiversion::multiversion;
use rayon::prelude::*;

use crate::check::same_len;
use crate::parallel::Resolved;
use crate::{Accumulate, Float, Matrix, Parallelism};

const LANES: usize = 16;
const BLOCK: usize = 1 << 14;

/// Below this many entries a reduction stays on one thread.
const PARALLEL_MIN_ENTRIES: usize = 1 << 16;

/// `Σ src[i]`.
pub fn sum<T: Float>(src: &[T], parallelism: Parallelism) -> T {
    blocked(src, parallelism, |block| lanes_sum(block, |x| x))
}

/// `Σ src[i]²`, the squared Euclidean norm.
pub fn sum_squares<T: Float>(src: &[T], parallelism: Parallelism) -> T {
    blocked(src, parallelism, |block| lanes_sum(block, |x| x * x))
}

/// Whether every entry of `src` is finite: neither infinite nor NaN.
///
/// Unlike testing `Σ x²`, this does not mistake large finite entries whose
/// squares overflow for infinite ones.
pub fn all_finite<T: Float>(src: &[T], parallelism: Parallelism) -> bool {
    match parallelism.resolve(src.len(), PARALLEL_MIN_ENTRIES) {
        Resolved::Sequential => finite_kernel(src),
        Resolved::Parallel(_) => src.par_chunks(BLOCK).all(finite_kernel),
    }
}

/// A branch-free test over every entry, which the compiler turns into
/// vector compares whose masks are or-ed together; stopping at the first
/// bad entry would cost a branch per entry on the common path, where all
/// are finite.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
fn finite_kernel<T: Float>(src: &[T]) -> bool {
    !src.iter().fold(false, |any_bad, &x| any_bad | !x.is_finite())
}

/// `Σ src[i]²` of a row-major matrix with rows of `ncols` entries, summed
/// row by row: each row by [`row_sum_squares`], then the row sums added in
/// f64 from the first row down.
///
/// This is the order in which the optimizer's row-wise updates
/// ([`adam_update_rows`](crate::optim::adam_update_rows)) report the
/// squares of the weights they have just written, so the two totals agree
/// bit for bit, on any number of threads.
///
/// # Panics
///
/// Panics if `src.len()` is not a multiple of `ncols`.
#[track_caller]
pub fn sum_squares_by_rows<T: Float>(src: &[T], ncols: usize, parallelism: Parallelism) -> f64 {
    if ncols == 0 {
        assert!(src.is_empty(), "sum_squares_by_rows: {} entries in rows of 0", src.len());
        return 0.0;
    }
    assert!(
        src.len().is_multiple_of(ncols),
        "sum_squares_by_rows: {} entries do not make rows of {ncols}",
        src.len()
    );
    let row_sums: Vec<T> = match parallelism.resolve(src.len(), PARALLEL_MIN_ENTRIES) {
        Resolved::Sequential => src.chunks_exact(ncols).map(row_sum_squares).collect(),
        Resolved::Parallel(_) => src.par_chunks_exact(ncols).map(row_sum_squares).collect(),
    };
    total_in_order(&row_sums)
}

/// `Σ row[i]²` in the lane order of [`sum_squares`]'s blocks: one row's
/// share of [`sum_squares_by_rows`].
pub fn row_sum_squares<T: Float>(row: &[T]) -> T {
    lanes_sum(row, |x| x * x)
}

/// `Σ sums[i]` in f64, from the first entry on: how
/// [`sum_squares_by_rows`] adds its row sums.
pub fn total_in_order<T: Float>(sums: &[T]) -> f64 {
    sums.iter().map(|s| s.to_f64()).sum()
}

/// `Σ |src[i]|`, the L1 norm.
pub fn sum_abs<T: Float>(src: &[T], parallelism: Parallelism) -> T {
    blocked(src, parallelism, |block| lanes_sum(block, |x| x.abs()))
}

/// `dst[i] = Σ_j src[i, j]`: one sum per row.
///
/// # Panics
///
/// Panics if `dst.len()` differs from `src.nrows()`.
#[track_caller]
pub fn row_sums_into<T: Float>(dst: &mut [T], accumulate: Accumulate<T>, src: &Matrix<T>) {
    same_len("row_sums", "dst", src.nrows(), dst.len());
    for (row_idx, d) in dst.iter_mut().enumerate() {
        let total = lanes_sum(src.row(row_idx), |x| x);
        *d = combine(*d, accumulate, total);
    }
}

/// `dst[j] = Σ_i src[i, j]`: one sum per column, rows added top to bottom.
/// This is the gradient of a bias broadcast over the rows of a batch.
///
/// # Panics
///
/// Panics if `dst.len()` differs from `src.ncols()`.
#[track_caller]
pub fn column_sums_into<T: Float>(dst: &mut [T], accumulate: Accumulate<T>, src: &Matrix<T>) {
    same_len("column_sums", "dst", src.ncols(), dst.len());
    match accumulate {
        Accumulate::Overwrite => dst.fill(T::ZERO),
        Accumulate::Add { beta } => dst.iter_mut().for_each(|d| *d = beta * *d),
    }
    if src.ncols() == 0 {
        return;
    }
    for row in src.as_slice().chunks_exact(src.ncols()) {
        crate::elementwise::add_assign_kernel(dst, row);
    }
}

#[inline(always)]
fn combine<T: Float>(old: T, accumulate: Accumulate<T>, new: T) -> T {
    match accumulate {
        Accumulate::Overwrite => new,
        Accumulate::Add { beta } => beta * old + new,
    }
}

/// Sums `block_sum` over fixed blocks of `src`, then the block sums in
/// order.
fn blocked<T: Float>(
    src: &[T],
    parallelism: Parallelism,
    block_sum: impl Fn(&[T]) -> T + Sync,
) -> T {
    match parallelism.resolve(src.len(), PARALLEL_MIN_ENTRIES) {
        Resolved::Sequential => src.chunks(BLOCK).map(&block_sum).fold(T::ZERO, |acc, s| acc + s),
        Resolved::Parallel(_) => {
            let partial: Vec<T> = src.par_chunks(BLOCK).map(&block_sum).collect();
            partial.into_iter().fold(T::ZERO, |acc, s| acc + s)
        }
    }
}

/// `Σ f(src[i])` with entry `i` in lane `i % LANES`.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
fn lanes_sum<T: Float>(src: &[T], f: impl Fn(T) -> T) -> T {
    let mut acc = [T::ZERO; LANES];
    let chunks = src.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a += f(x);
        }
    }
    for (a, &x) in acc.iter_mut().zip(tail) {
        *a += f(x);
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for lane_idx in 0..width {
            acc[lane_idx] += acc[lane_idx + width];
        }
    }
    acc[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_match_exact_integers() {
        // Integers below 2^24 add exactly in f32, so any order gives the
        // same value and the test checks coverage, not rounding.
        let src: Vec<f32> = (0..100_003).map(|i| (i % 7) as f32 - 3.0).collect();
        let exact: f32 = src.iter().map(|&x| x as f64).sum::<f64>() as f32;
        assert_eq!(sum(&src, Parallelism::Sequential), exact);
        let abs: f64 = src.iter().map(|x| x.abs() as f64).sum();
        assert_eq!(sum_abs(&src, Parallelism::Auto), abs as f32);
        let squares: f64 = src.iter().map(|&x| (x * x) as f64).sum();
        assert_eq!(sum_squares(&src, Parallelism::Parallel), squares as f32);
        assert_eq!(sum::<f64>(&[], Parallelism::Auto), 0.0);
    }

    #[test]
    fn all_finite_finds_any_infinity_or_nan() {
        let mut src = vec![1.0f32; 100_003];
        // Finite, though its square overflows f32.
        src[5] = 3e38;
        assert!(all_finite(&src, Parallelism::Auto));
        for bad in [f32::INFINITY, f32::NEG_INFINITY, f32::NAN] {
            for idx in [0, 17, 100_002] {
                let mut src = src.clone();
                src[idx] = bad;
                assert!(!all_finite(&src, Parallelism::Sequential), "{bad} at {idx}");
                assert!(!all_finite(&src, Parallelism::Parallel), "{bad} at {idx}");
            }
        }
        assert!(all_finite::<f64>(&[], Parallelism::Auto));
    }

    #[test]
    fn thread_count_does_not_change_a_sum() {
        let src: Vec<f32> =
            (0..300_001usize).map(|i| ((i * 7919) % 1000) as f32 * 1e-3 + 1e-7).collect();
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let two = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let a = one.install(|| sum(&src, Parallelism::Parallel));
        let b = two.install(|| sum(&src, Parallelism::Parallel));
        assert_eq!(a.to_bits(), b.to_bits());
        assert_eq!(a.to_bits(), sum(&src, Parallelism::Sequential).to_bits());
    }

    #[test]
    fn row_and_column_sums() {
        let m = Matrix::from_fn(3, 2, |i, j| (i * 2 + j) as f64);
        let mut rows = [1.0; 3];
        row_sums_into(&mut rows, Accumulate::ADD, &m);
        assert_eq!(rows, [2.0, 6.0, 10.0]);
        let mut cols = [f64::NAN; 2];
        column_sums_into(&mut cols, Accumulate::Overwrite, &m);
        assert_eq!(cols, [6.0, 9.0]);
    }
}
