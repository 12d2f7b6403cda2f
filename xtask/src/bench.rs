//! `cargo xtask bench`: run criterion, then summarize its results.
//!
//! Criterion leaves `new/benchmark.json` (the benchmark's id and
//! throughput) and `new/sample.json` (iteration counts and total
//! nanoseconds of each sample) for every benchmark under `target/criterion`. Benchmark ids follow
//! `group/form/shape/implementation/tN`; this module pairs the
//! implementations of one shape and thread count into a row.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;

use crate::{cargo, project_root, run_status};

/// One measured benchmark.
struct Measurement {
    /// `matmul/nn`, `sparse/forward`, …
    group: String,
    /// `50x1024x1000`.
    shape: String,
    /// `ours`, `faer`, `loop`, `sparse`, `dense`.
    implementation: String,
    /// `t1`, `t2`.
    threads: String,
    /// Time per iteration of the fastest sample.
    nanos: f64,
    /// FLOPs per iteration.
    flops: f64,
}

impl Measurement {
    fn gflops(&self) -> f64 {
        self.flops / self.nanos
    }
}

pub fn run(args: &[String]) -> Result<ExitCode, String> {
    let mut command = cargo();
    command.args(["bench", "--package", "ferrochem-benches", "--bench", "main", "--"]).args(args);
    let status = run_status(command)?;
    if status != ExitCode::SUCCESS {
        return Ok(status);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"));
    let measurements = collect(&target.join("criterion"))?;
    print!("{}", render(&measurements));
    print!("{}", rdkit_comparison(&measurements));
    let filter = args.iter().find(|a| !a.starts_with('-'));
    if filter.is_none_or(|f| "epoch".contains(f.as_str()) || f.contains("epoch")) {
        print!("{}", epoch_comparison(&target)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// Rounds of the epoch comparison; each round runs ours and PyTorch on one
/// and two threads, back to back, and the fastest epoch of all rounds
/// counts, so a noisy neighbour in one round does not decide the ratio.
const EPOCH_ROUNDS: usize = 2;

/// One Tox21 training epoch (6258 molecules, batch 50, 1024 → 1000 → 12,
/// dropout, Adam) through `ferrochem train`, beside the same network in
/// PyTorch (`benches/python/torch_epoch.py`) when `python3` can import
/// torch; both train on the same fingerprints.
fn epoch_comparison(target: &Path) -> Result<String, String> {
    let root = project_root();
    let mut build = cargo();
    build.args(["build", "--quiet", "--release", "--package", "ferrochem"]);
    if run_status(build)? != ExitCode::SUCCESS {
        return Err("cannot build ferrochem".to_owned());
    }
    let work = target.join("xtask-bench");
    std::fs::create_dir_all(&work).map_err(|err| format!("{}: {err}", work.display()))?;
    let ferrochem =
        target.join("release").join(format!("ferrochem{}", std::env::consts::EXE_SUFFIX));
    let data = root.join("datasets/tox21.csv.gz");
    let features = work.join("tox21_ecfp4.tsv");
    let status = std::process::Command::new(&ferrochem)
        .args(["featurize", "-i"])
        .arg(&data)
        .arg("-o")
        .arg(&features)
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|err| format!("cannot start {}: {err}", ferrochem.display()))?;
    if !status.success() {
        return Err("ferrochem featurize failed".to_owned());
    }
    let ours = |threads: usize| -> Result<f64, String> {
        let out = work.join(format!("epoch-t{threads}"));
        let status = std::process::Command::new(&ferrochem)
            .args(["train", "--epochs", "4", "--threads", &threads.to_string()])
            // The network of the comparison, whatever the defaults are.
            .args(["--layers", "1000", "--dropout", "0.25", "--batch-size", "50"])
            .args(["--optimizer", "adam", "--learning-rate", "1e-3", "--l2", "0"])
            .args(["--ensemble-size", "1", "--counts", "false", "--data"])
            .arg(&data)
            .arg("--out")
            .arg(&out)
            .env("FERROCHEM_CACHE", work.join("cache"))
            .env("RUST_LOG", "error")
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|err| format!("cannot start {}: {err}", ferrochem.display()))?;
        if !status.success() {
            return Err("ferrochem train failed".to_owned());
        }
        let metrics = std::fs::read_to_string(out.join("metrics.jsonl"))
            .map_err(|err| format!("{}: {err}", out.display()))?;
        metrics
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok()?["train_seconds"].as_f64())
            .reduce(f64::min)
            .ok_or_else(|| "metrics.jsonl has no epochs".to_owned())
    };
    let torch = |threads: usize| -> Option<f64> {
        let output = std::process::Command::new("python3")
            .arg(root.join("benches/python/torch_epoch.py"))
            .arg(&features)
            .arg(&data)
            .args(["--threads", &threads.to_string(), "--epochs", "3"])
            .output()
            .ok()
            .filter(|o| o.status.success())?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let line = text.lines().find(|l| l.starts_with("torch: epoch "))?;
        line["torch: epoch ".len()..].split(' ').next()?.parse().ok()
    };
    let mut best: BTreeMap<usize, (f64, Option<f64>)> = BTreeMap::new();
    for _ in 0..EPOCH_ROUNDS {
        for threads in [1, 2] {
            let (ours, torch) = (ours(threads)?, torch(threads));
            let entry = best.entry(threads).or_insert((f64::INFINITY, None));
            entry.0 = entry.0.min(ours);
            entry.1 = match (entry.1, torch) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
    }
    let mut out = String::from(
        "\nOne Tox21 training epoch, 6258 molecules, batch 50, 1024 -> 1000 -> 12, dropout, Adam\n\
         (fastest epoch of each side over the rounds; speed-up = PyTorch / ours)\n",
    );
    for (threads, (ours, torch)) in best {
        match torch {
            Some(torch) => out.push_str(&format!(
                "  t{threads}: ours {:.3} s, PyTorch {:.3} s, {:.1}x faster\n",
                ours,
                torch,
                torch / ours
            )),
            None => out.push_str(&format!(
                "  t{threads}: ours {ours:.3} s (no Python with torch found: `pip install torch` to compare)\n"
            )),
        }
    }
    Ok(out)
}

fn collect(root: &Path) -> Result<Vec<Measurement>, String> {
    let mut files = Vec::new();
    find_benchmark_files(root, &mut files);
    let mut measurements = Vec::new();
    for file in files {
        if let Some(measurement) = read_measurement(&file)? {
            measurements.push(measurement);
        }
    }
    Ok(measurements)
}

fn find_benchmark_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            find_benchmark_files(&path, found);
        } else if path.ends_with("new/benchmark.json") {
            found.push(path);
        }
    }
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|err| format!("{}: {err}", path.display()))?;
    serde_json::from_str(&text).map_err(|err| format!("{}: {err}", path.display()))
}

/// Reads one benchmark; `None` for ids that are not ours (another layout).
fn read_measurement(benchmark_file: &Path) -> Result<Option<Measurement>, String> {
    let benchmark = read_json(benchmark_file)?;
    let sample = read_json(&benchmark_file.with_file_name("sample.json"))?;
    let Some(full_id) = benchmark["full_id"].as_str() else { return Ok(None) };
    let parts: Vec<&str> = full_id.split('/').collect();
    let [kind, form, shape, implementation, threads] = parts[..] else { return Ok(None) };
    let (Some(nanos), Some(flops)) =
        (fastest_sample(&sample), benchmark["throughput"]["Elements"].as_f64())
    else {
        return Ok(None);
    };
    Ok(Some(Measurement {
        group: format!("{kind}/{form}"),
        shape: shape.to_owned(),
        implementation: implementation.to_owned(),
        threads: threads.to_owned(),
        nanos,
        flops,
    }))
}

/// Time per iteration of the fastest of criterion's samples. Interference
/// from other work on a shared machine only ever adds time, so the fastest
/// sample is the closest to what the code itself costs, and comparing two
/// implementations by their fastest samples is fair to both.
fn fastest_sample(sample: &Value) -> Option<f64> {
    let iters = sample["iters"].as_array()?;
    let times = sample["times"].as_array()?;
    iters
        .iter()
        .zip(times)
        .filter_map(|(n, t)| Some(t.as_f64()? / n.as_f64()?))
        .filter(|per_iter| per_iter.is_finite() && *per_iter > 0.0)
        .min_by(f64::total_cmp)
}

type RowKey = (String, String, String);

fn render(measurements: &[Measurement]) -> String {
    let mut rows: BTreeMap<RowKey, BTreeMap<&str, &Measurement>> = BTreeMap::new();
    for m in measurements {
        let key = (m.group.clone(), m.shape.clone(), m.threads.clone());
        rows.entry(key).or_default().insert(&m.implementation, m);
    }

    let mut out = String::new();
    out.push_str("\nDense matmul, f32 (GFLOP/s; ratio = ours / faer's own matmul)\n");
    out.push_str(&format!(
        "{:<8} {:<18} {:>7} {:>9} {:>9} {:>7} {:>9}\n",
        "form", "shape (MxKxN)", "threads", "ours", "faer", "ratio", "loop"
    ));
    for ((group, shape, threads), by_impl) in &rows {
        let Some(form) = group.strip_prefix("matmul/") else { continue };
        let (Some(ours), Some(faer)) = (by_impl.get("ours"), by_impl.get("faer")) else { continue };
        let naive = by_impl.get("loop").map_or("-".to_owned(), |m| format!("{:.1}", m.gflops()));
        out.push_str(&format!(
            "{:<8} {:<18} {:>7} {:>9.1} {:>9.1} {:>6.0}% {:>9}\n",
            form.to_uppercase(),
            shape,
            &threads[1..],
            ours.gflops(),
            faer.gflops(),
            100.0 * ours.gflops() / faer.gflops(),
            naive
        ));
    }

    out.push_str(
        "\nSparse first layer vs the dense product (time per call; speed-up = dense / sparse)\n",
    );
    out.push_str(&format!(
        "{:<12} {:<18} {:>7} {:>12} {:>12} {:>9}\n",
        "pass", "shape (BxKxN)", "threads", "sparse", "dense", "speed-up"
    ));
    for ((group, shape, threads), by_impl) in &rows {
        let Some(pass) = group.strip_prefix("sparse/") else { continue };
        let (Some(sparse), Some(dense)) = (by_impl.get("sparse"), by_impl.get("dense")) else {
            continue;
        };
        out.push_str(&format!(
            "{:<12} {:<18} {:>7} {:>12} {:>12} {:>8.1}x\n",
            pass,
            shape,
            &threads[1..],
            format_time(sparse.nanos),
            format_time(dense.nanos),
            dense.nanos / sparse.nanos
        ));
    }

    out.push_str("\nOne training step, batch 50, 1024 → 1000 → 12, sparse input, Adam (share = part / full step)\n");
    out.push_str(&format!("{:<18} {:>7} {:>12} {:>8}\n", "part", "threads", "time", "share"));
    for ((group, _, threads), by_impl) in &rows {
        if group != "train/step" {
            continue;
        }
        let Some(full) = by_impl.get("full") else { continue };
        for part in ["forward", "forward_backward", "adam", "full"] {
            let Some(m) = by_impl.get(part) else { continue };
            out.push_str(&format!(
                "{:<18} {:>7} {:>12} {:>7.0}%\n",
                part,
                &threads[1..],
                format_time(m.nanos),
                100.0 * m.nanos / full.nanos
            ));
        }
        for (part, memory) in [("floor", "cache-resident"), ("floor_dram", "main-memory")] {
            let Some(floor) = by_impl.get(part) else { continue };
            // Adam moves 28 bytes per parameter; throughput counts entries.
            let bandwidth = 28.0 * floor.flops / floor.nanos;
            let floor_nanos = 28.0 * full.flops / bandwidth;
            out.push_str(&format!(
                "  {memory} bandwidth {:.0} GB/s moves Adam's {:.1} MB in {}; the full step is {:.1}x that\n",
                bandwidth,
                28.0 * full.flops / 1e6,
                format_time(floor_nanos),
                full.nanos / floor_nanos
            ));
        }
    }
    out
}

/// Times RDKit on the same SMILES through `benches/python/rdkit_ecfp.py`
/// when `python3` can import RDKit, and sets our featurization beside it.
fn rdkit_comparison(measurements: &[Measurement]) -> String {
    let ours: Vec<&Measurement> =
        measurements.iter().filter(|m| m.group == "featurize/ecfp4").collect();
    if ours.is_empty() {
        return String::new();
    }
    let root = project_root();
    let output = std::process::Command::new("python3")
        .arg(root.join("benches/python/rdkit_ecfp.py"))
        .arg(root.join("datasets/tox21.csv.gz"))
        .output();
    let rdkit_seconds = output.ok().filter(|o| o.status.success()).and_then(|o| {
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        let line = text.lines().find(|l| l.starts_with("rdkit:"))?.to_owned();
        line.split(" in ").nth(1)?.trim_end_matches(" s").trim().parse::<f64>().ok()
    });
    let mut out = String::from(
        "\nECFP4 of Tox21's 7831 SMILES, parse + fingerprint (speed-up = RDKit / ours)\n",
    );
    match rdkit_seconds {
        None => out.push_str("  (no Python with RDKit found: `pip install rdkit` to compare)\n"),
        Some(rdkit) => out.push_str(&format!("  RDKit from Python, one process: {:.3} s\n", rdkit)),
    }
    for m in ours {
        let seconds = m.nanos / 1e9;
        let ratio =
            rdkit_seconds.map_or(String::new(), |r| format!(", {:.1}x faster", r / seconds));
        out.push_str(&format!("  ours, {} thread(s): {:.3} s{ratio}\n", &m.threads[1..], seconds));
    }
    out
}

fn format_time(nanos: f64) -> String {
    if nanos >= 1e6 { format!("{:.2} ms", nanos / 1e6) } else { format!("{:.1} µs", nanos / 1e3) }
}
