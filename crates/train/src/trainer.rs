//! The training loop.
//!
//! One run is a [`TrainingState`] advanced batch by batch. The state holds
//! everything the future of the run depends on (weights, optimizer moments,
//! the position in the data, the early-stopping record), and every random
//! draw is keyed by `(seed, epoch, step)` rather than taken from a running
//! generator, so a state saved mid-epoch and loaded later continues exactly
//! as the uninterrupted run would have, bit for bit.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ferrochem_autodiff::{Grad, GradientLayout, Labels, Tape};
use ferrochem_data::{Batch, Dataset, EpochPlan, Features, LastBatch};
use ferrochem_kernels::reduce::sum_squares_by_rows;
use ferrochem_kernels::{Matrix, Parallelism};
use ferrochem_nn::{
    LearningRate, LossConfig, Mode, ModelInput, Multitask, Optimizer, OptimizerConfig,
    clip_grad_norm,
};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, FileError, FileKind};
use crate::metrics::{Metric, PrcArea, Scores, TaskKind, improves, score};

/// A batch loss this many times the first step's (or 1, if larger) counts
/// as divergence. A network starts near its worst loss, so even a bad
/// batch later in training stays far below; only a run whose weights are
/// running away gets here, and catching it while the numbers are still
/// finite keeps NaN out of the weights.
pub const EXPLOSION_FACTOR: f64 = 1e3;

/// What to do when a step diverges: its loss or a gradient is not finite,
/// or the loss exceeds [`EXPLOSION_FACTOR`] times the first step's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDivergence {
    /// Skip the step and end the run with an error that says what to change.
    Stop,
    /// Skip the step, put back the weights and optimizer state of the start
    /// of the epoch, halve the learning rate for the rest of the run, and
    /// rerun the epoch (at most [`MAX_HALVINGS`] times). Costs a copy of the
    /// weights and optimizer state per epoch, kept in checkpoints too.
    HalveLearningRate,
}

/// An epoch whose training loss is over this many times the lowest epoch
/// loss before it marks the run as unstable, and the log says so. Noise
/// from dropout and shuffling moves a healthy run's epoch loss by a few
/// percent; a run whose steps are too large for its data (as when a few
/// examples carry class weights in the hundreds) climbs steadily instead,
/// toward a model that predicts one class for everything, without ever
/// tripping [`EXPLOSION_FACTOR`].
pub const UNSTABLE_FACTOR: f64 = 2.0;

/// How many times `OnDivergence::HalveLearningRate` may halve before the
/// run is stopped anyway: 2⁻²⁰ is a millionth of the starting rate.
pub const MAX_HALVINGS: u32 = 20;

/// The L2 penalty of [`TrainConfig::default`], chosen with the default
/// classifier's architecture by cross-validation on Tox21's training and
/// validation rows.
pub const DEFAULT_L2: f64 = 3e-3;

/// The settings of a training run.
///
/// The defaults are those of a plain run of the library; `ferrochem
/// train`, tuned on Tox21 validation data, trains on batches of 100 at a
/// learning rate of 1.5e-3 and averages the weights after a third of the
/// epochs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Passes over the training data (default 30).
    pub epochs: usize,
    /// Rows per batch (default 50).
    pub batch_size: usize,
    /// What happens to the short last batch (default kept).
    pub last_batch: LastBatch,
    /// Seeds the shuffling and the dropout masks (default 0). Weight
    /// initialization takes its own seed, in the model config's `init`.
    pub seed: u64,
    /// Base rate, schedule and warm-up (default a constant 1e-3).
    pub learning_rate: LearningRate,
    /// The optimizer (default Adam).
    pub optimizer: OptimizerConfig,
    /// Clip the global gradient norm to this value (default off).
    pub clip_norm: Option<f64>,
    /// Loss reduction and weight penalties (default: masked mean, L2
    /// [`DEFAULT_L2`], no L1).
    pub loss: LossConfig,
    /// Whether the tasks are classes or values (default classification).
    pub task_kind: TaskKind,
    /// The validation score that selects the best epoch (default ROC-AUC).
    pub metric: Metric,
    /// How PRC-AUC is computed (default average precision).
    pub prc_area: PrcArea,
    /// Stop after this many epochs without improvement (default off: run
    /// every epoch, then keep the best).
    pub patience: Option<usize>,
    /// The smallest change of the metric that counts as an improvement
    /// (default 0).
    pub min_delta: f64,
    /// What a non-finite loss or gradient does (default stop).
    pub on_divergence: OnDivergence,
    /// Also write a checkpoint every this many steps, besides the end of
    /// every epoch (default off).
    pub checkpoint_every: Option<u64>,
    /// Stochastic weight averaging: after this many epochs, start keeping
    /// the running mean of the weights at the end of every later epoch,
    /// and make that mean the trained model instead of the best epoch's
    /// weights (default off). One epoch's weights sit on a noisy plateau;
    /// their average generalizes better, and the choice no longer rests on
    /// a small validation set.
    pub swa_start: Option<usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 30,
            batch_size: 50,
            last_batch: LastBatch::Keep,
            seed: 0,
            learning_rate: LearningRate::constant(1e-3),
            optimizer: OptimizerConfig::adam(),
            clip_norm: None,
            loss: LossConfig { l2: DEFAULT_L2, ..LossConfig::default() },
            task_kind: TaskKind::Classification,
            metric: Metric::RocAuc,
            prc_area: PrcArea::AveragePrecision,
            patience: None,
            min_delta: 0.0,
            on_divergence: OnDivergence::Stop,
            checkpoint_every: None,
            swa_start: None,
        }
    }
}

/// The record of one finished epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 0-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Seconds spent in training steps alone.
    pub train_seconds: f64,
    /// Seconds for the whole epoch, validation included; the checkpoint
    /// written after it is not.
    pub seconds: f64,
    /// Learning rate of the epoch's last step.
    pub learning_rate: f64,
    /// Validation scores, when there is a validation set.
    pub valid: Option<Scores>,
}

/// The best epoch so far, and its weights while they may become the
/// trained model: once weight averaging has begun, the average is the
/// model, and a copy of the best epoch would only cost a model's memory and
/// checkpoint bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Best {
    epoch: usize,
    value: f64,
    model: Option<Multitask<f32>>,
}

/// The running mean of the weights at the ends of epochs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Average {
    /// Epochs in the mean.
    epochs: usize,
    model: Multitask<f32>,
}

impl Average {
    /// Adds `model`'s weights to the mean: `mean += (w − mean) / n`, the
    /// update that keeps a mean of `n` without a sum that could grow.
    fn include(&mut self, model: &Multitask<f32>) {
        self.epochs += 1;
        let share = 1.0 / self.epochs as f32;
        for (mean, weights) in self.model.parameters_mut().into_iter().zip(model.parameters()) {
            for (m, &w) in mean.as_mut_slice().iter_mut().zip(weights.as_slice()) {
                *m += (w - *m) * share;
            }
        }
    }
}

/// Everything a run's future depends on; saved as the checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingState {
    config: TrainConfig,
    model: Multitask<f32>,
    optimizer: Optimizer<f32>,
    /// The epoch in progress (or, when `finished`, the number run).
    epoch: usize,
    /// Batches of `epoch` already taken.
    batch_cursor: usize,
    /// Steps taken in the whole run, skipped ones included.
    global_step: u64,
    /// Times the learning rate was halved after a divergence.
    halvings: u32,
    /// Loss sum, batch count and step seconds of the epoch in progress.
    epoch_loss_sum: f64,
    epoch_batches: usize,
    epoch_train_seconds: f64,
    best: Option<Best>,
    epochs_since_best: usize,
    /// The weight average, once `swa_start` epochs are done.
    average: Option<Average>,
    history: Vec<EpochRecord>,
    finished: bool,
    /// The loss of the run's first step, against which an exploding loss is
    /// judged.
    reference_loss: Option<f64>,
    /// The state at the start of the epoch in progress, kept only under
    /// `OnDivergence::HalveLearningRate` so that a divergent epoch can be
    /// rerun from clean weights.
    rewind: Option<Box<Rewind>>,
}

/// What an epoch is rerun from after a divergence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Rewind {
    model: Multitask<f32>,
    optimizer: Optimizer<f32>,
    global_step: u64,
}

/// How a step ended.
enum StepResult {
    /// The step was applied; the batch loss.
    Trained(f64),
    /// The step diverged and the epoch was rewound to its start with a
    /// halved learning rate.
    Rewound,
}

impl TrainingState {
    /// A fresh run of `model` under `config`.
    pub fn new(model: Multitask<f32>, config: TrainConfig) -> Self {
        let optimizer = Optimizer::new(config.optimizer, &model.parameters());
        TrainingState {
            config,
            model,
            optimizer,
            epoch: 0,
            batch_cursor: 0,
            global_step: 0,
            halvings: 0,
            epoch_loss_sum: 0.0,
            epoch_batches: 0,
            epoch_train_seconds: 0.0,
            best: None,
            epochs_since_best: 0,
            average: None,
            history: Vec::new(),
            finished: false,
            reference_loss: None,
            rewind: None,
        }
    }

    /// The run's settings.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The current weights (after training: the best epoch's, or the
    /// average of the last epochs' with weight averaging).
    pub fn model(&self) -> &Multitask<f32> {
        &self.model
    }

    /// Takes the model out of the state.
    pub fn into_model(self) -> Multitask<f32> {
        self.model
    }

    /// The finished epochs.
    pub fn history(&self) -> &[EpochRecord] {
        &self.history
    }

    /// The epoch whose weights the model holds after training: the best by
    /// the validation metric, or the last without a validation set or with
    /// weight averaging (the last epoch of the average).
    pub fn best_epoch(&self) -> Option<usize> {
        let last = self.history.last().map(|r| r.epoch);
        if self.average.is_some() {
            return last;
        }
        self.best.as_ref().map(|best| best.epoch).or(last)
    }

    /// How many epochs' weights the averaged model holds (0 without
    /// weight averaging, or before it starts).
    pub fn averaged_epochs(&self) -> usize {
        self.average.as_ref().map_or(0, |average| average.epochs)
    }

    /// Whether the run is over.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Steps taken so far.
    pub fn global_step(&self) -> u64 {
        self.global_step
    }

    /// The epoch in progress.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Whether no step of the epoch in progress has been taken: the state
    /// at an epoch's end, as the epoch-end checkpoint holds it.
    pub fn is_between_epochs(&self) -> bool {
        self.batch_cursor == 0
    }

    /// Writes the state to `path` atomically.
    ///
    /// # Errors
    ///
    /// Fails if the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), FileError> {
        checkpoint::save(FileKind::Checkpoint, self, path)
    }

    /// Reads a state written by [`TrainingState::save`].
    ///
    /// # Errors
    ///
    /// Fails, naming the file, if it cannot be read or is truncated,
    /// corrupted or of another format.
    pub fn load(path: &Path) -> Result<Self, FileError> {
        checkpoint::load(FileKind::Checkpoint, path)
    }

    /// The learning rate of the next step.
    fn learning_rate(&self) -> f64 {
        self.learning_rate_at(self.global_step)
    }

    /// The learning rate of the step after `steps_taken` steps, halvings
    /// included.
    fn learning_rate_at(&self, steps_taken: u64) -> f64 {
        self.config.learning_rate.at(steps_taken) * 0.5f64.powi(self.halvings as i32)
    }
}

/// A step that diverged.
#[derive(Clone, Debug, PartialEq)]
pub struct Divergence {
    /// 0-based epoch.
    pub epoch: usize,
    /// 1-based step of the run.
    pub step: u64,
    /// What went wrong, such as "the loss is not finite" or "the gradient
    /// of hidden layer 1's weight is not finite".
    pub culprit: String,
    /// The learning rate of that step.
    pub learning_rate: f64,
}

/// Why training stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A step diverged; it was not applied, so the weights are those before
    /// it.
    #[error(
        "training diverged at step {} (epoch {}): {} at learning rate {:e}; \
         the step was skipped and the weights are unharmed. Lower the learning rate by a \
         factor of 10 (to {:e}), or clip gradients (a clip norm of 1.0 is a safe start)",
        .0.step, .0.epoch + 1, .0.culprit, .0.learning_rate, .0.learning_rate / 10.0
    )]
    Diverged(Divergence),
    /// The data does not fit the model.
    #[error("the data has {found} {what} but the model expects {expected}")]
    DataMismatch {
        /// `features` or `tasks`.
        what: &'static str,
        /// The model's width.
        expected: usize,
        /// The data's width.
        found: usize,
    },
    /// A checkpoint could not be written.
    #[error("cannot write the checkpoint")]
    Checkpoint(#[from] FileError),
    /// The tape refused an operation (a bug: shapes are checked up front).
    #[error("internal error in the forward or backward pass")]
    Autodiff(#[from] ferrochem_autodiff::Error),
}

/// What a progress callback tells the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Continue,
    /// Save a checkpoint (when checkpoints are on) and return now; the run
    /// can be resumed from it.
    Stop,
}

/// What the loop reports to its progress callback.
#[derive(Clone, Copy, Debug)]
pub enum Progress<'a> {
    /// A batch was trained: `batch` of `n_batches` in `epoch`.
    Step {
        /// 0-based epoch.
        epoch: usize,
        /// 1-based batch within the epoch.
        batch: usize,
        /// Batches in the epoch.
        n_batches: usize,
        /// The batch's loss.
        loss: f64,
    },
    /// An epoch ended.
    Epoch(&'a EpochRecord),
}

/// Runs training.
#[derive(Clone, Debug, Default)]
pub struct Trainer {
    checkpoint_path: Option<PathBuf>,
}

impl Trainer {
    /// A trainer that writes no checkpoints.
    pub fn new() -> Self {
        Trainer::default()
    }

    /// Writes checkpoints to `path` at the end of every epoch, every
    /// `checkpoint_every` steps, and when stopped by the callback.
    pub fn with_checkpoints(path: impl Into<PathBuf>) -> Self {
        Trainer { checkpoint_path: Some(path.into()) }
    }

    /// Trains `state` to the end (or until `progress` says stop) on `train`,
    /// validating on `valid` after every epoch. At the end the model holds
    /// the best epoch's weights, or their average over the last epochs
    /// under [`TrainConfig::swa_start`].
    ///
    /// The kernels hand their parallel work to the rayon pool. From a
    /// thread outside the pool every such call waits for a worker to wake
    /// and take it, which costs a batch-50 step more than a second thread
    /// gains; run the loop on a worker (`ThreadPool::install`, or
    /// `rayon::scope` for the global pool), as `ferrochem train` does.
    ///
    /// Under an L2 penalty the weights that no example reaches shrink until
    /// their squares are subnormal numbers, which some processors compute
    /// a hundred times slower; `ferrochem train` starts every worker with
    /// [`Subnormals::FlushToZero`](ferrochem_kernels::subnormal::Subnormals)
    /// and its epochs stay as fast at the end as at the start.
    ///
    /// # Errors
    ///
    /// [`TrainError::Diverged`] when a step is not finite and the policy is
    /// to stop; [`TrainError::DataMismatch`] when the data does not fit the
    /// model; [`TrainError::Checkpoint`] when a checkpoint cannot be
    /// written. After an error `state` holds the last good weights.
    pub fn run(
        &self,
        state: &mut TrainingState,
        train: &dyn Dataset,
        valid: Option<&dyn Dataset>,
        progress: &mut dyn FnMut(Progress<'_>) -> Control,
    ) -> Result<(), TrainError> {
        let path = self.checkpoint_path.as_deref();
        Self::run_saving(state, train, valid, progress, &mut |state| match path {
            Some(path) => {
                state.save(path)?;
                log::trace!(
                    "checkpoint written to {} at step {}",
                    path.display(),
                    state.global_step
                );
                Ok(())
            }
            None => Ok(()),
        })
    }

    /// Like [`Trainer::run`], but each checkpoint is handed to `save`
    /// instead of being written to a file, so that a caller can keep it
    /// with state of its own (an ensemble keeps its finished members).
    ///
    /// # Errors
    ///
    /// As [`Trainer::run`]; an error from `save` ends the run.
    pub fn run_saving(
        state: &mut TrainingState,
        train: &dyn Dataset,
        valid: Option<&dyn Dataset>,
        progress: &mut dyn FnMut(Progress<'_>) -> Control,
        save: &mut dyn FnMut(&TrainingState) -> Result<(), FileError>,
    ) -> Result<(), TrainError> {
        for data in std::iter::once(train).chain(valid) {
            check_fits(state.model(), data)?;
        }
        // `Σ W²` over the weight matrices as they stand, when the last
        // step's update pass measured it; `None` makes the next step measure
        // afresh, as after a resume. Either way the same sum, bit for bit.
        let mut weight_squares: Option<f64> = None;
        while !state.finished {
            let epoch_started = Instant::now();
            let epoch = state.epoch;
            let config = state.config.clone();
            let plan = EpochPlan::new(
                train.n_rows(),
                config.batch_size,
                config.last_batch,
                config.seed,
                epoch as u64,
            );
            let n_batches = plan.n_batches();
            while state.batch_cursor < n_batches {
                if state.batch_cursor == 0
                    && config.on_divergence == OnDivergence::HalveLearningRate
                {
                    state.rewind = Some(Box::new(Rewind {
                        model: state.model.clone(),
                        optimizer: state.optimizer.clone(),
                        global_step: state.global_step,
                    }));
                }
                let batch = plan.batch(train, state.batch_cursor);
                let started = Instant::now();
                let result = train_step(state, &batch, &mut weight_squares)?;
                state.epoch_train_seconds += started.elapsed().as_secs_f64();
                let StepResult::Trained(loss) = result else { continue };
                state.batch_cursor += 1;
                let control =
                    progress(Progress::Step { epoch, batch: state.batch_cursor, n_batches, loss });
                let due = config
                    .checkpoint_every
                    .is_some_and(|every| every > 0 && state.global_step.is_multiple_of(every));
                if due || control == Control::Stop {
                    save(state)?;
                }
                if control == Control::Stop {
                    return Ok(());
                }
            }
            let record = finish_epoch(state, valid, epoch_started);
            save(state)?;
            let control = progress(Progress::Epoch(&record));
            if control == Control::Stop {
                return Ok(());
            }
        }
        Ok(())
    }
}

fn check_fits(model: &Multitask<f32>, data: &dyn Dataset) -> Result<(), TrainError> {
    let config = model.config();
    if data.n_features() != config.n_features {
        return Err(TrainError::DataMismatch {
            what: "features",
            expected: config.n_features,
            found: data.n_features(),
        });
    }
    if data.n_tasks() != config.n_tasks {
        return Err(TrainError::DataMismatch {
            what: "tasks",
            expected: config.n_tasks,
            found: data.n_tasks(),
        });
    }
    Ok(())
}

/// Names parameter `idx` of [`Multitask::parameters`] for messages.
fn parameter_name(idx: usize, n_layers: usize) -> String {
    let layer = idx / 2;
    let what = if idx.is_multiple_of(2) { "weight" } else { "bias" };
    if layer + 1 == n_layers {
        format!("the gradient of the output layer's {what} is not finite")
    } else {
        format!("the gradient of hidden layer {}'s {what} is not finite", layer + 1)
    }
}

/// One optimizer step on `batch`. A divergent step leaves the weights
/// alone, then either fails or rewinds the epoch, by the configured policy.
///
/// `weight_squares` carries the L2 penalty's `Σ W²` from the update pass of
/// one step to the loss of the next; a step finds it `None` when the
/// weights were not just updated (the first step of a run or a resume,
/// after a rewind) and measures it then.
fn train_step(
    state: &mut TrainingState,
    batch: &Batch,
    weight_squares: &mut Option<f64>,
) -> Result<StepResult, TrainError> {
    let learning_rate = state.learning_rate();
    state.global_step += 1;
    let key = [state.config.seed, state.epoch as u64, state.global_step];
    let (loss, mut grads) = {
        let model = &state.model;
        let mut tape = Tape::new();
        let forward =
            model.forward(&mut tape, model_input(&batch.features), Mode::Train { key })?;
        let labels = Labels { targets: &batch.targets, weights: &batch.weights, mask: &batch.mask };
        // The L2 penalty is applied by the optimizer (see below), so the
        // tape differentiates the rest of the loss only.
        let tape_loss = LossConfig { l2: 0.0, ..state.config.loss };
        let loss = model.loss(&mut tape, &forward, labels, &tape_loss)?;
        // The first layer's weight gradient keeps only the rows of bits in
        // the batch; the optimizer treats the rest as zero.
        let mut grads = tape.backward_with(loss, GradientLayout::RowSparseWherePossible)?;
        let grads: Vec<Grad<f32>> = forward
            .params
            .iter()
            .zip(model.parameters())
            .map(|(&var, param)| {
                grads
                    .take_grad(var)
                    .unwrap_or_else(|| Grad::Dense(Matrix::zeros(param.nrows(), param.ncols())))
            })
            .collect();
        (f64::from(tape.value(loss)[(0, 0)]), grads)
    };
    // `(l2 / 2) · Σ W²` over the weight matrices (every other parameter,
    // biases excluded): its value joins the reported loss here, its
    // gradient `l2 · W` joins the update inside the optimizer's pass.
    let l2 = state.config.loss.l2;
    let penalty_rates: Vec<f64> =
        (0..grads.len()).map(|idx| if idx % 2 == 0 { l2 } else { 0.0 }).collect();
    let loss = if l2 > 0.0 {
        let squares = weight_squares.take().unwrap_or_else(|| {
            state
                .model
                .parameters()
                .iter()
                .step_by(2)
                .map(|w| sum_squares_by_rows(w.as_slice(), w.ncols(), Parallelism::Auto))
                .sum()
        });
        loss + 0.5 * l2 * squares
    } else {
        loss
    };

    let n_layers = state.model.layers().len();
    let reference = *state.reference_loss.get_or_insert(if loss.is_finite() { loss } else { 1.0 });
    let explosion = EXPLOSION_FACTOR * reference.max(1.0);
    let culprit = if !loss.is_finite() {
        Some("the loss is not finite".to_owned())
    } else if loss > explosion {
        Some(format!(
            "the loss {loss:.3e} is over {EXPLOSION_FACTOR:e} times the first step's {reference:.3e}"
        ))
    } else {
        // The first layer's row-sparse gradient, the largest by far, was
        // tested row by row as it was summed; reading its rows again here
        // cost 3 to 6 % of a two-thread epoch.
        grads.iter().position(|g| !g.all_finite()).map(|idx| parameter_name(idx, n_layers))
    };
    if let Some(culprit) = culprit {
        let divergence =
            Divergence { epoch: state.epoch, step: state.global_step, culprit, learning_rate };
        let rewind = match state.config.on_divergence {
            OnDivergence::HalveLearningRate if state.halvings < MAX_HALVINGS => state.rewind.take(),
            _ => None,
        };
        let Some(rewind) = rewind else { return Err(TrainError::Diverged(divergence)) };
        state.halvings += 1;
        state.model = rewind.model;
        state.optimizer = rewind.optimizer;
        state.global_step = rewind.global_step;
        state.batch_cursor = 0;
        state.epoch_loss_sum = 0.0;
        state.epoch_batches = 0;
        log::warn!(
            "step {} (epoch {}): {}; rerunning the epoch from its start with the learning rate halved to {:e}",
            divergence.step,
            divergence.epoch + 1,
            divergence.culprit,
            state.learning_rate()
        );
        return Ok(StepResult::Rewound);
    }

    if let Some(max_norm) = state.config.clip_norm {
        clip_grad_norm(&mut grads, max_norm);
    }
    let measured = state.optimizer.step_grads_with_l2(
        &mut state.model.parameters_mut(),
        &grads,
        learning_rate,
        &penalty_rates,
    );
    if l2 > 0.0 {
        *weight_squares = Some(measured.into_iter().flatten().sum());
    }
    state.epoch_loss_sum += loss;
    state.epoch_batches += 1;
    Ok(StepResult::Trained(loss))
}

/// Closes the epoch in progress: validation, the early-stopping record, the
/// history line, and the move to the next epoch or the end.
fn finish_epoch(
    state: &mut TrainingState,
    valid: Option<&dyn Dataset>,
    started: Instant,
) -> EpochRecord {
    let config = state.config.clone();
    let scores = valid.map(|data| {
        let predictions = predict_dataset(&state.model, data, EVAL_BATCH)
            .expect("run() checked that the validation data fits the model");
        let (targets, mask) = labels_of(data);
        score(&predictions, &targets, &mask, config.task_kind, config.prc_area)
    });
    let value = scores.as_ref().and_then(|s| s.mean(config.metric));
    if let Some(value) = value {
        let better = state
            .best
            .as_ref()
            .is_none_or(|best| improves(config.metric, value, best.value, config.min_delta));
        if better {
            let model = state.average.is_none().then(|| state.model.clone());
            state.best = Some(Best { epoch: state.epoch, value, model });
            state.epochs_since_best = 0;
        } else {
            state.epochs_since_best += 1;
        }
    }

    let record = EpochRecord {
        epoch: state.epoch,
        train_loss: state.epoch_loss_sum / state.epoch_batches.max(1) as f64,
        train_seconds: state.epoch_train_seconds,
        seconds: started.elapsed().as_secs_f64(),
        learning_rate: state.learning_rate_at(state.global_step.saturating_sub(1)),
        valid: scores,
    };
    match value {
        Some(value) => log::info!(
            "epoch {}/{}: loss {:.4}, valid {} {:.4}, lr {:.2e}, {:.2} s",
            record.epoch + 1,
            config.epochs,
            record.train_loss,
            config.metric.name(),
            value,
            record.learning_rate,
            record.seconds
        ),
        None => log::info!(
            "epoch {}/{}: loss {:.4}, lr {:.2e}, {:.2} s",
            record.epoch + 1,
            config.epochs,
            record.train_loss,
            record.learning_rate,
            record.seconds
        ),
    }
    state.history.push(record.clone());
    let losses: Vec<f64> = state.history.iter().map(|r| r.train_loss).collect();
    if first_unstable_epoch(&losses) == Some(losses.len() - 1) {
        let (lowest_epoch, lowest) = lowest_before(&losses, losses.len() - 1);
        log::warn!(
            "epoch {}: the training loss {:.4} is over {UNSTABLE_FACTOR} times its lowest, {:.4} \
             in epoch {}: the steps are too large for this data, which very large class \
             weights on a few examples can cause; a lower learning rate or a clipped gradient \
             norm usually cures it",
            record.epoch + 1,
            record.train_loss,
            lowest,
            lowest_epoch + 1
        );
    }
    if config.swa_start.is_some_and(|after| state.epoch >= after) {
        let average =
            state.average.get_or_insert_with(|| Average { epochs: 0, model: state.model.clone() });
        average.include(&state.model);
        if let Some(best) = &mut state.best {
            best.model = None;
        }
    }

    // The start of a finished epoch is nothing to rerun, and the next epoch
    // takes its own copy before its first step; dropping this one keeps the
    // epoch-end checkpoint from writing a second set of weights and moments.
    state.rewind = None;
    state.epoch += 1;
    state.batch_cursor = 0;
    state.epoch_loss_sum = 0.0;
    state.epoch_batches = 0;
    state.epoch_train_seconds = 0.0;
    let out_of_patience =
        config.patience.is_some_and(|patience| state.epochs_since_best >= patience);
    if state.epoch >= config.epochs || out_of_patience {
        if out_of_patience {
            log::info!("no improvement for {} epochs; stopping early", state.epochs_since_best);
        }
        state.finished = true;
        if let Some(average) = &state.average {
            match average.epochs {
                1 => log::info!("the model is the last epoch's weights (one epoch averaged)"),
                n => log::info!("the model is the average of the last {n} epochs' weights"),
            }
            state.model = average.model.clone();
        } else if let Some(model) = state.best.as_ref().and_then(|best| best.model.as_ref()) {
            state.model = model.clone();
        }
    }
    record
}

/// The first epoch whose loss is over [`UNSTABLE_FACTOR`] times the lowest
/// loss of the epochs before it, if any.
fn first_unstable_epoch(losses: &[f64]) -> Option<usize> {
    let mut lowest = f64::INFINITY;
    for (epoch, &loss) in losses.iter().enumerate() {
        if lowest > 0.0 && loss > UNSTABLE_FACTOR * lowest {
            return Some(epoch);
        }
        lowest = lowest.min(loss);
    }
    None
}

/// The epoch with the lowest loss among the first `end`, and that loss.
fn lowest_before(losses: &[f64], end: usize) -> (usize, f64) {
    losses[..end].iter().copied().enumerate().fold((0, f64::INFINITY), |best, (epoch, loss)| {
        if loss < best.1 { (epoch, loss) } else { best }
    })
}

/// Rows per batch when predicting; only memory depends on it.
const EVAL_BATCH: usize = 1024;

/// Predictions for every row of `data`, in row order, computed
/// `batch_size` rows at a time.
///
/// # Errors
///
/// [`TrainError::DataMismatch`] if the data does not fit the model.
pub fn predict_dataset(
    model: &Multitask<f32>,
    data: &dyn Dataset,
    batch_size: usize,
) -> Result<Matrix<f32>, TrainError> {
    check_fits(model, data)?;
    let n_tasks = model.config().n_tasks;
    let mut values = Vec::with_capacity(data.n_rows() * n_tasks);
    let rows: Vec<usize> = (0..data.n_rows()).collect();
    for chunk in rows.chunks(batch_size.max(1)) {
        let batch = data.batch(chunk);
        let predictions = model.predict(model_input(&batch.features))?;
        values.extend_from_slice(predictions.as_slice());
    }
    Ok(Matrix::from_vec(data.n_rows(), n_tasks, values))
}

/// Targets and mask of every row of `data`.
pub fn labels_of(data: &dyn Dataset) -> (Matrix<f32>, Matrix<f32>) {
    let rows: Vec<usize> = (0..data.n_rows()).collect();
    let batch = data.batch(&rows);
    (batch.targets, batch.mask)
}

fn model_input(features: &Features) -> ModelInput<'_, f32> {
    match features {
        Features::Sparse(x) => ModelInput::Sparse(x),
        Features::Dense(x) => ModelInput::Dense(x),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loss_that_climbs_far_above_its_lowest_marks_the_run_once() {
        // The default classifier on MUV, whose rarest positives weigh ~500.
        assert_eq!(first_unstable_epoch(&[5.59, 10.45, 19.18, 25.62, 39.52]), Some(2));
        // Healthy runs: a falling loss, and the noise near the end of one.
        assert_eq!(first_unstable_epoch(&[0.92, 0.71, 0.63, 0.60, 0.61, 0.59]), None);
        assert_eq!(first_unstable_epoch(&[1.062, 1.039, 1.038, 1.024, 1.009, 1.024]), None);
        // Measured from the lowest epoch, not the first.
        assert_eq!(first_unstable_epoch(&[3.0, 1.0, 1.5, 2.5]), Some(3));
        assert_eq!(first_unstable_epoch(&[]), None);
        // A loss of zero leaves nothing to compare with.
        assert_eq!(first_unstable_epoch(&[0.0, 1.0]), None);
        assert_eq!(lowest_before(&[3.0, 1.0, 1.5, 2.5], 3), (1, 1.0));
    }
}
