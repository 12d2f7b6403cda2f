//! [`Matrix`], the owned dense matrix every layer above the kernels stores.

use std::ops::{Index, IndexMut};

use faer::{MatMut, MatRef};

use crate::Float;

/// An owned dense matrix in row-major order.
///
/// Rows are contiguous because every hot access pattern in training reads
/// whole rows: a batch is a stack of examples, and the sparse first layer
/// gathers rows of its weight matrix. [`Matrix::as_ref`] and
/// [`Matrix::as_mut`] hand out faer views, so the dense products run through
/// faer without a copy.
///
/// # Example
///
/// ```
/// use ferrochem_kernels::Matrix;
///
/// let m = Matrix::from_fn(2, 3, |row_idx, col_idx| (10 * row_idx + col_idx) as f32);
/// assert_eq!(m.shape(), (2, 3));
/// assert_eq!(m.row(1), &[10.0, 11.0, 12.0]);
/// assert_eq!(m[(0, 2)], 2.0);
/// ```
#[derive(Clone, PartialEq)]
pub struct Matrix<T> {
    nrows: usize,
    ncols: usize,
    data: Vec<T>,
}

impl<T: Float> Matrix<T> {
    /// A matrix of zeros.
    pub fn zeros(nrows: usize, ncols: usize) -> Self {
        Self::filled(nrows, ncols, T::ZERO)
    }

    /// A matrix with every entry equal to `value`.
    pub fn filled(nrows: usize, ncols: usize, value: T) -> Self {
        Matrix { nrows, ncols, data: vec![value; nrows * ncols] }
    }

    /// A 1 × 1 matrix holding `value`, the shape of a loss.
    pub fn scalar(value: T) -> Self {
        Self::filled(1, 1, value)
    }

    /// Wraps row-major `data`.
    ///
    /// # Panics
    ///
    /// Panics if `data.len()` is not `nrows * ncols`.
    #[track_caller]
    pub fn from_vec(nrows: usize, ncols: usize, data: Vec<T>) -> Self {
        assert!(
            data.len() == nrows * ncols,
            "Matrix::from_vec: {} values cannot fill a {nrows}x{ncols} matrix",
            data.len(),
        );
        Matrix { nrows, ncols, data }
    }

    /// Builds a matrix from `f(row_idx, col_idx)`, visiting rows in order.
    pub fn from_fn(nrows: usize, ncols: usize, mut f: impl FnMut(usize, usize) -> T) -> Self {
        let mut data = Vec::with_capacity(nrows * ncols);
        for row_idx in 0..nrows {
            for col_idx in 0..ncols {
                data.push(f(row_idx, col_idx));
            }
        }
        Matrix { nrows, ncols, data }
    }

    /// Copies any faer view into a new row-major matrix.
    pub fn from_view(view: MatRef<'_, T>) -> Self {
        Self::from_fn(view.nrows(), view.ncols(), |i, j| view[(i, j)])
    }
}

impl<T> Matrix<T> {
    /// Number of rows.
    pub fn nrows(&self) -> usize {
        self.nrows
    }

    /// Number of columns.
    pub fn ncols(&self) -> usize {
        self.ncols
    }

    /// `(nrows, ncols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.nrows, self.ncols)
    }

    /// Number of entries, `nrows * ncols`.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the matrix has no entries (a dimension is zero).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// All entries, row after row.
    pub fn as_slice(&self) -> &[T] {
        &self.data
    }

    /// All entries, row after row, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// Gives back the row-major storage.
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }

    /// Row `row_idx` as a slice.
    ///
    /// # Panics
    ///
    /// Panics if `row_idx >= nrows`.
    #[track_caller]
    pub fn row(&self, row_idx: usize) -> &[T] {
        assert!(row_idx < self.nrows, "row {row_idx} of a matrix with {} rows", self.nrows);
        &self.data[row_idx * self.ncols..(row_idx + 1) * self.ncols]
    }

    /// Row `row_idx` as a mutable slice.
    ///
    /// # Panics
    ///
    /// Panics if `row_idx >= nrows`.
    #[track_caller]
    pub fn row_mut(&mut self, row_idx: usize) -> &mut [T] {
        assert!(row_idx < self.nrows, "row {row_idx} of a matrix with {} rows", self.nrows);
        &mut self.data[row_idx * self.ncols..(row_idx + 1) * self.ncols]
    }

    /// A faer view of the whole matrix.
    pub fn as_ref(&self) -> MatRef<'_, T> {
        MatRef::from_row_major_slice(&self.data, self.nrows, self.ncols)
    }

    /// A mutable faer view of the whole matrix.
    pub fn as_mut(&mut self) -> MatMut<'_, T> {
        MatMut::from_row_major_slice_mut(&mut self.data, self.nrows, self.ncols)
    }
}

impl<T> Index<(usize, usize)> for Matrix<T> {
    type Output = T;

    #[track_caller]
    fn index(&self, (row_idx, col_idx): (usize, usize)) -> &T {
        assert!(
            row_idx < self.nrows && col_idx < self.ncols,
            "index ({row_idx}, {col_idx}) out of a {}x{} matrix",
            self.nrows,
            self.ncols,
        );
        &self.data[row_idx * self.ncols + col_idx]
    }
}

impl<T> IndexMut<(usize, usize)> for Matrix<T> {
    #[track_caller]
    fn index_mut(&mut self, (row_idx, col_idx): (usize, usize)) -> &mut T {
        assert!(
            row_idx < self.nrows && col_idx < self.ncols,
            "index ({row_idx}, {col_idx}) out of a {}x{} matrix",
            self.nrows,
            self.ncols,
        );
        &mut self.data[row_idx * self.ncols + col_idx]
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Matrix<T> {
    /// Prints the shape and at most the first few rows, so that a failing
    /// assertion on a large matrix stays readable.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const MAX_ROWS: usize = 6;
        writeln!(f, "Matrix {}x{} [", self.nrows, self.ncols)?;
        for row_idx in 0..self.nrows.min(MAX_ROWS) {
            writeln!(f, "  {:?},", &self.data[row_idx * self.ncols..(row_idx + 1) * self.ncols])?;
        }
        if self.nrows > MAX_ROWS {
            writeln!(f, "  ... {} more rows", self.nrows - MAX_ROWS)?;
        }
        write!(f, "]")
    }
}

/// The serialized form: shape, then the row-major entries.
#[derive(serde::Serialize)]
struct MatrixRepr<'a, T> {
    nrows: usize,
    ncols: usize,
    data: &'a [T],
}

#[derive(serde::Deserialize)]
struct OwnedMatrixRepr<T> {
    nrows: usize,
    ncols: usize,
    data: Vec<T>,
}

impl<T: serde::Serialize> serde::Serialize for Matrix<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        MatrixRepr { nrows: self.nrows, ncols: self.ncols, data: &self.data }.serialize(serializer)
    }
}

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Matrix<T> {
    /// Refuses data whose length does not match the shape, so a corrupted
    /// file cannot produce a matrix that breaks the indexing invariant.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let repr = OwnedMatrixRepr::<T>::deserialize(deserializer)?;
        if repr.nrows.checked_mul(repr.ncols) != Some(repr.data.len()) {
            return Err(serde::de::Error::custom(format!(
                "a {}x{} matrix cannot hold {} values",
                repr.nrows,
                repr.ncols,
                repr.data.len()
            )));
        }
        Ok(Matrix { nrows: repr.nrows, ncols: repr.ncols, data: repr.data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_agree_with_row_major_storage() {
        let mut m = Matrix::from_fn(3, 2, |i, j| (i * 2 + j) as f64);
        assert_eq!(m.as_ref()[(2, 1)], 5.0);
        m.as_mut()[(1, 0)] = -1.0;
        assert_eq!(m.row(1), &[-1.0, 3.0]);
        assert_eq!(Matrix::from_view(m.as_ref().transpose()).row(0), &[0.0, -1.0, 4.0]);
    }

    #[test]
    fn serde_round_trip_checks_the_length() {
        let m = Matrix::from_fn(2, 3, |i, j| (i + 10 * j) as f32);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"nrows":2,"ncols":3,"data":[0.0,10.0,20.0,1.0,11.0,21.0]}"#);
        assert_eq!(serde_json::from_str::<Matrix<f32>>(&json).unwrap(), m);
        let err = serde_json::from_str::<Matrix<f32>>(r#"{"nrows":2,"ncols":3,"data":[1.0]}"#);
        assert!(err.unwrap_err().to_string().contains("a 2x3 matrix cannot hold 1 values"));
    }

    #[test]
    #[should_panic(expected = "5 values cannot fill a 2x3 matrix")]
    fn from_vec_names_the_mismatch() {
        let _ = Matrix::from_vec(2, 3, vec![0.0f32; 5]);
    }
}
