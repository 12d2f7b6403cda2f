//! Class-balancing weights and target scaling, both fitted on the training
//! part only.

use ferrochem_kernels::Matrix;
use serde::{Deserialize, Serialize};

/// DeepChem's balancing weights of one task.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassBalance {
    /// Labelled rows in the fitting rows.
    pub n_labelled: usize,
    /// Positives among them.
    pub n_positive: usize,
    /// Negatives among them.
    pub n_negative: usize,
    /// `n_labelled / n_positive` (0 when there are no positives).
    pub positive_weight: f64,
    /// `n_labelled / n_negative` (0 when there are no negatives).
    pub negative_weight: f64,
}

/// Fits per-task balancing weights on the rows `fit_rows`, so that each
/// class carries the same total weight: `w_pos = n_labelled / n_pos` and
/// `w_neg = n_labelled / n_neg`.
pub fn balancing_weights(
    targets: &Matrix<f32>,
    mask: &Matrix<f32>,
    fit_rows: &[usize],
) -> Vec<ClassBalance> {
    (0..targets.ncols())
        .map(|task| {
            let labelled = fit_rows.iter().filter(|&&r| mask[(r, task)] != 0.0);
            let n_labelled = labelled.clone().count();
            let n_positive = labelled.filter(|&&r| targets[(r, task)] > 0.5).count();
            let n_negative = n_labelled - n_positive;
            let ratio =
                |count: usize| if count == 0 { 0.0 } else { n_labelled as f64 / count as f64 };
            ClassBalance {
                n_labelled,
                n_positive,
                n_negative,
                positive_weight: ratio(n_positive),
                negative_weight: ratio(n_negative),
            }
        })
        .collect()
}

/// The weight of every entry under `balance`: the class weight where a
/// label is present, 0 where it is missing.
pub fn balanced_weight_matrix(
    targets: &Matrix<f32>,
    mask: &Matrix<f32>,
    balance: &[ClassBalance],
) -> Matrix<f32> {
    Matrix::from_fn(targets.nrows(), targets.ncols(), |row, task| {
        if mask[(row, task)] == 0.0 {
            0.0
        } else if targets[(row, task)] > 0.5 {
            balance[task].positive_weight as f32
        } else {
            balance[task].negative_weight as f32
        }
    })
}

/// Per-task standardization of regression targets: `(y − mean) / std`,
/// fitted on the training rows and undone on predictions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetScaling {
    /// Mean of each task over its labelled fitting rows.
    pub mean: Vec<f64>,
    /// Standard deviation (population) of each task; 1 where it is 0.
    pub std: Vec<f64>,
}

impl TargetScaling {
    /// Fits the scaling on `fit_rows`.
    pub fn fit(targets: &Matrix<f32>, mask: &Matrix<f32>, fit_rows: &[usize]) -> Self {
        let (mut mean, mut std) = (Vec::new(), Vec::new());
        for task in 0..targets.ncols() {
            let values: Vec<f64> = fit_rows
                .iter()
                .filter(|&&r| mask[(r, task)] != 0.0)
                .map(|&r| f64::from(targets[(r, task)]))
                .collect();
            let n = values.len().max(1) as f64;
            let m = values.iter().sum::<f64>() / n;
            let variance = values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n;
            mean.push(m);
            std.push(if variance > 0.0 { variance.sqrt() } else { 1.0 });
        }
        TargetScaling { mean, std }
    }

    /// Standardizes `targets` in place.
    pub fn apply(&self, targets: &mut Matrix<f32>) {
        self.map(targets, |v, m, s| (v - m) / s);
    }

    /// Turns standardized values back into the original units, in place.
    pub fn undo(&self, values: &mut Matrix<f32>) {
        self.map(values, |v, m, s| v * s + m);
    }

    fn map(&self, values: &mut Matrix<f32>, f: impl Fn(f64, f64, f64) -> f64) {
        for row in 0..values.nrows() {
            for task in 0..values.ncols() {
                let v = &mut values[(row, task)];
                *v = f(f64::from(*v), self.mean[task], self.std[task]) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_round_trips_and_uses_training_rows_only() {
        let targets = Matrix::from_vec(4, 1, vec![1.0, 3.0, 100.0, 2.0]);
        let mask = Matrix::filled(4, 1, 1.0);
        let scaling = TargetScaling::fit(&targets, &mask, &[0, 1]);
        assert_eq!((scaling.mean[0], scaling.std[0]), (2.0, 1.0));
        let mut scaled = targets.clone();
        scaling.apply(&mut scaled);
        assert_eq!(scaled.as_slice(), &[-1.0, 1.0, 98.0, 0.0]);
        scaling.undo(&mut scaled);
        assert_eq!(scaled, targets);
    }

    #[test]
    fn weights_balance_the_classes_and_zero_missing_labels() {
        let targets = Matrix::from_vec(4, 1, vec![1.0, 0.0, 0.0, 0.0]);
        let mask = Matrix::from_vec(4, 1, vec![1.0, 1.0, 1.0, 0.0]);
        let balance = balancing_weights(&targets, &mask, &[0, 1, 2, 3]);
        assert_eq!((balance[0].positive_weight, balance[0].negative_weight), (3.0, 1.5));
        let w = balanced_weight_matrix(&targets, &mask, &balance);
        assert_eq!(w.as_slice(), &[3.0, 1.5, 1.5, 0.0]);
    }
}
