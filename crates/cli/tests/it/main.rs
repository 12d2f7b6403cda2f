//! The `ferrochem` binary end to end on small files.

use std::path::{Path, PathBuf};
use std::process::Command;

fn ferrochem() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ferrochem"))
}

/// A fresh directory, removed when the value drops.
fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("ferrochem-cli-{name}-")).tempdir().unwrap()
}

/// Forty molecules, two tasks with some labels missing.
fn write_small_csv(dir: &Path) -> PathBuf {
    let smiles = [
        "CCO",
        "c1ccccc1",
        "CC(=O)O",
        "CCN",
        "c1ccncc1",
        "OCC(O)CO",
        "CCCl",
        "c1ccc(O)cc1",
        "CC(C)=O",
        "C1CCCCC1",
    ];
    let mut csv = String::from("smiles,a,b\n");
    for i in 0..40 {
        let b = if i % 3 == 0 { String::new() } else { ((i / 2) % 2).to_string() };
        csv.push_str(&format!("{},{},{}\n", smiles[i % 10], i % 2, b));
    }
    csv.push_str("C1CC,1,0\n");
    let path = dir.join("small.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

#[test]
fn featurize_writes_a_line_per_row() {
    let scratch = temp_dir("featurize");
    let dir = scratch.path();
    let input = write_small_csv(dir);
    let output = dir.join("bits.tsv");
    let status =
        ferrochem().args(["featurize", "-i"]).arg(&input).arg("-o").arg(&output).status().unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&output).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 41);
    assert_eq!(lines[0], "0\t33,80,222,294,386,807");
    assert!(lines[40].starts_with("40\t!ring bond 1"), "{}", lines[40]);

    // With --counts, each bit with the number of environments that set it
    // (RDKit's count fingerprint); phenol (row 7) sets bit 849 five times.
    let counts = dir.join("counts.tsv");
    let status = ferrochem()
        .args(["featurize", "--counts", "-i"])
        .arg(&input)
        .arg("-o")
        .arg(&counts)
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&counts).unwrap();
    let count_lines: Vec<&str> = text.lines().collect();
    assert_eq!(count_lines[0], "0\t33:1,80:1,222:1,294:1,386:1,807:1");
    assert_eq!(
        count_lines[7],
        "7\t64:3,65:2,175:2,356:1,389:1,578:1,726:2,745:1,754:1,807:1,849:5"
    );
    assert_eq!(count_lines[40], lines[40]);
    // The same bits as without --counts, row by row.
    for (plain, counted) in lines.iter().zip(&count_lines).filter(|(p, _)| !p.contains('!')) {
        let (row, pairs) = counted.split_once('\t').unwrap();
        let bits: Vec<&str> = pairs.split(',').map(|p| p.split_once(':').unwrap().0).collect();
        assert_eq!(*plain, format!("{row}\t{}", bits.join(",")));
    }
}

#[test]
fn train_writes_model_and_reports() {
    let scratch = temp_dir("train");
    let dir = scratch.path();
    let input = write_small_csv(dir);
    let out = dir.join("run");
    let result = train_small(&input, &out, &dir.join("cache"), &[]);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    for file in [
        "model.bin",
        "checkpoint.bin",
        "config.json",
        "metrics.jsonl",
        "summary.json",
        "test_predictions.csv",
    ] {
        assert!(out.join(file).exists(), "{file} missing");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    for key in [
        "train",
        "valid",
        "test",
        "best_epoch",
        "rows",
        "rejected",
        "seed",
        "dataset_sha256",
        "featurizer",
        "version",
        "commit",
    ] {
        assert!(summary.get(key).is_some(), "summary lacks {key}");
    }
    assert_eq!(summary["rejected"].as_array().unwrap().len(), 1);
    assert!(summary["train"]["per_task"]["a"].get("roc_auc").is_some());
    assert_eq!(std::fs::read_to_string(out.join("metrics.jsonl")).unwrap().lines().count(), 3);

    // The same seed gives the same model file, byte for byte.
    let again = dir.join("again");
    let status = train_small(&input, &again, &dir.join("cache"), &[]).status;
    assert!(status.success());
    assert_eq!(
        std::fs::read(out.join("model.bin")).unwrap(),
        std::fs::read(again.join("model.bin")).unwrap()
    );

    // split.tsv lists each accepted data row's part (row 40, the rejected
    // SMILES, is left out), and --split-file replays it: the same parts,
    // so the same rows tested.
    let split = std::fs::read_to_string(out.join("split.tsv")).unwrap();
    let entries: Vec<(usize, &str)> = split
        .lines()
        .filter(|l| !l.starts_with('#'))
        .skip(1)
        .map(|l| {
            let (row, part) = l.split_once('\t').unwrap();
            (row.parse().unwrap(), part)
        })
        .collect();
    assert_eq!(entries.iter().map(|e| e.0).collect::<Vec<_>>(), (0..40).collect::<Vec<_>>());
    for (part, n) in ["train", "valid", "test"].iter().zip(["train", "valid", "test"]) {
        let count = entries.iter().filter(|e| e.1 == *part).count();
        assert_eq!(count as u64, summary["rows"][n].as_u64().unwrap(), "{part}");
    }
    let replay = dir.join("replay");
    let split_file = out.join("split.tsv");
    let result = train_small(
        &input,
        &replay,
        &dir.join("cache"),
        &["--split-file", split_file.to_str().unwrap()],
    );
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    assert_eq!(read_json(&replay.join("summary.json"))["rows"], summary["rows"]);
    let tested = |run: &Path| {
        let text = std::fs::read_to_string(run.join("test_predictions.csv")).unwrap();
        let mut smiles: Vec<String> =
            text.lines().skip(1).map(|l| l.split(',').next().unwrap().to_owned()).collect();
        smiles.sort();
        smiles
    };
    assert_eq!(tested(&replay), tested(&out));
    assert_eq!(std::fs::read_to_string(replay.join("split.tsv")).unwrap(), split);

    // predict keeps every row, rejected ones with empty values, and eval
    // prints a table for the labelled file.
    let text = predict_with_uncertainty(&out, &input, &dir.join("predictions.csv"));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "smiles,a,b,a_std,b_std");
    assert_eq!(lines.len(), 42);
    assert_eq!(lines[41], "C1CC,,,,");
    let p: f32 = lines[1].split(',').nth(1).unwrap().parse().unwrap();
    assert!((0.0..=1.0).contains(&p));

    let result =
        ferrochem().args(["eval", "--model"]).arg(&out).arg("--data").arg(&input).output().unwrap();
    assert!(result.status.success());
    let table = String::from_utf8_lossy(&result.stdout);
    assert!(table.lines().last().unwrap().starts_with("mean"), "{table}");
    // The model file itself serves as well as its folder.
    let by_file = ferrochem()
        .args(["eval", "--model"])
        .arg(out.join("model.bin"))
        .arg("--data")
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&by_file.stdout), table);

    // A file with labels for some of the model's tasks scores those alone,
    // and one with none of them is refused by name.
    let labels = std::fs::read_to_string(&input).unwrap();
    let only_b: String = labels
        .lines()
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            format!("{},{}\n", cells[2], cells[0])
        })
        .collect();
    let partial = dir.join("only_b.csv");
    std::fs::write(&partial, only_b).unwrap();
    let eval = |data: &Path| {
        ferrochem().args(["eval", "--model"]).arg(&out).arg("--data").arg(data).output().unwrap()
    };
    let result = eval(&partial);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let partial_table = String::from_utf8_lossy(&result.stdout);
    let rows: Vec<&str> =
        partial_table.lines().map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(rows[1..], ["b", "mean"], "{partial_table}");
    // Task b's row is the one the full file gave.
    let row_of = |text: &str, task: &str| {
        text.lines().find(|l| l.split_whitespace().next() == Some(task)).unwrap().to_owned()
    };
    assert_eq!(row_of(&partial_table, "b"), row_of(&table, "b"));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("no column for task(s) a; scoring the other 1"), "{stderr}");

    let unlabelled = dir.join("unlabelled.csv");
    std::fs::write(&unlabelled, "smiles,c\nCCO,1\n").unwrap();
    let result = eval(&unlabelled);
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("unlabelled.csv:1: none of the task columns ('a', 'b') is in the file"),
        "{stderr}"
    );
}

#[test]
fn train_and_eval_read_standard_input_as_they_read_a_file() {
    let scratch = temp_dir("stdin");
    let dir = scratch.path();
    let input = write_small_csv(dir);
    let cache = dir.join("cache");
    let from_file = dir.join("file");
    assert!(train_small(&input, &from_file, &cache, &[]).status.success());
    let from_stdin = dir.join("stdin");
    let result = train_small_command(Path::new("-"), &from_stdin, &cache, &[])
        .stdin(std::fs::File::open(&input).unwrap())
        .output()
        .unwrap();
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    assert_eq!(
        std::fs::read(from_file.join("model.bin")).unwrap(),
        std::fs::read(from_stdin.join("model.bin")).unwrap()
    );
    let summary = |run: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap()
    };
    assert_eq!(summary(&from_file)["dataset_sha256"], summary(&from_stdin)["dataset_sha256"]);
    // Rejected rows are reported against standard input.
    assert_eq!(summary(&from_stdin)["rejected"][0]["file"], "<stdin>");

    let eval = |data: &str, stdin: std::process::Stdio| {
        ferrochem()
            .args(["eval", "--model"])
            .arg(&from_file)
            .args(["--data", data])
            .stdin(stdin)
            .output()
            .unwrap()
    };
    let piped = eval("-", std::fs::File::open(&input).unwrap().into());
    assert!(piped.status.success(), "{}", String::from_utf8_lossy(&piped.stderr));
    let named = eval(input.to_str().unwrap(), std::process::Stdio::null());
    assert_eq!(piped.stdout, named.stdout);

    let result = train_small_command(Path::new("-"), &dir.join("twice"), &cache, &["--valid", "-"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!result.status.success());
    assert!(
        String::from_utf8_lossy(&result.stderr)
            .contains("only one of --data, --valid and --test can read standard input"),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
}

#[test]
fn config_files_set_options_and_flags_override_them() {
    let scratch = temp_dir("config");
    let dir = scratch.path();
    let input = write_small_csv(dir);
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        r#"{"epochs": 5, "layers": [8, 8], "batch_size": 10, "seed": 3, "counts": false}"#,
    )
    .unwrap();
    let out = dir.join("run");
    let status = ferrochem()
        .args(["train", "--epochs", "2", "--ensemble-size", "1", "--config"])
        .arg(&config)
        .arg("--data")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .env("FERROCHEM_CACHE", dir.join("cache"))
        .status()
        .unwrap();
    assert!(status.success());
    let resolved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(resolved["epochs"], 2, "the command line wins");
    assert_eq!(resolved["layers"], serde_json::json!([8, 8]));
    assert_eq!(resolved["seed"], 3);
    assert_eq!(
        resolved["counts"],
        serde_json::json!([false]),
        "a false in the file turns a default off"
    );
    assert_eq!(std::fs::read_to_string(out.join("metrics.jsonl")).unwrap().lines().count(), 2);

    // A misspelt key is named, with its file and the key meant.
    std::fs::write(&config, r#"{"epochs": 5, "learning_rat": 0.01}"#).unwrap();
    let result = ferrochem()
        .args(["train", "--config"])
        .arg(&config)
        .arg("--data")
        .arg(&input)
        .arg("--out")
        .arg(dir.join("misspelt"))
        .output()
        .unwrap();
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("config.json: unknown option 'learning_rat'"), "{stderr}");
    assert!(stderr.contains("did you mean 'learning_rate'?"), "{stderr}");
}

#[test]
fn option_values_that_cannot_train_are_refused() {
    let scratch = temp_dir("bad-options");
    let dir = scratch.path();
    let input = write_small_csv(dir);
    let out = dir.join("run");
    let cases: [(&[&str], &str); 12] = [
        (&["--batch-size", "0"], "must be at least 1"),
        // A negative number is a value to check, not an unknown flag.
        (&["--l2", "-1"], "'-1' for '--l2 <L2>': must not be negative"),
        (&["--tasks", "a,b,a"], "task 'a' is named more than once"),
        (&["--epochs", "0"], "must be at least 1"),
        (&["--layers", "100,0"], "must be at least 1"),
        (&["--dropout", "1"], "below 1"),
        (&["--learning-rate", "0"], "greater than 0"),
        (&["--l2", "inf"], "finite"),
        (&["--task-type", "regression", "--metric", "roc-auc"], "--metric roc-auc"),
        (&["--bits", "2000000000"], "too many"),
        (&["--split-fractions", "0.8,0.3,0.1"], "--split-fractions: split fractions must lie"),
        (&["--weight-decay", "0.1"], "needs --optimizer adamw"),
    ];
    for (args, reason) in cases {
        let result = ferrochem()
            .args(["train", "--data"])
            .arg(&input)
            .arg("--out")
            .arg(&out)
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(!result.status.success(), "{args:?}");
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!out.exists(), "{args:?}");
    }
}

#[test]
fn an_output_folder_that_is_a_file_is_refused_and_left_alone() {
    let scratch = temp_dir("out-file");
    let dir = scratch.path();
    let input = write_small_csv(dir);
    let out = dir.join("run");
    std::fs::write(&out, "not a folder").unwrap();
    let result =
        ferrochem().args(["train", "--data"]).arg(&input).arg("--out").arg(&out).output().unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success());
    assert!(stderr.contains("this is a file; --out names the folder"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "not a folder");
}

#[test]
fn values_trained_as_classes_are_refused_with_the_flag_that_reads_them() {
    let scratch = temp_dir("values");
    let dir = scratch.path();
    let mut csv = String::from("smiles,logs\n");
    for (i, smiles) in ["CCO", "CCN", "CCC", "c1ccccc1", "CCCl", "CO"].iter().enumerate() {
        csv.push_str(&format!("{smiles},{}\n", -0.5 * i as f64 - 0.25));
    }
    let input = dir.join("values.csv");
    std::fs::write(&input, csv).unwrap();
    let out = dir.join("run");
    let result =
        ferrochem().args(["train", "--data"]).arg(&input).arg("--out").arg(&out).output().unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success());
    assert!(stderr.contains("6 of 6 rows have a label that is neither 0 nor 1"), "{stderr}");
    assert!(stderr.contains("--task-type regression"), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let scratch = temp_dir("missing");
    let dir = scratch.path();
    let (data, model, out) = (dir.join("nonexistent.csv"), dir.join("no-model"), dir.join("out"));
    let train = ferrochem().arg("train").arg("--data").arg(&data).arg("--out").arg(&out).output();
    let predict =
        ferrochem().args(["predict", "--model"]).arg(&model).arg("-i").arg(&data).output();
    for result in [train.unwrap(), predict.unwrap()] {
        assert!(!result.status.success());
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(stderr.contains("nonexistent.csv") || stderr.contains("no-model"), "{stderr}");
        // The operating system's reason appears once, not once per layer
        // of the error chain.
        assert_eq!(stderr.matches("(os error 2)").count(), 1, "{stderr}");
    }
    assert!(!out.exists());
}

#[test]
fn weight_averaging_is_on_by_default_and_can_be_turned_off() {
    let scratch = temp_dir("swa");
    let dir = scratch.path();
    let input = write_small_csv(dir);
    let cache = dir.join("cache");
    let config = |out: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap()
    };
    let model = |out: &Path| std::fs::read(out.join("model.bin")).unwrap();

    let averaged = dir.join("averaged");
    let result = train_small(&input, &averaged, &cache, &[]);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let explicit = dir.join("explicit");
    assert!(train_small(&input, &explicit, &cache, &["--swa-start", "1"]).status.success());
    // Three epochs: the default starts after a third of them.
    assert_eq!(model(&averaged), model(&explicit));
    // config.json writes the defaults that depend on other flags out.
    assert_eq!(config(&averaged)["swa_start"], 1);
    assert_eq!(config(&averaged)["batch_size"], 8);
    assert_eq!(config(&averaged)["metric"], "roc-auc");

    let best = dir.join("best");
    assert!(train_small(&input, &best, &cache, &["--swa-start", "off"]).status.success());
    assert_ne!(model(&best), model(&averaged));
    assert_eq!(config(&best)["swa_start"], "off");

    // Regression keeps the best epoch, on its own batch size and rate.
    let regression = dir.join("regression");
    let result = train_small(&input, &regression, &cache, &["--task-type", "regression"]);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let resolved = config(&regression);
    assert_eq!(resolved["swa_start"], "off");
    assert_eq!(resolved["learning_rate"], 1e-3);
    assert_eq!(resolved["metric"], "rmse");

    let result = train_small(&input, &dir.join("never"), &cache, &["--swa-start", "3"]);
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("--swa-start 3 leaves nothing to average"), "{stderr}");
    let result = train_small(&input, &dir.join("bad"), &cache, &["--swa-start", "soon"]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("'soon' is neither a number of epochs nor 'off'"), "{stderr}");
}

#[test]
fn a_rare_class_lowers_the_default_learning_rate_in_proportion() {
    let scratch = temp_dir("rare");
    let dir = scratch.path();
    let labelled = std::fs::read_to_string(write_small_csv(dir)).unwrap();
    let smiles: Vec<&str> =
        labelled.lines().skip(1).take(10).map(|l| l.split(',').next().unwrap()).collect();
    // One positive in 80 labels: balancing weighs it 80, above the limit
    // of 50 under which the default rate stands.
    let mut rare = String::from("smiles,a\n");
    for i in 0..80 {
        rare.push_str(&format!("{},{}\n", smiles[i % 10], u8::from(i == 0)));
    }
    let input = dir.join("rare.csv");
    std::fs::write(&input, rare).unwrap();
    let cache = dir.join("cache");
    let rate = |name: &str, extra: &[&str]| {
        let out = dir.join(name);
        let result = train_small(&input, &out, &cache, &[&["--split", "index"], extra].concat());
        assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
        let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
        (read_json(&out.join("config.json"))["learning_rate"].as_f64().unwrap(), stderr)
    };
    let (lowered, stderr) = rate("default", &[]);
    assert!((lowered - 1.5e-3 * 50.0 / 80.0).abs() < 1e-15, "{lowered}");
    assert!(stderr.contains("balancing weighs a class of task a 80"), "{stderr}");
    // A rate given, or no balancing, keeps the rate as it is.
    assert_eq!(rate("given", &["--learning-rate", "1e-3"]).0, 1e-3);
    assert_eq!(rate("unweighted", &["--weights", "none"]).0, 1.5e-3);
}

#[test]
fn the_thread_count_does_not_change_the_model_file() {
    let scratch = temp_dir("threads");
    let dir = scratch.path();
    let input = write_small_csv(dir);
    let cache = dir.join("cache");
    // Wide enough that the first layer's update splits over threads, and
    // long enough (800 steps of 8 rows) that the L2 penalty drives the
    // weights no molecule reaches below 1e-19, where their squares are
    // subnormal and the workers' flushing of them comes into play.
    let model = |threads: &str| {
        let out = dir.join(format!("t{threads}"));
        let extra = ["--threads", threads, "--epochs", "200", "--layers", "64"];
        let result = train_small(&input, &out, &cache, &extra);
        assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
        std::fs::read(out.join("model.bin")).unwrap()
    };
    assert!(model("1") == model("2"), "one and two threads wrote different model files");
}

#[test]
fn test_predictions_carry_identifiers_as_predict_writes_them() {
    let scratch = temp_dir("identifiers");
    let dir = scratch.path();
    let labelled = std::fs::read_to_string(write_small_csv(dir)).unwrap();
    let mut named = String::new();
    for (i, line) in labelled.lines().enumerate() {
        let id = if i == 0 { "name".to_owned() } else { format!("mol-{i}") };
        named.push_str(&format!("{id},{line}\n"));
    }
    let input = dir.join("named.csv");
    std::fs::write(&input, named).unwrap();
    let out = dir.join("run");
    let result = train_small(&input, &out, &dir.join("cache"), &[]);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let test = std::fs::read_to_string(out.join("test_predictions.csv")).unwrap();
    let predicted =
        ferrochem().args(["predict", "--model"]).arg(&out).arg("-i").arg(&input).output().unwrap();
    assert!(predicted.status.success());
    let predicted = String::from_utf8(predicted.stdout).unwrap();
    assert_eq!(test.lines().next(), Some("smiles,name,a,b"));
    assert_eq!(predicted.lines().next(), Some("smiles,name,a,b"));
    // Each test row is the row predict writes for that molecule, name and all.
    let test_rows: Vec<&str> = test.lines().skip(1).collect();
    assert!(!test_rows.is_empty());
    for row in test_rows {
        assert!(predicted.lines().any(|line| line == row), "{row} is not among\n{predicted}");
    }
}

fn train_small(input: &Path, out: &Path, cache: &Path, extra: &[&str]) -> std::process::Output {
    train_small_command(input, out, cache, extra).output().unwrap()
}

/// The `ferrochem train` of [`train_small`], not yet run.
fn train_small_command(input: &Path, out: &Path, cache: &Path, extra: &[&str]) -> Command {
    let mut command = ferrochem();
    command
        .args([
            "train",
            "--epochs",
            "3",
            "--layers",
            "16",
            "--batch-size",
            "8",
            "--ensemble-size",
            "1",
            "--data",
        ])
        .arg(input)
        .arg("--out")
        .arg(out)
        .args(extra)
        .env("FERROCHEM_CACHE", cache);
    command
}

/// `ferrochem predict --uncertainty` of `input` with the model in `model`,
/// written to `output`; the file's text.
fn predict_with_uncertainty(model: &Path, input: &Path, output: &Path) -> String {
    let status = ferrochem()
        .args(["predict", "--uncertainty", "--model"])
        .arg(model)
        .arg("-i")
        .arg(input)
        .arg("-o")
        .arg(output)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read_to_string(output).unwrap()
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn an_ensemble_resumes_inside_a_member_and_reports_its_spread() {
    let scratch = temp_dir("ensemble");
    let dir = scratch.path();
    let input = write_small_csv(dir);
    let cache = dir.join("cache");
    let whole = dir.join("whole");
    // Two members on counts and a third on bits, so that the member resumed
    // below reads another encoding than the ones before it.
    let mixed = ["--ensemble-size", "3", "--counts", "true,true,false"];
    let result = train_small(&input, &whole, &cache, &mixed);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let summary = read_json(&whole.join("summary.json"));
    assert_eq!(summary["best_epoch"].as_array().unwrap().len(), 3);
    let featurizer = summary["featurizer"].as_str().unwrap();
    assert!(featurizer.contains("thermometer levels, bits"), "{featurizer}");
    let metrics = std::fs::read_to_string(whole.join("metrics.jsonl")).unwrap();
    let members: Vec<u64> = metrics
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["member"].as_u64().unwrap())
        .collect();
    assert_eq!(members, [0, 0, 0, 1, 1, 1, 2, 2, 2]);
    for plot in ["training.svg", "roc_test.svg"] {
        let svg = std::fs::read_to_string(whole.join(plot)).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<polyline"), "{plot}");
    }

    // Interrupted in the middle of the third member (3 batches an epoch,
    // 9 a member), then resumed: the same model, byte for byte.
    let split = dir.join("split");
    let stopped = train_small_command(&input, &split, &cache, &mixed)
        .env("FERROCHEM_STOP_AFTER_STEPS", "22")
        .output()
        .unwrap();
    assert!(!stopped.status.success());
    assert!(String::from_utf8_lossy(&stopped.stderr).contains("--resume"));
    assert!(!split.join("model.bin").exists());
    let resumed = train_small(&input, &split, &cache, &[&mixed[..], &["--resume"]].concat());
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert_eq!(
        std::fs::read(whole.join("model.bin")).unwrap(),
        std::fs::read(split.join("model.bin")).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(whole.join("metrics.jsonl")).unwrap().lines().count(),
        std::fs::read_to_string(split.join("metrics.jsonl")).unwrap().lines().count()
    );

    // Resuming under other options is refused.
    let other =
        train_small(&input, &split, &cache, &[&mixed[..], &["--resume", "--seed", "9"]].concat());
    assert!(!other.status.success());
    let stderr = String::from_utf8_lossy(&other.stderr);
    assert!(stderr.contains("made with other options (seed: 0 → 9)"), "{stderr}");

    // The members disagree somewhere, and predict says by how much.
    let text = predict_with_uncertainty(&whole, &input, &dir.join("predictions.csv"));
    let spread: f64 = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(3).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    assert!(spread > 0.0, "{text}");
}

/// SIGTERM (as Ctrl-C) in the middle of a run that would last for hours:
/// the run stops with a checkpoint instead of losing the epochs since the
/// last one, says how to resume, and resuming continues from it.
#[cfg(unix)]
#[test]
fn an_interrupted_run_checkpoints_and_resumes() {
    use std::io::{BufRead, BufReader};
    let scratch = temp_dir("interrupt");
    let dir = scratch.path();
    let input = write_small_csv(dir);
    let (out, cache) = (dir.join("out"), dir.join("cache"));
    let long = ["--epochs", "1000000"];
    /// Kills the run when the test ends, however it ends.
    struct Reaper(std::process::Child);
    impl Drop for Reaper {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Reaper(
        train_small_command(&input, &out, &cache, &long)
            .env("RUST_LOG", "info")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Should the log never show the second epoch, a watchdog ends the run
    // so that the test fails instead of waiting for it.
    let reaped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = {
        let (reaped, pid) = (reaped.clone(), child.0.id().to_string());
        move || {
            std::thread::sleep(std::time::Duration::from_secs(120));
            if !reaped.load(std::sync::atomic::Ordering::SeqCst) {
                let _ = Command::new("kill").arg("-KILL").arg(pid).status();
            }
        }
    };
    std::thread::spawn(watchdog);
    let mut stderr = BufReader::new(child.0.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("epoch 2/") {
        line.clear();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
    }
    let killed = Command::new("kill").arg("-TERM").arg(child.0.id().to_string()).status();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.0.wait().unwrap();
    reaped.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(killed.unwrap().success());
    assert!(!status.success());
    assert!(rest.contains("interrupted after") && rest.contains("--resume"), "{rest}");
    assert!(out.join("checkpoint.bin").exists());
    assert!(!out.join("model.bin").exists());

    let resumed = train_small_command(&input, &out, &cache, &[&long[..], &["--resume"]].concat())
        .env("RUST_LOG", "info")
        .env("FERROCHEM_STOP_AFTER_STEPS", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(
        stderr.contains("resuming from") && stderr.contains("stopped after 1 steps"),
        "{stderr}"
    );
}

#[test]
fn resuming_without_a_checkpoint_says_there_is_none() {
    let scratch = temp_dir("no-checkpoint");
    let dir = scratch.path();
    let input = write_small_csv(dir);
    let out = dir.join("out");
    let result = train_small(&input, &out, &dir.join("cache"), &["--resume"]);
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("no checkpoint to resume from"), "{stderr}");
}

#[test]
fn folds_write_a_run_per_fold_and_their_mean() {
    let scratch = temp_dir("folds");
    let dir = scratch.path();
    let input = write_small_csv(dir);
    let out = dir.join("cv");
    let result = train_small(&input, &out, &dir.join("cache"), &["--folds", "3"]);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let summary = read_json(&out.join("summary.json"));
    let folds = summary["folds"].as_array().unwrap();
    assert_eq!(folds.len(), 3);
    let test_rows: u64 = folds.iter().map(|f| f["rows"]["test"].as_u64().unwrap()).sum();
    assert_eq!(test_rows, 40, "every accepted row is tested once");
    for fold in 1..=3 {
        assert!(out.join(format!("fold-{fold}/model.bin")).exists());
        // Each fold's split: its test part is its share of the rows.
        let split = std::fs::read_to_string(out.join(format!("fold-{fold}/split.tsv"))).unwrap();
        let n_test = split.lines().filter(|l| l.ends_with("\ttest")).count() as u64;
        assert_eq!(n_test, folds[fold - 1]["rows"]["test"].as_u64().unwrap());
    }
    let mean = summary["mean_over_folds"]["test"]["mean_roc_auc"]["mean"].as_f64().unwrap();
    let by_hand =
        folds.iter().map(|f| f["test"]["mean_roc_auc"].as_f64().unwrap()).sum::<f64>() / 3.0;
    assert!((mean - by_hand).abs() < 1e-12);
    let table = String::from_utf8_lossy(&result.stdout);
    assert!(table.contains("±"), "{table}");

    // Every accepted row once, in input order, with the fold that tested it
    // and what that fold predicted for it.
    let out_of_fold = std::fs::read_to_string(out.join("cv_predictions.csv")).unwrap();
    let lines: Vec<&str> = out_of_fold.lines().collect();
    assert_eq!(lines[0], "smiles,fold,a,b");
    assert_eq!(lines.len(), 41);
    let input_smiles: Vec<String> = std::fs::read_to_string(&input)
        .unwrap()
        .lines()
        .skip(1)
        .take(40)
        .map(|l| l.split(',').next().unwrap().to_owned())
        .collect();
    for (line, smiles) in lines[1..].iter().zip(&input_smiles) {
        let (molecule, rest) = line.split_once(',').unwrap();
        assert_eq!(molecule, smiles);
        let (fold, predictions) = rest.split_once(',').unwrap();
        let fold_tests =
            std::fs::read_to_string(out.join(format!("fold-{fold}/test_predictions.csv"))).unwrap();
        let tested = format!("{molecule},{predictions}");
        assert!(fold_tests.lines().any(|l| l == tested), "{tested} not in fold {fold}");
    }

    // The run's folder holds a model per fold, not one model; predict
    // says so and where they are.
    let result =
        ferrochem().args(["predict", "--model"]).arg(&out).arg("-i").arg(&input).output().unwrap();
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("this is a cross-validation run (--folds)"), "{stderr}");
    let by_fold = ferrochem()
        .args(["predict", "--model"])
        .arg(out.join("fold-2"))
        .arg("-i")
        .arg(&input)
        .output()
        .unwrap();
    assert!(by_fold.status.success());

    // More folds than rows would leave folds with nothing to test.
    let too_many = train_small(&input, &dir.join("cv41"), &dir.join("cache"), &["--folds", "41"]);
    assert!(!too_many.status.success());
    let message = String::from_utf8_lossy(&too_many.stderr);
    assert!(message.contains("--folds 41") && message.contains("40 usable rows"), "{message}");
}

#[test]
fn counts_the_deepchem_preset_and_schedules_train() {
    let scratch = temp_dir("variants");
    let dir = scratch.path();
    let input = write_small_csv(dir);
    let cache = dir.join("cache");
    for (name, extra) in [
        ("counts", &["--counts"][..]),
        ("bits", &["--counts", "false"][..]),
        ("deepchem", &["--preset", "deepchem"][..]),
        ("cosine", &["--schedule", "cosine", "--warmup-steps", "2"][..]),
        ("step", &["--schedule", "step:1:0.5"][..]),
    ] {
        let out = dir.join(name);
        let result = train_small(&input, &out, &cache, extra);
        assert!(result.status.success(), "{name}: {}", String::from_utf8_lossy(&result.stderr));
        let predict = ferrochem()
            .args(["predict", "--model"])
            .arg(&out)
            .arg("-i")
            .arg(&input)
            .output()
            .unwrap();
        assert!(predict.status.success(), "{name}");
        assert_eq!(String::from_utf8_lossy(&predict.stdout).lines().count(), 42, "{name}");
    }
    let rates: Vec<f64> = std::fs::read_to_string(dir.join("step/metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["learning_rate"].as_f64().unwrap()
        })
        .collect();
    assert_eq!(rates, [0.0015, 0.00075, 0.000375], "the rate halves at each epoch boundary");
    // AdamW's decay reaches the optimizer: another decay, another model.
    let model_of = |name: &str, extra: &[&str]| {
        let out = dir.join(name);
        let result = train_small(&input, &out, &cache, extra);
        assert!(result.status.success(), "{name}: {}", String::from_utf8_lossy(&result.stderr));
        std::fs::read(out.join("model.bin")).unwrap()
    };
    let decayed = model_of("adamw-0.5", &["--optimizer", "adamw", "--weight-decay", "0.5"]);
    assert_eq!(read_json(&dir.join("adamw-0.5/config.json"))["weight_decay"], 0.5);
    assert!(decayed != model_of("adamw", &["--optimizer", "adamw"]));
    let bad = train_small(&input, &dir.join("bad"), &cache, &["--schedule", "linear"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--schedule"));
}

/// `ferrochem predict` with the model in `model`, reading standard input,
/// every stream a pipe.
fn predict_through_pipes(model: &Path) -> std::process::Child {
    ferrochem()
        .args(["predict", "--model"])
        .arg(model)
        .args(["-i", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn predict_streams_a_long_pipe_in_order() {
    let scratch = temp_dir("stream");
    let dir = scratch.path();
    let input = write_small_csv(dir);
    let out = dir.join("run");
    let result = train_small(&input, &out, &dir.join("cache"), &[]);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    // More rows than one chunk, with an identifier column and a bad SMILES.
    let mut csv = String::from("id,smiles\n");
    for i in 0..9000 {
        let smiles = if i == 7000 { "C1CC".to_owned() } else { "C".repeat(1 + i % 7) };
        csv.push_str(&format!("m{i},{smiles}\n"));
    }
    let mut child = predict_through_pipes(&out);
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn({
        let csv = csv.clone();
        move || {
            use std::io::Write;
            stdin.write_all(csv.as_bytes()).unwrap();
        }
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "smiles,id,a,b");
    assert_eq!(lines.len(), 9001);
    for (i, line) in lines[1..].iter().enumerate() {
        assert!(line.split(',').nth(1) == Some(&format!("m{i}")[..]), "row {i}: {line}");
    }
    assert_eq!(lines[7001], "C1CC,m7000,,");
    assert!(String::from_utf8_lossy(&output.stderr).contains("<stdin>:7002"));

    // A reader that stops early (`| head -1`) ends predict quietly.
    let mut child = predict_through_pipes(&out);
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        // Fails once predict has stopped reading, which is the point.
        let _ = stdin.write_all(csv.as_bytes());
    });
    let mut first_line = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut stdout, &mut first_line).unwrap();
    assert_eq!(first_line, "smiles,id,a,b\n");
    drop(stdout);
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
}

#[test]
fn with_valid_and_no_test_everything_trains_and_nothing_is_tested() {
    let scratch = temp_dir("valid-only");
    let dir = scratch.path();
    let input = write_small_csv(dir);
    let out = dir.join("run");
    let result =
        train_small(&input, &out, &dir.join("cache"), &["--valid", input.to_str().unwrap()]);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let summary = read_json(&out.join("summary.json"));
    assert!(summary.get("test").is_none(), "{summary}");
    assert!(summary.get("valid").is_some());
    assert_eq!(summary["rows"]["train"], 40);
    assert!(!out.join("test_predictions.csv").exists());
    // Nothing was split, so there is no split to record.
    assert!(!out.join("split.tsv").exists());

    // The same validation rows with their columns in another order, and
    // one column more, are scored task by task as before.
    let shuffled = dir.join("shuffled.csv");
    let text = std::fs::read_to_string(&input).unwrap();
    let reordered: String = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let f: Vec<&str> = line.split(',').collect();
            let extra = if i == 0 { "note" } else { "x" };
            format!("{},{},{},{extra}\n", f[2], f[0], f[1])
        })
        .collect();
    std::fs::write(&shuffled, reordered).unwrap();
    let again = dir.join("again");
    let result =
        train_small(&input, &again, &dir.join("cache"), &["--valid", shuffled.to_str().unwrap()]);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    assert_eq!(read_json(&again.join("summary.json"))["valid"], summary["valid"]);

    // A validation file without one of the tasks is refused by name.
    let partial = dir.join("partial.csv");
    let text: String =
        text.lines().map(|line| line.rsplit_once(',').unwrap().0.to_owned() + "\n").collect();
    std::fs::write(&partial, text).unwrap();
    let result = train_small(
        &input,
        &dir.join("bad"),
        &dir.join("cache"),
        &["--valid", partial.to_str().unwrap()],
    );
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("partial.csv") && stderr.contains("'b'"), "{stderr}");
}
