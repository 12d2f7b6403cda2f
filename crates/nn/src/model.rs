//! Multitask networks: an input, a stack of hidden layers, and one output
//! per task.

use ferrochem_autodiff::{Labels, LossReduction, Result, Tape, Var};
use ferrochem_kernels::elementwise::sigmoid;
use ferrochem_kernels::random::{Rng, fill_keep_mask};
use ferrochem_kernels::{Float, Matrix, SparseBinary};
use serde::{Deserialize, Serialize};

use crate::Init;
use crate::layer::{Dense, LayerInput};

/// The nonlinearity between layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// `tanh(x)`.
    Tanh,
    /// `1 / (1 + e^−x)`.
    Sigmoid,
    /// No nonlinearity.
    Identity,
}

/// What the output layer predicts and which loss trains it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Head {
    /// One logit per task, trained with binary cross-entropy; predictions
    /// are `σ(logit)`.
    Logistic,
    /// Two logits per task (negative, positive) with a softmax between
    /// them, trained with cross-entropy: DeepChem's classifier. Predictions
    /// are the positive class's probability.
    TwoClassSoftmax,
    /// One value per task, trained with squared error.
    Linear,
    /// One value per task, trained with the Huber loss of threshold
    /// `delta` (in standardized target units).
    LinearHuber {
        /// Where the loss turns from quadratic to linear.
        delta: f64,
    },
}

impl Head {
    fn outputs_per_task(self) -> usize {
        if self == Head::TwoClassSoftmax { 2 } else { 1 }
    }

    /// Whether this head predicts classes (as opposed to values).
    pub fn is_classification(self) -> bool {
        matches!(self, Head::Logistic | Head::TwoClassSoftmax)
    }
}

/// Where dropout sits in a hidden layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropoutPlacement {
    /// `dropout(activation(x·W + b))`, the usual order.
    AfterActivation,
    /// `activation(dropout(x·W + b))`, DeepChem's order.
    BeforeActivation,
}

/// The architecture of a [`Multitask`] network.
///
/// The defaults, from [`MultitaskConfig::classifier`] and
/// [`MultitaskConfig::regressor`], are two hidden layers of 1000 ReLU units
/// with He-normal weights, zero biases, dropout 0.5 after the activation,
/// and a Xavier-uniform output layer with zero bias.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MultitaskConfig {
    /// Width of the input (1024 for the usual ECFP).
    pub n_features: usize,
    /// Number of tasks (12 for Tox21).
    pub n_tasks: usize,
    /// Width of each hidden layer, input side first (default
    /// `[1000, 1000]`).
    pub hidden_layers: Vec<usize>,
    /// Dropout rate of each hidden layer, in `[0, 1)`; a single value
    /// applies to every layer (default `[0.5]`).
    pub dropout: Vec<f64>,
    /// Where dropout sits (default after the activation).
    pub dropout_placement: DropoutPlacement,
    /// Nonlinearity of the hidden layers (default ReLU).
    pub activation: Activation,
    /// Initializer of the hidden layers' weights (default He-normal).
    pub hidden_init: Init,
    /// Constant initial bias of the hidden layers (default 0).
    pub hidden_bias: f64,
    /// Initializer of the output layer's weights (default Xavier-uniform).
    pub output_init: Init,
    /// Constant initial bias of the output layer (default 0).
    pub output_bias: f64,
    /// Adds each hidden layer's input to its output where the two have the
    /// same width (default off).
    pub residual: bool,
    /// The output and its loss (default logistic for classifiers, linear
    /// for regressors).
    pub head: Head,
}

impl MultitaskConfig {
    /// The default classifier for `n_features` inputs and `n_tasks` tasks:
    /// two ReLU layers of 1000 with dropout 0.5 after each, He-normal
    /// weights, a Xavier logistic output layer. The widths and dropout
    /// were chosen on Tox21 validation data, with an L2 penalty of 5e-3 on
    /// count fingerprints; DeepChem's chapter
    /// network is one layer of 1000 with dropout 0.25.
    pub fn classifier(n_features: usize, n_tasks: usize) -> Self {
        MultitaskConfig {
            n_features,
            n_tasks,
            hidden_layers: vec![1000, 1000],
            dropout: vec![0.5],
            dropout_placement: DropoutPlacement::AfterActivation,
            activation: Activation::Relu,
            hidden_init: Init::HeNormal,
            hidden_bias: 0.0,
            output_init: Init::XavierUniform,
            output_bias: 0.0,
            residual: false,
            head: Head::Logistic,
        }
    }

    /// The default regressor: the classifier's body with a linear head.
    pub fn regressor(n_features: usize, n_tasks: usize) -> Self {
        MultitaskConfig { head: Head::Linear, ..Self::classifier(n_features, n_tasks) }
    }

    /// DeepChem's `MultitaskClassifier` with its defaults: hidden layers
    /// `[1000]`, weights `N(0, 0.02)`, hidden bias 1, a Xavier output layer
    /// with bias 0, ReLU, dropout after the linear layer and before the
    /// activation, and a two-class softmax per task. DeepChem's default
    /// dropout is 0.5; its Tox21 example uses 0.25, which `dropout` sets.
    pub fn deepchem_classifier(n_features: usize, n_tasks: usize, dropout: f64) -> Self {
        MultitaskConfig {
            n_features,
            n_tasks,
            hidden_layers: vec![1000],
            dropout: vec![dropout],
            dropout_placement: DropoutPlacement::BeforeActivation,
            activation: Activation::Relu,
            hidden_init: Init::Normal { std: 0.02 },
            hidden_bias: 1.0,
            output_init: Init::XavierUniform,
            output_bias: 0.0,
            residual: false,
            head: Head::TwoClassSoftmax,
        }
    }

    /// The dropout rate of hidden layer `layer_idx`.
    pub fn dropout_rate(&self, layer_idx: usize) -> f64 {
        match self.dropout.as_slice() {
            [] => 0.0,
            [rate] => *rate,
            rates => rates.get(layer_idx).copied().unwrap_or(0.0),
        }
    }

    /// Builds the network with weights drawn from a generator seeded by
    /// `seed`.
    pub fn init<T: Float>(&self, seed: u64) -> Multitask<T> {
        let mut rng = Rng::from_key(&[seed, INIT_STREAM]);
        let mut layers = Vec::with_capacity(self.hidden_layers.len() + 1);
        let mut in_dim = self.n_features;
        for &width in &self.hidden_layers {
            layers.push(Dense::new(in_dim, width, self.hidden_init, self.hidden_bias, &mut rng));
            in_dim = width;
        }
        let out_dim = self.n_tasks * self.head.outputs_per_task();
        layers.push(Dense::new(in_dim, out_dim, self.output_init, self.output_bias, &mut rng));
        Multitask { config: self.clone(), layers }
    }
}

/// Separates the random streams of initialization and dropout.
const INIT_STREAM: u64 = 0x1417;
const DROPOUT_STREAM: u64 = 0xD409;

/// A fully connected multitask network.
///
/// Input `batch_size × n_features` (dense, or sparse binary for
/// fingerprints) → hidden layers → `batch_size × n_tasks` outputs (twice
/// that for the two-class softmax head).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Multitask<T: Float> {
    config: MultitaskConfig,
    layers: Vec<Dense<T>>,
}

/// A batch of inputs for the network.
#[derive(Clone, Copy, Debug)]
pub enum ModelInput<'p, T> {
    /// Sparse binary features, such as fingerprints.
    Sparse(&'p SparseBinary),
    /// Dense features, such as descriptors.
    Dense(&'p Matrix<T>),
}

/// Training or evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Dropout on, with masks drawn from a stream determined by `key`
    /// (typically seed, epoch and step), and parameters recorded with
    /// gradients.
    Train {
        /// Selects the dropout masks.
        key: [u64; 3],
    },
    /// Dropout off, and parameters recorded as constants.
    Eval,
}

/// The recorded forward pass.
#[derive(Clone, Debug)]
pub struct Forward {
    /// The network's raw output: logits or values.
    pub output: Var,
    /// The parameters as recorded, in the order of
    /// [`Multitask::parameters`].
    pub params: Vec<Var>,
}

/// How the training loss is formed from the head's loss.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossConfig {
    /// The denominator of the masked mean (default: labelled entries only).
    pub reduction: LossReduction,
    /// L1 penalty `l1 · Σ|W|` over every weight matrix, not biases
    /// (default 0).
    pub l1: f64,
    /// L2 penalty `(l2 / 2) · Σ W²` over every weight matrix, not biases,
    /// so its gradient is `l2 · W` as with SGD's weight decay (default 0).
    pub l2: f64,
}

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig { reduction: LossReduction::MeanOverLabelled, l1: 0.0, l2: 0.0 }
    }
}

impl<T: Float> Multitask<T> {
    /// The architecture.
    pub fn config(&self) -> &MultitaskConfig {
        &self.config
    }

    /// The layers, input side first; the last is the output layer.
    pub fn layers(&self) -> &[Dense<T>] {
        &self.layers
    }

    /// Every parameter: weight then bias of each layer, input side first.
    pub fn parameters(&self) -> Vec<&Matrix<T>> {
        self.layers.iter().flat_map(|layer| [&layer.weight, &layer.bias]).collect()
    }

    /// Every parameter, mutably, in the order of [`Multitask::parameters`].
    pub fn parameters_mut(&mut self) -> Vec<&mut Matrix<T>> {
        self.layers.iter_mut().flat_map(|layer| [&mut layer.weight, &mut layer.bias]).collect()
    }

    /// Number of scalar parameters.
    pub fn n_parameters(&self) -> usize {
        self.parameters().iter().map(|p| p.len()).sum()
    }

    /// Records the forward pass of a batch on `tape`.
    ///
    /// # Errors
    ///
    /// Fails if the input does not have `n_features` columns.
    pub fn forward<'p>(
        &'p self,
        tape: &mut Tape<'p, T>,
        input: ModelInput<'p, T>,
        mode: Mode,
    ) -> Result<Forward> {
        let trainable = matches!(mode, Mode::Train { .. });
        let mut params = Vec::with_capacity(2 * self.layers.len());
        let (hidden, output) = self.layers.split_at(self.layers.len() - 1);
        let mut current = match input {
            ModelInput::Sparse(x) => LayerInput::Sparse(x),
            ModelInput::Dense(x) => LayerInput::Dense(tape.constant_ref(x)),
        };
        for (layer_idx, layer) in hidden.iter().enumerate() {
            let (weight, bias) = layer.register(tape, trainable);
            params.extend([weight, bias]);
            let pre = Dense::forward(tape, current, weight, bias)?;
            let mut h = self.activate_with_dropout(tape, pre, layer_idx, mode)?;
            if let LayerInput::Dense(previous) = current
                && self.config.residual
                && tape.shape(previous) == tape.shape(h)
            {
                h = tape.add(h, previous)?;
            }
            current = LayerInput::Dense(h);
        }
        let (weight, bias) = output[0].register(tape, trainable);
        params.extend([weight, bias]);
        let output = Dense::forward(tape, current, weight, bias)?;
        Ok(Forward { output, params })
    }

    fn activate_with_dropout<'p>(
        &self,
        tape: &mut Tape<'p, T>,
        pre: Var,
        layer_idx: usize,
        mode: Mode,
    ) -> Result<Var> {
        let rate = self.config.dropout_rate(layer_idx);
        let mask = match mode {
            Mode::Train { key } if rate > 0.0 => {
                let (nrows, ncols) = tape.shape(pre);
                Some(dropout_mask(nrows, ncols, rate, &[key[0], key[1], key[2], layer_idx as u64]))
            }
            _ => None,
        };
        let Some(mask) = mask else { return Ok(self.activate(tape, pre)) };
        match self.config.dropout_placement {
            DropoutPlacement::AfterActivation if self.config.activation == Activation::Relu => {
                tape.relu_dropout(pre, mask)
            }
            DropoutPlacement::AfterActivation => {
                let h = self.activate(tape, pre);
                tape.dropout(h, mask)
            }
            DropoutPlacement::BeforeActivation => {
                let dropped = tape.dropout(pre, mask)?;
                Ok(self.activate(tape, dropped))
            }
        }
    }

    fn activate<'p>(&self, tape: &mut Tape<'p, T>, x: Var) -> Var {
        match self.config.activation {
            Activation::Relu => tape.relu(x),
            Activation::Tanh => tape.tanh(x),
            Activation::Sigmoid => tape.sigmoid(x),
            Activation::Identity => x,
        }
    }

    /// Records the training loss of a recorded forward pass: the head's
    /// masked weighted loss plus the weight penalties.
    ///
    /// # Errors
    ///
    /// Fails if the labels are not `batch_size × n_tasks`.
    pub fn loss<'p>(
        &self,
        tape: &mut Tape<'p, T>,
        forward: &Forward,
        labels: Labels<'p, T>,
        loss: &LossConfig,
    ) -> Result<Var> {
        let output = forward.output;
        let mut total = match self.config.head {
            Head::Logistic => tape.bce_with_logits(output, labels, loss.reduction)?,
            Head::TwoClassSoftmax => tape.softmax_cross_entropy(output, labels, loss.reduction)?,
            Head::Linear => tape.mse(output, labels, loss.reduction)?,
            Head::LinearHuber { delta } => {
                tape.huber(output, labels, T::from_f64(delta), loss.reduction)?
            }
        };
        let weights = forward.params.iter().step_by(2).copied();
        for weight in weights {
            if loss.l1 > 0.0 {
                let norm = tape.l1_norm(weight);
                let penalty = tape.scale(norm, T::from_f64(loss.l1));
                total = tape.add(total, penalty)?;
            }
            if loss.l2 > 0.0 {
                let squares = tape.sum_squares(weight);
                let penalty = tape.scale(squares, T::from_f64(0.5 * loss.l2));
                total = tape.add(total, penalty)?;
            }
        }
        Ok(total)
    }

    /// Predictions for a batch, `batch_size × n_tasks`: probabilities of
    /// the positive class for classifiers, values for regressors.
    ///
    /// # Errors
    ///
    /// Fails if the input does not have `n_features` columns.
    pub fn predict(&self, input: ModelInput<'_, T>) -> Result<Matrix<T>> {
        let mut tape = Tape::new();
        let forward = self.forward(&mut tape, input, Mode::Eval)?;
        let output = tape.value(forward.output);
        let n_tasks = self.config.n_tasks;
        Ok(match self.config.head {
            Head::Logistic => {
                Matrix::from_fn(output.nrows(), n_tasks, |i, t| sigmoid(output[(i, t)]))
            }
            Head::TwoClassSoftmax => Matrix::from_fn(output.nrows(), n_tasks, |i, t| {
                sigmoid(output[(i, 2 * t + 1)] - output[(i, 2 * t)])
            }),
            Head::Linear | Head::LinearHuber { .. } => output.clone(),
        })
    }
}

/// An inverted-dropout mask: each entry is `1 / (1 − rate)` with
/// probability `1 − rate` and 0 otherwise, from the stream of `key`.
///
/// Each entry compares 16 random bits against `rate · 2¹⁶`, so four entries
/// share one 64-bit draw and the rate is honoured to within 2⁻¹⁷; this is
/// what makes the mask of a 50 × 1000 batch cost microseconds rather than
/// tens of them.
pub fn dropout_mask<T: Float>(nrows: usize, ncols: usize, rate: f64, key: &[u64]) -> Matrix<T> {
    let mut stream_key = vec![DROPOUT_STREAM];
    stream_key.extend_from_slice(key);
    let mut rng = Rng::from_key(&stream_key);
    let keep = T::from_f64(1.0 / (1.0 - rate));
    let threshold = (rate * 65_536.0).round() as u32;
    let mut data = vec![T::ZERO; nrows * ncols];
    fill_keep_mask(&mut data, &mut rng, threshold, keep);
    Matrix::from_vec(nrows, ncols, data)
}
