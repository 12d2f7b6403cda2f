//! Batches, the data sets they are cut from, and the seeded order of an
//! epoch.
//!
//! The training loop sees data only through [`Dataset`]: a number of rows,
//! and a way to gather any rows into a [`Batch`]. The order of an epoch is
//! a pure function of the seed and the epoch number ([`EpochPlan`]), so a
//! run resumed in the middle of an epoch replays the same batches from a
//! cursor without storing the order.

use ferrochem_kernels::random::Rng;
use ferrochem_kernels::{Matrix, SparseBinary};

/// The input features of some rows.
#[derive(Clone, Debug, PartialEq)]
pub enum Features {
    /// Binary features, such as fingerprint bits, one sparse row each.
    Sparse(SparseBinary),
    /// Dense features, such as descriptors or fingerprint counts.
    Dense(Matrix<f32>),
}

impl Features {
    /// Number of rows.
    pub fn nrows(&self) -> usize {
        match self {
            Features::Sparse(x) => x.nrows(),
            Features::Dense(x) => x.nrows(),
        }
    }

    /// Number of features per row.
    pub fn ncols(&self) -> usize {
        match self {
            Features::Sparse(x) => x.ncols(),
            Features::Dense(x) => x.ncols(),
        }
    }

    /// The given rows, in the given order.
    ///
    /// # Panics
    ///
    /// Panics if a row index is out of range.
    #[track_caller]
    pub fn select_rows(&self, rows: &[usize]) -> Features {
        match self {
            Features::Sparse(x) => Features::Sparse(x.select_rows(rows)),
            Features::Dense(x) => Features::Dense(select_matrix_rows(x, rows)),
        }
    }
}

/// Rows `rows` of `matrix`, in that order.
#[track_caller]
pub fn select_matrix_rows<T: ferrochem_kernels::Float>(
    matrix: &Matrix<T>,
    rows: &[usize],
) -> Matrix<T> {
    let mut data = Vec::with_capacity(rows.len() * matrix.ncols());
    for &row_idx in rows {
        data.extend_from_slice(matrix.row(row_idx));
    }
    Matrix::from_vec(rows.len(), matrix.ncols(), data)
}

/// A batch: features and labels of some rows, with a weight and a
/// measured-or-missing mask for every label.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// `batch_size × n_features` inputs.
    pub features: Features,
    /// `batch_size × n_tasks` labels (0/1 for classes; arbitrary values for
    /// regression); entries with mask 0 are meaningless.
    pub targets: Matrix<f32>,
    /// `batch_size × n_tasks` weights, such as class-balancing weights.
    pub weights: Matrix<f32>,
    /// `batch_size × n_tasks`: 1 where a label was measured, 0 where it is
    /// missing (or the row is padding).
    pub mask: Matrix<f32>,
    /// The data set rows the batch holds, in batch order.
    pub rows: Vec<usize>,
}

/// Anything the training loop can draw batches from.
pub trait Dataset: Sync {
    /// Number of rows.
    fn n_rows(&self) -> usize;
    /// Number of features per row.
    fn n_features(&self) -> usize;
    /// Number of tasks (label columns).
    fn n_tasks(&self) -> usize;
    /// Gathers `rows`, in that order, into a batch.
    fn batch(&self, rows: &[usize]) -> Batch;
}

/// A data set held in memory, in the form the loaders produce.
#[derive(Clone, Debug, PartialEq)]
pub struct InMemoryDataset {
    features: Features,
    targets: Matrix<f32>,
    weights: Matrix<f32>,
    mask: Matrix<f32>,
}

impl InMemoryDataset {
    /// Wraps features and labels of the same number of rows.
    ///
    /// # Panics
    ///
    /// Panics, naming the shapes, if the row counts differ or the three
    /// label matrices differ in shape.
    #[track_caller]
    pub fn new(
        features: Features,
        targets: Matrix<f32>,
        weights: Matrix<f32>,
        mask: Matrix<f32>,
    ) -> Self {
        assert!(
            features.nrows() == targets.nrows()
                && targets.shape() == weights.shape()
                && targets.shape() == mask.shape(),
            "InMemoryDataset: features have {} rows, targets are {:?}, weights {:?}, mask {:?}",
            features.nrows(),
            targets.shape(),
            weights.shape(),
            mask.shape()
        );
        InMemoryDataset { features, targets, weights, mask }
    }

    /// All features.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// All targets.
    pub fn targets(&self) -> &Matrix<f32> {
        &self.targets
    }

    /// All weights.
    pub fn weights(&self) -> &Matrix<f32> {
        &self.weights
    }

    /// The mask of measured labels.
    pub fn mask(&self) -> &Matrix<f32> {
        &self.mask
    }
}

impl Dataset for InMemoryDataset {
    fn n_rows(&self) -> usize {
        self.features.nrows()
    }

    fn n_features(&self) -> usize {
        self.features.ncols()
    }

    fn n_tasks(&self) -> usize {
        self.targets.ncols()
    }

    fn batch(&self, rows: &[usize]) -> Batch {
        Batch {
            features: self.features.select_rows(rows),
            targets: select_matrix_rows(&self.targets, rows),
            weights: select_matrix_rows(&self.weights, rows),
            mask: select_matrix_rows(&self.mask, rows),
            rows: rows.to_vec(),
        }
    }
}

/// What happens to the last batch of an epoch when the rows do not divide
/// evenly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LastBatch {
    /// Keep it, smaller than the others.
    #[default]
    Keep,
    /// Leave its rows out of this epoch (they are in others, since every
    /// epoch shuffles anew).
    Drop,
    /// Fill it up to full size with rows from the start of the epoch whose
    /// labels are masked out, so every batch has the same shape and no row
    /// counts twice in the loss.
    Pad,
}

/// Separates the shuffling stream from the other uses of the seed.
const SHUFFLE_STREAM: u64 = 0x5407;

/// The batches of one epoch: a fresh shuffle of all rows, determined by
/// `(seed, epoch)`, cut into batches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochPlan {
    order: Vec<usize>,
    batch_size: usize,
    last: LastBatch,
}

impl EpochPlan {
    /// The plan of epoch `epoch` over `n_rows` rows.
    ///
    /// # Panics
    ///
    /// Panics if `batch_size` is 0.
    pub fn new(n_rows: usize, batch_size: usize, last: LastBatch, seed: u64, epoch: u64) -> Self {
        assert!(batch_size > 0, "EpochPlan: the batch size must be positive");
        let mut order: Vec<usize> = (0..n_rows).collect();
        Rng::from_key(&[SHUFFLE_STREAM, seed, epoch]).shuffle(&mut order);
        EpochPlan { order, batch_size, last }
    }

    /// Number of batches.
    pub fn n_batches(&self) -> usize {
        match self.last {
            LastBatch::Drop => self.order.len() / self.batch_size,
            LastBatch::Keep | LastBatch::Pad => self.order.len().div_ceil(self.batch_size),
        }
    }

    /// Batch `batch_idx` of the epoch, gathered from `dataset`.
    ///
    /// # Panics
    ///
    /// Panics if `batch_idx >= n_batches()`.
    #[track_caller]
    pub fn batch(&self, dataset: &dyn Dataset, batch_idx: usize) -> Batch {
        assert!(
            batch_idx < self.n_batches(),
            "batch {batch_idx} of an epoch of {}",
            self.n_batches()
        );
        let start = batch_idx * self.batch_size;
        let end = (start + self.batch_size).min(self.order.len());
        let n_real = end - start;
        if self.last != LastBatch::Pad || n_real == self.batch_size {
            return dataset.batch(&self.order[start..end]);
        }
        let mut rows = self.order[start..end].to_vec();
        rows.extend(self.order.iter().cycle().take(self.batch_size - n_real));
        let mut batch = dataset.batch(&rows);
        let n_tasks = batch.mask.ncols();
        batch.mask.as_mut_slice()[n_real * n_tasks..].fill(0.0);
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(n_rows: usize) -> InMemoryDataset {
        let x = SparseBinary::from_rows(4, (0..n_rows).map(|i| vec![(i % 4) as u32])).unwrap();
        let targets = Matrix::from_fn(n_rows, 2, |i, t| ((i + t) % 2) as f32);
        InMemoryDataset::new(
            Features::Sparse(x),
            targets,
            Matrix::filled(n_rows, 2, 1.0),
            Matrix::filled(n_rows, 2, 1.0),
        )
    }

    #[test]
    fn an_epoch_visits_every_row_once_in_a_seeded_order() {
        let data = dataset(10);
        let plan = EpochPlan::new(10, 3, LastBatch::Keep, 42, 0);
        assert_eq!(plan.n_batches(), 4);
        let mut seen: Vec<usize> = (0..4).flat_map(|b| plan.batch(&data, b).rows).collect();
        assert_ne!(seen, (0..10).collect::<Vec<_>>());
        seen.sort_unstable();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert_eq!(plan, EpochPlan::new(10, 3, LastBatch::Keep, 42, 0));
        assert_ne!(plan, EpochPlan::new(10, 3, LastBatch::Keep, 42, 1));
    }

    #[test]
    fn drop_and_pad_shape_the_last_batch() {
        let data = dataset(10);
        assert_eq!(EpochPlan::new(10, 3, LastBatch::Drop, 1, 0).n_batches(), 3);
        let plan = EpochPlan::new(10, 3, LastBatch::Pad, 1, 0);
        let last = plan.batch(&data, 3);
        assert_eq!(last.rows.len(), 3);
        assert_eq!(last.mask.as_slice(), &[1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(last.rows[1], plan.batch(&data, 0).rows[0]);
    }

    #[test]
    fn a_batch_gathers_matching_rows() {
        let data = dataset(6);
        let batch = data.batch(&[5, 2]);
        assert_eq!(batch.targets.as_slice(), &[1.0, 0.0, 0.0, 1.0]);
        let Features::Sparse(x) = &batch.features else { panic!("sparse in, sparse out") };
        assert_eq!((x.row(0), x.row(1)), (&[1u32][..], &[2u32][..]));
    }
}
