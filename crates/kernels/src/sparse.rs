//! Sparse binary matrices, the shape of fingerprint batches, and their two
//! products with dense matrices.
//!
//! An ECFP batch has about 30 of 1024 bits on per row. Multiplying it
//! densely wastes 97 % of the multiply-adds on zeros, and since the entries
//! that are not zero are all one there is nothing to multiply at all: the
//! forward product gathers and adds rows of the weight matrix, and the
//! weight gradient scatters rows of the output gradient back. Both cost
//! `O(nnz · ncols)` instead of `O(nrows · inner · ncols)`.

use std::fmt;

use multiversion::multiversion;
use rayon::prelude::*;

use crate::check::same_len;
use crate::parallel::Resolved;
use crate::{Accumulate, Float, Matrix, Parallelism};

/// Below this many row additions (`nnz · ncols`) a product stays on one
/// thread.
pub(crate) const PARALLEL_MIN_WORK: usize = 1 << 18;

/// A matrix whose entries are all 0 or 1, stored as the sorted column
/// indices of the ones in each row (compressed sparse rows).
///
/// Built with [`SparseBinary::from_count_rows`], a row may name a column
/// more than once: the entry is then the number of times, and every
/// product here treats it so (a row of `rhs` named twice is added twice).
/// That carries count fingerprints, whose entries are small integers on
/// the same few columns as their bits, at the cost of a repeated index
/// per extra count instead of a dense row.
///
/// # Example
///
/// ```
/// use ferrochem_kernels::SparseBinary;
///
/// let x = SparseBinary::from_rows(4, [vec![0, 3], vec![], vec![1]])?;
/// assert_eq!((x.nrows(), x.ncols(), x.nnz()), (3, 4, 3));
/// assert_eq!(x.row(0), &[0, 3]);
/// assert_eq!(x.to_dense::<f32>().row(2), &[0.0, 1.0, 0.0, 0.0]);
/// # Ok::<(), ferrochem_kernels::SparseBinaryError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SparseBinary {
    ncols: usize,
    /// `row_offsets[i]..row_offsets[i + 1]` indexes row `i` in `col_indices`;
    /// it has `nrows + 1` entries and starts at 0.
    row_offsets: Vec<usize>,
    col_indices: Vec<u32>,
}

impl SparseBinary {
    /// Builds a matrix with `ncols` columns from the on-column indices of
    /// each row.
    ///
    /// # Errors
    ///
    /// Fails if a row's indices are not strictly ascending or one is not
    /// below `ncols`.
    pub fn from_rows<I, R>(ncols: usize, rows: I) -> Result<Self, SparseBinaryError>
    where
        I: IntoIterator<Item = R>,
        R: AsRef<[u32]>,
    {
        let mut matrix = SparseBinary { ncols, row_offsets: vec![0], col_indices: Vec::new() };
        for row in rows {
            matrix.push_row(row.as_ref())?;
        }
        Ok(matrix)
    }

    /// Builds a matrix of small counts: each row lists its columns in
    /// ascending order, a column repeated as many times as its entry.
    ///
    /// # Errors
    ///
    /// Fails if a row's indices descend or one is not below `ncols`.
    pub fn from_count_rows<I, R>(ncols: usize, rows: I) -> Result<Self, SparseBinaryError>
    where
        I: IntoIterator<Item = R>,
        R: AsRef<[u32]>,
    {
        let mut matrix = SparseBinary::with_ncols(ncols);
        for row in rows {
            matrix.push_checked(row.as_ref(), |before, after| before > after)?;
        }
        Ok(matrix)
    }

    /// An empty matrix with `ncols` columns, to be filled with
    /// [`SparseBinary::push_row`].
    pub fn with_ncols(ncols: usize) -> Self {
        SparseBinary { ncols, row_offsets: vec![0], col_indices: Vec::new() }
    }

    /// Appends a row given by its on-column indices.
    ///
    /// # Errors
    ///
    /// Fails, leaving the matrix unchanged, if the indices are not strictly
    /// ascending or one is not below `ncols`.
    pub fn push_row(&mut self, cols: &[u32]) -> Result<(), SparseBinaryError> {
        self.push_checked(cols, |before, after| before >= after)
    }

    /// Appends `cols` unless an index is out of range or a neighbouring
    /// pair is `out_of_order`.
    fn push_checked(
        &mut self,
        cols: &[u32],
        out_of_order: impl Fn(u32, u32) -> bool,
    ) -> Result<(), SparseBinaryError> {
        let row_idx = self.nrows();
        let error = |kind| Err(SparseBinaryError { row_idx, kind });
        if let Some(&col) = cols.iter().find(|&&col| col as usize >= self.ncols) {
            return error(SparseBinaryErrorKind::OutOfRange { col, ncols: self.ncols });
        }
        if let Some(pair) = cols.windows(2).find(|pair| out_of_order(pair[0], pair[1])) {
            return error(SparseBinaryErrorKind::NotAscending { before: pair[0], after: pair[1] });
        }
        self.col_indices.extend_from_slice(cols);
        self.row_offsets.push(self.col_indices.len());
        Ok(())
    }

    /// Number of rows.
    pub fn nrows(&self) -> usize {
        self.row_offsets.len() - 1
    }

    /// Number of columns.
    pub fn ncols(&self) -> usize {
        self.ncols
    }

    /// `(nrows, ncols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.nrows(), self.ncols)
    }

    /// Number of ones.
    pub fn nnz(&self) -> usize {
        self.col_indices.len()
    }

    /// The ascending column indices of the ones in row `row_idx`.
    ///
    /// # Panics
    ///
    /// Panics if `row_idx >= nrows`.
    #[track_caller]
    pub fn row(&self, row_idx: usize) -> &[u32] {
        assert!(
            row_idx < self.nrows(),
            "row {row_idx} of a sparse matrix with {} rows",
            self.nrows()
        );
        &self.col_indices[self.row_offsets[row_idx]..self.row_offsets[row_idx + 1]]
    }

    /// The rows `row_indices`, in that order, as a new matrix: the way a
    /// batch is cut from a data set.
    ///
    /// # Panics
    ///
    /// Panics if an index is not below `nrows`.
    #[track_caller]
    pub fn select_rows(&self, row_indices: &[usize]) -> SparseBinary {
        let mut selected = SparseBinary::with_ncols(self.ncols);
        for &row_idx in row_indices {
            selected.col_indices.extend_from_slice(self.row(row_idx));
            selected.row_offsets.push(selected.col_indices.len());
        }
        selected
    }

    /// The same matrix with zeros and ones written out.
    pub fn to_dense<T: Float>(&self) -> Matrix<T> {
        let mut dense = Matrix::zeros(self.nrows(), self.ncols);
        for row_idx in 0..self.nrows() {
            let (offset, ncols) = (row_idx * self.ncols, self.ncols);
            let dst = &mut dense.as_mut_slice()[offset..offset + ncols];
            for &col in self.row(row_idx) {
                dst[col as usize] += T::ONE;
            }
        }
        dense
    }

    /// The transpose, in the same compressed-rows form: row `k` lists, in
    /// ascending order, the rows of `self` whose column `k` is one.
    pub fn transpose(&self) -> SparseBinary {
        let mut counts = vec![0usize; self.ncols + 1];
        for &col in &self.col_indices {
            counts[col as usize + 1] += 1;
        }
        for k in 0..self.ncols {
            counts[k + 1] += counts[k];
        }
        let row_offsets = counts.clone();
        let mut cursor = counts;
        let mut col_indices = vec![0u32; self.nnz()];
        // Visiting rows in order writes each transposed row in ascending
        // order without a sort.
        for row_idx in 0..self.nrows() {
            for &col in self.row(row_idx) {
                col_indices[cursor[col as usize]] = row_idx as u32;
                cursor[col as usize] += 1;
            }
        }
        SparseBinary { ncols: self.nrows(), row_offsets, col_indices }
    }
}

/// Why a row could not go into a [`SparseBinary`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SparseBinaryError {
    row_idx: usize,
    kind: SparseBinaryErrorKind,
}

impl SparseBinaryError {
    /// The 0-based row that was refused.
    pub fn row_idx(&self) -> usize {
        self.row_idx
    }

    /// What was wrong with it.
    pub fn kind(&self) -> &SparseBinaryErrorKind {
        &self.kind
    }
}

/// The ways a row of column indices can be malformed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SparseBinaryErrorKind {
    /// A column index is not below the number of columns.
    OutOfRange {
        /// The offending index.
        col: u32,
        /// The number of columns of the matrix.
        ncols: usize,
    },
    /// Two neighbouring indices are out of order or repeated.
    NotAscending {
        /// The earlier index.
        before: u32,
        /// The later index, not greater than `before`.
        after: u32,
    },
}

impl fmt::Display for SparseBinaryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            SparseBinaryErrorKind::OutOfRange { col, ncols } => {
                write!(f, "row {}: column {col} is out of range for {ncols} columns", self.row_idx)
            }
            SparseBinaryErrorKind::NotAscending { before, after } => write!(
                f,
                "row {}: columns must be strictly ascending, found {before} before {after}",
                self.row_idx
            ),
        }
    }
}

impl std::error::Error for SparseBinaryError {}

/// Computes `dst = lhs · rhs + bias`, with `bias` (if any) added to every
/// row: row `i` of `dst` is `bias` plus the rows of `rhs` named in row `i` of
/// `lhs`, added in ascending order.
///
/// Rows of `dst` are independent, so threads split them without sharing
/// anything and the result does not depend on `parallelism`.
///
/// # Panics
///
/// Panics, naming the shapes, if `lhs.ncols() != rhs.nrows()`, `dst` is not
/// `lhs.nrows() × rhs.ncols()`, or `bias` is not `rhs.ncols()` long.
///
/// # Example
///
/// ```
/// use ferrochem_kernels::{sparse_matmul_into, Matrix, Parallelism, SparseBinary};
///
/// let x = SparseBinary::from_rows(3, [vec![0, 2]])?;
/// let w = Matrix::from_vec(3, 2, vec![1.0f32, 2.0, 10.0, 20.0, 100.0, 200.0]);
/// let mut out = Matrix::zeros(1, 2);
/// sparse_matmul_into(&mut out, &x, &w, Some(&[0.5, 0.5]), Parallelism::Sequential);
/// assert_eq!(out.as_slice(), &[101.5, 202.5]);
/// # Ok::<(), ferrochem_kernels::SparseBinaryError>(())
/// ```
#[track_caller]
pub fn sparse_matmul_into<T: Float>(
    dst: &mut Matrix<T>,
    lhs: &SparseBinary,
    rhs: &Matrix<T>,
    bias: Option<&[T]>,
    parallelism: Parallelism,
) {
    check_shapes(
        "sparse_matmul",
        dst.shape(),
        lhs.shape(),
        rhs.shape(),
        (lhs.nrows(), rhs.ncols()),
    );
    if let Some(bias) = bias {
        same_len("sparse_matmul", "bias", rhs.ncols(), bias.len());
    }
    let ncols = rhs.ncols();
    if ncols == 0 {
        return;
    }

    let fill_row = |(row_idx, dst_row): (usize, &mut [T])| {
        let weight_rows = lhs.row(row_idx).iter().map(|&k| rhs.row(k as usize));
        gather(dst_row, Start::Overwrite, bias.into_iter().chain(weight_rows));
    };
    let rows = dst.as_mut_slice().chunks_exact_mut(ncols);
    match parallelism.resolve(lhs.nnz() * ncols, PARALLEL_MIN_WORK) {
        Resolved::Sequential => rows.enumerate().for_each(fill_row),
        Resolved::Parallel(_) => dst
            .as_mut_slice()
            .par_chunks_exact_mut(ncols)
            .enumerate()
            .with_min_len(4)
            .for_each(fill_row),
    }
}

/// Computes `dst = beta · dst + lhsᵀ · rhs`: the weight gradient of a
/// sparse first layer, `grad_w += xᵀ · grad_out`.
///
/// This form writes the whole dense result, zeros included, and is about
/// seven times faster than the dense product at batch 50, where only the
/// rows of bits present in the batch (about 580 of 1024 for Tox21) receive
/// anything. Training uses [`sparse_transpose_matmul_rows`] instead, which
/// keeps just those rows.
///
/// [`sparse_transpose_matmul_rows`]: crate::sparse_transpose_matmul_rows
#[track_caller]
pub fn sparse_transpose_matmul_into<T: Float>(
    dst: &mut Matrix<T>,
    accumulate: Accumulate<T>,
    lhs: &SparseBinary,
    rhs: &Matrix<T>,
    parallelism: Parallelism,
) {
    let lhs_t_shape = (lhs.ncols(), lhs.nrows());
    check_shapes(
        "sparse_transpose_matmul",
        dst.shape(),
        lhs_t_shape,
        rhs.shape(),
        (lhs.ncols(), rhs.ncols()),
    );
    let ncols = rhs.ncols();
    if ncols == 0 {
        return;
    }

    let lhs_t = lhs.transpose();
    let fill_row = |(k, dst_row): (usize, &mut [T])| {
        let start = match accumulate {
            Accumulate::Overwrite => Start::Overwrite,
            Accumulate::Add { beta } if beta == T::ONE => Start::Keep,
            Accumulate::Add { beta } => {
                dst_row.iter_mut().for_each(|d| *d = beta * *d);
                Start::Keep
            }
        };
        gather(dst_row, start, lhs_t.row(k).iter().map(|&row_idx| rhs.row(row_idx as usize)));
    };
    match parallelism.resolve(lhs.nnz() * ncols, PARALLEL_MIN_WORK) {
        Resolved::Sequential => {
            dst.as_mut_slice().chunks_exact_mut(ncols).enumerate().for_each(fill_row)
        }
        Resolved::Parallel(_) => dst
            .as_mut_slice()
            .par_chunks_exact_mut(ncols)
            .enumerate()
            .with_min_len(16)
            .for_each(fill_row),
    }
}

/// Whether a gather adds to what `dst` holds or replaces it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// `dst = Σ sources`; the old contents are never read.
    Overwrite,
    /// `dst = dst + Σ sources`.
    Keep,
}

/// `dst = [dst +] Σ sources`, added in order: `((dst + s₀) + s₁) + …`.
///
/// Up to four sources go through `dst` in one pass, so a row is loaded and
/// stored once per four sources rather than once per source, and the first
/// pass of an overwrite does not read `dst` at all. The order of the
/// additions is the same as adding one source at a time.
pub(crate) fn gather<'a, T: Float>(
    dst: &mut [T],
    start: Start,
    sources: impl Iterator<Item = &'a [T]>,
) {
    let mut keep = start == Start::Keep;
    let mut pending: [&[T]; 4] = [&[]; 4];
    let mut n_pending = 0;
    for source in sources {
        pending[n_pending] = source;
        n_pending += 1;
        if n_pending == 4 {
            sum_pass(dst, &pending, keep);
            keep = true;
            n_pending = 0;
        }
    }
    if n_pending > 0 {
        sum_pass(dst, &pending[..n_pending], keep);
    } else if !keep {
        dst.fill(T::ZERO);
    }
}

fn sum_pass<T: Float>(dst: &mut [T], sources: &[&[T]], keep: bool) {
    match (sources, keep) {
        ([a], true) => sum_kernel::<T, 1, true>(dst, [a]),
        ([a], false) => sum_kernel::<T, 1, false>(dst, [a]),
        ([a, b], true) => sum_kernel::<T, 2, true>(dst, [a, b]),
        ([a, b], false) => sum_kernel::<T, 2, false>(dst, [a, b]),
        ([a, b, c], true) => sum_kernel::<T, 3, true>(dst, [a, b, c]),
        ([a, b, c], false) => sum_kernel::<T, 3, false>(dst, [a, b, c]),
        ([a, b, c, d], true) => sum_kernel::<T, 4, true>(dst, [a, b, c, d]),
        ([a, b, c, d], false) => sum_kernel::<T, 4, false>(dst, [a, b, c, d]),
        _ => unreachable!("sum_pass takes one to four sources"),
    }
}

#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
fn sum_kernel<T: Float, const N: usize, const KEEP: bool>(dst: &mut [T], sources: [&[T]; N]) {
    let n = dst.len();
    let sources = sources.map(|source| &source[..n]);
    for i in 0..n {
        let mut acc = if KEEP { dst[i] + sources[0][i] } else { sources[0][i] };
        for source in &sources[1..] {
            acc += source[i];
        }
        dst[i] = acc;
    }
}

#[track_caller]
fn check_shapes(
    op: &str,
    dst: (usize, usize),
    lhs: (usize, usize),
    rhs: (usize, usize),
    product: (usize, usize),
) {
    if lhs.1 != rhs.0 || dst != product {
        panic!(
            "{op}: lhs is {}x{}, rhs is {}x{}, dst is {}x{}: the product needs matching \
             inner dimensions and a {}x{} dst",
            lhs.0, lhs.1, rhs.0, rhs.1, dst.0, dst.1, product.0, product.1
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Form, matmul};

    fn fingerprint_like(nrows: usize, ncols: usize) -> SparseBinary {
        let rows = (0..nrows).map(|i| {
            (0..ncols as u32)
                .filter(|&k| (k as usize * 7 + i * 13).is_multiple_of(11))
                .collect::<Vec<_>>()
        });
        SparseBinary::from_rows(ncols, rows).unwrap()
    }

    #[test]
    fn repeated_columns_count_in_every_product() {
        let x =
            SparseBinary::from_count_rows(4, [vec![0, 0, 3], vec![], vec![1, 1, 1, 2]]).unwrap();
        let dense_x = x.to_dense::<f64>();
        assert_eq!(dense_x.row(0), &[2.0, 0.0, 0.0, 1.0]);
        assert_eq!(dense_x.row(2), &[0.0, 3.0, 1.0, 0.0]);
        let w = Matrix::from_fn(4, 3, |i, j| (i as f64 + 1.0) * 0.5 - j as f64 * 0.25);
        let g = Matrix::from_fn(3, 3, |i, j| i as f64 * 0.75 - j as f64 * 0.5);
        let mut forward = Matrix::zeros(3, 3);
        sparse_matmul_into(&mut forward, &x, &w, None, Parallelism::Sequential);
        let expected = matmul(dense_x.as_ref(), w.as_ref(), Form::Plain, Parallelism::Sequential);
        assert_eq!(forward, expected);
        let mut grad = Matrix::zeros(4, 3);
        sparse_transpose_matmul_into(
            &mut grad,
            Accumulate::Overwrite,
            &x,
            &g,
            Parallelism::Sequential,
        );
        let expected =
            matmul(dense_x.as_ref(), g.as_ref(), Form::LhsTransposed, Parallelism::Sequential);
        assert_eq!(grad, expected);
        let rows = crate::sparse_transpose_matmul_rows(&x, &g, Parallelism::Sequential);
        assert_eq!(rows.to_dense(), expected);
        assert!(SparseBinary::from_count_rows(4, [vec![2, 1]]).is_err());
        assert!(SparseBinary::from_rows(4, [vec![1, 1]]).is_err(), "bits stay strictly ascending");
    }

    #[test]
    fn products_match_the_dense_ones() {
        let x = fingerprint_like(9, 40);
        let w = Matrix::from_fn(40, 5, |i, j| (i as f64 - 3.0 * j as f64) * 0.25);
        let g = Matrix::from_fn(9, 5, |i, j| (i * j) as f64 * 0.5 - 1.0);
        let dense_x = x.to_dense::<f64>();

        let mut forward = Matrix::filled(9, 5, f64::NAN);
        sparse_matmul_into(&mut forward, &x, &w, None, Parallelism::Sequential);
        let expected = matmul(dense_x.as_ref(), w.as_ref(), Form::Plain, Parallelism::Sequential);
        // Sums of a few exactly representable quarters: exact in any order.
        assert_eq!(forward, expected);

        let mut grad = Matrix::filled(40, 5, 1.0);
        sparse_transpose_matmul_into(&mut grad, Accumulate::ADD, &x, &g, Parallelism::Parallel);
        let mut expected =
            matmul(dense_x.as_ref(), g.as_ref(), Form::LhsTransposed, Parallelism::Sequential);
        expected.as_mut_slice().iter_mut().for_each(|v| *v += 1.0);
        assert_eq!(grad, expected);
    }

    #[test]
    fn bias_and_empty_rows() {
        let x = SparseBinary::from_rows(2, [vec![], vec![1]]).unwrap();
        let w = Matrix::from_vec(2, 1, vec![5.0f32, 7.0]);
        let mut out = Matrix::zeros(2, 1);
        sparse_matmul_into(&mut out, &x, &w, Some(&[1.0]), Parallelism::Auto);
        assert_eq!(out.as_slice(), &[1.0, 8.0]);
    }

    #[test]
    fn transpose_round_trips() {
        let x = fingerprint_like(17, 23);
        assert_eq!(x.transpose().transpose(), x);
        assert_eq!(
            x.transpose().to_dense::<f32>(),
            Matrix::from_view(x.to_dense::<f32>().as_ref().transpose())
        );
        assert_eq!(x.select_rows(&[3, 0]).row(1), x.row(0));
    }

    #[test]
    fn malformed_rows_are_refused() {
        let err = SparseBinary::from_rows(4, [vec![0, 1], vec![2, 2]]).unwrap_err();
        assert_eq!(err.row_idx(), 1);
        assert_eq!(err.to_string(), "row 1: columns must be strictly ascending, found 2 before 2");
        let err = SparseBinary::from_rows(4, [vec![4]]).unwrap_err();
        assert_eq!(err.to_string(), "row 0: column 4 is out of range for 4 columns");
    }

    #[test]
    #[should_panic(expected = "sparse_matmul: lhs is 2x3, rhs is 4x1")]
    fn inner_mismatch_panics_with_shapes() {
        let x = SparseBinary::from_rows(3, [vec![0], vec![1]]).unwrap();
        sparse_matmul_into(
            &mut Matrix::<f32>::zeros(2, 1),
            &x,
            &Matrix::zeros(4, 1),
            None,
            Parallelism::Auto,
        );
    }
}
