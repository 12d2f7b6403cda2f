//! `ferrochem train`: from a labelled CSV of SMILES to a trained model and
//! its reports.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::ValueEnum;
use ferrochem_chem::{EcfpOptions, ReadOptions};
use ferrochem_data::cache::{CacheOutcome, featurize_cached};
use ferrochem_data::featurize::{Encoding, Featurizer};
use ferrochem_data::split::{
    Fractions, Split, index_split, k_fold, random_split, read_split_file, scaffold_split,
    split_file_text, split_from_assignments, stratified_split,
};
use ferrochem_data::weights::{TargetScaling, balanced_weight_matrix, balancing_weights};
use ferrochem_data::{
    AbsentTasks, DataErrorKind, Dataset, InMemoryDataset, Matrix, Table, TableOptions, read_table,
    select_matrix_rows,
};
use ferrochem_nn::{
    LearningRate, LossConfig, LossReduction, Multitask, MultitaskConfig, OptimizerConfig, Schedule,
};
use ferrochem_train::checkpoint::FileKind;
use ferrochem_train::metrics::{Metric, PrcArea, Scores, TaskKind, score};
use ferrochem_train::{
    Control, DEFAULT_L2, EpochRecord, Progress, TrainConfig, Trainer, TrainingState, labels_of,
};

use crate::input_of;
use crate::model_file::{MODEL_FORMAT_VERSION, SavedModel, featurization_kind, input_features};
use crate::plots;
use crate::report::{
    cv_predictions_csv, fold_summary, metrics_jsonl, print_fold_table, print_summary_table,
    scores_json, test_predictions_csv, write_file,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Options of `ferrochem train`; every default is the one a plain
/// `ferrochem train --data X.csv --out DIR` uses.
///
/// The model defaults (ECFP4 counts read through thermometer columns, two
/// hidden layers of 1000, dropout 0.5, L2 3e-3, batches of 100 at a
/// learning rate of 1.5e-3, the weights averaged over the last two thirds
/// of the epochs, an ensemble of three) were chosen on Tox21 without its
/// test rows: on the validation part of DeepChem's random split averaged
/// over seeds 0, 1 and 2, and by 5-fold cross-validation over its training
/// and validation rows.
#[derive(Clone, Debug, clap::Args, Serialize)]
// So that `--l2 -1` reaches the check that explains the range, instead of
// being taken for an unknown flag `-1`.
#[command(allow_negative_numbers = true)]
pub struct TrainArgs {
    /// Training CSV (plain or gzipped) with a SMILES column and label
    /// columns; `-` reads standard input.
    #[arg(long)]
    pub data: PathBuf,
    /// Validation CSV; with it and no --test, all of --data trains. Its
    /// label columns are found by the task names of --data, in any order.
    #[arg(long)]
    pub valid: Option<PathBuf>,
    /// Test CSV, scored once at the end; columns found as for --valid.
    #[arg(long)]
    pub test: Option<PathBuf>,
    /// Column holding the SMILES.
    #[arg(long, default_value = "smiles")]
    pub smiles_column: String,
    /// Label columns, comma-separated [default: every column with numbers].
    #[arg(long, value_delimiter = ',')]
    pub tasks: Option<Vec<String>>,
    /// Whether labels are classes or values.
    #[arg(long, value_enum, default_value_t = TaskType::Classification)]
    pub task_type: TaskType,
    /// How --data is divided when no --valid is given.
    #[arg(long, value_enum, default_value_t = SplitMethod::Random)]
    pub split: SplitMethod,
    /// Train, validation and test shares for --split.
    #[arg(long, default_value = "0.8,0.1,0.1")]
    pub split_fractions: String,
    /// A tab-separated file with columns `row` and `split`
    /// (train/valid/test/excluded) that replaces --split.
    #[arg(long)]
    pub split_file: Option<PathBuf>,
    /// ECFP radius.
    #[arg(long, default_value_t = 2)]
    pub radius: u32,
    /// ECFP length.
    #[arg(long, default_value_t = 1024, value_parser = at_least::<u32, 1>)]
    pub bits: u32,
    /// Whether a member reads how many environments fold onto each bit
    /// (true) or only which bits are on (false), member by member: the
    /// list is repeated to the ensemble's size, so `--counts true,true,false`
    /// makes every third member a bit member. A member on counts reads each
    /// bit through three input columns: on, on more than once, and the
    /// count.
    #[arg(long, value_delimiter = ',', num_args = 0..=1, default_value = "true",
          default_missing_value = "true", value_name = "BOOL,..",
          value_parser = clap::value_parser!(bool))]
    pub counts: Vec<bool>,
    /// Cross-validate: train K times, each fold of a seeded K-way partition
    /// of --data being the test part once, with a tenth of the rest
    /// validating; one output folder per fold, DIR/fold-1 …, a summary
    /// with the mean and spread, and DIR/cv_predictions.csv with every
    /// row's prediction by the fold that tested it.
    #[arg(long, value_parser = at_least::<u64, 2>)]
    pub folds: Option<u64>,
    /// Seed of the split, the initialization, the shuffling and dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Passes over the training data.
    #[arg(long, default_value_t = 30, value_parser = at_least::<usize, 1>)]
    pub epochs: usize,
    /// Rows per batch [default: 100, or 50 for regression].
    #[arg(long, value_parser = at_least::<usize, 1>)]
    pub batch_size: Option<usize>,
    /// Step size of the optimizer [default: 1.5e-3, or 1e-3 for
    /// regression; when balancing weighs some class w > 50, as MUV's rare
    /// actives, 1.5e-3 × 50 / w].
    #[arg(long, value_parser = positive)]
    pub learning_rate: Option<f64>,
    /// The optimizer.
    #[arg(long, value_enum, default_value_t = OptimizerArg::Adam)]
    pub optimizer: OptimizerArg,
    /// How the learning rate changes over the run, in epochs: `constant`,
    /// `cosine` (half a cosine down to zero at the last epoch),
    /// `exponential:F` (times F each epoch) or `step:E:F` (times F every E
    /// epochs).
    #[arg(long, default_value = "constant")]
    pub schedule: String,
    /// Linear warm-up of the learning rate over this many steps.
    #[arg(long, default_value_t = 0)]
    pub warmup_steps: u64,
    /// Clip the global gradient norm to this value [default: off].
    #[arg(long, value_parser = positive)]
    pub clip_norm: Option<f64>,
    /// Hidden layer widths, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,1000",
          value_parser = at_least::<usize, 1>)]
    pub layers: Vec<usize>,
    /// Dropout rate of the hidden layers.
    #[arg(long, default_value_t = 0.5, value_parser = dropout_rate)]
    pub dropout: f64,
    /// L1 penalty on weights: l1 · Σ|W|.
    #[arg(long, default_value_t = 0.0, value_parser = non_negative)]
    pub l1: f64,
    /// L2 penalty on weights: (l2 / 2) · ΣW², added to the loss averaged
    /// over labelled entries.
    #[arg(long, default_value_t = DEFAULT_L2, value_parser = non_negative)]
    pub l2: f64,
    /// AdamW's decoupled weight decay: every step multiplies the weights by
    /// 1 − learning rate × this, apart from the moments (PyTorch's AdamW
    /// `weight_decay`); only with --optimizer adamw, on top of --l2
    /// [default: 0.01].
    #[arg(long, value_parser = non_negative)]
    pub weight_decay: Option<f64>,
    /// Per-label weights: `balanced` (classes weigh the same, fitted on
    /// the training rows), `none`, or `column:NAME`.
    #[arg(long, default_value = "balanced")]
    pub weights: String,
    /// Validation score that --patience watches and that picks the best
    /// epoch under --swa-start off [default: roc-auc, or rmse for
    /// regression].
    #[arg(long, value_enum)]
    pub metric: Option<MetricArg>,
    /// Stop after this many epochs without improvement [default: off].
    #[arg(long, value_parser = at_least::<usize, 1>)]
    pub patience: Option<usize>,
    /// Smallest change that counts as an improvement.
    #[arg(long, default_value_t = 0.0, value_parser = non_negative)]
    pub min_delta: f64,
    /// Stochastic weight averaging: after N epochs, average the weights at
    /// the end of every later epoch and keep that average as the model;
    /// `off` keeps the weights of the best validation epoch instead
    /// [default: a third of --epochs; off for regression and with --preset
    /// deepchem].
    #[arg(long, value_name = "N|off")]
    pub swa_start: Option<SwaStart>,
    /// Networks trained with different seeds whose predictions are
    /// averaged; `predict --uncertainty` reports their spread.
    #[arg(long, default_value_t = 3, value_parser = at_least::<u64, 1>)]
    pub ensemble_size: u64,
    /// Start from a published architecture: `deepchem` is DeepChem's
    /// MultitaskClassifier (weights N(0, 0.02), hidden bias 1, dropout
    /// before the activation, a two-class softmax per task, the loss
    /// averaged over every label slot, no weight averaging); widths,
    /// dropout, batch size, rates and penalties still come from their
    /// flags.
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// Worker threads [default: RAYON_NUM_THREADS, else all cores].
    #[arg(long, value_parser = at_least::<usize, 1>)]
    pub threads: Option<usize>,
    /// Also checkpoint every this many steps [default: at the end of an
    /// epoch when the last checkpoint is 10 s old, at the end of each
    /// member, and on Ctrl-C].
    #[arg(long, value_parser = at_least::<u64, 1>)]
    pub checkpoint_every: Option<u64>,
    /// Output folder: model.bin, checkpoint.bin, config.json,
    /// metrics.jsonl, summary.json, test_predictions.csv, split.tsv (the
    /// rows of each part, as --split-file reads them) and plots.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue from DIR/checkpoint.bin, made by a run with the same
    /// options.
    #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, default_value_t = false,
          default_missing_value = "true", value_name = "BOOL")]
    pub resume: bool,
    /// A JSON object of options, keys being the long flag names with
    /// underscores (`{"learning_rate": 3e-4, "layers": [2000]}`); flags on
    /// the command line override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Parses a whole number of at least `MIN`, with a message that says so
/// (clap's own ranges print the type's largest value as the bound).
pub(crate) fn at_least<T, const MIN: u8>(text: &str) -> Result<T, String>
where
    T: std::str::FromStr + From<u8> + PartialOrd,
    T::Err: std::fmt::Display,
{
    let value: T = text.parse().map_err(|err| format!("{err}"))?;
    if value >= T::from(MIN) { Ok(value) } else { Err(format!("must be at least {MIN}")) }
}

fn finite(text: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|err| format!("{err}"))?;
    if value.is_finite() { Ok(value) } else { Err("must be a finite number".to_owned()) }
}

fn positive(text: &str) -> Result<f64, String> {
    let value = finite(text)?;
    if value > 0.0 { Ok(value) } else { Err("must be greater than 0".to_owned()) }
}

fn non_negative(text: &str) -> Result<f64, String> {
    let value = finite(text)?;
    if value >= 0.0 { Ok(value) } else { Err("must not be negative".to_owned()) }
}

/// A dropout rate: 1 would zero every unit, and the network could not learn.
fn dropout_rate(text: &str) -> Result<f64, String> {
    let value = finite(text)?;
    if (0.0..1.0).contains(&value) {
        Ok(value)
    } else {
        Err("must be at least 0 and below 1".to_owned())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskType {
    Classification,
    Regression,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitMethod {
    Random,
    Scaffold,
    Index,
    Stratified,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerArg {
    Adam,
    Adamw,
    Sgd,
}

/// When weight averaging starts, as `--swa-start` gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwaStart {
    /// No averaging.
    Off,
    /// Average every epoch after the first N.
    After(usize),
}

impl std::str::FromStr for SwaStart {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == "off" {
            return Ok(SwaStart::Off);
        }
        text.parse()
            .map(SwaStart::After)
            .map_err(|_| format!("'{text}' is neither a number of epochs nor 'off'"))
    }
}

impl Serialize for SwaStart {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            SwaStart::Off => serializer.serialize_str("off"),
            SwaStart::After(epochs) => serializer.serialize_u64(epochs as u64),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    Deepchem,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MetricArg {
    RocAuc,
    PrcAuc,
    Rmse,
}

/// A featurized input file.
struct Featurized {
    table: Table,
    /// Features of each kept row of `table`.
    rows: Vec<Vec<u32>>,
    rejected: Vec<Value>,
}

/// The featurizer `args` ask for.
fn featurizer_of(args: &TrainArgs) -> Featurizer {
    Featurizer {
        ecfp: EcfpOptions { radius: args.radius, n_bits: args.bits },
        read: ReadOptions::default(),
        fingerprint: featurization_kind(&member_encodings(args)),
    }
}

/// How every member reads the fingerprint, in words (`bits`, `counts
/// with 2 thermometer levels`), each member's in turn for a mix.
fn encoding_names(encodings: &[Encoding]) -> String {
    let name = |encoding: &Encoding| match *encoding {
        Encoding::Bits => "bits".to_owned(),
        Encoding::Counts => "counts".to_owned(),
        Encoding::Thermometer { levels } => format!("counts with {levels} thermometer levels"),
    };
    if encodings.iter().all(|e| *e == encodings[0]) {
        name(&encodings[0])
    } else {
        encodings.iter().map(name).collect::<Vec<_>>().join(", ")
    }
}

/// The parts in `encoding` among `parts`, which hold every encoding of the
/// ensemble.
fn parts_in<'p, 'f>(parts: &'p [Parts<'f>], encoding: Encoding) -> &'p Parts<'f> {
    parts.iter().find(|p| p.encoding == encoding).expect("parts are built for every member")
}

/// How a member on counts reads them: a column for the first occurrence
/// of each bit, one for the second, then the count (see
/// [`Encoding::Thermometer`]). By 5-fold cross-validation over Tox21's
/// training and validation rows, one network at L2 3e-3 scores a mean
/// ROC-AUC of 0.831 on plain counts, 0.837 with one level, 0.838 with two
/// and 0.837 with three; on Delaney's solubility one network's RMSE goes
/// from 0.88 (plain counts at L2 5e-3) to 0.86 (two levels at 3e-3).
pub const COUNT_ENCODING: Encoding = Encoding::Thermometer { levels: 2 };

/// How each ensemble member reads the fingerprint: `--counts` repeated to
/// the ensemble's size, a member on counts in [`COUNT_ENCODING`].
fn member_encodings(args: &TrainArgs) -> Vec<Encoding> {
    (0..args.ensemble_size as usize)
        .map(|member| match args.counts[member % args.counts.len()] {
            true => COUNT_ENCODING,
            false => Encoding::Bits,
        })
        .collect()
}

/// A bar styled like the others of this program; indicatif draws nothing
/// when stderr is not a terminal, so logs and pipes stay clean.
pub fn progress_bar(prefix: &'static str, len: u64, unit: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{prefix:>11}} [{{bar:30}}] {{pos}}/{{len}} {unit}, {{elapsed}} {{msg}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(prefix);
    bar
}

/// Warns about the first few rows `read_table` skipped, and how many in all.
pub(crate) fn warn_skipped(table: &Table) {
    for skipped in table.skipped.iter().take(5) {
        log::warn!("{}:{}: row skipped: {}", table.source_name, skipped.line, skipped.problem);
    }
    if table.skipped.len() > 5 {
        log::warn!("{}: {} rows skipped in all", table.source_name, table.skipped.len());
    }
}

/// Reads and featurizes `path` (`-` for standard input), with `tasks` as
/// its label columns (every numeric column when `None`).
fn featurize(
    path: &Path,
    args: &TrainArgs,
    tasks: Option<Vec<String>>,
) -> anyhow::Result<Featurized> {
    let input = input_of(path);
    let options = TableOptions {
        smiles_column: args.smiles_column.clone(),
        tasks,
        absent_tasks: AbsentTasks::Error,
        weights_column: weights_column(&args.weights),
        binary_labels: args.task_type == TaskType::Classification,
    };
    let table = read_table(&input, &options).map_err(|err| match err.kind() {
        DataErrorKind::NotClasses { .. } => {
            anyhow::anyhow!("{err}; train on values with --task-type regression")
        }
        _ => err.into(),
    })?;
    warn_skipped(&table);
    let cache_dir = std::env::var_os("FERROCHEM_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/ferrochem")));
    let bar = progress_bar("featurizing", table.n_rows() as u64, "molecules");
    let (features, outcome) = featurize_cached(
        cache_dir.as_deref(),
        &table.content_sha256,
        &args.smiles_column,
        &table.smiles,
        &featurizer_of(args),
        &|| bar.inc(1),
    );
    bar.finish_and_clear();
    if outcome == CacheOutcome::Hit {
        log::info!("{}: features read from the cache", table.source_name);
    }
    let mut keep = Vec::new();
    let mut rows = Vec::new();
    let mut rejected = Vec::new();
    for (position, result) in features.into_iter().enumerate() {
        match result {
            Ok(b) => {
                keep.push(position);
                rows.push(b);
            }
            Err(reason) => {
                log::warn!(
                    "{}:{}: SMILES rejected: {reason}",
                    table.source_name,
                    table.lines[position]
                );
                rejected.push(json!({"file": table.source_name, "line": table.lines[position], "row": table.data_rows[position], "reason": reason}));
            }
        }
    }
    if keep.is_empty() {
        bail!("{}: no SMILES could be read", table.source_name);
    }
    Ok(Featurized { table: table.select(&keep), rows, rejected })
}

fn weights_column(weights: &str) -> Option<String> {
    weights.strip_prefix("column:").map(str::to_owned)
}

/// The rows `rows` of `f` as a data set with the given weights and targets.
fn dataset(
    f: &Featurized,
    (encoding, n_bits): (Encoding, u32),
    rows: &[usize],
    weights: &Matrix<f32>,
    targets: &Matrix<f32>,
) -> anyhow::Result<InMemoryDataset> {
    let selected: Vec<&[u32]> = rows.iter().map(|&r| f.rows[r].as_slice()).collect();
    Ok(InMemoryDataset::new(
        input_features(encoding, n_bits, &selected)?,
        select_matrix_rows(targets, rows),
        select_matrix_rows(weights, rows),
        select_matrix_rows(&f.table.mask, rows),
    ))
}

fn all_rows(f: &Featurized) -> Vec<usize> {
    (0..f.table.n_rows()).collect()
}

/// The parsed `--split-fractions`.
fn split_fractions(args: &TrainArgs) -> anyhow::Result<Fractions> {
    args.split_fractions.parse().map_err(|err| anyhow::anyhow!("--split-fractions: {err}"))
}

/// The split of the main file: a split file, or --split with its fractions;
/// with --valid, everything trains.
fn split_main(f: &Featurized, args: &TrainArgs, classification: bool) -> anyhow::Result<Split> {
    if args.valid.is_some() {
        return Ok(Split { train: all_rows(f), valid: Vec::new(), test: Vec::new() });
    }
    if let Some(path) = &args.split_file {
        let assignments = read_split_file(path)?;
        return Ok(split_from_assignments(&f.table.data_rows, &assignments, path)?);
    }
    let fractions = split_fractions(args)?;
    let n = f.table.n_rows();
    Ok(match args.split {
        SplitMethod::Random => random_split(n, fractions, args.seed),
        SplitMethod::Index => index_split(n, fractions),
        SplitMethod::Stratified => {
            stratified_split(&f.table.targets, &f.table.mask, fractions, args.seed, classification)
        }
        SplitMethod::Scaffold => {
            let keys: Vec<u64> = f
                .table
                .smiles
                .iter()
                .map(|s| {
                    ferrochem_chem::Molecule::from_smiles(s)
                        .map_or(0, |m| ferrochem_chem::murcko_scaffold(&m).key)
                })
                .collect();
            scaffold_split(&keys, fractions)
        }
    })
}

/// The `k` cross-validation splits of `n` rows: fold `i` tests on the
/// `i`-th part of a seeded partition, and a seeded tenth of the remaining
/// rows validates, so that the epoch chosen never saw the rows scored.
fn fold_splits(n: usize, k: usize, seed: u64) -> Vec<Split> {
    k_fold(n, k, seed)
        .into_iter()
        .enumerate()
        .map(|(fold, split)| {
            let rest = split.train;
            let inner = random_split(
                rest.len(),
                Fractions { train: 0.9, valid: 0.1, test: 0.0 },
                seed ^ (fold as u64 + 1),
            );
            Split {
                train: inner.train.iter().map(|&i| rest[i]).collect(),
                valid: inner.valid.iter().map(|&i| rest[i]).collect(),
                test: split.valid,
            }
        })
        .collect()
}

/// Per-label weights of `f` under the --weights choice; `balance` holds
/// the class weights fitted on the training rows.
fn weights_for(
    f: &Featurized,
    args: &TrainArgs,
    balance: Option<&[ferrochem_data::weights::ClassBalance]>,
) -> anyhow::Result<Matrix<f32>> {
    let table = &f.table;
    Ok(match args.weights.as_str() {
        "balanced" => match balance {
            Some(balance) => balanced_weight_matrix(&table.targets, &table.mask, balance),
            None => table.mask.clone(),
        },
        "none" => table.mask.clone(),
        other if other.starts_with("column:") => {
            let row_weights = table.row_weights.as_ref().context("weights column missing")?;
            Matrix::from_fn(table.n_rows(), table.n_tasks(), |r, t| {
                row_weights[r] * table.mask[(r, t)]
            })
        }
        other => bail!("--weights must be balanced, none or column:NAME, not '{other}'"),
    })
}

/// The learning rate `args` describe, its schedule counted in epochs of
/// `steps_per_epoch` steps.
fn learning_rate(args: &TrainArgs, steps_per_epoch: u64) -> anyhow::Result<LearningRate> {
    let parts: Vec<&str> = args.schedule.split(':').collect();
    let number = |text: &str| -> anyhow::Result<f64> {
        text.parse::<f64>().ok().filter(|v| v.is_finite() && *v > 0.0).with_context(|| {
            format!("--schedule {}: '{text}' is not a positive number", args.schedule)
        })
    };
    let epochs = |text: &str| -> anyhow::Result<u64> {
        text.parse::<u64>().ok().filter(|&v| v > 0).with_context(|| {
            format!("--schedule {}: '{text}' is not a whole number of epochs", args.schedule)
        })
    };
    let schedule = match parts.as_slice() {
        ["constant"] => Schedule::Constant,
        ["cosine"] => Schedule::Cosine {
            total_steps: (steps_per_epoch * args.epochs as u64)
                .saturating_sub(args.warmup_steps)
                .max(1),
            min_lr: 0.0,
        },
        ["exponential", factor] => {
            Schedule::Exponential { decay_rate: number(factor)?, decay_steps: steps_per_epoch }
        }
        ["step", every, factor] => {
            Schedule::Step { step_size: epochs(every)? * steps_per_epoch, gamma: number(factor)? }
        }
        _ => bail!(
            "--schedule must be constant, cosine, exponential:F or step:E:F, not '{}'",
            args.schedule
        ),
    };
    Ok(LearningRate { base: learning_rate_base(args), schedule, warmup_steps: args.warmup_steps })
}

/// The data of one training run in one encoding: its three parts, and
/// where the test rows came from.
struct Parts<'f> {
    encoding: Encoding,
    train: InMemoryDataset,
    valid: Option<InMemoryDataset>,
    test: Option<(InMemoryDataset, &'f Featurized, Vec<usize>)>,
    scaling: Option<TargetScaling>,
}

fn build_parts<'f>(
    args: &TrainArgs,
    encoding: Encoding,
    main: &'f Featurized,
    split: &Split,
    valid_file: Option<&'f Featurized>,
    test_file: Option<&'f Featurized>,
) -> anyhow::Result<Parts<'f>> {
    let classification = args.task_type == TaskType::Classification;
    // Weights and target scaling are fitted on the training rows only.
    let balance = classification
        .then(|| balancing_weights(&main.table.targets, &main.table.mask, &split.train));
    let scaling = (!classification)
        .then(|| TargetScaling::fit(&main.table.targets, &main.table.mask, &split.train));
    let scaled = |f: &Featurized| {
        let mut targets = f.table.targets.clone();
        if let Some(scaling) = &scaling {
            scaling.apply(&mut targets);
        }
        targets
    };
    let main_weights = weights_for(main, args, balance.as_deref())?;
    let main_targets = scaled(main);
    let input = (encoding, args.bits);
    let part = |f: &Featurized| -> anyhow::Result<InMemoryDataset> {
        dataset(f, input, &all_rows(f), &weights_for(f, args, balance.as_deref())?, &scaled(f))
    };
    let train = dataset(main, input, &split.train, &main_weights, &main_targets)?;
    let valid = match valid_file {
        Some(v) => Some(part(v)?),
        None if !split.valid.is_empty() => {
            Some(dataset(main, input, &split.valid, &main_weights, &main_targets)?)
        }
        None => None,
    };
    let test = match test_file {
        Some(t) => Some((part(t)?, t, all_rows(t))),
        None if !split.test.is_empty() => Some((
            dataset(main, input, &split.test, &main_weights, &main_targets)?,
            main,
            split.test.clone(),
        )),
        None => None,
    };
    Ok(Parts { encoding, train, valid, test, scaling })
}

/// A member of the ensemble that has finished training.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct FinishedMember {
    model: Multitask<f32>,
    history: Vec<EpochRecord>,
    best_epoch: Option<usize>,
}

/// `checkpoint.bin`: the options of the run, the members already trained
/// and the state of the one in training.
#[derive(Deserialize)]
struct RunCheckpoint {
    options: String,
    finished: Vec<FinishedMember>,
    current: Option<TrainingState>,
}

/// [`RunCheckpoint`] by reference, so that writing one copies nothing.
#[derive(Serialize)]
struct RunCheckpointRef<'a> {
    options: &'a str,
    finished: &'a [FinishedMember],
    current: Option<&'a TrainingState>,
}

/// `args` with the defaults that depend on other flags written out, the
/// form config.json records: fed back through --config, it trains the
/// same way.
fn resolved(args: &TrainArgs) -> anyhow::Result<TrainArgs> {
    let classification = args.task_type == TaskType::Classification;
    let mut resolved = args.clone();
    resolved.metric = Some(args.metric.unwrap_or(if classification {
        MetricArg::RocAuc
    } else {
        MetricArg::Rmse
    }));
    resolved.swa_start = Some(swa_start(args)?.map_or(SwaStart::Off, SwaStart::After));
    resolved.batch_size = Some(batch_size(args));
    resolved.learning_rate = Some(learning_rate_base(args));
    Ok(resolved)
}

/// The options that decide a run's result, as a JSON string: every flag,
/// defaults resolved, but the output folder, --resume, --threads and
/// --config.
fn run_options(args: &TrainArgs) -> anyhow::Result<String> {
    let mut value = serde_json::to_value(resolved(args)?)?;
    if let Value::Object(map) = &mut value {
        for key in ["out", "resume", "threads", "config"] {
            map.remove(key);
        }
    }
    Ok(value.to_string())
}

/// The options whose values differ between two [`run_options`] strings,
/// each as `name: then → now`. An option that one side lacks and the other
/// leaves unset is no difference, so that a new option does not strand the
/// checkpoints of builds that did not have it.
fn changed_options(then: &str, now: &str) -> Vec<String> {
    let (Ok(Value::Object(then)), Ok(Value::Object(now))) =
        (serde_json::from_str::<Value>(then), serde_json::from_str::<Value>(now))
    else {
        return if then == now { Vec::new() } else { vec!["unreadable".to_owned()] };
    };
    let mut names: Vec<&String> = then.keys().chain(now.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let (a, b) =
                (then.get(name).unwrap_or(&Value::Null), now.get(name).unwrap_or(&Value::Null));
            (a != b).then(|| format!("{}: {a} → {b}", name.replace('_', "-")))
        })
        .collect()
}

/// The seed of ensemble member `member`: the run's seed for the first, so
/// that an ensemble of one is the plain run, and well-mixed derivations
/// for the others, so that members of runs with neighbouring seeds do not
/// coincide.
fn member_seed(seed: u64, member: u64) -> u64 {
    if member == 0 {
        return seed;
    }
    // SplitMix64's finalizer over the pair.
    let mut z = seed ^ member.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The network and training settings of member `member`.
fn member_setup(
    args: &TrainArgs,
    n_tasks: usize,
    steps_per_epoch: u64,
    member: u64,
) -> anyhow::Result<(MultitaskConfig, TrainConfig)> {
    let classification = args.task_type == TaskType::Classification;
    let kind = if classification { TaskKind::Classification } else { TaskKind::Regression };
    let encoding = member_encodings(args)[member as usize];
    let n_features = encoding.n_columns(args.bits);
    let base = match (args.preset, classification) {
        (Some(Preset::Deepchem), true) => {
            MultitaskConfig::deepchem_classifier(n_features, n_tasks, args.dropout)
        }
        (Some(Preset::Deepchem), false) => {
            bail!("--preset deepchem is a classifier; it does not apply to --task-type regression")
        }
        (None, true) => MultitaskConfig::classifier(n_features, n_tasks),
        (None, false) => MultitaskConfig::regressor(n_features, n_tasks),
    };
    let model =
        MultitaskConfig { hidden_layers: args.layers.clone(), dropout: vec![args.dropout], ..base };
    let reduction = match args.preset {
        Some(Preset::Deepchem) => LossReduction::MeanOverAll,
        None => LossReduction::MeanOverLabelled,
    };
    let train = TrainConfig {
        epochs: args.epochs,
        batch_size: batch_size(args),
        seed: member_seed(args.seed, member),
        learning_rate: learning_rate(args, steps_per_epoch)?,
        optimizer: match args.optimizer {
            OptimizerArg::Adam => OptimizerConfig::adam(),
            OptimizerArg::Adamw => match args.weight_decay {
                Some(decay) => OptimizerConfig::adamw().with_weight_decay(decay),
                None => OptimizerConfig::adamw(),
            },
            OptimizerArg::Sgd => OptimizerConfig::sgd(),
        },
        clip_norm: args.clip_norm,
        loss: LossConfig { reduction, l1: args.l1, l2: args.l2 },
        task_kind: kind,
        metric: members_metric(args),
        patience: args.patience,
        min_delta: args.min_delta,
        checkpoint_every: args.checkpoint_every,
        swa_start: swa_start(args)?,
        ..TrainConfig::default()
    };
    Ok((model, train))
}

// The classification defaults were chosen by 5-fold cross-validation on
// Tox21's training rows: averaging after 5, 10 or 20 of 30 epochs scored
// alike and all above keeping the best epoch; batches of 100 at 1.5e-3
// matched batches of 50 at 1e-3 in half the optimizer passes. On Delaney's
// regression (5-fold RMSE) the same settings under-train a set of 900
// molecules: 1.02 against 0.88 for batches of 50 at 1e-3 keeping the best
// epoch, which regression keeps.

/// The epoch after which weights are averaged, if they are.
fn swa_start(args: &TrainArgs) -> anyhow::Result<Option<usize>> {
    let regression = args.task_type == TaskType::Regression;
    match (args.swa_start, args.preset) {
        (Some(SwaStart::Off), _) | (None, Some(Preset::Deepchem)) => Ok(None),
        (None, None) if regression => Ok(None),
        (Some(SwaStart::After(start)), _) if start >= args.epochs => bail!(
            "--swa-start {start} leaves nothing to average: it must be below --epochs {}",
            args.epochs
        ),
        (Some(SwaStart::After(start)), _) => Ok(Some(start)),
        (None, None) => Ok(Some(args.epochs / 3)),
    }
}

fn batch_size(args: &TrainArgs) -> usize {
    let regression = args.task_type == TaskType::Regression;
    args.batch_size.unwrap_or(if regression { 50 } else { 100 })
}

/// The largest class weight that balancing may give before the default
/// learning rate is lowered. That rate was chosen on Tox21, whose rarest
/// positives weigh about 35; on MUV, whose weigh up to 615, each step on
/// one of them overshoots and the training loss climbs epoch after epoch
/// (5.6 to 74 in ten) toward a model that calls every molecule active.
/// Scaling the rate by `BALANCED_WEIGHT_LIMIT / weight` keeps their
/// product where Tox21's stays; it gives MUV 1.2e-4, near the 1.5e-4 that
/// scored best on its validation part, and leaves Tox21 untouched.
const BALANCED_WEIGHT_LIMIT: f64 = 50.0;

/// `args` with the defaults that depend on the data: the learning rate,
/// when none is given and balancing would weigh some class of `main` above
/// [`BALANCED_WEIGHT_LIMIT`]. The weights are fitted on all of `main`, so
/// that every split and fold shares one rate.
fn with_data_defaults(args: &TrainArgs, main: &Featurized) -> TrainArgs {
    let mut args = args.clone();
    let balanced = args.task_type == TaskType::Classification && args.weights == "balanced";
    if args.learning_rate.is_some() || !balanced {
        return args;
    }
    let balance = balancing_weights(&main.table.targets, &main.table.mask, &all_rows(main));
    let heaviest = balance
        .iter()
        .zip(&main.table.task_names)
        .map(|(b, task)| (b.positive_weight.max(b.negative_weight), task))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((weight, task)) = heaviest
        && weight > BALANCED_WEIGHT_LIMIT
    {
        let rate = learning_rate_base(&args) * BALANCED_WEIGHT_LIMIT / weight;
        log::info!(
            "balancing weighs a class of task {task} {weight:.0}; the default learning rate \
             is lowered in proportion, to {rate:.2e} (--learning-rate sets it)"
        );
        args.learning_rate = Some(rate);
    }
    args
}

fn learning_rate_base(args: &TrainArgs) -> f64 {
    let regression = args.task_type == TaskType::Regression;
    args.learning_rate.unwrap_or(if regression { 1e-3 } else { 1.5e-3 })
}

/// How old the last checkpoint must be for an epoch's end to write a new
/// one. A checkpoint of the default run is 50 to 100 MB, and its epochs
/// last half a second: written at every epoch's end, checkpoints took a
/// sixth of the run. An interrupt or `--checkpoint-every` still checkpoints
/// at once, so an interrupt loses nothing, and a crash or `kill -9` this
/// long and one epoch of training at most.
const EPOCH_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);

/// Set by the first Ctrl-C (SIGINT) or SIGTERM of a training run: the
/// member in training stops after its step, checkpoints, and the run exits
/// with the way to resume.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Makes SIGINT and SIGTERM stop training at the next step with a
/// checkpoint (see [`INTERRUPTED`]); a second one exits at once, with the
/// shell's status for death by that signal, for a user who will not wait.
/// SIGHUP keeps its default, so `nohup` still shields a run from a closed
/// terminal.
fn stop_on_interrupt() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for (signal, status) in [(SIGINT, 128 + SIGINT), (SIGTERM, 128 + SIGTERM)] {
        // The exit must be registered first: it looks at the flag before
        // the first signal's own action sets it.
        let registered =
            signal_hook::flag::register_conditional_shutdown(signal, status, &INTERRUPTED)
                .and_then(|_| signal_hook::flag::register(signal, &INTERRUPTED));
        if let Err(err) = registered {
            log::warn!(
                "cannot catch signal {signal} ({err}): an interrupted run will resume from its last checkpoint"
            );
        }
    }
}

/// Trains every member of the ensemble, resuming from `DIR/checkpoint.bin`
/// when asked, and checkpointing into it as it goes.
fn train_members(
    args: &TrainArgs,
    out: &Path,
    parts: &[Parts<'_>],
    n_tasks: usize,
    resume: bool,
) -> anyhow::Result<Vec<FinishedMember>> {
    let checkpoint = out.join("checkpoint.bin");
    let options = run_options(args)?;
    let steps_per_epoch = parts[0].train.n_rows().div_ceil(batch_size(args).max(1)) as u64;
    let encodings = member_encodings(args);
    let (mut finished, mut current) = if resume {
        if !checkpoint.exists() {
            bail!(
                "{}: no checkpoint to resume from (a run writes its first one about {} s in); rerun without --resume",
                checkpoint.display(),
                EPOCH_CHECKPOINT_INTERVAL.as_secs()
            );
        }
        let saved: RunCheckpoint =
            ferrochem_train::checkpoint::load(FileKind::Checkpoint, &checkpoint)?;
        let changed = changed_options(&saved.options, &options);
        if !changed.is_empty() {
            bail!(
                "{}: the checkpoint was made with other options ({}); rerun with the same options, or without --resume to start over",
                checkpoint.display(),
                changed.join(", ")
            );
        }
        log::info!(
            "resuming from {}: {} of {} members trained",
            checkpoint.display(),
            saved.finished.len(),
            args.ensemble_size
        );
        (saved.finished, saved.current)
    } else {
        (Vec::new(), None)
    };
    let total = steps_per_epoch * args.epochs as u64 * args.ensemble_size;
    let bar = progress_bar("training", total, "steps");
    // Stops the run after this many steps of this process, as an
    // interruption would, leaving the checkpoint to resume from: how the
    // tests interrupt a run at a chosen point.
    let stop_after: Option<u64> =
        std::env::var("FERROCHEM_STOP_AFTER_STEPS").ok().and_then(|v| v.parse().ok());
    let mut steps_taken = 0u64;
    let mut last_written = Instant::now();
    while (finished.len() as u64) < args.ensemble_size {
        let member = finished.len() as u64;
        let parts = parts_in(parts, encodings[member as usize]);
        let mut state = match current.take() {
            Some(state) => state,
            None => {
                let (model, train) = member_setup(args, n_tasks, steps_per_epoch, member)?;
                TrainingState::new(model.init(member_seed(args.seed, member)), train)
            }
        };
        if args.ensemble_size > 1 {
            log::info!("member {} of {}", member + 1, args.ensemble_size);
        }
        let done_steps = member * steps_per_epoch * args.epochs as u64;
        bar.set_position(done_steps + state.global_step());
        let mut on_progress = |progress: Progress<'_>| {
            if let Progress::Step { loss, .. } = progress {
                bar.inc(1);
                bar.set_message(format!("loss {loss:.4}"));
                steps_taken += 1;
                if stop_after.is_some_and(|limit| steps_taken >= limit)
                    || INTERRUPTED.load(Ordering::SeqCst)
                {
                    return Control::Stop;
                }
            }
            Control::Continue
        };
        let mut save = |state: &TrainingState| {
            // A finished member is checkpointed below, among the finished.
            let recent = last_written.elapsed() < EPOCH_CHECKPOINT_INTERVAL;
            if state.is_finished() || (state.is_between_epochs() && recent) {
                return Ok(());
            }
            let snapshot =
                RunCheckpointRef { options: &options, finished: &finished, current: Some(state) };
            ferrochem_train::checkpoint::save(FileKind::Checkpoint, &snapshot, &checkpoint)?;
            last_written = Instant::now();
            Ok(())
        };
        Trainer::run_saving(
            &mut state,
            &parts.train,
            parts.valid.as_ref().map(|v| v as &dyn Dataset),
            &mut on_progress,
            &mut save,
        )?;
        if !state.is_finished() {
            bar.abandon();
            let why = if INTERRUPTED.load(Ordering::SeqCst) { "interrupted" } else { "stopped" };
            bail!(
                "{why} after {steps_taken} steps; `--resume` continues from {}",
                checkpoint.display()
            );
        }
        finished.push(FinishedMember {
            history: state.history().to_vec(),
            best_epoch: state.best_epoch(),
            model: state.into_model(),
        });
        let snapshot = RunCheckpointRef { options: &options, finished: &finished, current: None };
        ferrochem_train::checkpoint::save(FileKind::Checkpoint, &snapshot, &checkpoint)?;
        last_written = Instant::now();
    }
    bar.finish_and_clear();
    Ok(finished)
}

/// Runs `ferrochem train`.
pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    match (args.task_type, args.metric) {
        (TaskType::Classification, Some(MetricArg::Rmse)) => {
            bail!(
                "--metric rmse is for --task-type regression; classification takes roc-auc or prc-auc"
            )
        }
        (TaskType::Regression, Some(metric @ (MetricArg::RocAuc | MetricArg::PrcAuc))) => bail!(
            "--metric {} is for classification; --task-type regression takes rmse",
            metric.to_possible_value().expect("no skipped variants").get_name()
        ),
        _ => {}
    }
    log::debug!("{} worker threads", rayon::current_num_threads());
    stop_on_interrupt();
    // Train on a worker of the pool, not on the main thread: a parallel
    // kernel called from outside the pool queues its work and sleeps until
    // a worker has done it, a hand-off and a wake-up per call that made two
    // threads slower than one. From a worker it splits its work in place
    // and the other worker steals half.
    rayon::scope(|_| train_in_pool(args))
}

fn train_in_pool(args: &TrainArgs) -> anyhow::Result<()> {
    // Options that cannot work fail before the data is read.
    swa_start(args)?;
    if let Some(wide) =
        member_encodings(args).into_iter().find(|e| u32::try_from(e.n_columns(args.bits)).is_err())
    {
        bail!(
            "--bits {} is too many: a member reading {} has {} input columns, above 2^32",
            args.bits,
            encoding_names(&[wide]),
            wide.n_columns(args.bits)
        );
    }
    let classification = args.task_type == TaskType::Classification;
    if args.folds.is_some()
        && (args.valid.is_some() || args.test.is_some() || args.split_file.is_some())
    {
        bail!(
            "--folds makes its own splits; it cannot be combined with --valid, --test or --split-file"
        );
    }
    if args.weight_decay.is_some() && args.optimizer != OptimizerArg::Adamw {
        bail!(
            "--weight-decay is AdamW's decoupled decay and needs --optimizer adamw; \
             other optimizers take an L2 penalty with --l2"
        );
    }
    let from_stdin = [Some(&args.data), args.valid.as_ref(), args.test.as_ref()]
        .iter()
        .filter(|path| path.is_some_and(|p| p == Path::new("-")))
        .count();
    if from_stdin > 1 {
        bail!("only one of --data, --valid and --test can read standard input ('-')");
    }
    // Checked before anything is read or written.
    split_fractions(args)?;
    if args.out.exists() && !args.out.is_dir() {
        bail!(
            "--out {}: this is a file; --out names the folder for the model and reports",
            args.out.display()
        );
    }
    let main = featurize(&args.data, args, args.tasks.clone())?;
    let args = &with_data_defaults(args, &main);
    // The validation and test files are read by the training file's task
    // names: their columns may come in another order, and a column the
    // training file lacks is not a task.
    let other = |path: &Path| featurize(path, args, Some(main.table.task_names.clone()));
    let valid_file = args.valid.as_deref().map(other).transpose()?;
    let test_file = args.test.as_deref().map(other).transpose()?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let Some(k) = args.folds else {
        let split = split_main(&main, args, classification)?;
        let (summary, _) = train_once(
            args,
            &args.out,
            &main,
            &split,
            valid_file.as_ref(),
            test_file.as_ref(),
            args.resume,
        )?;
        print_summary_table(&main.table.task_names, &summary);
        println!("ferrochem: model and reports in {}", args.out.display());
        return Ok(());
    };
    let n_rows = main.table.n_rows();
    if k as usize > n_rows {
        bail!(
            "--folds {k}: {} has {n_rows} usable rows, fewer than the folds, so some folds would have nothing to test",
            main.table.source_name
        );
    }
    let mut fold_summaries = Vec::new();
    // Each row's prediction by the one fold that tested it, and that fold.
    let mut out_of_fold: Vec<Option<(usize, Vec<f32>)>> = vec![None; n_rows];
    for (fold, split) in fold_splits(main.table.n_rows(), k as usize, args.seed).iter().enumerate()
    {
        let dir = args.out.join(format!("fold-{}", fold + 1));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        log::info!("fold {} of {k}", fold + 1);
        let resume = args.resume && dir.join("checkpoint.bin").exists();
        let (summary, predictions) = train_once(args, &dir, &main, split, None, None, resume)?;
        let predictions = predictions.expect("every fold tests its part");
        for (i, &row) in split.test.iter().enumerate() {
            out_of_fold[row] = Some((fold + 1, predictions.row(i).to_vec()));
        }
        fold_summaries.push(summary);
    }
    let summary = fold_summary(&fold_summaries, &main.table.task_names, classification);
    write_file(&args.out, "summary.json", serde_json::to_string_pretty(&summary)?.as_bytes())?;
    let out_of_fold: Vec<(usize, Vec<f32>)> =
        out_of_fold.into_iter().map(|row| row.expect("the folds partition the rows")).collect();
    let csv = cv_predictions_csv(&main.table, &main.table.task_names, &out_of_fold);
    write_file(&args.out, "cv_predictions.csv", csv.as_bytes())?;
    write_file(
        &args.out,
        "config.json",
        serde_json::to_string_pretty(&resolved(args)?)?.as_bytes(),
    )?;
    print_fold_table(&fold_summaries, classification);
    println!(
        "ferrochem: {k} folds in {}, summary in {}",
        args.out.display(),
        args.out.join("summary.json").display()
    );
    Ok(())
}

/// Trains one model (every member of its ensemble) on `split` and writes
/// its files to `out`; returns the summary it wrote and the ensemble's
/// predictions for the test rows, in their order, if there are any.
fn train_once(
    args: &TrainArgs,
    out: &Path,
    main: &Featurized,
    split: &Split,
    valid_file: Option<&Featurized>,
    test_file: Option<&Featurized>,
    resume: bool,
) -> anyhow::Result<(Value, Option<Matrix<f32>>)> {
    let classification = args.task_type == TaskType::Classification;
    let kind = if classification { TaskKind::Classification } else { TaskKind::Regression };
    let encodings = member_encodings(args);
    let mut all_parts: Vec<Parts<'_>> = Vec::new();
    for &encoding in &encodings {
        if !all_parts.iter().any(|p| p.encoding == encoding) {
            all_parts.push(build_parts(args, encoding, main, split, valid_file, test_file)?);
        }
    }
    // Rows, labels, weights and scaling are the same in every encoding.
    let parts = &all_parts[0];
    if parts.train.n_rows() == 0 {
        bail!("{}: the split leaves no training rows", main.table.source_name);
    }
    log::info!(
        "{}: {} molecules, {} tasks; {} train, {} valid, {} test",
        main.table.source_name,
        main.table.n_rows(),
        main.table.n_tasks(),
        parts.train.n_rows(),
        parts.valid.as_ref().map_or(0, |v| v.n_rows()),
        parts.test.as_ref().map_or(0, |(t, _, _)| t.n_rows()),
    );
    if parts.scaling.is_some() {
        log::info!(
            "targets are standardized for training: the epoch log's validation errors are in \
             standard deviations, metrics.jsonl and summary.json in the data's units"
        );
    }
    let tasks = main.table.task_names.clone();
    let members = train_members(args, out, &all_parts, tasks.len(), resume)?;

    let histories: Vec<&[EpochRecord]> = members.iter().map(|m| m.history.as_slice()).collect();
    let metrics = metrics_jsonl(&histories, parts.scaling.as_ref(), &tasks, kind);
    write_file(out, "metrics.jsonl", metrics.as_bytes())?;

    let saved = SavedModel {
        format_version: MODEL_FORMAT_VERSION,
        members: members.iter().map(|m| m.model.clone()).collect(),
        radius: args.radius,
        bits: args.bits,
        encodings: encodings.clone(),
        tasks: tasks.clone(),
        task_type: args.task_type,
        scaling: parts.scaling.clone(),
    };
    ferrochem_train::checkpoint::save(FileKind::Model, &saved, &out.join("model.bin"))?;
    write_file(out, "config.json", serde_json::to_string_pretty(&resolved(args)?)?.as_bytes())?;

    // Scores of the ensemble's mean prediction, in the original units, on
    // the part that `part_of` picks.
    let evaluate = |part_of: &dyn for<'a> Fn(&'a Parts<'a>) -> &'a InMemoryDataset|
     -> anyhow::Result<(Scores, Matrix<f32>)> {
        let (predictions, _) = saved
            .predict_dataset(|encoding| part_of(parts_in(&all_parts, encoding)) as &dyn Dataset)?;
        let data = part_of(parts);
        let (mut targets, mask) = labels_of(data);
        if let Some(scaling) = &parts.scaling {
            scaling.undo(&mut targets);
        }
        let scores = score(&predictions, &targets, &mask, kind, PrcArea::AveragePrecision);
        Ok((scores, predictions))
    };
    let (train_scores, _) = evaluate(&|p| &p.train)?;
    let valid_scores = match &parts.valid {
        Some(_) => Some(evaluate(&|p| p.valid.as_ref().expect("every encoding has one"))?.0),
        None => None,
    };
    let mut test_scores = None;
    let mut test_predictions = None;
    if let Some((test_data, source, rows)) = &parts.test {
        let (scores, predictions) =
            evaluate(&|p| &p.test.as_ref().expect("every encoding has one").0)?;
        test_scores = Some(scores);
        let csv = test_predictions_csv(&source.table, rows, &tasks, &predictions);
        write_file(out, "test_predictions.csv", csv.as_bytes())?;
        if classification {
            let (targets, mask) = labels_of(test_data);
            let svg = plots::roc_curves(&tasks, &predictions, &targets, &mask)?;
            write_file(out, "roc_test.svg", svg.as_bytes())?;
        }
        test_predictions = Some(predictions);
    }
    let metric = members_metric(args);
    let svg = plots::training_curves(&histories, metric)?;
    write_file(out, "training.svg", svg.as_bytes())?;
    // With --valid, nothing was split: every row of --data trained.
    if args.valid.is_none() {
        let comment = format!(
            "the rows of {} as this run of ferrochem train split them: row is the 0-based data \
             row (header excluded);\nrows whose SMILES was rejected are not listed. \
             `ferrochem train --split-file` reads this file.",
            main.table.source_name
        );
        let text = split_file_text(&main.table.data_rows, split, &comment);
        write_file(out, "split.tsv", text.as_bytes())?;
    }

    let mut rejected: Vec<Value> = main.rejected.clone();
    rejected.extend(valid_file.iter().chain(test_file.iter()).flat_map(|f| f.rejected.clone()));
    let best_epochs: Vec<Option<usize>> =
        members.iter().map(|m| m.best_epoch.map(|e| e + 1)).collect();
    let mut summary = json!({
        "train": scores_json(&train_scores, &tasks, kind),
        "best_epoch": if best_epochs.len() == 1 { json!(best_epochs[0]) } else { json!(best_epochs) },
        "rows": {
            "train": parts.train.n_rows(),
            "valid": parts.valid.as_ref().map(|v| v.n_rows()),
            "test": parts.test.as_ref().map(|(t, _, _)| t.n_rows()),
            "rejected": rejected.len(),
            "skipped": main.table.skipped.len()
                + valid_file.iter().chain(test_file.iter()).map(|f| f.table.skipped.len()).sum::<usize>(),
        },
        "rejected": rejected,
        "seed": args.seed,
        "dataset_sha256": main.table.content_sha256,
        "featurizer": format!(
            "ecfp radius {} bits {} {} (RDKit-compatible Morgan)",
            args.radius,
            args.bits,
            encoding_names(&encodings)
        ),
        "version": env!("CARGO_PKG_VERSION"),
        "commit": env!("FERROCHEM_COMMIT"),
    });
    // A part that was not scored is left out rather than written as null.
    if let Some(scores) = &valid_scores {
        summary["valid"] = scores_json(scores, &tasks, kind);
    }
    if let Some(scores) = &test_scores {
        summary["test"] = scores_json(scores, &tasks, kind);
    }
    write_file(out, "summary.json", serde_json::to_string_pretty(&summary)?.as_bytes())?;
    Ok((summary, test_predictions))
}

/// The validation metric members were selected on.
fn members_metric(args: &TrainArgs) -> Metric {
    match args.metric {
        Some(MetricArg::RocAuc) => Metric::RocAuc,
        Some(MetricArg::PrcAuc) => Metric::PrcAuc,
        Some(MetricArg::Rmse) => Metric::Rmse,
        None if args.task_type == TaskType::Classification => Metric::RocAuc,
        None => Metric::Rmse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_options_name_each_difference_and_let_new_unset_options_pass() {
        let then = r#"{"epochs":30,"layers":[1000,1000],"seed":0}"#;
        assert!(changed_options(then, then).is_empty());
        // An option added since, left unset, is no change; set, it is.
        let added = r#"{"epochs":30,"layers":[1000,1000],"seed":0,"weight_decay":null}"#;
        assert!(changed_options(then, added).is_empty());
        let set = r#"{"epochs":30,"layers":[64],"seed":0,"weight_decay":0.1}"#;
        assert_eq!(
            changed_options(then, set),
            ["layers: [1000,1000] → [64]", "weight-decay: null → 0.1"]
        );
    }
}
