//! One gradient property per op and one per composite. Each states the
//! function under test and its derivative; `check` compares the tape's
//! gradient with central finite differences.

use ferrochem_autodiff::{Axis, Labels, LossReduction, Tape, Var};
use ferrochem_kernels::{Form, Matrix, SparseBinary};
use ferrochem_testkit::{dim, positive_values, values, values_away_from_zero};
use proptest::prelude::*;

use crate::support::{Input, check, config, input, input_pair};

/// `lhs` and `rhs` shapes for `form`, with inner dimension `k`.
fn product_inputs(form: Form) -> impl Strategy<Value = (Input, Input)> {
    (dim(), dim(), dim()).prop_flat_map(move |(m, k, n)| {
        let (lhs, rhs) = match form {
            Form::Plain => ((m, k), (k, n)),
            Form::LhsTransposed => ((k, m), (k, n)),
            Form::RhsTransposed => ((m, k), (n, k)),
        };
        ((Just(lhs), values(lhs.0 * lhs.1)), (Just(rhs), values(rhs.0 * rhs.1)))
    })
}

/// A sparse binary matrix of the given shape, about a third of it ones.
fn sparse(nrows: usize, ncols: usize) -> impl Strategy<Value = SparseBinary> {
    proptest::collection::vec(
        proptest::collection::vec(proptest::bool::weighted(0.35), ncols),
        nrows,
    )
    .prop_map(move |rows| {
        let rows = rows.iter().map(|row| {
            row.iter().enumerate().filter(|(_, on)| **on).map(|(k, _)| k as u32).collect::<Vec<_>>()
        });
        SparseBinary::from_rows(ncols, rows).unwrap()
    })
}

/// Targets in {0, 1}, weights in [0.2, 3] and a 0/1 mask with at least one
/// measured entry, all `nrows × ncols`.
fn label_set(
    nrows: usize,
    ncols: usize,
) -> impl Strategy<Value = (Matrix<f64>, Matrix<f64>, Matrix<f64>)> {
    let n = nrows * ncols;
    (
        proptest::collection::vec(proptest::bool::ANY, n),
        proptest::collection::vec(0.2f64..3.0, n),
        proptest::collection::vec(proptest::bool::weighted(0.7), n),
    )
        .prop_map(move |(targets, weights, mut mask)| {
            mask[0] = true;
            let as_matrix = |v: Vec<f64>| Matrix::from_vec(nrows, ncols, v);
            (
                as_matrix(targets.into_iter().map(|t| t as u8 as f64).collect()),
                as_matrix(weights),
                as_matrix(mask.into_iter().map(|m| m as u8 as f64).collect()),
            )
        })
}

fn unary(
    shape: (usize, usize),
    values: Vec<f64>,
    op: fn(&mut Tape<'_, f64>, Var) -> Var,
) -> Result<(), TestCaseError> {
    check(&[(shape, values)], |tape, v| Ok(op(tape, v[0])))
}

fn any_shape_with(values: fn(usize) -> BoxedStrategy<Vec<f64>>) -> impl Strategy<Value = Input> {
    ferrochem_testkit::shape().prop_flat_map(move |shape| (Just(shape), values(shape.0 * shape.1)))
}

proptest! {
    #![proptest_config(config())]

    // C = A·B: dA = G·Bᵀ, dB = Aᵀ·G.
    #[test]
    fn matmul_plain((lhs, rhs) in product_inputs(Form::Plain)) {
        check(&[lhs, rhs], |tape, v| tape.matmul(v[0], v[1], Form::Plain))?;
    }

    // C = Aᵀ·B: dA = B·Gᵀ, dB = A·G.
    #[test]
    fn matmul_lhs_transposed((lhs, rhs) in product_inputs(Form::LhsTransposed)) {
        check(&[lhs, rhs], |tape, v| tape.matmul(v[0], v[1], Form::LhsTransposed))?;
    }

    // C = A·Bᵀ: dA = G·B, dB = Gᵀ·A.
    #[test]
    fn matmul_rhs_transposed((lhs, rhs) in product_inputs(Form::RhsTransposed)) {
        check(&[lhs, rhs], |tape, v| tape.matmul(v[0], v[1], Form::RhsTransposed))?;
    }

    // Y = X·W + 1bᵀ with X sparse binary: dW = Xᵀ·G, db = Σ_rows G.
    #[test]
    fn sparse_matmul_with_bias(
        (x, w, b) in (dim(), dim(), dim()).prop_flat_map(|(m, k, n)| {
            (sparse(m, k), values(k * n).prop_map(move |w| ((k, n), w)), values(n).prop_map(move |b| ((1, n), b)))
        })
    ) {
        check(&[w, b], |tape, v| tape.sparse_matmul(&x, v[0], Some(v[1])))?;
    }

    // Y = X·W without bias: dW = Xᵀ·G.
    #[test]
    fn sparse_matmul_without_bias(
        (x, w) in (dim(), dim(), dim()).prop_flat_map(|(m, k, n)| {
            (sparse(m, k), values(k * n).prop_map(move |w| ((k, n), w)))
        })
    ) {
        check(&[w], |tape, v| tape.sparse_matmul(&x, v[0], None))?;
    }

    // a + b: da = G, db = G.
    #[test]
    fn add((a, b) in input_pair()) {
        check(&[a, b], |tape, v| tape.add(v[0], v[1]))?;
    }

    // a − b: da = G, db = −G.
    #[test]
    fn sub((a, b) in input_pair()) {
        check(&[a, b], |tape, v| tape.sub(v[0], v[1]))?;
    }

    // a ⊙ b: da = G ⊙ b, db = G ⊙ a.
    #[test]
    fn mul((a, b) in input_pair()) {
        check(&[a, b], |tape, v| tape.mul(v[0], v[1]))?;
    }

    // α·x: dx = α·G.
    #[test]
    fn scale(x in input(), alpha in -3.0f64..3.0) {
        check(&[x], |tape, v| Ok(tape.scale(v[0], alpha)))?;
    }

    // X + 1bᵀ: dX = G, db = Σ_rows G.
    #[test]
    fn add_bias(
        (x, b) in ferrochem_testkit::shape().prop_flat_map(|(m, n)| {
            (values(m * n).prop_map(move |x| ((m, n), x)), values(n).prop_map(move |b| ((1, n), b)))
        })
    ) {
        check(&[x, b], |tape, v| tape.add_bias(v[0], v[1]))?;
    }

    // Σ x: dx = g·1; mean: dx = g/n.
    #[test]
    fn sum_and_mean_of_all(x in input()) {
        check(std::slice::from_ref(&x), |tape, v| Ok(tape.sum_all(v[0])))?;
        check(&[x], |tape, v| Ok(tape.mean_all(v[0])))?;
    }

    // Sums and means over either axis: the output gradient broadcast back
    // along the reduced axis, divided by its length for a mean.
    #[test]
    fn sum_and_mean_over_an_axis(x in input()) {
        for axis in [Axis::Rows, Axis::Cols] {
            check(std::slice::from_ref(&x), |tape, v| Ok(tape.sum(v[0], axis)))?;
            check(std::slice::from_ref(&x), |tape, v| Ok(tape.mean(v[0], axis)))?;
        }
    }

    // relu(x): dx = G·[x > 0]; inputs kept 0.05 away from the kink.
    #[test]
    fn relu((shape, x) in any_shape_with(|n| values_away_from_zero(n, 0.05).boxed())) {
        unary(shape, x, |tape, v| tape.relu(v))?;
    }

    // σ(x): dx = G·σ(x)(1 − σ(x)).
    #[test]
    fn sigmoid((shape, x) in input()) {
        unary(shape, x, |tape, v| tape.sigmoid(v))?;
    }

    // tanh(x): dx = G·(1 − tanh²x).
    #[test]
    fn tanh((shape, x) in input()) {
        unary(shape, x, |tape, v| tape.tanh(v))?;
    }

    // eˣ: dx = G·eˣ.
    #[test]
    fn exp((shape, x) in input()) {
        unary(shape, x, |tape, v| tape.exp(v))?;
    }

    // ln x for x in [0.2, 4]: dx = G/x.
    #[test]
    fn log((shape, x) in any_shape_with(|n| positive_values(n, 0.2, 4.0).boxed())) {
        unary(shape, x, |tape, v| tape.log(v))?;
    }

    // ln σ(x), over a wide range: dx = G·σ(−x).
    #[test]
    fn log_sigmoid((shape, x) in any_shape_with(|n| proptest::collection::vec(-30.0f64..30.0, n).boxed())) {
        unary(shape, x, |tape, v| tape.log_sigmoid(v))?;
    }

    // x ⊙ mask, mask entries 0 or 1/(1 − 0.25): dx = G ⊙ mask.
    #[test]
    fn dropout(
        (x, keep) in ferrochem_testkit::shape().prop_flat_map(|(m, n)| {
            (values(m * n).prop_map(move |x| ((m, n), x)), proptest::collection::vec(proptest::bool::ANY, m * n))
        })
    ) {
        let ((m, n), _) = x;
        let mask = Matrix::from_vec(m, n, keep.iter().map(|&k| if k { 1.0 / 0.75 } else { 0.0 }).collect());
        check(&[x], |tape, v| tape.dropout(v[0], mask.clone()))?;
    }

    // max(x, 0) ⊙ mask: dx = G ⊙ mask ⊙ [x > 0], inputs away from the kink.
    #[test]
    fn relu_dropout(
        (x, keep) in ferrochem_testkit::shape().prop_flat_map(|(m, n)| {
            (
                values_away_from_zero(m * n, 0.05).prop_map(move |x| ((m, n), x)),
                proptest::collection::vec(proptest::bool::ANY, m * n),
            )
        })
    ) {
        let ((m, n), _) = x;
        let mask = Matrix::from_vec(m, n, keep.iter().map(|&k| if k { 1.0 / 0.75 } else { 0.0 }).collect());
        check(&[x], |tape, v| tape.relu_dropout(v[0], mask.clone()))?;
    }

    // Σ |x|: dx = g·sign(x); inputs away from the kink at 0.
    #[test]
    fn l1_norm((shape, x) in any_shape_with(|n| values_away_from_zero(n, 0.05).boxed())) {
        unary(shape, x, |tape, v| tape.l1_norm(v))?;
    }

    // ‖x‖₂: dx = g·x/‖x‖, away from the kink at x = 0.
    #[test]
    fn l2_norm((shape, x) in input()) {
        prop_assume!(x.iter().map(|v| v * v).sum::<f64>() > 0.01);
        unary(shape, x, |tape, v| tape.l2_norm(v))?;
    }

    // Σ x²: dx = 2g·x.
    #[test]
    fn sum_squares((shape, x) in input()) {
        unary(shape, x, |tape, v| tape.sum_squares(v))?;
    }

    // Σ m·w·(max(z,0) − z·y + ln(1 + e^−|z|)) / D: dz = m·w·(σ(z) − y)/D,
    // for both denominators; logits up to ±8 reach the flat tails.
    #[test]
    fn bce_with_logits(
        (z, (targets, weights, mask)) in ferrochem_testkit::shape().prop_flat_map(|(m, n)| {
            (proptest::collection::vec(-8.0f64..8.0, m * n).prop_map(move |z| ((m, n), z)), label_set(m, n))
        })
    ) {
        let labels = Labels { targets: &targets, weights: &weights, mask: &mask };
        for reduction in [LossReduction::MeanOverLabelled, LossReduction::MeanOverAll] {
            check(std::slice::from_ref(&z), |tape, v| tape.bce_with_logits(v[0], labels, reduction))?;
        }
    }

    // Two-class softmax per task: with d = z₁ − z₀ and p₁ = σ(d),
    // ℓ = −(1−y) ln(1−p₁) − y ln p₁; dz₁ = m·w·(p₁ − y)/D = −dz₀.
    #[test]
    fn softmax_cross_entropy(
        (z, (targets, weights, mask)) in ferrochem_testkit::shape().prop_flat_map(|(m, n)| {
            (proptest::collection::vec(-8.0f64..8.0, m * 2 * n).prop_map(move |z| ((m, 2 * n), z)), label_set(m, n))
        })
    ) {
        let labels = Labels { targets: &targets, weights: &weights, mask: &mask };
        for reduction in [LossReduction::MeanOverLabelled, LossReduction::MeanOverAll] {
            check(std::slice::from_ref(&z), |tape, v| tape.softmax_cross_entropy(v[0], labels, reduction))?;
        }
    }

    // Σ m·w·(p − y)² / D: dp = 2m·w·(p − y)/D.
    #[test]
    fn mse(
        (p, (targets, weights, mask)) in ferrochem_testkit::shape().prop_flat_map(|(m, n)| {
            (values(m * n).prop_map(move |p| ((m, n), p)), label_set(m, n))
        })
    ) {
        let labels = Labels { targets: &targets, weights: &weights, mask: &mask };
        check(&[p], |tape, v| tape.mse(v[0], labels, LossReduction::MeanOverLabelled))?;
    }

    // Huber with δ = 0.7: dp = m·w·clip(p − y, ±δ)/D; residuals kept 0.05
    // away from the kink at |p − y| = δ.
    #[test]
    fn huber(
        (p, (targets, weights, mask)) in ferrochem_testkit::shape().prop_flat_map(|(m, n)| {
            (values(m * n).prop_map(move |p| ((m, n), p)), label_set(m, n))
        })
    ) {
        let delta = 0.7;
        prop_assume!(p.1.iter().zip(targets.as_slice()).all(|(p, y)| ((p - y).abs() - delta).abs() > 0.05));
        let labels = Labels { targets: &targets, weights: &weights, mask: &mask };
        for reduction in [LossReduction::MeanOverLabelled, LossReduction::MeanOverAll] {
            check(std::slice::from_ref(&p), |tape, v| tape.huber(v[0], labels, delta, reduction))?;
        }
    }

    // The whole training loss of a two-layer network on fingerprints:
    //   h = relu(X·W₁ + b₁) ⊙ mask_dropout,  z = h·W₂ + b₂,
    //   L = BCE(z; y, w, m) + λ₁‖W₁‖₁ + λ₂ Σ W₂²,
    // with gradients for all four parameters. Pre-activations near the ReLU
    // kink and weights near the L1 kink are steered clear of.
    #[test]
    fn two_layer_network_loss(
        (x, w1, b1, w2, b2, drop, (targets, weights, mask)) in (dim(), dim(), dim(), dim()).prop_flat_map(|(batch, n_in, n_hidden, n_tasks)| {
            (
                sparse(batch, n_in),
                values_away_from_zero(n_in * n_hidden, 0.05).prop_map(move |w| ((n_in, n_hidden), w)),
                values(n_hidden).prop_map(move |b| ((1, n_hidden), b)),
                values(n_hidden * n_tasks).prop_map(move |w| ((n_hidden, n_tasks), w)),
                values(n_tasks).prop_map(move |b| ((1, n_tasks), b)),
                proptest::collection::vec(proptest::bool::weighted(0.8), batch * n_hidden),
                label_set(batch, n_tasks),
            )
        })
    ) {
        let hidden = x.nrows() * w1.0.1;
        let dropout = Matrix::from_vec(x.nrows(), w1.0.1, drop.iter().map(|&k| if k { 1.25 } else { 0.0 }).collect());
        prop_assert_eq!(dropout.len(), hidden);
        let labels = Labels { targets: &targets, weights: &weights, mask: &mask };

        let w1_m = Matrix::from_vec(w1.0.0, w1.0.1, w1.1.clone());
        let mut probe = Tape::new();
        let w1_v = probe.constant_ref(&w1_m);
        let b1_v = probe.constant(Matrix::from_vec(1, b1.1.len(), b1.1.clone()));
        let pre = probe.sparse_matmul(&x, w1_v, Some(b1_v)).unwrap();
        prop_assume!(probe.value(pre).as_slice().iter().all(|p| p.abs() > 1e-2));

        check(&[w1, b1, w2, b2], |tape, v| {
            let pre = tape.sparse_matmul(&x, v[0], Some(v[1]))?;
            let h = tape.relu(pre);
            let h = tape.dropout(h, dropout.clone())?;
            let z = tape.matmul(h, v[2], Form::Plain)?;
            let z = tape.add_bias(z, v[3])?;
            let data_loss = tape.bce_with_logits(z, labels, LossReduction::MeanOverLabelled)?;
            let l1 = tape.l1_norm(v[0]);
            let l1 = tape.scale(l1, 1e-2);
            let l2 = tape.sum_squares(v[2]);
            let l2 = tape.scale(l2, 1e-3);
            let loss = tape.add(data_loss, l1)?;
            tape.add(loss, l2)
        })?;
    }
}
