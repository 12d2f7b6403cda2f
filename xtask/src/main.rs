//! Project automation, run as `cargo xtask <command>`.
//!
//! - `train [ARGS]`: the default Tox21 run, `ferrochem train` built in
//!   release mode on the bundled data set; ARGS pass through.
//! - `bench [ARGS]`: the criterion benchmarks, then one summary table;
//!   ARGS go to criterion (a filter such as `matmul/nn`, for instance).
//! - `tidy`: the source checks that `cargo test` also runs.
//!
//! xtask never links the workspace's crates: it spawns cargo, so it builds
//! in seconds and the model code is always optimized.

#![forbid(unsafe_code)]
#![allow(clippy::print_stdout)]

mod bench;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "\
usage: cargo xtask <command> [ARGS]

commands:
  train [ARGS]   run `ferrochem train` (release build) on datasets/tox21.csv.gz;
                 --data and --out are added unless ARGS name them
  bench [ARGS]   run the criterion benchmarks (ARGS go to criterion, e.g. a
                 filter like `matmul/nn`), then print the summary table
  tidy           check the sources: every file opens with //!, no dbg!,
                 every #[ignore] has a reason, no empty FIXME
";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next();
    let rest: Vec<String> = args.collect();
    let result = match command.as_deref() {
        Some("train") => train(&rest),
        Some("bench") => bench::run(&rest),
        Some("tidy") => tidy::run(),
        Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            eprint!("{USAGE}");
            Ok(ExitCode::from(2))
        }
    };
    result.unwrap_or_else(|message| {
        eprintln!("xtask: {message}");
        ExitCode::FAILURE
    })
}

/// The workspace root: xtask's manifest sits one folder below it.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// The cargo that invoked us, so toolchain overrides carry through.
fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(project_root());
    command
}

/// Runs `command` and turns its exit status into ours.
fn run_status(mut command: Command) -> Result<ExitCode, String> {
    let status = command.status().map_err(|err| format!("cannot start {command:?}: {err}"))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

fn train(args: &[String]) -> Result<ExitCode, String> {
    let names = |flag: &str| args.iter().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    let mut full: Vec<String> = args.to_vec();
    if !names("--data") {
        full.extend(["--data".into(), "datasets/tox21.csv.gz".into()]);
    }
    if !names("--out") {
        let out = next_run_dir(&project_root().join("runs"));
        println!("xtask: writing this run to {}", out.display());
        full.extend(["--out".into(), out.to_string_lossy().into_owned()]);
    }
    let mut command = cargo();
    command
        .args(["run", "--quiet", "--release", "--package", "ferrochem", "--", "train"])
        .args(&full);
    run_status(command)
}

/// `runs/run-N` for the smallest N not taken yet.
fn next_run_dir(runs: &Path) -> PathBuf {
    (1..).map(|n| runs.join(format!("run-{n}"))).find(|dir| !dir.exists()).expect("some free name")
}
