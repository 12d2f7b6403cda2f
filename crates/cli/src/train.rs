//! `ferrochem train`: from a labelled CSV of SMILES to a trained model and
//! its reports.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::ValueEnum;
use ferrochem_chem::{EcfpOptions, ReadOptions};
use ferrochem_data::cache::featurize_cached;
use ferrochem_data::split::{
    Fractions, Split, index_split, random_split, read_split_file, scaffold_split,
    split_from_assignments, stratified_split,
};
use ferrochem_data::weights::{TargetScaling, balanced_weight_matrix, balancing_weights};
use ferrochem_data::{
    Dataset, Features, InMemoryDataset, Input, Matrix, SparseBinary, Table, TableOptions,
    read_table, select_matrix_rows,
};
use ferrochem_nn::{LearningRate, LossConfig, Multitask, MultitaskConfig, OptimizerConfig};
use ferrochem_train::metrics::{Metric, PrcArea, Scores, TaskKind, score};
use ferrochem_train::{
    Control, Progress, TrainConfig, Trainer, TrainingState, labels_of, predict_dataset,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Options of `ferrochem train`; every default is the one a plain
/// `ferrochem train --data X.csv --out DIR` uses.
#[derive(Debug, clap::Args, Serialize)]
pub struct TrainArgs {
    /// Training CSV (plain or gzipped) with a SMILES column and label columns.
    #[arg(long)]
    pub data: PathBuf,
    /// Validation CSV; with it and no --test, all of --data trains.
    #[arg(long)]
    pub valid: Option<PathBuf>,
    /// Test CSV, scored once at the end.
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
    #[arg(long, default_value_t = 1024)]
    pub bits: u32,
    /// Seed of the split, the initialization, the shuffling and dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Passes over the training data.
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    /// Rows per batch.
    #[arg(long, default_value_t = 50)]
    pub batch_size: usize,
    /// Step size of the optimizer.
    #[arg(long, default_value_t = 1e-3)]
    pub learning_rate: f64,
    /// The optimizer.
    #[arg(long, value_enum, default_value_t = OptimizerArg::Adam)]
    pub optimizer: OptimizerArg,
    /// Clip the global gradient norm to this value [default: off].
    #[arg(long)]
    pub clip_norm: Option<f64>,
    /// Hidden layer widths, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    pub layers: Vec<usize>,
    /// Dropout rate of the hidden layers.
    #[arg(long, default_value_t = 0.25)]
    pub dropout: f64,
    /// L1 penalty on weights: l1 · Σ|W|.
    #[arg(long, default_value_t = 0.0)]
    pub l1: f64,
    /// L2 penalty on weights: (l2 / 2) · ΣW².
    #[arg(long, default_value_t = 0.0)]
    pub l2: f64,
    /// Per-label weights: `balanced` (classes weigh the same, fitted on
    /// the training rows), `none`, or `column:NAME`.
    #[arg(long, default_value = "balanced")]
    pub weights: String,
    /// Validation score that picks the best epoch [default: roc-auc, or
    /// rmse for regression].
    #[arg(long, value_enum)]
    pub metric: Option<MetricArg>,
    /// Stop after this many epochs without improvement [default: off].
    #[arg(long)]
    pub patience: Option<usize>,
    /// Smallest change that counts as an improvement.
    #[arg(long, default_value_t = 0.0)]
    pub min_delta: f64,
    /// Worker threads [default: RAYON_NUM_THREADS, else all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also checkpoint every this many steps (always at each epoch's end).
    #[arg(long)]
    pub checkpoint_every: Option<u64>,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue from DIR/checkpoint.bin.
    #[arg(long)]
    pub resume: bool,
    /// A JSON object of options, keys being the long flag names with
    /// underscores (`{"learning_rate": 3e-4, "layers": [2000]}`); flags on
    /// the command line override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MetricArg {
    RocAuc,
    PrcAuc,
    Rmse,
}

/// What `model.bin` holds: everything `predict` needs, nothing that
/// differs between identical runs.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedModel {
    /// Layout version of this struct.
    pub format_version: u32,
    /// The network.
    pub model: Multitask<f32>,
    /// ECFP radius and length the model was trained on.
    pub radius: u32,
    /// See `radius`.
    pub bits: u32,
    /// Task names in output order.
    pub tasks: Vec<String>,
    /// Classification or regression.
    pub task_type: TaskType,
    /// Target standardization to undo on predictions (regression).
    pub scaling: Option<TargetScaling>,
}

struct Featurized {
    table: Table,
    bits: Vec<Vec<u32>>,
    rejected: Vec<Value>,
}

fn featurize(path: &Path, args: &TrainArgs) -> anyhow::Result<Featurized> {
    let input = Input::Path(path);
    let options = TableOptions {
        smiles_column: args.smiles_column.clone(),
        tasks: args.tasks.clone(),
        weights_column: weights_column(&args.weights),
    };
    let table = read_table(&input, &options)?;
    for skipped in table.skipped.iter().take(5) {
        log::warn!("{}:{}: row skipped: {}", table.source_name, skipped.line, skipped.problem);
    }
    if table.skipped.len() > 5 {
        log::warn!("{}: {} rows skipped in all", table.source_name, table.skipped.len());
    }
    let cache_dir = std::env::var_os("FERROCHEM_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/ferrochem")));
    let ecfp = EcfpOptions { radius: args.radius, n_bits: args.bits };
    let (features, _) = featurize_cached(
        cache_dir.as_deref(),
        &table.content_sha256,
        &args.smiles_column,
        &table.smiles,
        ecfp,
        ReadOptions::default(),
    );
    let mut keep = Vec::new();
    let mut bits = Vec::new();
    let mut rejected = Vec::new();
    for (position, result) in features.into_iter().enumerate() {
        match result {
            Ok(b) => {
                keep.push(position);
                bits.push(b);
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
    Ok(Featurized { table: table.select(&keep), bits, rejected })
}

fn weights_column(weights: &str) -> Option<String> {
    weights.strip_prefix("column:").map(str::to_owned)
}

/// The rows `rows` of `f` as a data set with the given weights and targets.
fn dataset(
    f: &Featurized,
    n_bits: u32,
    rows: &[usize],
    weights: &Matrix<f32>,
    targets: &Matrix<f32>,
) -> anyhow::Result<InMemoryDataset> {
    let x = SparseBinary::from_rows(n_bits as usize, rows.iter().map(|&r| f.bits[r].as_slice()))
        .context("fingerprint bits out of range")?;
    Ok(InMemoryDataset::new(
        Features::Sparse(x),
        select_matrix_rows(targets, rows),
        select_matrix_rows(weights, rows),
        select_matrix_rows(&f.table.mask, rows),
    ))
}

fn all_rows(f: &Featurized) -> Vec<usize> {
    (0..f.table.n_rows()).collect()
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
    let fractions: Fractions = args.split_fractions.parse()?;
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

fn scores_json(scores: &Scores, tasks: &[String], kind: TaskKind) -> Value {
    let mut per_task = serde_json::Map::new();
    for (name, task) in tasks.iter().zip(&scores.per_task) {
        let value = match kind {
            TaskKind::Classification => json!({"roc_auc": task.roc_auc, "prc_auc": task.prc_auc}),
            TaskKind::Regression => json!({"rmse": task.rmse, "mae": task.mae, "r2": task.r2}),
        };
        per_task.insert(name.clone(), value);
    }
    match kind {
        TaskKind::Classification => json!({
            "mean_roc_auc": scores.mean(Metric::RocAuc),
            "mean_prc_auc": scores.mean(Metric::PrcAuc),
            "per_task": per_task,
        }),
        TaskKind::Regression => json!({
            "mean_rmse": scores.mean(Metric::Rmse),
            "mean_mae": scores.mean(Metric::Mae),
            "mean_r2": scores.mean(Metric::R2),
            "per_task": per_task,
        }),
    }
}

/// Runs `ferrochem train`.
pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    if let Some(n) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("cannot set the thread count")?;
    }
    log::debug!("{} worker threads", rayon::current_num_threads());
    let classification = args.task_type == TaskType::Classification;
    let kind = if classification { TaskKind::Classification } else { TaskKind::Regression };
    let main = featurize(&args.data, args)?;
    let split = split_main(&main, args, classification)?;
    let valid_file = args.valid.as_deref().map(|p| featurize(p, args)).transpose()?;
    let test_file = args.test.as_deref().map(|p| featurize(p, args)).transpose()?;
    if split.train.is_empty() {
        bail!("{}: the split leaves no training rows", args.data.display());
    }
    log::info!(
        "{}: {} molecules, {} tasks; {} train, {} valid, {} test",
        args.data.display(),
        main.table.n_rows(),
        main.table.n_tasks(),
        split.train.len(),
        valid_file.as_ref().map_or(split.valid.len(), |v| v.table.n_rows()),
        test_file.as_ref().map_or(split.test.len(), |t| t.table.n_rows())
    );

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
    let main_weights = weights_for(&main, args, balance.as_deref())?;
    let main_targets = scaled(&main);
    let train = dataset(&main, args.bits, &split.train, &main_weights, &main_targets)?;
    let part = |f: &Featurized, rows: Vec<usize>| -> anyhow::Result<InMemoryDataset> {
        dataset(f, args.bits, &rows, &weights_for(f, args, balance.as_deref())?, &scaled(f))
    };
    let valid = match &valid_file {
        Some(v) => Some(part(v, all_rows(v))?),
        None if !split.valid.is_empty() => {
            Some(dataset(&main, args.bits, &split.valid, &main_weights, &main_targets)?)
        }
        None => None,
    };
    let test = match &test_file {
        Some(t) => Some((part(t, all_rows(t))?, t, all_rows(t))),
        None if !split.test.is_empty() => Some((
            dataset(&main, args.bits, &split.test, &main_weights, &main_targets)?,
            &main,
            split.test.clone(),
        )),
        None => None,
    };

    let n_tasks = main.table.n_tasks();
    let model_config = MultitaskConfig {
        hidden_layers: args.layers.clone(),
        dropout: vec![args.dropout],
        ..if classification {
            MultitaskConfig::classifier(args.bits as usize, n_tasks)
        } else {
            MultitaskConfig::regressor(args.bits as usize, n_tasks)
        }
    };
    let metric = match args.metric {
        Some(MetricArg::RocAuc) => Metric::RocAuc,
        Some(MetricArg::PrcAuc) => Metric::PrcAuc,
        Some(MetricArg::Rmse) => Metric::Rmse,
        None if classification => Metric::RocAuc,
        None => Metric::Rmse,
    };
    let train_config = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        seed: args.seed,
        learning_rate: LearningRate::constant(args.learning_rate),
        optimizer: match args.optimizer {
            OptimizerArg::Adam => OptimizerConfig::adam(),
            OptimizerArg::Adamw => OptimizerConfig::adamw(),
            OptimizerArg::Sgd => OptimizerConfig::sgd(),
        },
        clip_norm: args.clip_norm,
        loss: LossConfig { l1: args.l1, l2: args.l2, ..LossConfig::default() },
        task_kind: kind,
        metric,
        patience: args.patience,
        min_delta: args.min_delta,
        checkpoint_every: args.checkpoint_every,
        ..TrainConfig::default()
    };

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let checkpoint = args.out.join("checkpoint.bin");
    let mut state = if args.resume {
        TrainingState::load(&checkpoint)?
    } else {
        TrainingState::new(model_config.init(args.seed), train_config)
    };
    let tasks = main.table.task_names.clone();
    let mut metrics_lines = String::new();
    // One bar over every step of the run; indicatif draws nothing when
    // stderr is not a terminal, so logs and pipes stay clean.
    let steps_per_epoch = train.n_rows().div_ceil(args.batch_size.max(1)) as u64;
    let bar = indicatif::ProgressBar::new(steps_per_epoch * args.epochs as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} steps, {elapsed} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix("training");
    bar.set_position(state.global_step());
    let mut on_progress = |progress: Progress<'_>| {
        if let Progress::Step { loss, .. } = progress {
            bar.inc(1);
            bar.set_message(format!("loss {loss:.4}"));
        }
        if let Progress::Epoch(record) = progress {
            let mut line = json!({
                "member": 0,
                "epoch": record.epoch + 1,
                "train_loss": record.train_loss,
                "train_seconds": record.train_seconds,
                "seconds": record.seconds,
                "learning_rate": record.learning_rate,
            });
            if let Some(valid) = &record.valid {
                line["valid"] = scores_json(valid, &tasks, kind);
            }
            metrics_lines.push_str(&line.to_string());
            metrics_lines.push('\n');
        }
        Control::Continue
    };
    Trainer::with_checkpoints(&checkpoint).run(
        &mut state,
        &train,
        valid.as_ref().map(|v| v as &dyn Dataset),
        &mut on_progress,
    )?;
    bar.finish_and_clear();
    let write = |name: &str, bytes: &[u8]| {
        let path = args.out.join(name);
        ferrochem_train::checkpoint::write_atomically(&path, bytes)
            .with_context(|| format!("cannot write {}", path.display()))
    };
    write("metrics.jsonl", metrics_lines.as_bytes())?;

    let model = state.model().clone();
    let saved = SavedModel {
        format_version: 1,
        model,
        radius: args.radius,
        bits: args.bits,
        tasks: tasks.clone(),
        task_type: args.task_type,
        scaling: scaling.clone(),
    };
    ferrochem_train::checkpoint::save(
        ferrochem_train::checkpoint::FileKind::Model,
        &saved,
        &args.out.join("model.bin"),
    )?;
    write("config.json", serde_json::to_string_pretty(args)?.as_bytes())?;

    // Scores in the original units (regression) for every part.
    let evaluate = |data: &InMemoryDataset| -> anyhow::Result<Scores> {
        let mut predictions = predict_dataset(state.model(), data, 1024)?;
        let (mut targets, mask) = labels_of(data);
        if let Some(scaling) = &scaling {
            scaling.undo(&mut predictions);
            scaling.undo(&mut targets);
        }
        Ok(score(&predictions, &targets, &mask, kind, PrcArea::AveragePrecision))
    };
    let train_scores = evaluate(&train)?;
    let valid_scores = valid.as_ref().map(&evaluate).transpose()?;
    let test_scores = test.as_ref().map(|(t, _, _)| evaluate(t)).transpose()?;
    if let Some((test_data, source, rows)) = &test {
        let mut predictions = predict_dataset(state.model(), test_data, 1024)?;
        if let Some(scaling) = &scaling {
            scaling.undo(&mut predictions);
        }
        let mut csv = format!("smiles,{}\n", tasks.join(","));
        for (i, &row) in rows.iter().enumerate() {
            let values: Vec<String> = predictions.row(i).iter().map(|p| p.to_string()).collect();
            csv.push_str(&format!(
                "\"{}\",{}\n",
                source.table.smiles[row].replace('"', "\"\""),
                values.join(",")
            ));
        }
        write("test_predictions.csv", csv.as_bytes())?;
    }

    let mut rejected: Vec<Value> = main.rejected.clone();
    rejected.extend(valid_file.iter().chain(test_file.iter()).flat_map(|f| f.rejected.clone()));
    let summary = json!({
        "train": scores_json(&train_scores, &tasks, kind),
        "valid": valid_scores.as_ref().map(|s| scores_json(s, &tasks, kind)),
        "test": test_scores.as_ref().map(|s| scores_json(s, &tasks, kind)),
        "best_epoch": state.best_epoch().map(|e| e + 1),
        "rows": {"train": train.n_rows(), "valid": valid.as_ref().map(|v| v.n_rows()), "test": test.as_ref().map(|(t, _, _)| t.n_rows())},
        "rejected": rejected,
        "seed": args.seed,
        "dataset_sha256": main.table.content_sha256,
        "featurizer": format!("ecfp radius {} bits {} (RDKit-compatible Morgan)", args.radius, args.bits),
        "version": env!("CARGO_PKG_VERSION"),
        "commit": option_env!("FERROCHEM_COMMIT").unwrap_or("unknown"),
    });
    write("summary.json", serde_json::to_string_pretty(&summary)?.as_bytes())?;
    print_table(&tasks, kind, &train_scores, valid_scores.as_ref(), test_scores.as_ref());
    println!("ferrochem: model and reports in {}", args.out.display());
    Ok(())
}

fn print_table(
    tasks: &[String],
    kind: TaskKind,
    train: &Scores,
    valid: Option<&Scores>,
    test: Option<&Scores>,
) {
    let mut columns: Vec<(&str, &Scores)> = vec![("train", train)];
    columns.extend(valid.map(|v| ("valid", v)));
    columns.extend(test.map(|t| ("test", t)));
    print_scores(tasks, kind, &columns);
}

/// Prints one row per task and a mean row, one column per scored part.
pub fn print_scores(tasks: &[String], kind: TaskKind, columns: &[(&str, &Scores)]) {
    let metric = if kind == TaskKind::Classification { Metric::RocAuc } else { Metric::Rmse };
    let width = tasks
        .iter()
        .map(|t| t.len())
        .max()
        .unwrap_or(4)
        .max(format!("task ({})", metric.name()).len());
    let cell = |value: Option<f64>| value.map_or("-".to_owned(), |v| format!("{v:.4}"));
    let mut line = format!("{:<width$}", format!("task ({})", metric.name()));
    for (name, _) in columns {
        line.push_str(&format!(" {name:>8}"));
    }
    println!("{line}");
    for (t, name) in tasks.iter().enumerate() {
        let mut line = format!("{name:<width$}");
        for (_, scores) in columns {
            line.push_str(&format!(" {:>8}", cell(scores.per_task[t].get(metric))));
        }
        println!("{line}");
    }
    let mut line = format!("{:<width$}", "mean");
    for (_, scores) in columns {
        line.push_str(&format!(" {:>8}", cell(scores.mean(metric))));
    }
    println!("{line}");
}
