//! The dense (fully connected) layer.

use ferrochem_autodiff::{Result, Tape, Var};
use ferrochem_kernels::random::Rng;
use ferrochem_kernels::{Float, Form, Matrix, SparseBinary};
use serde::{Deserialize, Serialize};

use crate::Init;

/// `y = x · W + b`, for a batch `x` of shape `batch_size × in_dim`.
///
/// `W` is `in_dim × out_dim`, drawn by the layer's [`Init`]; `b` is a
/// `1 × out_dim` row filled with a constant. The input may be a dense
/// matrix or a sparse binary one (a fingerprint batch), which takes the
/// gather-add path of the kernels.
///
/// # Example
///
/// ```
/// use ferrochem_autodiff::Tape;
/// use ferrochem_kernels::{random::Rng, Matrix};
/// use ferrochem_nn::{Dense, Init};
///
/// let layer = Dense::<f32>::new(3, 2, Init::XavierUniform, 0.5, &mut Rng::new(0));
/// let x = Matrix::zeros(4, 3);
/// let mut tape = Tape::new();
/// let x_var = tape.constant_ref(&x);
/// let (w, b) = layer.register(&mut tape, true);
/// let y = Dense::forward(&mut tape, x_var.into(), w, b)?;
/// assert_eq!(tape.shape(y), (4, 2));
/// assert_eq!(tape.value(y)[(3, 1)], 0.5);
/// # Ok::<(), ferrochem_autodiff::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dense<T: Float> {
    /// `in_dim × out_dim` weights.
    pub weight: Matrix<T>,
    /// `1 × out_dim` bias.
    pub bias: Matrix<T>,
}

/// What a layer is applied to.
#[derive(Clone, Copy, Debug)]
pub enum LayerInput<'p> {
    /// A value already on the tape.
    Dense(Var),
    /// A sparse binary batch, such as fingerprints.
    Sparse(&'p SparseBinary),
}

impl From<Var> for LayerInput<'_> {
    fn from(var: Var) -> Self {
        LayerInput::Dense(var)
    }
}

impl<T: Float> Dense<T> {
    /// A layer from `in_dim` to `out_dim` with weights from `init` and every
    /// bias entry equal to `bias`.
    pub fn new(in_dim: usize, out_dim: usize, init: Init, bias: f64, rng: &mut Rng) -> Self {
        Dense {
            weight: init.sample(in_dim, out_dim, rng),
            bias: Matrix::filled(1, out_dim, T::from_f64(bias)),
        }
    }

    /// Input width.
    pub fn in_dim(&self) -> usize {
        self.weight.nrows()
    }

    /// Output width.
    pub fn out_dim(&self) -> usize {
        self.weight.ncols()
    }

    /// Puts the weight and bias on `tape`: as parameters (with gradients)
    /// when `trainable`, as constants otherwise.
    pub fn register<'p>(&'p self, tape: &mut Tape<'p, T>, trainable: bool) -> (Var, Var) {
        if trainable {
            (tape.param(&self.weight), tape.param(&self.bias))
        } else {
            (tape.constant_ref(&self.weight), tape.constant_ref(&self.bias))
        }
    }

    /// Records `input · weight + bias` for a registered weight and bias.
    ///
    /// # Errors
    ///
    /// Fails if the input width differs from the weight's rows.
    pub fn forward<'p>(
        tape: &mut Tape<'p, T>,
        input: LayerInput<'p>,
        weight: Var,
        bias: Var,
    ) -> Result<Var> {
        match input {
            LayerInput::Sparse(x) => tape.sparse_matmul(x, weight, Some(bias)),
            LayerInput::Dense(x) => {
                let product = tape.matmul(x, weight, Form::Plain)?;
                tape.add_bias(product, bias)
            }
        }
    }
}
