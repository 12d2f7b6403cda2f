//! Test support for the ferrochem workspace: a central finite-difference
//! gradient checker in `f64`, tolerant float comparison, and proptest
//! strategies for small matrices.
//!
//! This crate is a dev-dependency only. It depends on nothing of the
//! workspace, so every crate can use it: inputs are flat `Vec<f64>` buffers
//! and the caller keeps track of their shapes.
//!
//! ```
//! use ferrochem_testkit::{check_gradients, Tolerance};
//!
//! // f(x, y) = Σ x_i² y_i, so ∂f/∂x_i = 2 x_i y_i and ∂f/∂y_i = x_i².
//! let f = |inputs: &[Vec<f64>]| -> f64 {
//!     inputs[0].iter().zip(&inputs[1]).map(|(x, y)| x * x * y).sum()
//! };
//! let (x, y) = (vec![0.5, -1.5], vec![2.0, 3.0]);
//! let analytic = vec![vec![2.0, -9.0], vec![0.25, 2.25]];
//! check_gradients(&[x, y], &analytic, f, Tolerance::GRADIENT)?;
//! # Ok::<(), ferrochem_testkit::GradientMismatch>(())
//! ```

use std::fmt;

use proptest::prelude::*;

/// An absolute and a relative tolerance: `got` matches `want` when
/// `|got − want| ≤ abs + rel · max(|got|, |want|)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Allowed absolute difference, for values near zero.
    pub abs: f64,
    /// Allowed difference relative to the larger magnitude.
    pub rel: f64,
}

impl Tolerance {
    /// For a reverse-mode gradient against central differences in `f64`.
    ///
    /// With a step `h ≈ ∛ε · max(1, |x|)` the truncation error (`h² f‴ / 6`)
    /// and the rounding error (`ε f / h`) are both about `ε^(2/3) ≈ 4e-11`
    /// times the scale of `f` and its derivatives. The test functions sum a
    /// few hundred terms with derivatives of order ten at most, which keeps
    /// the true error below 1e-7; `1e-6` absolute and `1e-5` relative leave
    /// a factor of ten for unlucky inputs while still catching any wrong
    /// formula, which is off by far more.
    pub const GRADIENT: Tolerance = Tolerance { abs: 1e-6, rel: 1e-5 };

    /// A tolerance of `n_abs` and `n_rel` machine epsilons of `f64`.
    pub fn epsilons(n_abs: f64, n_rel: f64) -> Tolerance {
        Tolerance { abs: n_abs * f64::EPSILON, rel: n_rel * f64::EPSILON }
    }

    /// A tolerance of `n_abs` and `n_rel` machine epsilons of `f32`.
    pub fn f32_epsilons(n_abs: f64, n_rel: f64) -> Tolerance {
        let eps = f64::from(f32::EPSILON);
        Tolerance { abs: n_abs * eps, rel: n_rel * eps }
    }

    /// Whether `got` is within this tolerance of `want`. NaN matches nothing.
    pub fn accepts(&self, got: f64, want: f64) -> bool {
        (got - want).abs() <= self.abs + self.rel * got.abs().max(want.abs())
    }

    /// How far `got` is from being accepted: the difference divided by the
    /// allowed difference (≤ 1 passes).
    fn excess(&self, got: f64, want: f64) -> f64 {
        let allowed = self.abs + self.rel * got.abs().max(want.abs());
        let diff = (got - want).abs();
        if diff.is_nan() { f64::INFINITY } else { diff / allowed }
    }
}

/// Entry-wise comparison of two buffers.
///
/// # Errors
///
/// Fails with the worst entry if any entry is outside `tolerance` or the
/// lengths differ.
pub fn assert_close(got: &[f64], want: &[f64], tolerance: Tolerance) -> Result<(), Mismatch> {
    if got.len() != want.len() {
        return Err(Mismatch {
            entry_idx: None,
            got: got.len() as f64,
            want: want.len() as f64,
            n_bad: 1,
        });
    }
    let mut worst: Option<(usize, f64)> = None;
    let mut n_bad = 0;
    for (entry_idx, (&g, &w)) in got.iter().zip(want).enumerate() {
        let excess = tolerance.excess(g, w);
        if excess > 1.0 {
            n_bad += 1;
            if worst.is_none_or(|(_, worst)| excess > worst) {
                worst = Some((entry_idx, excess));
            }
        }
    }
    match worst {
        None => Ok(()),
        Some((entry_idx, _)) => Err(Mismatch {
            entry_idx: Some(entry_idx),
            got: got[entry_idx],
            want: want[entry_idx],
            n_bad,
        }),
    }
}

/// The worst entry of a failed [`assert_close`].
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    /// Index of the worst entry; `None` if the lengths differed.
    pub entry_idx: Option<usize>,
    /// The value found (or the length found).
    pub got: f64,
    /// The value expected (or the length expected).
    pub want: f64,
    /// How many entries were out of tolerance.
    pub n_bad: usize,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.entry_idx {
            None => write!(f, "length {} where {} was expected", self.got, self.want),
            Some(idx) => write!(
                f,
                "{} entries out of tolerance; worst is entry {idx}: got {:e}, expected {:e}",
                self.n_bad, self.got, self.want
            ),
        }
    }
}

impl std::error::Error for Mismatch {}

/// The central-difference step for an entry of value `x`: about `∛ε`,
/// scaled with `|x|` so the perturbation is not lost to rounding.
pub fn step_for(x: f64) -> f64 {
    f64::EPSILON.cbrt() * x.abs().max(1.0)
}

/// `∂f/∂inputs[i][j]` for every entry, by central differences:
/// `(f(x + h) − f(x − h)) / 2h`.
pub fn numerical_gradients(inputs: &[Vec<f64>], f: impl Fn(&[Vec<f64>]) -> f64) -> Vec<Vec<f64>> {
    let mut probe = inputs.to_vec();
    let mut gradients = Vec::with_capacity(inputs.len());
    for input_idx in 0..inputs.len() {
        let mut gradient = Vec::with_capacity(inputs[input_idx].len());
        for entry_idx in 0..inputs[input_idx].len() {
            let x = inputs[input_idx][entry_idx];
            let h = step_for(x);
            probe[input_idx][entry_idx] = x + h;
            let up = f(&probe);
            probe[input_idx][entry_idx] = x - h;
            let down = f(&probe);
            probe[input_idx][entry_idx] = x;
            // (x + h) − (x − h) is not exactly 2h in floating point; dividing
            // by the real distance removes that error.
            gradient.push((up - down) / ((x + h) - (x - h)));
        }
        gradients.push(gradient);
    }
    gradients
}

/// Compares `analytic` gradients of `f` against central differences.
///
/// # Errors
///
/// Fails with the worst entry over all inputs, giving both values.
pub fn check_gradients(
    inputs: &[Vec<f64>],
    analytic: &[Vec<f64>],
    f: impl Fn(&[Vec<f64>]) -> f64,
    tolerance: Tolerance,
) -> Result<(), GradientMismatch> {
    assert_eq!(inputs.len(), analytic.len(), "one analytic gradient per input");
    let numeric = numerical_gradients(inputs, f);
    let mut worst: Option<GradientMismatch> = None;
    let mut n_bad = 0;
    for (input_idx, (a, n)) in analytic.iter().zip(&numeric).enumerate() {
        if let Err(mismatch) = assert_close(a, n, tolerance) {
            n_bad += mismatch.n_bad;
            let entry_idx = mismatch.entry_idx.unwrap_or(0);
            let candidate = GradientMismatch {
                input_idx,
                entry_idx,
                analytic: mismatch.got,
                numeric: mismatch.want,
                excess: tolerance.excess(mismatch.got, mismatch.want),
                n_bad: 0,
            };
            if worst.as_ref().is_none_or(|w| candidate.excess > w.excess) {
                worst = Some(candidate);
            }
        }
    }
    match worst {
        None => Ok(()),
        Some(mut worst) => {
            worst.n_bad = n_bad;
            Err(worst)
        }
    }
}

/// The worst entry of a failed [`check_gradients`].
#[derive(Clone, Debug, PartialEq)]
pub struct GradientMismatch {
    /// Which input the entry belongs to.
    pub input_idx: usize,
    /// The entry within that input, in its flat (row-major) order.
    pub entry_idx: usize,
    /// The gradient under test.
    pub analytic: f64,
    /// The central-difference estimate.
    pub numeric: f64,
    /// Difference over allowed difference.
    excess: f64,
    /// Number of entries out of tolerance, over all inputs.
    pub n_bad: usize,
}

impl fmt::Display for GradientMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} gradient entries disagree with finite differences; worst: input {} entry {}: \
             analytic {:e}, numeric {:e}",
            self.n_bad, self.input_idx, self.entry_idx, self.analytic, self.numeric
        )
    }
}

impl std::error::Error for GradientMismatch {}

/// A matrix dimension from 1 to 6, with 1 drawn a third of the time so that
/// broadcasting and edge cases come up often.
pub fn dim() -> impl Strategy<Value = usize> {
    prop_oneof![1 => Just(1usize), 2 => 1usize..=6]
}

/// `len` values drawn uniformly from `[-2, 2]`.
pub fn values(len: usize) -> impl Strategy<Value = Vec<f64>> {
    proptest::collection::vec(-2.0f64..2.0, len)
}

/// `len` values in `[-2, -gap] ∪ [gap, 2]`: inputs for functions with a
/// kink at 0 (ReLU, |x|), kept far enough away that a finite-difference
/// step never crosses it.
pub fn values_away_from_zero(len: usize, gap: f64) -> impl Strategy<Value = Vec<f64>> {
    let magnitude = gap..2.0f64;
    proptest::collection::vec((magnitude, proptest::bool::ANY), len)
        .prop_map(|pairs| pairs.into_iter().map(|(m, neg)| if neg { -m } else { m }).collect())
}

/// `len` positive values in `[low, high]`, for `ln` and square roots.
pub fn positive_values(len: usize, low: f64, high: f64) -> impl Strategy<Value = Vec<f64>> {
    proptest::collection::vec(low..high, len)
}

/// A `(nrows, ncols)` shape with both dimensions from [`dim`].
pub fn shape() -> impl Strategy<Value = (usize, usize)> {
    (dim(), dim())
}

/// A shape and matching values in `[-2, 2]`.
pub fn matrix() -> impl Strategy<Value = ((usize, usize), Vec<f64>)> {
    shape().prop_flat_map(|(nrows, ncols)| (Just((nrows, ncols)), values(nrows * ncols)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checker_accepts_a_right_gradient_and_names_a_wrong_one() {
        // f(x) = Σ sin(x_i), f'(x_i) = cos(x_i).
        let f = |inputs: &[Vec<f64>]| inputs[0].iter().map(|x| x.sin()).sum::<f64>();
        let x: Vec<f64> = vec![0.1, 1.0, -2.0, 30.0];
        let right: Vec<f64> = x.iter().map(|x| x.cos()).collect();
        assert!(
            check_gradients(
                std::slice::from_ref(&x),
                std::slice::from_ref(&right),
                f,
                Tolerance::GRADIENT
            )
            .is_ok()
        );

        let mut wrong = right;
        wrong[2] += 0.01;
        let err = check_gradients(&[x], &[wrong], f, Tolerance::GRADIENT).unwrap_err();
        assert_eq!((err.input_idx, err.entry_idx, err.n_bad), (0, 2, 1));
        assert!(err.to_string().contains("input 0 entry 2"), "{err}");
    }

    #[test]
    fn close_compares_with_both_tolerances() {
        let tol = Tolerance { abs: 1e-3, rel: 1e-2 };
        assert!(tol.accepts(1000.0, 1009.0));
        assert!(!tol.accepts(1000.0, 1011.0));
        assert!(tol.accepts(0.0, 5e-4));
        assert!(!tol.accepts(f64::NAN, f64::NAN));
        let err = assert_close(&[1.0, 2.0, 3.0], &[1.0, 2.5, 3.1], tol).unwrap_err();
        assert_eq!((err.entry_idx, err.n_bad), (Some(1), 2));
    }

    proptest! {
        #[test]
        fn strategies_respect_their_bounds(v in values_away_from_zero(8, 0.1), (shape, m) in matrix()) {
            prop_assert!(v.iter().all(|x| x.abs() >= 0.1 && x.abs() <= 2.0));
            prop_assert_eq!(m.len(), shape.0 * shape.1);
            prop_assert!((1..=6).contains(&shape.0) && (1..=6).contains(&shape.1));
        }
    }
}
