//! Integration tests of the network: gradients of the full training loss
//! against finite differences for every head and layer option, and the
//! documented behaviour of dropout and predictions.

use ferrochem_autodiff::{Labels, LossReduction, Tape};
use ferrochem_kernels::{Matrix, SparseBinary};
use ferrochem_nn::{
    Activation, DropoutPlacement, Head, LossConfig, Mode, ModelInput, Multitask, MultitaskConfig,
    dropout_mask,
};
use ferrochem_testkit::{Tolerance, check_gradients};
use proptest::prelude::*;
use proptest::test_runner::Config;

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    Config { cases, ..Config::default() }
}

/// The training loss of `model` on a fixed batch, as a function of its
/// flattened parameters, and the tape's gradient of it.
fn loss_and_gradient(
    model: &Multitask<f64>,
    x: &SparseBinary,
    labels: Labels<'_, f64>,
    loss: &LossConfig,
) -> (f64, Vec<Vec<f64>>) {
    let mut tape = Tape::new();
    let forward =
        model.forward(&mut tape, ModelInput::Sparse(x), Mode::Train { key: [1, 2, 3] }).unwrap();
    let total = model.loss(&mut tape, &forward, labels, loss).unwrap();
    let mut grads = tape.backward(total).unwrap();
    let grads = forward.params.iter().map(|&p| grads.take(p).unwrap().into_vec()).collect();
    (tape.value(total)[(0, 0)], grads)
}

fn with_parameters(model: &Multitask<f64>, values: &[Vec<f64>]) -> Multitask<f64> {
    let mut model = model.clone();
    for (param, value) in model.parameters_mut().into_iter().zip(values) {
        param.as_mut_slice().copy_from_slice(value);
    }
    model
}

fn head() -> impl Strategy<Value = Head> {
    prop_oneof![
        Just(Head::Logistic),
        Just(Head::TwoClassSoftmax),
        Just(Head::Linear),
        Just(Head::LinearHuber { delta: 0.5 }),
    ]
}

proptest! {
    #![proptest_config(config())]

    // The whole training loss (head loss + l1·Σ|W| + l2/2·ΣW²) of a network
    // with two smooth hidden layers, dropout in either place and optional
    // residual connections, with respect to every weight and bias. Smooth
    // activations keep finite differences away from kinks; ReLU's gradient
    // has its own property in autodiff.
    #[test]
    fn full_loss_gradient_matches_finite_differences(
        head in head(),
        activation in prop_oneof![Just(Activation::Tanh), Just(Activation::Sigmoid)],
        before in proptest::bool::ANY,
        residual in proptest::bool::ANY,
        seed in 0u64..1000,
        bits in proptest::collection::vec(proptest::collection::btree_set(0u32..10, 0..5), 1..5),
    ) {
        let n_rows = bits.len();
        let config = MultitaskConfig {
            hidden_layers: vec![4, 4],
            dropout: vec![0.3],
            dropout_placement: if before { DropoutPlacement::BeforeActivation } else { DropoutPlacement::AfterActivation },
            activation,
            residual,
            head,
            hidden_bias: 0.1,
            ..MultitaskConfig::classifier(10, 3)
        };
        let model = config.init::<f64>(seed);
        let x = SparseBinary::from_rows(10, bits.iter().map(|row| row.iter().copied().collect::<Vec<_>>())).unwrap();
        let targets = Matrix::from_fn(n_rows, 3, |i, t| ((i + t + seed as usize) % 2) as f64);
        let weights = Matrix::from_fn(n_rows, 3, |i, t| 0.5 + (i * t) as f64 * 0.25);
        let mask = Matrix::from_fn(n_rows, 3, |i, t| if (i + 2 * t) % 4 == 3 { 0.0 } else { 1.0 });
        let labels = Labels { targets: &targets, weights: &weights, mask: &mask };
        let loss = LossConfig { reduction: LossReduction::MeanOverLabelled, l1: 0.0, l2: 1e-2 };

        let (_, analytic) = loss_and_gradient(&model, &x, labels, &loss);
        let values: Vec<Vec<f64>> = model.parameters().iter().map(|p| p.as_slice().to_vec()).collect();
        let eval = |values: &[Vec<f64>]| loss_and_gradient(&with_parameters(&model, values), &x, labels, &loss).0;
        check_gradients(&values, &analytic, eval, Tolerance::GRADIENT)
            .map_err(|err| TestCaseError::fail(err.to_string()))?;
    }
}

#[test]
fn l1_penalty_has_the_documented_gradient() {
    // With every label masked, the loss is the penalty alone:
    // l1·Σ|W| + l2/2·ΣW², whose gradient is l1·sign(W) + l2·W, and biases
    // get none.
    let config = MultitaskConfig {
        hidden_layers: vec![3],
        dropout: vec![],
        ..MultitaskConfig::classifier(4, 2)
    };
    let model = config.init::<f64>(5);
    let x = SparseBinary::from_rows(4, [vec![0, 2]]).unwrap();
    let zeros = Matrix::zeros(1, 2);
    let labels = Labels { targets: &zeros, weights: &zeros, mask: &zeros };
    let loss = LossConfig { reduction: LossReduction::MeanOverLabelled, l1: 0.1, l2: 0.01 };
    let (_, grads) = loss_and_gradient(&model, &x, labels, &loss);
    for (idx, (param, grad)) in model.parameters().iter().zip(&grads).enumerate() {
        for (&w, &g) in param.as_slice().iter().zip(grad) {
            let expected = if idx % 2 == 0 { 0.1 * w.signum() + 0.01 * w } else { 0.0 };
            assert!((g - expected).abs() < 1e-15, "param {idx}: {g} vs {expected}");
        }
    }
}

#[test]
fn dropout_keeps_the_expected_share_and_scale() {
    let mask: Matrix<f32> = dropout_mask(100, 1000, 0.25, &[7, 0, 0, 0]);
    let kept = mask.as_slice().iter().filter(|&&m| m != 0.0).count();
    // 100 000 Bernoulli(0.75) draws: the standard deviation of the count is
    // about 137, so ±1 000 is over seven of them.
    assert!((74_000..76_000).contains(&kept), "{kept}");
    assert!(mask.as_slice().iter().all(|&m| m == 0.0 || (m - 1.0 / 0.75).abs() < 1e-6));
    assert_eq!(mask, dropout_mask(100, 1000, 0.25, &[7, 0, 0, 0]));
    assert_ne!(mask, dropout_mask(100, 1000, 0.25, &[7, 0, 1, 0]));
}

#[test]
fn evaluation_is_deterministic_and_predictions_are_probabilities() {
    for head in [Head::Logistic, Head::TwoClassSoftmax] {
        let config = MultitaskConfig { head, ..MultitaskConfig::classifier(32, 3) };
        let model = config.init::<f32>(11);
        let x = SparseBinary::from_rows(32, [vec![1, 4, 30], vec![], vec![0, 31]]).unwrap();
        let first = model.predict(ModelInput::Sparse(&x)).unwrap();
        assert_eq!(first.shape(), (3, 3));
        assert!(first.as_slice().iter().all(|&p| (0.0..=1.0).contains(&p)));
        assert_eq!(first, model.predict(ModelInput::Sparse(&x)).unwrap());
    }
}

#[test]
fn deepchem_preset_matches_its_description() {
    let model = MultitaskConfig::deepchem_classifier(1024, 12, 0.25).init::<f32>(0);
    let hidden = &model.layers()[0];
    assert_eq!((hidden.in_dim(), hidden.out_dim()), (1024, 1000));
    assert!(hidden.bias.as_slice().iter().all(|&b| b == 1.0));
    let output = &model.layers()[1];
    assert_eq!(output.out_dim(), 24);
    assert!(output.bias.as_slice().iter().all(|&b| b == 0.0));
    let n = hidden.weight.len() as f64;
    let std =
        (hidden.weight.as_slice().iter().map(|&w| f64::from(w).powi(2)).sum::<f64>() / n).sqrt();
    assert!((std - 0.02).abs() < 2e-4, "{std}");
}
