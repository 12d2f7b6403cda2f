//! Weight initializers.

use ferrochem_kernels::random::Rng;
use ferrochem_kernels::{Float, Matrix};
use serde::{Deserialize, Serialize};

/// How a weight matrix of shape `in_dim × out_dim` is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// Normal with mean 0 and standard deviation `std`; DeepChem's hidden
    /// layers use `std = 0.02`.
    Normal {
        /// Standard deviation.
        std: f64,
    },
    /// Glorot and Bengio's uniform: `U(−a, a)` with
    /// `a = √(6 / (in_dim + out_dim))`, which keeps activations' variance
    /// steady through linear and tanh layers.
    XavierUniform,
    /// He et al.'s normal: `N(0, 2 / in_dim)`, the variance-preserving
    /// choice for ReLU layers.
    HeNormal,
    /// He et al.'s uniform: `U(−a, a)` with `a = √(6 / in_dim)`.
    HeUniform,
}

impl Init {
    /// Draws an `in_dim × out_dim` matrix from `rng`.
    pub fn sample<T: Float>(self, in_dim: usize, out_dim: usize, rng: &mut Rng) -> Matrix<T> {
        let fan_in = in_dim.max(1) as f64;
        let fan_sum = (in_dim + out_dim).max(1) as f64;
        let draw: Box<dyn FnMut(&mut Rng) -> f64> = match self {
            Init::Normal { std } => Box::new(move |rng| std * rng.normal_f64()),
            Init::HeNormal => Box::new(move |rng| (2.0 / fan_in).sqrt() * rng.normal_f64()),
            Init::XavierUniform => {
                let bound = (6.0 / fan_sum).sqrt();
                Box::new(move |rng| bound * (2.0 * rng.uniform_f64() - 1.0))
            }
            Init::HeUniform => {
                let bound = (6.0 / fan_in).sqrt();
                Box::new(move |rng| bound * (2.0 * rng.uniform_f64() - 1.0))
            }
        };
        let mut draw = draw;
        Matrix::from_fn(in_dim, out_dim, |_, _| T::from_f64(draw(rng)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn std_of(m: &Matrix<f64>) -> f64 {
        let n = m.len() as f64;
        let mean = m.as_slice().iter().sum::<f64>() / n;
        (m.as_slice().iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt()
    }

    #[test]
    fn initializers_have_their_documented_spread() {
        let mut rng = Rng::new(1);
        // 200 × 300 = 60 000 draws: the sample standard deviation is within
        // 1 % of the true one with overwhelming probability.
        let cases = [
            (Init::Normal { std: 0.02 }, 0.02),
            (Init::HeNormal, (2.0f64 / 200.0).sqrt()),
            (Init::XavierUniform, (6.0f64 / 500.0).sqrt() / 3f64.sqrt()),
            (Init::HeUniform, (6.0f64 / 200.0).sqrt() / 3f64.sqrt()),
        ];
        for (init, expected) in cases {
            let w: Matrix<f64> = init.sample(200, 300, &mut rng);
            assert!((std_of(&w) / expected - 1.0).abs() < 0.02, "{init:?}: {}", std_of(&w));
        }
    }
}
