//! The `ferrochem` command-line program.
//!
//! `train` fits a multitask network on a CSV of SMILES and labels and
//! writes the model and its reports; `predict` and `eval` apply it;
//! `featurize` writes the ECFP bits of every SMILES in a CSV.

#![forbid(unsafe_code)]
#![allow(clippy::print_stdout)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use ferrochem_chem::{EcfpOptions, ReadOptions, SmilesError, ValenceTable};
use ferrochem_data::Input;
use ferrochem_kernels::subnormal::{Subnormals, pool_builder, set_subnormals};

mod apply;
mod model_file;
mod plots;
mod report;
mod train;
use ferrochem_data::featurize::{featurize_bits, featurize_counts, read_column};

/// A training step allocates and frees a few dozen matrices of 100 KiB to
/// 4 MiB. glibc's allocator may serve such sizes with fresh mappings and
/// unmap them when freed, so that a step pays page faults for memory it
/// just released (a ReLU over a 50 × 1000 batch recorded alone takes 76 µs
/// instead of 13); over whole training steps it adapts and comes within a
/// few percent. mimalloc keeps freed memory for reuse from the start.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Multitask networks on molecular fingerprints.
#[derive(Debug, Parser)]
#[command(name = "ferrochem", version, about, long_about = None, args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the ECFP bits of every SMILES in a CSV, one line per data row:
    /// `ROW<TAB>BITS`, ROW the 0-based data row (header excluded), BITS the
    /// on-bit indices ascending and comma-separated (with --counts,
    /// `INDEX:COUNT` pairs), or `!` and the reason for a rejected SMILES.
    Featurize(FeaturizeArgs),
    /// Train a multitask network on a CSV of SMILES and labels.
    Train(Box<train::TrainArgs>),
    /// Predict every task for the SMILES of a CSV with a trained model.
    Predict(apply::PredictArgs),
    /// Print the metrics of a trained model on a labelled CSV.
    Eval(apply::EvalArgs),
}

#[derive(Debug, clap::Args)]
struct FeaturizeArgs {
    /// Input CSV, plain or gzipped; `-` reads standard input.
    #[arg(short = 'i', long = "input")]
    input: String,
    /// Column holding the SMILES.
    #[arg(long, default_value = "smiles")]
    smiles_column: String,
    /// ECFP radius (2 gives ECFP4).
    #[arg(long, default_value_t = 2)]
    radius: u32,
    /// Length of the folded bit vector.
    #[arg(long, default_value_t = 1024, value_parser = train::at_least::<u32, 1>)]
    bits: u32,
    /// Which RDKit valence table decides what is rejected: `current`
    /// (2024.09 and later) or `legacy` (2024.03 and earlier).
    #[arg(long, value_enum, default_value_t = Valences::Current)]
    valence_table: Valences,
    /// Write how many environments set each bit, as `INDEX:COUNT`, the
    /// fingerprint `train --counts` reads.
    #[arg(long)]
    counts: bool,
    /// Output file, written atomically; `-` writes standard output.
    #[arg(short = 'o', long = "output")]
    output: String,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Valences {
    Current,
    Legacy,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_target(false)
        .init();
    let args = match expand_config(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(err) => {
            eprintln!("ferrochem: error: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    let cli = Cli::parse_from(args);
    match run(cli) {
        Ok(code) => code,
        // The reader of our standard output went away (`ferrochem predict
        // ... | head`): the pipeline got what it asked for, so stop quietly
        // as other Unix filters do.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ferrochem: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Turns `train --config FILE` into flags: each key of the JSON object is a
/// long flag name with underscores (`learning_rate` is `--learning-rate`),
/// and its flags go before those of the command line, which therefore
/// override them.
fn expand_config(args: Vec<std::ffi::OsString>) -> anyhow::Result<Vec<std::ffi::OsString>> {
    if args.get(1).and_then(|a| a.to_str()) != Some("train") {
        return Ok(args);
    }
    let mut config_path = None;
    for (idx, arg) in args.iter().enumerate() {
        match arg.to_str() {
            Some("--config") => config_path = args.get(idx + 1).cloned(),
            Some(other) if other.starts_with("--config=") => {
                config_path = Some(other["--config=".len()..].into())
            }
            _ => {}
        }
    }
    let Some(path) = config_path else { return Ok(args) };
    let path = PathBuf::from(path);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let config: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a JSON object", path.display()))?;
    // Checked here rather than left to clap, whose complaint would name a
    // flag the user never typed and not the file the key is in.
    let known: Vec<String> = Cli::command()
        .find_subcommand("train")
        .expect("train is a subcommand")
        .get_arguments()
        .filter_map(|arg| arg.get_long())
        .filter(|&long| long != "config")
        .map(|long| long.replace('-', "_"))
        .collect();
    let mut flags: Vec<std::ffi::OsString> = Vec::new();
    for (key, value) in config {
        if !known.iter().any(|k| *k == key.replace('-', "_")) {
            let closest = known
                .iter()
                .map(|k| (strsim::jaro_winkler(k, &key), k))
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .filter(|&(similarity, _)| similarity > 0.8);
            match closest {
                Some((_, k)) => {
                    bail!("{}: unknown option '{key}'; did you mean '{k}'?", path.display())
                }
                None => bail!(
                    "{}: unknown option '{key}'; the options are the long flags of \
                     `ferrochem train --help` with underscores, such as 'learning_rate'",
                    path.display()
                ),
            }
        }
        let flag = format!("--{}", key.replace('_', "-"));
        let text = match value {
            serde_json::Value::Bool(value) => value.to_string(),
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => s,
            serde_json::Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        };
        flags.push(flag.into());
        flags.push(text.into());
    }
    let mut expanded = args[..2].to_vec();
    expanded.extend(flags);
    expanded.extend(args[2..].iter().cloned());
    Ok(expanded)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let threads = match &cli.command {
        Command::Train(args) => args.threads,
        _ => None,
    };
    start_threads(threads)?;
    match cli.command {
        Command::Featurize(args) => featurize(&args).map(|()| ExitCode::SUCCESS),
        Command::Train(args) => train::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Predict(args) => apply::run_predict(&args).map(|()| ExitCode::SUCCESS),
        Command::Eval(args) => apply::run_eval(&args).map(|()| ExitCode::SUCCESS),
    }
}

/// Builds rayon's global pool, of `threads` workers or by default
/// `RAYON_NUM_THREADS` or one per core, with this thread and every worker
/// flushing subnormal numbers to zero. Weights that an L2 penalty drives
/// toward zero otherwise fill Adam's moments with subnormals, which some
/// processors compute a hundred times slower; and all threads flush alike,
/// so results do not depend on which thread computed what.
fn start_threads(threads: Option<usize>) -> anyhow::Result<()> {
    set_subnormals(Subnormals::FlushToZero);
    pool_builder(threads.unwrap_or(0), Subnormals::FlushToZero)
        .build_global()
        .context("cannot start the worker threads")
}

/// The input a path names: `-` is standard input.
pub(crate) fn input_of(path: &Path) -> Input<'_> {
    if path == Path::new("-") { Input::Stdin } else { Input::Path(path) }
}

fn featurize(args: &FeaturizeArgs) -> anyhow::Result<()> {
    let path = PathBuf::from(&args.input);
    let input = input_of(&path);
    let started = Instant::now();
    let cells = read_column(&input, &args.smiles_column)?;
    let smiles: Vec<String> = cells.iter().map(|(_, s)| s.clone()).collect();
    let options = EcfpOptions { radius: args.radius, n_bits: args.bits };
    let read = ReadOptions {
        valence_table: match args.valence_table {
            Valences::Current => ValenceTable::Current,
            Valences::Legacy => ValenceTable::Legacy,
        },
    };
    let results: Vec<Result<Vec<String>, SmilesError>> = if args.counts {
        let counted =
            |pairs: Vec<(u32, u32)>| pairs.iter().map(|(b, n)| format!("{b}:{n}")).collect();
        featurize_counts(&smiles, options, read).into_iter().map(|r| r.map(counted)).collect()
    } else {
        let listed = |bits: Vec<u32>| bits.iter().map(u32::to_string).collect();
        featurize_bits(&smiles, options, read).into_iter().map(|r| r.map(listed)).collect()
    };

    let mut out = String::with_capacity(smiles.len() * 120);
    let mut rejected = Vec::new();
    for (row, result) in results.iter().enumerate() {
        match result {
            Ok(fields) => out.push_str(&format!("{row}\t{}\n", fields.join(","))),
            Err(err) => {
                out.push_str(&format!("{row}\t!{err}\n"));
                rejected.push((cells[row].0, err.to_string()));
            }
        }
    }
    if args.output == "-" {
        std::io::stdout()
            .lock()
            .write_all(out.as_bytes())
            .context("cannot write to standard output")?;
    } else {
        let output = PathBuf::from(&args.output);
        ferrochem_train::checkpoint::write_atomically(&output, out.as_bytes())
            .with_context(|| format!("cannot write {}", output.display()))?;
    }

    let name = input.display_name();
    if !rejected.is_empty() {
        eprintln!("{name}: {} of {} SMILES rejected:", rejected.len(), smiles.len());
        for (line, reason) in rejected.iter().take(10) {
            eprintln!("  line {line}: {reason}");
        }
        if rejected.len() > 10 {
            eprintln!("  … and {} more", rejected.len() - 10);
        }
    }
    log::info!(
        "{name}: featurized {} SMILES in {:.3} s",
        smiles.len(),
        started.elapsed().as_secs_f64()
    );
    if smiles.is_empty() {
        bail!("{name}: no data rows");
    }
    Ok(())
}
