//! Row-sparse matrices: the gradient of a weight matrix that only some of
//! its rows receive.
//!
//! The first layer of a fingerprint network multiplies a sparse binary
//! batch by a `1024 × width` weight matrix. Its gradient, `xᵀ · grad_out`,
//! is zero in every row whose bit no molecule of the batch has (about 45 %
//! of them for a Tox21 batch of 50). Keeping only the touched rows saves
//! writing the zeros, and lets the optimizer skip reading them.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::parallel::Resolved;
use crate::reduce::all_finite;
use crate::sparse::{Start, gather};
use crate::{Float, Matrix, Parallelism, SparseBinary};

/// Below this many row additions (`nnz · ncols`) the row-sparse product
/// stays on one thread. At batch 50 (about 1.5 M) two threads pay off only
/// when the caller runs on a worker of the pool, as the training loop does.
const PARALLEL_MIN_WORK: usize = 1 << 20;

/// An `nrows × ncols` matrix that is zero outside the rows `rows`.
#[derive(Clone, Debug)]
pub struct RowSparse<T> {
    nrows: usize,
    /// The rows that may be nonzero, strictly ascending.
    rows: Vec<u32>,
    /// `rows.len() × ncols`: the values of those rows, in the same order.
    values: Matrix<T>,
    /// Whether every value is finite, found while each row was still in
    /// cache after it was summed; `None` once `values_mut` has handed the
    /// values out, after which [`RowSparse::all_finite`] looks again.
    finite: Option<bool>,
}

/// Equal when they hold the same values; whether finiteness is known
/// does not matter.
impl<T: PartialEq> PartialEq for RowSparse<T> {
    fn eq(&self, other: &Self) -> bool {
        self.nrows == other.nrows && self.rows == other.rows && self.values == other.values
    }
}

impl<T: Float> RowSparse<T> {
    /// Number of rows of the whole matrix.
    pub fn nrows(&self) -> usize {
        self.nrows
    }

    /// Number of columns.
    pub fn ncols(&self) -> usize {
        self.values.ncols()
    }

    /// `(nrows, ncols)` of the whole matrix.
    pub fn shape(&self) -> (usize, usize) {
        (self.nrows, self.values.ncols())
    }

    /// The rows that are stored, ascending.
    pub fn rows(&self) -> &[u32] {
        &self.rows
    }

    /// The stored rows' values, one row per entry of [`RowSparse::rows`].
    pub fn values(&self) -> &Matrix<T> {
        &self.values
    }

    /// The stored rows' values, mutably (to scale a gradient in place).
    pub fn values_mut(&mut self) -> &mut Matrix<T> {
        self.finite = None;
        &mut self.values
    }

    /// Whether every entry is finite: neither infinite nor NaN.
    ///
    /// A matrix fresh from [`sparse_transpose_matmul_rows`] answers at
    /// once, from a test it made of each row as it finished the row, so a
    /// training step can refuse a divergent gradient without reading it
    /// all again; after [`RowSparse::values_mut`] this reads the values.
    pub fn all_finite(&self) -> bool {
        self.finite.unwrap_or_else(|| all_finite(self.values.as_slice(), Parallelism::Auto))
    }

    /// The whole matrix, zeros written out.
    pub fn to_dense(&self) -> Matrix<T> {
        let mut dense = Matrix::zeros(self.nrows, self.ncols());
        for (idx, &row) in self.rows.iter().enumerate() {
            dense.row_mut(row as usize).copy_from_slice(self.values.row(idx));
        }
        dense
    }
}

/// `lhsᵀ · rhs` for a sparse binary `lhs`, keeping only the rows of the
/// result that can be nonzero: those of the columns some row of `lhs` has.
///
/// Each kept row is the sum of the rows of `rhs` whose row of `lhs` has
/// that column, added in ascending order: the same values, bit for bit, as
/// the corresponding rows of [`sparse_transpose_matmul_into`].
///
/// [`sparse_transpose_matmul_into`]: crate::sparse_transpose_matmul_into
///
/// # Panics
///
/// Panics, naming both shapes, if `lhs.nrows() != rhs.nrows()`.
#[track_caller]
pub fn sparse_transpose_matmul_rows<T: Float>(
    lhs: &SparseBinary,
    rhs: &Matrix<T>,
    parallelism: Parallelism,
) -> RowSparse<T> {
    if lhs.nrows() != rhs.nrows() {
        panic!(
            "sparse_transpose_matmul_rows: lhsᵀ is {}x{}, rhs is {}x{}: the inner dimensions differ",
            lhs.ncols(),
            lhs.nrows(),
            rhs.nrows(),
            rhs.ncols()
        );
    }
    let lhs_t = lhs.transpose();
    let rows: Vec<u32> =
        (0..lhs_t.nrows() as u32).filter(|&k| !lhs_t.row(k as usize).is_empty()).collect();
    let ncols = rhs.ncols();
    let sources_of = |k: u32| lhs_t.row(k as usize).iter().map(|&r| rhs.row(r as usize));
    let (values, finite) = match parallelism.resolve(lhs.nnz() * ncols, PARALLEL_MIN_WORK) {
        // Row by row, copying each row's first source and adding the rest
        // in place, so no storage is zeroed only to be overwritten.
        Resolved::Sequential => {
            let mut data: Vec<T> = Vec::with_capacity(rows.len() * ncols);
            let mut finite = true;
            for &k in &rows {
                let mut sources = sources_of(k);
                let first = sources.next().expect("kept rows have at least one source");
                let start = data.len();
                data.extend_from_slice(first);
                gather(&mut data[start..], Start::Keep, sources);
                finite &= all_finite(&data[start..], Parallelism::Sequential);
            }
            (Matrix::from_vec(rows.len(), ncols, data), finite)
        }
        // Each thread fills its own run of rows of one uninitialized
        // buffer: zeroed storage would cost a pass (and, freshly mapped,
        // a page fault per page) that the single thread never pays.
        Resolved::Parallel(_) => {
            let total = rows.len() * ncols;
            let mut data: Vec<T> = Vec::with_capacity(total);
            let mut finite = true;
            if ncols > 0 {
                let spare = &mut data.spare_capacity_mut()[..total];
                let fill_row = |(idx, dst): (usize, &mut [MaybeUninit<T>])| {
                    let mut sources = sources_of(rows[idx]);
                    let first = sources.next().expect("kept rows have at least one source");
                    assert_eq!(first.len(), dst.len(), "a source row has ncols entries");
                    // SAFETY: `first` and `dst` are `ncols` long and do not
                    // overlap (`dst` is fresh storage), so the copy writes
                    // every element of `dst`; `MaybeUninit<T>` has the
                    // layout of `T`. The copy goes through memcpy: a loop of
                    // `MaybeUninit::write` compiles for the baseline target,
                    // 16 bytes at a time.
                    let dst = unsafe {
                        let dst = dst.as_mut_ptr().cast::<T>();
                        std::ptr::copy_nonoverlapping(first.as_ptr(), dst, first.len());
                        std::slice::from_raw_parts_mut(dst, first.len())
                    };
                    gather(dst, Start::Keep, sources);
                    all_finite(dst, Parallelism::Sequential)
                };
                // Every row must be filled, so no short-circuiting `all`.
                finite = spare
                    .par_chunks_mut(ncols)
                    .enumerate()
                    .with_min_len(16)
                    .map(fill_row)
                    .reduce(|| true, |a, b| a && b);
            }
            // SAFETY: the loop above initialized all `total` elements (each
            // row of `ncols` by exactly one task), and `total` is within
            // the capacity reserved.
            unsafe { data.set_len(total) };
            (Matrix::from_vec(rows.len(), ncols, data), finite)
        }
    };
    RowSparse { nrows: lhs.ncols(), rows, values, finite: Some(finite) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Accumulate, sparse_transpose_matmul_into};

    /// `xᵀ · g` with every row written, zeros included.
    fn dense_product(x: &SparseBinary, g: &Matrix<f32>) -> Matrix<f32> {
        let mut dense = Matrix::zeros(x.ncols(), g.ncols());
        sparse_transpose_matmul_into(
            &mut dense,
            Accumulate::Overwrite,
            x,
            g,
            Parallelism::Sequential,
        );
        dense
    }

    #[test]
    fn kept_rows_match_the_dense_product_exactly() {
        let x =
            SparseBinary::from_rows(8, [vec![1, 3], vec![3, 6], vec![], vec![1, 3, 7]]).unwrap();
        let g = Matrix::from_fn(4, 5, |i, j| (i as f32 + 1.0) * 0.1 + j as f32 * 0.37);
        let sparse = sparse_transpose_matmul_rows(&x, &g, Parallelism::Sequential);
        assert_eq!(sparse.rows(), &[1, 3, 6, 7]);
        assert_eq!(sparse.to_dense(), dense_product(&x, &g));
        assert_eq!(sparse_transpose_matmul_rows(&x, &g, Parallelism::Parallel), sparse);
    }

    #[test]
    fn rows_with_more_sources_than_one_pass_takes_match_too() {
        // Bit 0 is in all nine molecules and bit 2 in five, more than the
        // four sources one pass of the gather adds; 37 columns leave a
        // vector tail.
        let molecules: Vec<Vec<u32>> =
            (0..9).map(|i| if i % 2 == 0 { vec![0, 2] } else { vec![0, 1] }).collect();
        let x = SparseBinary::from_rows(3, molecules).unwrap();
        let g = Matrix::from_fn(9, 37, |i, j| ((i * 37 + j) % 11) as f32 * 0.3 - 1.1);
        let dense = dense_product(&x, &g);
        for parallelism in [Parallelism::Sequential, Parallelism::Parallel] {
            let sparse = sparse_transpose_matmul_rows(&x, &g, parallelism);
            assert_eq!(sparse.rows(), &[0, 1, 2]);
            assert_eq!(sparse.to_dense(), dense, "{parallelism:?}");
        }
    }

    #[test]
    fn finiteness_is_found_while_summing() {
        // Molecule `i` has bits `i` and 64: 65 kept rows, enough for the
        // parallel path to split them between tasks. Row `i` of `g` reaches
        // rows `i` and 64 of the product.
        let x = SparseBinary::from_rows(65, (0..64).map(|i| vec![i, 64])).unwrap();
        let two = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        for bad in [None, Some(f32::INFINITY), Some(f32::NEG_INFINITY), Some(f32::NAN)] {
            for bad_row in [0, 40, 63] {
                let mut g = Matrix::from_fn(64, 20, |i, j| (i * 20 + j) as f32 * 0.5);
                if let Some(bad) = bad {
                    g[(bad_row, 7)] = bad;
                }
                for parallelism in [Parallelism::Sequential, Parallelism::Parallel] {
                    let sparse = two.install(|| sparse_transpose_matmul_rows(&x, &g, parallelism));
                    let case = format!("{bad:?} in row {bad_row}, {parallelism:?}");
                    assert_eq!(sparse.finite, Some(bad.is_none()), "{case}");
                    assert_eq!(sparse.all_finite(), bad.is_none(), "{case}");
                }
            }
        }
        // Finite sources whose sum overflows: bit 2 is in all three
        // molecules, so row 2 of the product adds three of them.
        let x = SparseBinary::from_rows(4, [vec![0, 2], vec![2], vec![1, 2]]).unwrap();
        let big = Matrix::from_fn(3, 20, |_, _| 3e38f32);
        let mut sparse = sparse_transpose_matmul_rows(&x, &big, Parallelism::Sequential);
        assert!(!sparse.all_finite());
        // Changed values are looked at again.
        sparse.values_mut().as_mut_slice().fill(1.0);
        assert_eq!(sparse.finite, None);
        assert!(sparse.all_finite());
    }
}
