//! Masked, weighted multitask losses: two classification losses and two
//! regression losses.
//!
//! A multitask data set has holes: a molecule measured in some assays and
//! not in others. Labels therefore come with a mask (1 where measured, 0
//! where missing) and a weight per entry (for class balancing). Each loss
//! is `Σ mask · weight · ℓ / D`, summed over the batch and the tasks, where
//! [`LossReduction`] chooses the denominator `D`.

use ferrochem_kernels::elementwise::{log_sigmoid, sigmoid};
use ferrochem_kernels::{Float, Matrix};

use crate::error::{Result, require};
use crate::tape::{Backward, BackwardContext, Tape, Var};

/// The labels of a batch: targets, per-entry weights and the mask of
/// measured entries, all `batch_size × n_tasks`.
#[derive(Clone, Copy, Debug)]
pub struct Labels<'a, T> {
    /// Class of each entry, 0 or 1 (values in between act as soft labels).
    pub targets: &'a Matrix<T>,
    /// Weight of each entry, such as class-balancing weights.
    pub weights: &'a Matrix<T>,
    /// 1 where the label was measured, 0 where it is missing.
    pub mask: &'a Matrix<T>,
}

/// What the summed loss of a batch is divided by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossReduction {
    /// Divide by the number of measured entries, `Σ mask`, so missing
    /// labels count in neither the numerator nor the denominator and the
    /// loss scale does not drift with the share of holes in a batch.
    #[default]
    MeanOverLabelled,
    /// Divide by `batch_size × n_tasks`, missing entries included as
    /// zeros; DeepChem's convention, kept for its preset.
    MeanOverAll,
}

impl<'p, T: Float> Tape<'p, T> {
    /// Binary cross-entropy on logits `z` (`batch_size × n_tasks`):
    /// `ℓ = −y ln σ(z) − (1 − y) ln(1 − σ(z))`, computed as
    /// `max(z, 0) − z·y + ln(1 + e^−|z|)`, which stays finite (and has
    /// finite gradients) for logits of any size.
    ///
    /// # Errors
    ///
    /// Fails unless the logits and all three label matrices share a shape.
    pub fn bce_with_logits(
        &mut self,
        logits: Var,
        labels: Labels<'p, T>,
        reduction: LossReduction,
    ) -> Result<Var> {
        let shape = self.shape(logits);
        check_labels("bce_with_logits", shape, &labels, shape)?;
        let z = self.value(logits).as_slice();
        let y = labels.targets.as_slice();
        let total = weighted_total(&labels, reduction, |idx| {
            z[idx].max(T::ZERO) - z[idx] * y[idx] + (-z[idx].abs()).exp().ln_1p()
        });
        Ok(self.push_op(
            Matrix::scalar(total),
            &[logits],
            BceBackward { logits, labels, reduction },
        ))
    }

    /// DeepChem's classification loss: a softmax over two classes per task.
    /// The logits are `batch_size × 2·n_tasks` with the two classes of task
    /// `t` in columns `2t` (negative) and `2t + 1` (positive), and
    /// `ℓ = −(1 − y) ln p₀ − y ln p₁`. With `d = z₁ − z₀`, `p₁ = σ(d)`, which
    /// keeps the loss finite for any logits.
    ///
    /// # Errors
    ///
    /// Fails unless the labels share a shape and the logits have twice as
    /// many columns.
    pub fn softmax_cross_entropy(
        &mut self,
        logits: Var,
        labels: Labels<'p, T>,
        reduction: LossReduction,
    ) -> Result<Var> {
        let shape = self.shape(logits);
        let label_shape = labels.targets.shape();
        check_labels("softmax_cross_entropy", shape, &labels, (label_shape.0, 2 * label_shape.1))?;
        let z = self.value(logits).as_slice();
        let y = labels.targets.as_slice();
        let total = weighted_total(&labels, reduction, |idx| {
            let d = z[2 * idx + 1] - z[2 * idx];
            -(T::ONE - y[idx]) * log_sigmoid(-d) - y[idx] * log_sigmoid(d)
        });
        Ok(self.push_op(
            Matrix::scalar(total),
            &[logits],
            SoftmaxBackward { logits, labels, reduction },
        ))
    }

    /// Squared error `ℓ = (p − y)²` on predictions `p`
    /// (`batch_size × n_tasks`), masked and weighted like the other losses.
    ///
    /// # Errors
    ///
    /// Fails unless the predictions and all three label matrices share a
    /// shape.
    pub fn mse(
        &mut self,
        predictions: Var,
        labels: Labels<'p, T>,
        reduction: LossReduction,
    ) -> Result<Var> {
        self.regression_loss("mse", predictions, labels, reduction, RegressionLoss::Squared)
    }

    /// Huber loss with threshold `delta`: `ℓ = r²/2` for `|r| ≤ δ` and
    /// `δ(|r| − δ/2)` beyond, with `r = p − y`; quadratic near the target and
    /// linear for outliers.
    ///
    /// # Errors
    ///
    /// Fails unless the predictions and all three label matrices share a
    /// shape.
    pub fn huber(
        &mut self,
        predictions: Var,
        labels: Labels<'p, T>,
        delta: T,
        reduction: LossReduction,
    ) -> Result<Var> {
        self.regression_loss("huber", predictions, labels, reduction, RegressionLoss::Huber(delta))
    }

    fn regression_loss(
        &mut self,
        op: &'static str,
        predictions: Var,
        labels: Labels<'p, T>,
        reduction: LossReduction,
        kind: RegressionLoss<T>,
    ) -> Result<Var> {
        let shape = self.shape(predictions);
        check_labels(op, shape, &labels, shape)?;
        let p = self.value(predictions).as_slice();
        let y = labels.targets.as_slice();
        let total = weighted_total(&labels, reduction, |idx| kind.value(p[idx] - y[idx]));
        let backward = RegressionBackward { predictions, labels, reduction, kind };
        Ok(self.push_op(Matrix::scalar(total), &[predictions], backward))
    }
}

#[track_caller]
fn check_labels<T: Float>(
    op: &'static str,
    logits: (usize, usize),
    labels: &Labels<'_, T>,
    expected_logits: (usize, usize),
) -> Result<()> {
    let targets = labels.targets.shape();
    require(
        labels.weights.shape() == targets,
        op,
        ("weights", labels.weights.shape()),
        ("targets", targets),
        "weights must have the shape of the targets",
    )?;
    require(
        labels.mask.shape() == targets,
        op,
        ("mask", labels.mask.shape()),
        ("targets", targets),
        "the mask must have the shape of the targets",
    )?;
    let requirement = if expected_logits == targets {
        "logits must have the shape of the targets"
    } else {
        "logits need two columns (negative, positive) per target column"
    };
    require(logits == expected_logits, op, ("logits", logits), ("targets", targets), requirement)
}

/// `Σ mask · weight · ℓ(entry) / D` over the entries in order.
fn weighted_total<T: Float>(
    labels: &Labels<'_, T>,
    reduction: LossReduction,
    per_entry: impl Fn(usize) -> T,
) -> T {
    let scale = entry_scale(labels, reduction);
    (0..labels.targets.len()).fold(T::ZERO, |total, idx| total + scale(idx) * per_entry(idx))
}

/// Sends `g · mask · weight · ℓ'(entry) / D` back to `var`, for losses whose
/// entry `idx` depends on the value at `idx` alone.
fn entry_gradient<'p, T: Float>(
    ctx: &mut BackwardContext<'_, 'p, T>,
    var: Var,
    labels: &Labels<'p, T>,
    reduction: LossReduction,
    grad_out: &Matrix<T>,
    derivative: impl Fn(usize, T) -> T,
) {
    let values = ctx.value(var);
    let scale = entry_scale(labels, reduction);
    let g = grad_out.as_slice()[0];
    let mut grad = Matrix::zeros(values.nrows(), values.ncols());
    for (idx, (d, &v)) in grad.as_mut_slice().iter_mut().zip(values.as_slice()).enumerate() {
        *d = g * scale(idx) * derivative(idx, v);
    }
    ctx.accumulate(var, grad);
}

/// `mask · weight / D` for each entry, with `D` from `reduction`; all zero
/// when nothing in the batch is labelled.
fn entry_scale<'a, T: Float>(
    labels: &'a Labels<'_, T>,
    reduction: LossReduction,
) -> impl Fn(usize) -> T + 'a {
    let mask = labels.mask.as_slice();
    let weights = labels.weights.as_slice();
    let denominator = match reduction {
        LossReduction::MeanOverLabelled => mask.iter().copied().sum::<T>(),
        LossReduction::MeanOverAll => T::from_usize(mask.len()),
    };
    let inverse = if denominator > T::ZERO { T::ONE / denominator } else { T::ZERO };
    move |idx| mask[idx] * weights[idx] * inverse
}

struct BceBackward<'p, T> {
    logits: Var,
    labels: Labels<'p, T>,
    reduction: LossReduction,
}

impl<'p, T: Float> Backward<'p, T> for BceBackward<'p, T> {
    /// `∂ℓ/∂z = σ(z) − y`, times `g · mask · weight / D`.
    fn backward(&self, ctx: &mut BackwardContext<'_, 'p, T>, grad_out: &Matrix<T>) -> Result<()> {
        let y = self.labels.targets.as_slice();
        entry_gradient(ctx, self.logits, &self.labels, self.reduction, grad_out, |idx, z| {
            sigmoid(z) - y[idx]
        });
        Ok(())
    }
}

struct SoftmaxBackward<'p, T> {
    logits: Var,
    labels: Labels<'p, T>,
    reduction: LossReduction,
}

impl<'p, T: Float> Backward<'p, T> for SoftmaxBackward<'p, T> {
    /// `∂ℓ/∂z₁ = p₁ − y` and `∂ℓ/∂z₀ = −(p₁ − y)`, times
    /// `g · mask · weight / D`.
    fn backward(&self, ctx: &mut BackwardContext<'_, 'p, T>, grad_out: &Matrix<T>) -> Result<()> {
        let z = ctx.value(self.logits);
        let zs = z.as_slice();
        let scale = entry_scale(&self.labels, self.reduction);
        let g = grad_out.as_slice()[0];
        let mut grad = Matrix::zeros(z.nrows(), z.ncols());
        let dst = grad.as_mut_slice();
        for (idx, &y) in self.labels.targets.as_slice().iter().enumerate() {
            let p1 = sigmoid(zs[2 * idx + 1] - zs[2 * idx]);
            let d1 = g * scale(idx) * (p1 - y);
            dst[2 * idx] = -d1;
            dst[2 * idx + 1] = d1;
        }
        ctx.accumulate(self.logits, grad);
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum RegressionLoss<T> {
    Squared,
    Huber(T),
}

impl<T: Float> RegressionLoss<T> {
    fn value(self, residual: T) -> T {
        let half = T::from_f64(0.5);
        match self {
            RegressionLoss::Squared => residual * residual,
            RegressionLoss::Huber(delta) if residual.abs() <= delta => half * residual * residual,
            RegressionLoss::Huber(delta) => delta * (residual.abs() - half * delta),
        }
    }

    /// `∂ℓ/∂r`: `2r` for squared error; `r`, clipped to `±δ`, for Huber.
    fn derivative(self, residual: T) -> T {
        match self {
            RegressionLoss::Squared => (T::ONE + T::ONE) * residual,
            RegressionLoss::Huber(delta) => residual.max(-delta).min(delta),
        }
    }
}

struct RegressionBackward<'p, T> {
    predictions: Var,
    labels: Labels<'p, T>,
    reduction: LossReduction,
    kind: RegressionLoss<T>,
}

impl<'p, T: Float> Backward<'p, T> for RegressionBackward<'p, T> {
    /// `∂ℓ/∂p = ℓ'(p − y)`, times `g · mask · weight / D`.
    fn backward(&self, ctx: &mut BackwardContext<'_, 'p, T>, grad_out: &Matrix<T>) -> Result<()> {
        let y = self.labels.targets.as_slice();
        let kind = self.kind;
        entry_gradient(ctx, self.predictions, &self.labels, self.reduction, grad_out, |idx, p| {
            kind.derivative(p - y[idx])
        });
        Ok(())
    }
}
