//! The `check` helper every gradient property goes through.

use ferrochem_autodiff::{Result, Tape, Var};
use ferrochem_kernels::Matrix;
use ferrochem_testkit::{Tolerance, check_gradients};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError};

/// Case count for each property: small so that `cargo test` stays fast,
/// raised through `PROPTEST_CASES`.
pub fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24);
    Config { cases, ..Config::default() }
}

/// An input of the function under test: its shape and row-major values.
pub type Input = ((usize, usize), Vec<f64>);

/// Checks the tape's gradient of `f` with respect to every input against
/// finite differences.
///
/// `f` records a computation on the inputs, given as variables in order. A
/// non-scalar result `y` is reduced to `Σ r ⊙ y` with fixed, unequal weights
/// `r`, so that a wrong gradient in any single entry shows.
pub fn check<'c>(
    inputs: &[Input],
    f: impl Fn(&mut Tape<'c, f64>, &[Var]) -> Result<Var>,
) -> std::result::Result<(), TestCaseError> {
    let run = |values: &[Vec<f64>]| -> Result<(Tape<'c, f64>, Vec<Var>, Var)> {
        let mut tape = Tape::new();
        let vars: Vec<Var> = inputs
            .iter()
            .zip(values)
            .map(|(((nrows, ncols), _), v)| {
                tape.variable(Matrix::from_vec(*nrows, *ncols, v.clone()))
            })
            .collect();
        let out = f(&mut tape, &vars)?;
        let loss = reduce_to_scalar(&mut tape, out)?;
        Ok((tape, vars, loss))
    };
    let values: Vec<Vec<f64>> = inputs.iter().map(|(_, v)| v.clone()).collect();
    let (tape, vars, loss) = run(&values).map_err(fail)?;
    let grads = tape.backward(loss).map_err(fail)?;
    let analytic: Vec<Vec<f64>> = vars
        .iter()
        .map(|&var| match grads.get(var) {
            Some(grad) => grad.as_slice().to_vec(),
            None => vec![0.0; tape.value(var).len()],
        })
        .collect();
    let eval = |values: &[Vec<f64>]| {
        let (tape, _, loss) = run(values).expect("the forward pass succeeded once");
        tape.value(loss)[(0, 0)]
    };
    check_gradients(&values, &analytic, eval, Tolerance::GRADIENT).map_err(fail)
}

fn reduce_to_scalar<'c>(tape: &mut Tape<'c, f64>, out: Var) -> Result<Var> {
    let (nrows, ncols) = tape.shape(out);
    if (nrows, ncols) == (1, 1) {
        return Ok(out);
    }
    let weights = Matrix::from_fn(nrows, ncols, |i, j| 0.5 + ((i * 7 + j * 3) % 5) as f64 * 0.25);
    let weights = tape.constant(weights);
    let weighted = tape.mul(out, weights)?;
    Ok(tape.sum_all(weighted))
}

fn fail(err: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(err.to_string())
}

/// A shape and values in `[-2, 2]`.
pub fn input() -> impl Strategy<Value = Input> {
    ferrochem_testkit::matrix()
}

/// Two inputs of the same shape.
pub fn input_pair() -> impl Strategy<Value = (Input, Input)> {
    ferrochem_testkit::shape().prop_flat_map(|shape| {
        let n = shape.0 * shape.1;
        ((Just(shape), ferrochem_testkit::values(n)), (Just(shape), ferrochem_testkit::values(n)))
    })
}
