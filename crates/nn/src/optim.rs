//! Optimizers and gradient clipping.
//!
//! Every optimizer updates every parameter at every step, gradient zero or
//! not, so that Adam's moments decay exactly as the textbook says. The
//! update of one parameter tensor is a single fused pass in the kernels.

use ferrochem_autodiff::Grad;
use ferrochem_kernels::optim::{
    AdamStep, Nesterov, RowGrad, SgdStep, WeightDecay, adam_update, adam_update_rows, sgd_update,
    sgd_update_rows,
};
use ferrochem_kernels::reduce::{sum_squares, total_in_order};
use ferrochem_kernels::{Float, Matrix, Parallelism, RowSparse};
use serde::{Deserialize, Serialize};

/// Which optimizer, with its hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerConfig {
    /// Stochastic gradient descent with (optionally Nesterov) momentum.
    Sgd {
        /// Decay of the velocity; 0 is plain SGD.
        momentum: f64,
        /// Step along Nesterov's look-ahead gradient.
        nesterov: bool,
        /// L2 decay added to the gradient.
        weight_decay: f64,
    },
    /// Adam, with classic L2 decay folded into the gradient.
    Adam {
        /// Decay rate of the running mean of gradients.
        beta1: f64,
        /// Decay rate of the running mean of squared gradients.
        beta2: f64,
        /// Added to the root of the second moment.
        epsilon: f64,
        /// L2 decay added to the gradient (0 for none).
        weight_decay: f64,
    },
    /// AdamW: Adam with weight decay decoupled from the gradient.
    AdamW {
        /// Decay rate of the running mean of gradients.
        beta1: f64,
        /// Decay rate of the running mean of squared gradients.
        beta2: f64,
        /// Added to the root of the second moment.
        epsilon: f64,
        /// Decoupled decay: each step multiplies weights by
        /// `1 − learning_rate · weight_decay`.
        weight_decay: f64,
    },
}

impl OptimizerConfig {
    /// Adam with β₁ = 0.9, β₂ = 0.999, ε = 1e-8 and no decay.
    pub fn adam() -> Self {
        OptimizerConfig::Adam { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weight_decay: 0.0 }
    }

    /// AdamW with β₁ = 0.9, β₂ = 0.999, ε = 1e-8 and decay 0.01.
    pub fn adamw() -> Self {
        OptimizerConfig::AdamW { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weight_decay: 0.01 }
    }

    /// SGD with momentum 0.9, without Nesterov or decay.
    pub fn sgd() -> Self {
        OptimizerConfig::Sgd { momentum: 0.9, nesterov: false, weight_decay: 0.0 }
    }

    /// The same optimizer with its own `weight_decay` replaced: an L2 decay
    /// in the gradient for SGD and Adam, the decoupled decay for AdamW.
    ///
    /// ```
    /// use ferrochem_nn::OptimizerConfig;
    ///
    /// let adamw = OptimizerConfig::adamw().with_weight_decay(0.1);
    /// assert!(matches!(adamw, OptimizerConfig::AdamW { weight_decay, .. } if weight_decay == 0.1));
    /// ```
    pub fn with_weight_decay(self, decay: f64) -> Self {
        match self {
            OptimizerConfig::Sgd { momentum, nesterov, .. } => {
                OptimizerConfig::Sgd { momentum, nesterov, weight_decay: decay }
            }
            OptimizerConfig::Adam { beta1, beta2, epsilon, .. } => {
                OptimizerConfig::Adam { beta1, beta2, epsilon, weight_decay: decay }
            }
            OptimizerConfig::AdamW { beta1, beta2, epsilon, .. } => {
                OptimizerConfig::AdamW { beta1, beta2, epsilon, weight_decay: decay }
            }
        }
    }
}

/// An optimizer and its state for one set of parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Optimizer<T: Float> {
    config: OptimizerConfig,
    /// Steps taken so far.
    step: u64,
    /// Per parameter: Adam's first moment or SGD's velocity.
    first: Vec<Vec<T>>,
    /// Per parameter: Adam's second moment (empty for SGD).
    second: Vec<Vec<T>>,
}

impl<T: Float> Optimizer<T> {
    /// A fresh optimizer for parameters of the given sizes, with zero state.
    pub fn new(config: OptimizerConfig, params: &[&Matrix<T>]) -> Self {
        let zeros = || params.iter().map(|p| vec![T::ZERO; p.len()]).collect();
        let second = match config {
            OptimizerConfig::Sgd { .. } => Vec::new(),
            _ => zeros(),
        };
        Optimizer { config, step: 0, first: zeros(), second }
    }

    /// The hyperparameters.
    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// Number of steps taken.
    pub fn steps_taken(&self) -> u64 {
        self.step
    }

    /// Applies one step with the given learning rate and dense gradients.
    ///
    /// # Panics
    ///
    /// Panics if the parameters or gradients do not match, in number or
    /// size, the parameters the optimizer was made for.
    #[track_caller]
    pub fn step(
        &mut self,
        params: &mut [&mut Matrix<T>],
        grads: &[&Matrix<T>],
        learning_rate: f64,
    ) {
        let grads: Vec<GradRef<'_, T>> = grads.iter().map(|g| GradRef::Dense(g)).collect();
        self.apply(params, &grads, learning_rate, &[]);
    }

    /// Applies one step with gradients in either layout. A row-sparse
    /// gradient updates every row (untouched rows with a zero gradient), so
    /// the result is the same, bit for bit, as with its dense form.
    ///
    /// # Panics
    ///
    /// Panics if the parameters or gradients do not match, in number or
    /// size, the parameters the optimizer was made for.
    #[track_caller]
    pub fn step_grads(
        &mut self,
        params: &mut [&mut Matrix<T>],
        grads: &[Grad<T>],
        learning_rate: f64,
    ) {
        self.step_grads_with_l2(params, grads, learning_rate, &[]);
    }

    /// Like [`Optimizer::step_grads`], with the gradient of an L2 penalty
    /// `(l2[i] / 2) · ‖params[i]‖²` added to each parameter's gradient
    /// inside the update pass, as a coupled weight decay. Adding `l2 · W`
    /// in the update instead of differentiating the penalty on the tape
    /// gives the same step without a dense gradient per weight matrix,
    /// which for the first layer of a fingerprint network would undo the
    /// row-sparse gradient. A missing entry of `l2` is 0.
    ///
    /// Returns, for each parameter with a penalty, `‖W‖²` of its new
    /// weights, summed as [`sum_squares_by_rows`] does: the penalty's value
    /// at the next step, measured during the update instead of in a second
    /// pass over the weights. Parameters without a penalty give `None`.
    ///
    /// [`sum_squares_by_rows`]: ferrochem_kernels::reduce::sum_squares_by_rows
    ///
    /// # Panics
    ///
    /// As [`Optimizer::step_grads`].
    #[track_caller]
    pub fn step_grads_with_l2(
        &mut self,
        params: &mut [&mut Matrix<T>],
        grads: &[Grad<T>],
        learning_rate: f64,
        l2: &[f64],
    ) -> Vec<Option<f64>> {
        let grads: Vec<GradRef<'_, T>> = grads
            .iter()
            .map(|g| match g {
                Grad::Dense(dense) => GradRef::Dense(dense),
                Grad::Rows(rows) => GradRef::Rows(rows),
            })
            .collect();
        self.apply(params, &grads, learning_rate, l2)
    }

    fn apply(
        &mut self,
        params: &mut [&mut Matrix<T>],
        grads: &[GradRef<'_, T>],
        learning_rate: f64,
        l2: &[f64],
    ) -> Vec<Option<f64>> {
        assert!(
            params.len() == self.first.len() && grads.len() == self.first.len(),
            "Optimizer::step: {} parameters and {} gradients for an optimizer of {}",
            params.len(),
            grads.len(),
            self.first.len()
        );
        self.step += 1;
        let lr = T::from_f64(learning_rate);
        let mut measured = Vec::with_capacity(params.len());
        for (idx, (param, grad)) in params.iter_mut().zip(grads).enumerate() {
            let grad_shape = match grad {
                GradRef::Dense(g) => g.shape(),
                GradRef::Rows(g) => g.shape(),
            };
            assert!(
                param.shape() == grad_shape,
                "Optimizer::step: parameter {idx} is {:?} but its gradient is {:?}",
                param.shape(),
                grad_shape
            );
            let penalty = l2.get(idx).copied().unwrap_or(0.0);
            // A penalised parameter goes row by row, so that each row's
            // squares are taken while the row is in cache; the rest take
            // the flat pass where the gradient is dense.
            let mut row_squares = (penalty != 0.0).then(|| vec![T::ZERO; param.nrows()]);
            let pass = match grad {
                GradRef::Dense(g) if row_squares.is_none() => Pass::Flat(g.as_slice()),
                GradRef::Dense(g) => Pass::Rows(RowGrad::Dense(g)),
                GradRef::Rows(g) => Pass::Rows(RowGrad::Sparse(g)),
            };
            let w = param.as_mut_slice();
            let squares = row_squares.as_deref_mut();
            match self.config {
                OptimizerConfig::Sgd { momentum, nesterov, weight_decay } => {
                    let hyper = SgdStep {
                        learning_rate: lr,
                        momentum: T::from_f64(momentum),
                        weight_decay: T::from_f64(weight_decay + penalty),
                        nesterov: if nesterov { Nesterov::Yes } else { Nesterov::No },
                    };
                    let velocity = &mut self.first[idx];
                    match pass {
                        Pass::Flat(g) => sgd_update(w, g, velocity, &hyper, Parallelism::Auto),
                        Pass::Rows(g) => {
                            sgd_update_rows(w, g, velocity, &hyper, squares, Parallelism::Auto)
                        }
                    }
                }
                OptimizerConfig::Adam { beta1, beta2, epsilon, weight_decay }
                | OptimizerConfig::AdamW { beta1, beta2, epsilon, weight_decay } => {
                    let weight_decay = match self.config {
                        OptimizerConfig::AdamW { .. } if penalty != 0.0 => WeightDecay::Both {
                            coupled: T::from_f64(penalty),
                            decoupled: T::from_f64(weight_decay),
                        },
                        OptimizerConfig::AdamW { .. } if weight_decay != 0.0 => {
                            WeightDecay::Decoupled(T::from_f64(weight_decay))
                        }
                        _ if weight_decay + penalty != 0.0 => {
                            WeightDecay::Coupled(T::from_f64(weight_decay + penalty))
                        }
                        _ => WeightDecay::None,
                    };
                    let hyper = AdamStep {
                        learning_rate: lr,
                        beta1: T::from_f64(beta1),
                        beta2: T::from_f64(beta2),
                        epsilon: T::from_f64(epsilon),
                        weight_decay,
                        step: self.step,
                    };
                    let (m, v) = (&mut self.first[idx], &mut self.second[idx]);
                    match pass {
                        Pass::Flat(g) => adam_update(w, g, m, v, &hyper, Parallelism::Auto),
                        Pass::Rows(g) => {
                            adam_update_rows(w, g, m, v, &hyper, squares, Parallelism::Auto)
                        }
                    }
                }
            }
            measured.push(row_squares.map(|squares| total_in_order(&squares)));
        }
        measured
    }
}

/// How an update pass reads a parameter's gradient.
enum Pass<'a, T> {
    /// As one flat slice, in chunks that ignore rows.
    Flat(&'a [T]),
    /// A row at a time.
    Rows(RowGrad<'a, T>),
}

/// A gradient borrowed in either layout.
#[derive(Clone, Copy)]
enum GradRef<'a, T> {
    Dense(&'a Matrix<T>),
    Rows(&'a RowSparse<T>),
}

/// The global L2 norm of all gradients, `√(Σ ‖g‖²)`, summed tensor by
/// tensor in order.
pub fn grad_norm<T: Float>(grads: &[Grad<T>]) -> f64 {
    let total: f64 =
        grads.iter().map(|g| sum_squares(g.stored_values(), Parallelism::Auto).to_f64()).sum();
    total.sqrt()
}

/// Scales all gradients by `max_norm / norm` when their global norm exceeds
/// `max_norm`; returns the norm before clipping.
pub fn clip_grad_norm<T: Float>(grads: &mut [Grad<T>], max_norm: f64) -> f64 {
    let norm = grad_norm(grads);
    if norm > max_norm && norm.is_finite() {
        let factor = T::from_f64(max_norm / norm);
        for grad in grads.iter_mut() {
            grad.stored_values_mut().iter_mut().for_each(|g| *g *= factor);
        }
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;

    /// f(w) = ½ Σ (w − 3)², gradient w − 3, minimum at 3.
    fn descend(config: OptimizerConfig, learning_rate: f64, steps: usize) -> (f64, f64) {
        let mut w = Matrix::from_vec(1, 2, vec![0.0f64, 10.0]);
        let mut optimizer = Optimizer::new(config, &[&w]);
        let loss =
            |w: &Matrix<f64>| w.as_slice().iter().map(|x| 0.5 * (x - 3.0) * (x - 3.0)).sum::<f64>();
        let start = loss(&w);
        for _ in 0..steps {
            let grad = Matrix::from_fn(1, 2, |_, j| w[(0, j)] - 3.0);
            optimizer.step(&mut [&mut w], &[&grad], learning_rate);
        }
        (start, loss(&w))
    }

    #[test]
    fn every_optimizer_lowers_a_quadratic() {
        let configs = [
            OptimizerConfig::sgd(),
            OptimizerConfig::Sgd { momentum: 0.9, nesterov: true, weight_decay: 0.0 },
            OptimizerConfig::Sgd { momentum: 0.0, nesterov: false, weight_decay: 0.0 },
            OptimizerConfig::adam(),
            OptimizerConfig::adamw(),
        ];
        for config in configs {
            let (start, end) = descend(config, 0.05, 400);
            assert!(end < 1e-2 * start, "{config:?}: {start} → {end}");
        }
    }

    #[test]
    fn with_weight_decay_replaces_only_the_decay() {
        assert_eq!(
            OptimizerConfig::adamw().with_weight_decay(0.5),
            OptimizerConfig::AdamW { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weight_decay: 0.5 }
        );
        assert_eq!(
            OptimizerConfig::adam().with_weight_decay(1e-4),
            OptimizerConfig::Adam { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weight_decay: 1e-4 }
        );
        assert_eq!(
            OptimizerConfig::sgd().with_weight_decay(0.1),
            OptimizerConfig::Sgd { momentum: 0.9, nesterov: false, weight_decay: 0.1 }
        );
    }

    #[test]
    fn clipping_rescales_to_the_limit() {
        let mut grads = vec![
            Grad::Dense(Matrix::from_vec(1, 2, vec![3.0f64, 0.0])),
            Grad::Dense(Matrix::from_vec(1, 1, vec![4.0])),
        ];
        let norm = clip_grad_norm(&mut grads, 1.0);
        assert_eq!(norm, 5.0);
        assert!((grad_norm(&grads) - 1.0).abs() < 1e-15);
        assert_eq!(clip_grad_norm(&mut grads, 2.0), grad_norm(&grads));
    }

    #[test]
    fn an_l2_rate_steps_as_its_penalty_gradient_would() {
        // The same step taken two ways: l2 · w added to the gradient by
        // hand, and the rate handed to the optimizer; also row-sparse,
        // where rows without a gradient still decay.
        let w0 = Matrix::from_fn(3, 2, |i, j| 0.5 - (i * 2 + j) as f64 * 0.3);
        // Rows 0 and 2 hold a gradient, row 1 none.
        let x = ferrochem_kernels::SparseBinary::from_rows(3, [vec![0, 2]]).unwrap();
        let g = Matrix::from_vec(1, 2, vec![-0.1, 0.1]);
        let rows = ferrochem_kernels::sparse_transpose_matmul_rows(&x, &g, Parallelism::Sequential);
        let grad = rows.to_dense();
        for config in [OptimizerConfig::adam(), OptimizerConfig::adamw(), OptimizerConfig::sgd()] {
            let (mut by_hand, mut fused, mut sparse) = (w0.clone(), w0.clone(), w0.clone());
            let mut opt_hand = Optimizer::new(config, &[&by_hand]);
            let mut opt_fused = opt_hand.clone();
            let mut opt_sparse = opt_hand.clone();
            for _ in 0..3 {
                let with_penalty =
                    Matrix::from_fn(3, 2, |i, j| grad[(i, j)] + 0.1 * by_hand[(i, j)]);
                opt_hand.step(&mut [&mut by_hand], &[&with_penalty], 0.01);
                opt_fused.step_grads_with_l2(
                    &mut [&mut fused],
                    &[Grad::Dense(grad.clone())],
                    0.01,
                    &[0.1],
                );
                opt_sparse.step_grads_with_l2(
                    &mut [&mut sparse],
                    &[Grad::Rows(rows.clone())],
                    0.01,
                    &[0.1],
                );
            }
            for ((a, b), c) in
                by_hand.as_slice().iter().zip(fused.as_slice()).zip(sparse.as_slice())
            {
                assert!((a - b).abs() < 1e-15, "{config:?}: {a} by hand, {b} fused");
                assert_eq!(b, c, "{config:?}: dense and row-sparse differ");
            }
        }
    }
}
