//! Masked multitask metrics: ROC-AUC and PRC-AUC for classification, RMSE,
//! MAE and R² for regression.
//!
//! Each task is scored over its labelled rows only (mask 1). A
//! classification task whose labelled rows are all of one class has no
//! ROC-AUC or PRC-AUC; means are taken over the tasks that have a value.
//! Validation, early stopping and final reports all use these functions, so
//! a number means the same thing everywhere.

use ferrochem_kernels::Matrix;
use serde::{Deserialize, Serialize};

/// A score to select models by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    /// Mean ROC-AUC over tasks; higher is better.
    RocAuc,
    /// Mean PRC-AUC (average precision) over tasks; higher is better.
    PrcAuc,
    /// Mean RMSE over tasks; lower is better.
    Rmse,
    /// Mean MAE over tasks; lower is better.
    Mae,
    /// Mean R² over tasks; higher is better.
    R2,
}

impl Metric {
    /// Whether larger values are better.
    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::RocAuc | Metric::PrcAuc | Metric::R2)
    }

    /// The metric's name as written in reports.
    pub fn name(self) -> &'static str {
        match self {
            Metric::RocAuc => "roc_auc",
            Metric::PrcAuc => "prc_auc",
            Metric::Rmse => "rmse",
            Metric::Mae => "mae",
            Metric::R2 => "r2",
        }
    }
}

/// How the area under the precision-recall curve is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrcArea {
    /// Average precision, `Σ (Rₖ − Rₖ₋₁) Pₖ` over thresholds (scikit-learn's
    /// `average_precision_score`); no interpolation, so it never
    /// overestimates.
    #[default]
    AveragePrecision,
    /// The trapezoid rule over the curve's points, starting from
    /// (recall 0, precision 1) (scikit-learn's `auc(recall, precision)`).
    Trapezoid,
}

/// The scores of one task.
#[derive(Clone, Copy, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct TaskScores {
    /// Labelled rows the scores are over.
    pub n_labelled: usize,
    /// Area under the ROC curve, for classification tasks with both classes.
    pub roc_auc: Option<f64>,
    /// Area under the precision-recall curve, likewise.
    pub prc_auc: Option<f64>,
    /// Root mean squared error, for regression tasks.
    pub rmse: Option<f64>,
    /// Mean absolute error, for regression tasks.
    pub mae: Option<f64>,
    /// Coefficient of determination, for regression tasks.
    pub r2: Option<f64>,
}

impl TaskScores {
    /// The value of `metric`, if this task has it.
    pub fn get(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::RocAuc => self.roc_auc,
            Metric::PrcAuc => self.prc_auc,
            Metric::Rmse => self.rmse,
            Metric::Mae => self.mae,
            Metric::R2 => self.r2,
        }
    }
}

/// Scores of every task of a data set.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Scores {
    /// One entry per task, in task order.
    pub per_task: Vec<TaskScores>,
}

impl Scores {
    /// The mean of `metric` over the tasks that have it; `None` if none do.
    pub fn mean(&self, metric: Metric) -> Option<f64> {
        let values: Vec<f64> = self.per_task.iter().filter_map(|t| t.get(metric)).collect();
        if values.is_empty() {
            None
        } else {
            Some(values.iter().sum::<f64>() / values.len() as f64)
        }
    }
}

/// Whether tasks are classes or values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// 0/1 labels, scored by ROC-AUC and PRC-AUC.
    Classification,
    /// Real values, scored by RMSE, MAE and R².
    Regression,
}

/// Scores `predictions` (`n_rows × n_tasks`) against `targets` over the
/// entries where `mask` is nonzero.
///
/// # Panics
///
/// Panics if the three matrices differ in shape.
#[track_caller]
pub fn score(
    predictions: &Matrix<f32>,
    targets: &Matrix<f32>,
    mask: &Matrix<f32>,
    kind: TaskKind,
    prc: PrcArea,
) -> Scores {
    assert!(
        predictions.shape() == targets.shape() && targets.shape() == mask.shape(),
        "score: predictions {:?}, targets {:?} and mask {:?} must share a shape",
        predictions.shape(),
        targets.shape(),
        mask.shape()
    );
    let per_task = (0..targets.ncols())
        .map(|task| {
            let (mut scores, mut labels) = (Vec::new(), Vec::new());
            for row in 0..targets.nrows() {
                if mask[(row, task)] != 0.0 {
                    scores.push(f64::from(predictions[(row, task)]));
                    labels.push(f64::from(targets[(row, task)]));
                }
            }
            let mut task_scores = TaskScores { n_labelled: labels.len(), ..TaskScores::default() };
            match kind {
                TaskKind::Classification => {
                    let positive: Vec<bool> = labels.iter().map(|&y| y > 0.5).collect();
                    task_scores.roc_auc = roc_auc(&scores, &positive);
                    task_scores.prc_auc = prc_auc(&scores, &positive, prc);
                }
                TaskKind::Regression => {
                    task_scores.rmse = rmse(&scores, &labels);
                    task_scores.mae = mae(&scores, &labels);
                    task_scores.r2 = r2(&scores, &labels);
                }
            }
            task_scores
        })
        .collect();
    Scores { per_task }
}

/// Indices of `scores` in ascending order; NaN sorts first, so a NaN
/// prediction is ranked as the least confident.
fn ascending_order(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| {
        scores[a]
            .partial_cmp(&scores[b])
            .unwrap_or_else(|| scores[a].is_nan().cmp(&scores[b].is_nan()).reverse())
    });
    order
}

/// Area under the ROC curve: the probability that a random positive scores
/// above a random negative, ties counting one half. `None` unless both
/// classes occur.
///
/// Computed in `O(n log n)` from the rank sum of the positives (the
/// Mann–Whitney statistic) with tied scores given their average rank.
///
/// # Example
///
/// ```
/// use ferrochem_train::metrics::roc_auc;
///
/// // One of the four positive-negative pairs is tied: (3 + 0.5) / 4.
/// let auc = roc_auc(&[0.1, 0.4, 0.4, 0.8], &[false, false, true, true]);
/// assert_eq!(auc, Some(0.875));
/// ```
pub fn roc_auc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let n_pos = positive.iter().filter(|&&p| p).count();
    let n_neg = positive.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let order = ascending_order(scores);
    let mut positive_rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && same_score(scores[order[end]], scores[order[start]]) {
            end += 1;
        }
        // Ranks start..end (1-based start+1..=end) share their average.
        let average_rank = (start + 1 + end) as f64 / 2.0;
        let n_pos_here = order[start..end].iter().filter(|&&idx| positive[idx]).count();
        positive_rank_sum += average_rank * n_pos_here as f64;
        start = end;
    }
    let (n_pos, n_neg) = (n_pos as f64, n_neg as f64);
    Some((positive_rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg))
}

fn same_score(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// Area under the precision-recall curve of the positive class, by
/// `area`. `None` unless both classes occur.
pub fn prc_auc(scores: &[f64], positive: &[bool], area: PrcArea) -> Option<f64> {
    let n_pos = positive.iter().filter(|&&p| p).count();
    if n_pos == 0 || n_pos == positive.len() {
        return None;
    }
    let mut order = ascending_order(scores);
    order.reverse();
    // One point per distinct score, thresholds from high to low.
    let mut points = Vec::new();
    let (mut true_pos, mut seen) = (0usize, 0usize);
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && same_score(scores[order[end]], scores[order[start]]) {
            end += 1;
        }
        true_pos += order[start..end].iter().filter(|&&idx| positive[idx]).count();
        seen = end;
        points.push((true_pos as f64 / n_pos as f64, true_pos as f64 / seen as f64));
        start = end;
    }
    debug_assert_eq!(seen, order.len());
    let mut total = 0.0;
    let (mut last_recall, mut last_precision) = (0.0, 1.0);
    for (recall, precision) in points {
        total += match area {
            PrcArea::AveragePrecision => (recall - last_recall) * precision,
            PrcArea::Trapezoid => (recall - last_recall) * (precision + last_precision) / 2.0,
        };
        (last_recall, last_precision) = (recall, precision);
        if area == PrcArea::Trapezoid && recall >= 1.0 {
            // The curve ends where full recall is first reached.
            break;
        }
    }
    Some(total)
}

/// Root mean squared error; `None` for no values.
pub fn rmse(predictions: &[f64], targets: &[f64]) -> Option<f64> {
    mean(predictions.iter().zip(targets).map(|(p, y)| (p - y) * (p - y))).map(f64::sqrt)
}

/// Mean absolute error; `None` for no values.
pub fn mae(predictions: &[f64], targets: &[f64]) -> Option<f64> {
    mean(predictions.iter().zip(targets).map(|(p, y)| (p - y).abs()))
}

/// `R² = 1 − Σ(y − p)² / Σ(y − ȳ)²`; for constant targets, 1 when the
/// predictions are exact and 0 otherwise (scikit-learn's convention).
/// `None` for no values.
pub fn r2(predictions: &[f64], targets: &[f64]) -> Option<f64> {
    let target_mean = mean(targets.iter().copied())?;
    let residual: f64 = predictions.iter().zip(targets).map(|(p, y)| (y - p) * (y - p)).sum();
    let total: f64 = targets.iter().map(|y| (y - target_mean) * (y - target_mean)).sum();
    Some(match (residual == 0.0, total == 0.0) {
        (true, _) => 1.0,
        (false, true) => 0.0,
        (false, false) => 1.0 - residual / total,
    })
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, count) = values.fold((0.0, 0usize), |(sum, count), v| (sum + v, count + 1));
    if count == 0 { None } else { Some(sum / count as f64) }
}

/// Whether `candidate` improves on `best` by more than `min_delta`, in the
/// metric's direction.
pub fn improves(metric: Metric, candidate: f64, best: f64, min_delta: f64) -> bool {
    if metric.higher_is_better() {
        candidate > best + min_delta
    } else {
        candidate < best - min_delta
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values from scikit-learn 1.9.1 on these exact vectors:
    // roc_auc_score, average_precision_score, auc(*precision_recall_curve),
    // mean_squared_error (square-rooted), mean_absolute_error and r2_score.
    // The scores have a four-way tie at 0.35 and a two-way tie at 0.6 that
    // straddle the classes.
    const LABELS: [u8; 16] = [0, 1, 1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 1, 1, 0, 0];
    const SCORES: [f64; 16] =
        [0.1, 0.9, 0.35, 0.35, 0.8, 0.2, 0.35, 0.7, 0.05, 0.6, 0.6, 0.3, 0.35, 0.95, 0.5, 0.1];

    fn positive() -> Vec<bool> {
        LABELS.iter().map(|&y| y == 1).collect()
    }

    /// Sums of a few dozen terms: a handful of ulps.
    fn close(got: Option<f64>, want: f64) -> bool {
        got.is_some_and(|got| (got - want).abs() < 1e-13)
    }

    #[test]
    fn classification_metrics_match_scikit_learn() {
        assert!(close(roc_auc(&SCORES, &positive()), 0.8968253968253967));
        assert!(close(
            prc_auc(&SCORES, &positive(), PrcArea::AveragePrecision),
            0.8722943722943721
        ));
        assert!(close(prc_auc(&SCORES, &positive(), PrcArea::Trapezoid), 0.8953308596165739));
    }

    #[test]
    fn regression_metrics_match_scikit_learn() {
        let targets = [1.5, -0.3, 2.2, 0.0, 4.1, 3.3, -1.2];
        let predictions = [1.2, 0.1, 2.0, 0.4, 3.5, 3.9, -0.7];
        assert!(close(rmse(&predictions, &targets), 0.4503966505838413));
        assert!(close(mae(&predictions, &targets), 0.42857142857142855));
        assert!(close(r2(&predictions, &targets), 0.9386722606120435));
        assert_eq!(r2(&[1.0, 2.0], &[3.0, 3.0]), Some(0.0));
        assert_eq!(rmse(&[], &[]), None);
    }

    #[test]
    fn one_class_tasks_have_no_auc_and_drop_out_of_the_mean() {
        assert_eq!(roc_auc(&[0.2, 0.4], &[true, true]), None);
        // Task 0 is scored over its two labelled rows only; task 1 has only
        // negatives among its labelled rows.
        let predictions = Matrix::from_vec(3, 2, vec![0.9, 0.1, 0.2, 0.3, 0.95, 0.5]);
        let targets = Matrix::from_vec(3, 2, vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
        let mask = Matrix::from_vec(3, 2, vec![1.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
        let scores = score(
            &predictions,
            &targets,
            &mask,
            TaskKind::Classification,
            PrcArea::AveragePrecision,
        );
        assert_eq!(scores.per_task[0].roc_auc, Some(1.0));
        assert_eq!(scores.per_task[0].n_labelled, 2);
        assert_eq!(scores.per_task[1].roc_auc, None);
        assert_eq!(scores.mean(Metric::RocAuc), Some(1.0));
    }

    #[test]
    fn ties_count_half_and_order_does_not_matter() {
        assert_eq!(roc_auc(&[0.5, 0.5], &[true, false]), Some(0.5));
        let mut pairs: Vec<(f64, bool)> = SCORES.iter().copied().zip(positive()).collect();
        pairs.reverse();
        let (scores, labels): (Vec<f64>, Vec<bool>) = pairs.into_iter().unzip();
        assert_eq!(roc_auc(&scores, &labels), roc_auc(&SCORES, &positive()));
        assert_eq!(
            prc_auc(&scores, &labels, PrcArea::AveragePrecision),
            prc_auc(&SCORES, &positive(), PrcArea::AveragePrecision)
        );
    }

    #[test]
    fn improvement_respects_direction_and_margin() {
        assert!(improves(Metric::RocAuc, 0.81, 0.80, 0.005));
        assert!(!improves(Metric::RocAuc, 0.803, 0.80, 0.005));
        assert!(improves(Metric::Rmse, 0.5, 0.6, 0.0));
        assert!(!improves(Metric::Rmse, 0.6, 0.6, 0.0));
    }
}
