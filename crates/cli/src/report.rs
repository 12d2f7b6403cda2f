//! What `ferrochem train` writes and prints about a run: `metrics.jsonl`,
//! `summary.json` and the test predictions, a cross-validation's summary,
//! and the tables at the end.

use std::path::Path;

use anyhow::Context;
use ferrochem_data::weights::TargetScaling;
use ferrochem_data::{Matrix, Table};
use ferrochem_train::EpochRecord;
use ferrochem_train::metrics::{Metric, Scores, TaskKind};
use serde_json::{Value, json};

/// `metrics.jsonl`: a line per member and epoch, validation scores in the
/// data's units.
pub(crate) fn metrics_jsonl(
    histories: &[&[EpochRecord]],
    scaling: Option<&TargetScaling>,
    tasks: &[String],
    kind: TaskKind,
) -> String {
    let mut lines = String::new();
    for (member, history) in histories.iter().enumerate() {
        for record in *history {
            let mut line = json!({
                "member": member,
                "epoch": record.epoch + 1,
                "train_loss": record.train_loss,
                "train_seconds": record.train_seconds,
                "seconds": record.seconds,
                "learning_rate": record.learning_rate,
            });
            if let Some(valid) = &record.valid {
                line["valid"] = scores_json(&in_data_units(valid, scaling), tasks, kind);
            }
            lines.push_str(&line.to_string());
            lines.push('\n');
        }
    }
    lines
}

/// `test_predictions.csv` in the layout `ferrochem predict` writes: the
/// SMILES, the identifier columns, then a prediction per task, for the
/// rows `rows` of `source`.
pub(crate) fn test_predictions_csv(
    source: &Table,
    rows: &[usize],
    tasks: &[String],
    predictions: &Matrix<f32>,
) -> String {
    let lines = rows.iter().enumerate().map(|(i, &row)| (row, Vec::new(), predictions.row(i)));
    predictions_csv(source, &[], tasks, lines)
}

/// `cv_predictions.csv` of a cross-validation: every row of `source` in
/// order, with the fold that tested it and that fold's predictions, laid
/// out as [`test_predictions_csv`] with a `fold` column after the
/// identifiers.
pub(crate) fn cv_predictions_csv(
    source: &Table,
    tasks: &[String],
    out_of_fold: &[(usize, Vec<f32>)],
) -> String {
    let lines = out_of_fold
        .iter()
        .enumerate()
        .map(|(row, (fold, predictions))| (row, vec![fold.to_string()], predictions.as_slice()));
    predictions_csv(source, &["fold"], tasks, lines)
}

/// Predictions as CSV: a header of `smiles`, the identifier columns of
/// `source`, the `extra` columns and the tasks, then a line per
/// `(row of source, extra values, predictions)`.
fn predictions_csv<'p>(
    source: &Table,
    extra: &[&str],
    tasks: &[String],
    lines: impl Iterator<Item = (usize, Vec<String>, &'p [f32])>,
) -> String {
    let identifiers = &source.identifiers;
    let names = identifiers.iter().map(|id| id.name.as_str());
    let mut csv = predictions_header(names, extra, tasks, false);
    for (row, extra_values, predictions) in lines {
        let values = identifiers.iter().map(|id| id.values[row].as_str());
        let predicted = Predicted::Values { mean: predictions, spread: None };
        csv.push_str(&prediction_line(&source.smiles[row], values, &extra_values, predicted));
    }
    csv
}

/// The header line of a predictions CSV, the layout that `predict`,
/// `test_predictions.csv` and `cv_predictions.csv` share: `smiles`, the
/// identifier columns, any `extra` columns, a column per task, and with
/// `spread` a `<task>_std` column per task.
pub(crate) fn predictions_header<'s>(
    identifiers: impl IntoIterator<Item = &'s str>,
    extra: &[&str],
    tasks: &[String],
    spread: bool,
) -> String {
    let mut header = vec!["smiles".to_owned()];
    header.extend(identifiers.into_iter().map(csv_field));
    header.extend(extra.iter().map(|name| csv_field(name)));
    header.extend(tasks.iter().map(|t| csv_field(t)));
    if spread {
        header.extend(tasks.iter().map(|t| csv_field(&format!("{t}_std"))));
    }
    header.join(",") + "\n"
}

/// The task columns of one line of a predictions CSV.
pub(crate) enum Predicted<'a> {
    /// The prediction per task, and the members' spread when asked.
    Values { mean: &'a [f32], spread: Option<&'a [f32]> },
    /// A molecule that could not be read: `n_columns` empty cells.
    Rejected { n_columns: usize },
}

/// One line of a predictions CSV, laid out as [`predictions_header`]
/// says, with its line break.
pub(crate) fn prediction_line<'s>(
    smiles: &str,
    identifiers: impl IntoIterator<Item = &'s str>,
    extra: &[String],
    predicted: Predicted<'_>,
) -> String {
    let mut fields = vec![csv_field(smiles)];
    fields.extend(identifiers.into_iter().map(csv_field));
    fields.extend(extra.iter().cloned());
    match predicted {
        Predicted::Values { mean, spread } => {
            fields.extend(mean.iter().map(f32::to_string));
            fields.extend(spread.into_iter().flatten().map(f32::to_string));
        }
        Predicted::Rejected { n_columns } => {
            fields.extend(std::iter::repeat_n(String::new(), n_columns));
        }
    }
    fields.join(",") + "\n"
}

/// Writes `bytes` to `dir/name` atomically: the file appears whole or not
/// at all.
pub(crate) fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let path = dir.join(name);
    ferrochem_train::checkpoint::write_atomically(&path, bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The JSON of one part's scores, as `summary.json` and `metrics.jsonl`
/// give them: the means, then each task's scores by name.
pub(crate) fn scores_json(scores: &Scores, tasks: &[String], kind: TaskKind) -> Value {
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

/// Regression scores computed on standardized targets, in the data's
/// units: errors scale with each task's spread, R² does not change.
fn in_data_units(scores: &Scores, scaling: Option<&TargetScaling>) -> Scores {
    let Some(scaling) = scaling else { return scores.clone() };
    let mut scores = scores.clone();
    for (task, std) in scores.per_task.iter_mut().zip(&scaling.std) {
        task.rmse = task.rmse.map(|v| v * std);
        task.mae = task.mae.map(|v| v * std);
    }
    scores
}

/// `value` as a CSV field, quoted when it holds a separator, quote or
/// line break.
pub(crate) fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// The mean scores of the parts of a summary, by part name.
fn headline_keys(classification: bool) -> [&'static str; 2] {
    if classification { ["mean_roc_auc", "mean_prc_auc"] } else { ["mean_rmse", "mean_r2"] }
}

/// `summary.json` of a cross-validation: each fold's summary, and the mean
/// and standard deviation over folds of every headline and per-task score
/// of each part.
pub(crate) fn fold_summary(folds: &[Value], tasks: &[String], classification: bool) -> Value {
    let stats = |values: Vec<f64>| -> Value {
        if values.is_empty() {
            return Value::Null;
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        json!({"mean": mean, "std": std})
    };
    let task_keys: &[&str] =
        if classification { &["roc_auc", "prc_auc"] } else { &["rmse", "mae", "r2"] };
    let mut parts = serde_json::Map::new();
    for part in ["train", "valid", "test"] {
        let mut entry = serde_json::Map::new();
        let mut keys = headline_keys(classification).to_vec();
        if !classification {
            keys.push("mean_mae");
        }
        for key in keys {
            entry.insert(
                key.to_owned(),
                stats(folds.iter().filter_map(|f| f[part][key].as_f64()).collect()),
            );
        }
        let mut per_task = serde_json::Map::new();
        for task in tasks {
            let mut scores = serde_json::Map::new();
            for key in task_keys {
                scores.insert(
                    (*key).to_owned(),
                    stats(
                        folds
                            .iter()
                            .filter_map(|f| f[part]["per_task"][task][key].as_f64())
                            .collect(),
                    ),
                );
            }
            per_task.insert(task.clone(), Value::Object(scores));
        }
        entry.insert("per_task".to_owned(), Value::Object(per_task));
        parts.insert(part.to_owned(), Value::Object(entry));
    }
    let first = &folds[0];
    json!({
        "folds": folds,
        "mean_over_folds": parts,
        "seed": first["seed"],
        "dataset_sha256": first["dataset_sha256"],
        "featurizer": first["featurizer"],
        "version": first["version"],
        "commit": first["commit"],
    })
}

pub(crate) fn print_fold_table(folds: &[Value], classification: bool) {
    let keys = headline_keys(classification);
    println!(
        "{:<6} {:>14} {:>14} {:>14} {:>14}",
        "fold",
        format!("valid {}", &keys[0][5..]),
        format!("test {}", &keys[0][5..]),
        format!("valid {}", &keys[1][5..]),
        format!("test {}", &keys[1][5..])
    );
    let cell = |v: &Value| v.as_f64().map_or("-".to_owned(), |v| format!("{v:.4}"));
    let mut columns: [Vec<f64>; 4] = Default::default();
    for (i, fold) in folds.iter().enumerate() {
        let values = [
            &fold["valid"][keys[0]],
            &fold["test"][keys[0]],
            &fold["valid"][keys[1]],
            &fold["test"][keys[1]],
        ];
        for (column, value) in columns.iter_mut().zip(values) {
            column.extend(value.as_f64());
        }
        println!(
            "{:<6} {:>14} {:>14} {:>14} {:>14}",
            i + 1,
            cell(values[0]),
            cell(values[1]),
            cell(values[2]),
            cell(values[3])
        );
    }
    let mut line = format!("{:<6}", "mean");
    for column in &columns {
        // A fold whose part has no task with both classes has no score;
        // the mean is over the folds that have one, and "-" if none does.
        let cell = if column.is_empty() {
            "-".to_owned()
        } else {
            let n = column.len() as f64;
            let mean = column.iter().sum::<f64>() / n;
            let std = (column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
            format!("{mean:.4} ± {std:.4}")
        };
        line.push_str(&format!(" {cell:>14}"));
    }
    println!("{line}");
}

/// The per-task table of a run's summary.
pub(crate) fn print_summary_table(tasks: &[String], summary: &Value) {
    let regression = summary["train"].get("mean_rmse").is_some();
    let (task_key, mean_key, label) = if regression {
        ("rmse", "mean_rmse", "rmse")
    } else {
        ("roc_auc", "mean_roc_auc", "roc-auc")
    };
    let parts: Vec<&str> =
        ["train", "valid", "test"].into_iter().filter(|p| !summary[*p].is_null()).collect();
    let header = format!("task ({label})");
    let width = tasks.iter().map(|t| t.len()).max().unwrap_or(4).max(header.len());
    let cell = |v: &Value| v.as_f64().map_or("-".to_owned(), |v| format!("{v:.4}"));
    let mut line = format!("{header:<width$}");
    for part in &parts {
        line.push_str(&format!(" {part:>8}"));
    }
    println!("{line}");
    for task in tasks {
        let mut line = format!("{task:<width$}");
        for part in &parts {
            line.push_str(&format!(" {:>8}", cell(&summary[*part]["per_task"][task][task_key])));
        }
        println!("{line}");
    }
    let mut line = format!("{:<width$}", "mean");
    for part in &parts {
        line.push_str(&format!(" {:>8}", cell(&summary[*part][mean_key])));
    }
    println!("{line}");
}
