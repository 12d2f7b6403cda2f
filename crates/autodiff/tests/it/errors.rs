//! Error paths and gradient accumulation.

use ferrochem_autodiff::{Error, Labels, LossReduction, Tape};
use ferrochem_kernels::{Form, Matrix};

#[test]
fn shape_mismatch_names_the_op_and_both_shapes() {
    let mut tape = Tape::<f32>::new();
    let a = tape.constant(Matrix::zeros(2, 3));
    let b = tape.constant(Matrix::zeros(4, 5));
    let err = tape.matmul(a, b, Form::Plain).unwrap_err();
    assert_eq!(
        err.to_string(),
        "matmul: lhs is 2x3, rhs is 4x5: lhs·rhs needs lhs.ncols == rhs.nrows"
    );
    let err = tape.add(a, b).unwrap_err();
    assert!(matches!(err, Error::Shape { op: "add", lhs: (2, 3), rhs: (4, 5), .. }));
}

#[test]
fn an_op_without_gradient_is_a_typed_error() -> Result<(), Error> {
    let mut tape = Tape::<f64>::new();
    let x = tape.variable(Matrix::filled(2, 2, 0.5));
    let stepped = tape.step(x);
    let loss = tape.sum_all(stepped);
    assert_eq!(tape.value(loss)[(0, 0)], 4.0);
    let err = tape.backward(loss).unwrap_err();
    assert_eq!(err, Error::NoGradient { op: "step" });
    assert!(err.to_string().starts_with("step has no gradient"));

    // On a constant the same op is fine: nothing flows back through it.
    let c = tape.constant(Matrix::filled(2, 2, 0.5));
    let stepped = tape.step(c);
    let both = tape.mul(stepped, x)?;
    let loss = tape.sum_all(both);
    let grads = tape.backward(loss)?;
    assert_eq!(grads.get(x).unwrap().as_slice(), &[1.0; 4]);
    Ok(())
}

#[test]
fn backward_needs_a_scalar() {
    let mut tape = Tape::<f64>::new();
    let x = tape.variable(Matrix::zeros(2, 1));
    assert_eq!(tape.backward(x).unwrap_err(), Error::NotScalar { shape: (2, 1) });
}

#[test]
fn a_value_used_twice_gets_both_gradients() -> Result<(), Error> {
    // f(x) = Σ (x + x) ⊙ x = 2 Σ x², so ∂f/∂x = 4x.
    let mut tape = Tape::<f64>::new();
    let x = tape.variable(Matrix::from_vec(1, 3, vec![1.0, -2.0, 0.5]));
    let doubled = tape.add(x, x)?;
    let product = tape.mul(doubled, x)?;
    let loss = tape.sum_all(product);
    let grads = tape.backward(loss)?;
    assert_eq!(grads.get(x).unwrap().as_slice(), &[4.0, -8.0, 2.0]);
    Ok(())
}

#[test]
fn constants_get_no_gradient_and_cost_no_backward() -> Result<(), Error> {
    let mut tape = Tape::<f64>::new();
    let c = tape.constant(Matrix::filled(1, 2, 3.0));
    let e = tape.exp(c);
    assert!(!tape.requires_grad(e));
    let w = tape.variable(Matrix::filled(1, 2, 1.0));
    let y = tape.mul(e, w)?;
    let loss = tape.sum_all(y);
    let grads = tape.backward(loss)?;
    assert!(grads.get(c).is_none());
    assert!((grads.get(w).unwrap()[(0, 1)] - 3.0f64.exp()).abs() < 1e-12);
    Ok(())
}

#[test]
fn losses_stay_finite_for_huge_logits() -> Result<(), Error> {
    // Logits of ±1e4 overflow a naive e^z; both losses must stay finite,
    // and a confidently wrong entry must cost about |z|.
    let targets = Matrix::from_vec(1, 2, vec![1.0f32, 0.0]);
    let weights = Matrix::filled(1, 2, 1.0);
    let mask = Matrix::filled(1, 2, 1.0);
    let labels = Labels { targets: &targets, weights: &weights, mask: &mask };
    for (ncols, values) in [(2, vec![-1e4, -1e4]), (4, vec![1e4, -1e4, -1e4, 1e4])] {
        let mut tape = Tape::<f32>::new();
        let z = tape.variable(Matrix::from_vec(1, ncols, values));
        let loss = if ncols == 2 {
            tape.bce_with_logits(z, labels, LossReduction::MeanOverLabelled)?
        } else {
            tape.softmax_cross_entropy(z, labels, LossReduction::MeanOverLabelled)?
        };
        let value = tape.value(loss)[(0, 0)];
        assert!(value.is_finite() && value > 4e3, "{value}");
        let grads = tape.backward(loss)?;
        assert!(grads.get(z).unwrap().as_slice().iter().all(|g| g.is_finite() && g.abs() <= 1.0));
    }
    Ok(())
}

#[test]
fn missing_labels_count_nowhere() -> Result<(), Error> {
    // Two entries, one masked: the mean over labelled entries is the loss
    // of the measured one alone; DeepChem's mean over all halves it.
    let targets = Matrix::from_vec(1, 2, vec![1.0f64, 1.0]);
    let weights = Matrix::filled(1, 2, 1.0);
    let mask = Matrix::from_vec(1, 2, vec![1.0, 0.0]);
    let labels = Labels { targets: &targets, weights: &weights, mask: &mask };
    let mut tape = Tape::<f64>::new();
    let z = tape.variable(Matrix::from_vec(1, 2, vec![0.0, 123.0]));
    let labelled = tape.bce_with_logits(z, labels, LossReduction::MeanOverLabelled)?;
    let all = tape.bce_with_logits(z, labels, LossReduction::MeanOverAll)?;
    let ln2 = 2.0f64.ln();
    assert!((tape.value(labelled)[(0, 0)] - ln2).abs() < 1e-15);
    assert!((tape.value(all)[(0, 0)] - ln2 / 2.0).abs() < 1e-15);
    let grads = tape.backward(labelled)?;
    assert_eq!(grads.get(z).unwrap()[(0, 1)], 0.0);
    Ok(())
}

#[test]
fn row_sparse_gradients_equal_the_dense_ones() -> Result<(), Error> {
    use ferrochem_autodiff::{Grad, GradientLayout};
    use ferrochem_kernels::SparseBinary;

    let x = SparseBinary::from_rows(6, [vec![0, 2], vec![2, 5]]).unwrap();
    let w = Matrix::from_fn(6, 3, |i, j| (i * 3 + j) as f64 * 0.1 - 0.4);
    let grads_for =
        |layout: GradientLayout, penalty: bool, through_scale: bool| -> Result<Grad<f64>, Error> {
            let mut tape = Tape::new();
            let w_var = tape.param(&w);
            let used = if through_scale { tape.scale(w_var, 2.0) } else { w_var };
            let h = tape.sparse_matmul(&x, used, None)?;
            let h = tape.tanh(h);
            let mut loss = tape.sum_all(h);
            if penalty {
                let squares = tape.sum_squares(w_var);
                loss = tape.add(loss, squares)?;
            }
            let mut grads = tape.backward_with(loss, layout)?;
            Ok(grads.take_grad(w_var).unwrap())
        };
    for (penalty, through_scale) in [(false, false), (true, false), (false, true)] {
        let dense = grads_for(GradientLayout::Dense, penalty, through_scale)?;
        let sparse = grads_for(GradientLayout::RowSparseWherePossible, penalty, through_scale)?;
        assert!(matches!(dense, Grad::Dense(_)));
        // Only a weight used by the sparse product alone stays row-sparse.
        assert_eq!(matches!(sparse, Grad::Rows(_)), !penalty && !through_scale);
        if let Grad::Rows(rows) = &sparse {
            assert_eq!(rows.rows(), &[0, 2, 5]);
        }
        assert_eq!(
            sparse.into_dense(),
            dense.into_dense(),
            "penalty {penalty}, through scale {through_scale}"
        );
    }
    Ok(())
}
