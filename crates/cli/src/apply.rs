//! `ferrochem predict` and `ferrochem eval`: a trained model applied to new
//! molecules.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use ferrochem_data::{Input, Matrix, TableOptions, read_smiles_rows, read_table};
use ferrochem_train::checkpoint::{self, FileKind};
use ferrochem_train::metrics::{PrcArea, TaskKind, score};

use crate::train::{MODEL_FORMAT_VERSION, SavedModel, TaskType, input_features, print_scores};

/// Options of `ferrochem predict`.
#[derive(Debug, clap::Args)]
pub struct PredictArgs {
    /// Folder written by `ferrochem train`.
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
    /// Folder written by `ferrochem train`.
    #[arg(long)]
    pub model: PathBuf,
    /// Labelled CSV with the model's task columns.
    #[arg(long)]
    pub data: PathBuf,
    /// Column holding the SMILES.
    #[arg(long, default_value = "smiles")]
    pub smiles_column: String,
}

fn load(dir: &Path) -> anyhow::Result<SavedModel> {
    let path = dir.join("model.bin");
    let saved: SavedModel = checkpoint::load(FileKind::Model, &path)?;
    if saved.format_version != MODEL_FORMAT_VERSION {
        anyhow::bail!(
            "{}: model format {} is not the {} this build reads; retrain with this version",
            path.display(),
            saved.format_version,
            MODEL_FORMAT_VERSION
        );
    }
    Ok(saved)
}

/// Mean and spread of the members' predictions for `rows` (see
/// [`ferrochem_data::featurize::Featurizer::features`]), in the original
/// units, batch by batch.
fn predict(saved: &SavedModel, rows: &[&[u32]]) -> anyhow::Result<(Matrix<f32>, Matrix<f32>)> {
    let n_tasks = saved.tasks.len();
    let mut mean = Vec::with_capacity(rows.len() * n_tasks);
    let mut spread = Vec::with_capacity(rows.len() * n_tasks);
    for chunk in rows.chunks(1024) {
        let features = input_features(saved.fingerprint, saved.bits, chunk)?;
        let (m, s) = saved.predict(&features)?;
        mean.extend_from_slice(m.as_slice());
        spread.extend_from_slice(s.as_slice());
    }
    Ok((Matrix::from_vec(rows.len(), n_tasks, mean), Matrix::from_vec(rows.len(), n_tasks, spread)))
}

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// Runs `ferrochem predict`.
///
/// FIXME: the whole input is read, featurized and predicted before the
/// output is written, so memory grows with the input instead of staying
/// bounded; streaming it in chunks of rows is the way, and needs the CSV
/// reader to hand out records incrementally.
pub fn run_predict(args: &PredictArgs) -> anyhow::Result<()> {
    let saved = load(&args.model)?;
    let path = PathBuf::from(&args.input);
    let input = if args.input == "-" { Input::Stdin } else { Input::Path(&path) };
    let rows = read_smiles_rows(&input, &args.smiles_column)?;
    let smiles: Vec<String> = rows.smiles.iter().map(|(_, s)| s.clone()).collect();
    let features = saved.featurizer().features_of_all(&smiles, &|| ());
    let accepted: Vec<&[u32]> =
        features.iter().filter_map(|f| f.as_ref().ok().map(Vec::as_slice)).collect();
    let (predictions, spread) = predict(&saved, &accepted)?;

    let mut header = vec!["smiles".to_owned()];
    header.extend(rows.identifiers.iter().map(|id| csv_field(&id.name)));
    header.extend(saved.tasks.iter().map(|t| csv_field(t)));
    if args.uncertainty {
        header.extend(saved.tasks.iter().map(|t| csv_field(&format!("{t}_std"))));
    }
    let mut out = header.join(",") + "\n";
    let mut next = 0;
    for (row, feature) in features.iter().enumerate() {
        let mut fields = vec![csv_field(&smiles[row])];
        fields.extend(rows.identifiers.iter().map(|id| csv_field(&id.values[row])));
        match feature {
            Ok(_) => {
                fields.extend(predictions.row(next).iter().map(|p| p.to_string()));
                if args.uncertainty {
                    fields.extend(spread.row(next).iter().map(|s| s.to_string()));
                }
                next += 1;
            }
            Err(err) => {
                log::warn!(
                    "{}:{}: SMILES rejected, predictions left empty: {err}",
                    rows.source_name,
                    rows.smiles[row].0
                );
                let n_empty = saved.tasks.len() * if args.uncertainty { 2 } else { 1 };
                fields.extend(std::iter::repeat_n(String::new(), n_empty));
            }
        }
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    match args.output.as_deref() {
        None | Some("-") => std::io::stdout()
            .lock()
            .write_all(out.as_bytes())
            .context("cannot write to standard output")?,
        Some(file) => {
            ferrochem_train::checkpoint::write_atomically(Path::new(file), out.as_bytes())
                .with_context(|| format!("cannot write {file}"))?
        }
    }
    Ok(())
}

/// Runs `ferrochem eval`.
pub fn run_eval(args: &EvalArgs) -> anyhow::Result<()> {
    let saved = load(&args.model)?;
    let options = TableOptions {
        smiles_column: args.smiles_column.clone(),
        tasks: Some(saved.tasks.clone()),
        weights_column: None,
    };
    let table = read_table(&Input::Path(&args.data), &options)?;
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
    let (predictions, _) = predict(&saved, &accepted)?;
    let kind = if saved.task_type == TaskType::Classification {
        TaskKind::Classification
    } else {
        TaskKind::Regression
    };
    let scores = score(&predictions, &table.targets, &table.mask, kind, PrcArea::AveragePrecision);
    print_scores(&saved.tasks, kind, &[("data", &scores)]);
    Ok(())
}
