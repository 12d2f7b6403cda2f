//! `ferrochem predict` and `ferrochem eval`: a trained model applied to new
//! molecules.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use ferrochem_data::container::AtomicFile;
use ferrochem_data::stream::SmilesStream;
use ferrochem_data::{AbsentTasks, Matrix, TableOptions, read_table};
use ferrochem_train::metrics::{Metric, PrcArea, Scores, TaskKind, score};

use crate::input_of;
use crate::model_file::{SavedModel, load};
use crate::report::{Predicted, prediction_line, predictions_header};
use crate::train::{TaskType, warn_skipped};

/// Options of `ferrochem predict`.
#[derive(Debug, clap::Args)]
pub struct PredictArgs {
    /// Folder written by `ferrochem train`, or the `model.bin` in it.
    #[arg(long)]
    pub model: PathBuf,
    /// CSV with a SMILES column; `-` reads standard input.
    #[arg(short = 'i', long = "input")]
    pub input: String,
    /// Column holding the SMILES.
    #[arg(long, default_value = "smiles")]
    pub smiles_column: String,
    /// Add a `<task>_std` column per task: the spread of the ensemble's
    /// members (0 for a single model).
    #[arg(long)]
    pub uncertainty: bool,
    /// Output CSV; `-` or nothing writes standard output.
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
}

/// Options of `ferrochem eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Folder written by `ferrochem train`, or the `model.bin` in it.
    #[arg(long)]
    pub model: PathBuf,
    /// Labelled CSV with a SMILES column and some or all of the model's task
    /// columns, by name; tasks without a column are left out of the scores.
    /// `-` reads standard input.
    #[arg(long)]
    pub data: PathBuf,
    /// Column holding the SMILES.
    #[arg(long, default_value = "smiles")]
    pub smiles_column: String,
}

/// Mean and spread of the members' predictions for `rows` (see
/// [`ferrochem_data::featurize::Featurizer::features`]), in the original
/// units, batch by batch.
fn predict(saved: &SavedModel, rows: &[&[u32]]) -> anyhow::Result<(Matrix<f32>, Matrix<f32>)> {
    let n_tasks = saved.tasks.len();
    let mut mean = Vec::with_capacity(rows.len() * n_tasks);
    let mut spread = Vec::with_capacity(rows.len() * n_tasks);
    for chunk in rows.chunks(1024) {
        let (m, s) = saved.predict_rows(chunk)?;
        mean.extend_from_slice(m.as_slice());
        spread.extend_from_slice(s.as_slice());
    }
    Ok((Matrix::from_vec(rows.len(), n_tasks, mean), Matrix::from_vec(rows.len(), n_tasks, spread)))
}

/// Where `predict` writes: standard output as it goes, or a file that
/// appears whole when the run succeeds.
enum Output<'a> {
    Stdout(std::io::BufWriter<std::io::StdoutLock<'a>>),
    File(AtomicFile),
}

impl Output<'_> {
    /// Flushes standard output, or puts the file in place.
    fn finish(self) -> std::io::Result<()> {
        match self {
            Output::Stdout(mut out) => out.flush(),
            Output::File(file) => file.commit(),
        }
    }
}

impl Write for Output<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Output::Stdout(out) => out.write(buf),
            Output::File(file) => file.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Output::Stdout(out) => out.flush(),
            Output::File(file) => file.flush(),
        }
    }
}

/// Rows featurized and predicted at a time by `predict`: what bounds its
/// memory, whatever the size of the input.
const PREDICT_CHUNK_ROWS: usize = 4096;

/// Runs `ferrochem predict`, a chunk of rows at a time: read, featurize
/// (in parallel), predict, write, so memory stays bounded by the chunk and
/// the output of a pipe flows as the input does.
pub fn run_predict(args: &PredictArgs) -> anyhow::Result<()> {
    let saved = load(&args.model)?;
    let path = PathBuf::from(&args.input);
    let input = input_of(&path);
    let mut stream = SmilesStream::open(&input, &args.smiles_column)?;
    let featurizer = saved.featurizer();
    let mut output = match args.output.as_deref() {
        None | Some("-") => Output::Stdout(std::io::BufWriter::new(std::io::stdout().lock())),
        Some(file) => Output::File(
            AtomicFile::create(Path::new(file)).with_context(|| format!("cannot write {file}"))?,
        ),
    };
    let out_name = args.output.as_deref().filter(|o| *o != "-").unwrap_or("standard output");
    let write_error =
        |err: std::io::Error| anyhow::Error::new(err).context(format!("cannot write {out_name}"));

    let names = stream.identifier_names().iter().map(String::as_str);
    let header = predictions_header(names, &[], &saved.tasks, args.uncertainty);
    output.write_all(header.as_bytes()).map_err(write_error)?;
    let (mut n_rows, mut n_rejected) = (0usize, 0usize);
    loop {
        let chunk = stream.next_chunk(PREDICT_CHUNK_ROWS)?;
        if chunk.is_empty() {
            break;
        }
        let smiles: Vec<String> = chunk.iter().map(|r| r.smiles.clone()).collect();
        let features = featurizer.features_of_all(&smiles, &|| ());
        let accepted: Vec<&[u32]> =
            features.iter().filter_map(|f| f.as_ref().ok().map(Vec::as_slice)).collect();
        let (predictions, spread) = predict(&saved, &accepted)?;
        let mut next = 0;
        let mut text = String::with_capacity(chunk.len() * 160);
        for (record, feature) in chunk.iter().zip(&features) {
            let predicted = match feature {
                Ok(_) => {
                    let row = next;
                    next += 1;
                    let spread = args.uncertainty.then(|| spread.row(row));
                    Predicted::Values { mean: predictions.row(row), spread }
                }
                Err(err) => {
                    log::warn!(
                        "{}:{}: SMILES rejected, predictions left empty: {err}",
                        stream.source_name(),
                        record.line
                    );
                    n_rejected += 1;
                    let n_columns = saved.tasks.len() * if args.uncertainty { 2 } else { 1 };
                    Predicted::Rejected { n_columns }
                }
            };
            let identifiers = record.identifiers.iter().map(String::as_str);
            text.push_str(&prediction_line(&record.smiles, identifiers, &[], predicted));
        }
        n_rows += chunk.len();
        output.write_all(text.as_bytes()).map_err(write_error)?;
    }
    output.finish().map_err(write_error)?;
    log::info!("{}: {n_rows} rows predicted, {n_rejected} rejected", stream.source_name());
    Ok(())
}

/// Runs `ferrochem eval` on the model's tasks that the file has columns
/// for; the others are named in a warning and left out of the mean.
pub fn run_eval(args: &EvalArgs) -> anyhow::Result<()> {
    let saved = load(&args.model)?;
    let options = TableOptions {
        smiles_column: args.smiles_column.clone(),
        tasks: Some(saved.tasks.clone()),
        absent_tasks: AbsentTasks::Skip,
        weights_column: None,
        binary_labels: saved.task_type == TaskType::Classification,
    };
    let table = read_table(&input_of(&args.data), &options)?;
    warn_skipped(&table);
    let absent: Vec<&str> =
        saved.tasks.iter().filter(|t| !table.task_names.contains(t)).map(String::as_str).collect();
    if !absent.is_empty() {
        log::warn!(
            "{}: no column for task(s) {}; scoring the other {}",
            table.source_name,
            absent.join(", "),
            table.task_names.len()
        );
    }
    let features = saved.featurizer().features_of_all(&table.smiles, &|| ());
    let keep: Vec<usize> = (0..features.len()).filter(|&i| features[i].is_ok()).collect();
    for (i, feature) in features.iter().enumerate() {
        if let Err(err) = feature {
            log::warn!("{}:{}: SMILES rejected: {err}", table.source_name, table.lines[i]);
        }
    }
    let table = table.select(&keep);
    let accepted: Vec<&[u32]> =
        features.iter().filter_map(|f| f.as_ref().ok().map(Vec::as_slice)).collect();
    let (all_tasks, _) = predict(&saved, &accepted)?;
    // The model predicts each of its tasks; keep those the file labels, in
    // the table's order.
    let columns: Vec<usize> = table
        .task_names
        .iter()
        .map(|t| saved.tasks.iter().position(|s| s == t).expect("only the model's tasks are read"))
        .collect();
    let predictions =
        Matrix::from_fn(all_tasks.nrows(), columns.len(), |row, c| all_tasks[(row, columns[c])]);
    let kind = if saved.task_type == TaskType::Classification {
        TaskKind::Classification
    } else {
        TaskKind::Regression
    };
    let scores = score(&predictions, &table.targets, &table.mask, kind, PrcArea::AveragePrecision);
    print!("{}", eval_table(&table.task_names, kind, &scores));
    Ok(())
}

/// The table `eval` prints: per task, how many rows are labelled and every
/// metric of the task kind, then the metrics' means over the tasks.
fn eval_table(tasks: &[String], kind: TaskKind, scores: &Scores) -> String {
    let metrics: &[Metric] = match kind {
        TaskKind::Classification => &[Metric::RocAuc, Metric::PrcAuc],
        TaskKind::Regression => &[Metric::Rmse, Metric::Mae, Metric::R2],
    };
    let width = tasks.iter().map(String::len).chain([4]).max().unwrap_or(4);
    let cell = |value: Option<f64>| value.map_or("-".to_owned(), |v| format!("{v:.4}"));
    let mut text = format!("{:<width$} {:>9}", "task", "labelled");
    for metric in metrics {
        text.push_str(&format!(" {:>8}", metric.name()));
    }
    text.push('\n');
    for (name, task) in tasks.iter().zip(&scores.per_task) {
        text.push_str(&format!("{name:<width$} {:>9}", task.n_labelled));
        for &metric in metrics {
            text.push_str(&format!(" {:>8}", cell(task.get(metric))));
        }
        text.push('\n');
    }
    text.push_str(&format!("{:<width$} {:>9}", "mean", ""));
    for &metric in metrics {
        text.push_str(&format!(" {:>8}", cell(scores.mean(metric))));
    }
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eval_table_gives_counts_every_metric_and_their_means() {
        let targets = Matrix::from_vec(4, 2, vec![1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
        let mask = Matrix::from_vec(4, 2, vec![1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
        let predictions = Matrix::from_vec(4, 2, vec![0.9, 0.2, 0.1, 0.5, 0.8, 0.4, 0.3, 0.6]);
        let kind = TaskKind::Classification;
        let scores = score(&predictions, &targets, &mask, kind, PrcArea::AveragePrecision);
        let tasks = ["a".to_owned(), "bb".to_owned()];
        // Task bb has one positive, ranked second of three.
        let expected = "\
task  labelled  roc_auc  prc_auc
a            4   1.0000   1.0000
bb           3   0.5000   0.5000
mean             0.7500   0.7500
";
        assert_eq!(eval_table(&tasks, kind, &scores), expected);
    }
}
