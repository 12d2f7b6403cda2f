//! The `ferrochem` binary end to end on small files.

use std::path::{Path, PathBuf};
use std::process::Command;

fn ferrochem() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ferrochem"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferrochem-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
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
    let dir = temp_dir("featurize");
    let input = write_small_csv(&dir);
    let output = dir.join("bits.tsv");
    let status =
        ferrochem().args(["featurize", "-i"]).arg(&input).arg("-o").arg(&output).status().unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&output).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 41);
    assert_eq!(lines[0], "0\t33,80,222,294,386,807");
    assert!(lines[40].starts_with("40\t!ring bond 1"), "{}", lines[40]);
}

#[test]
fn train_writes_model_and_reports() {
    let dir = temp_dir("train");
    let input = write_small_csv(&dir);
    let out = dir.join("run");
    let result = ferrochem()
        .args(["train", "--epochs", "3", "--layers", "16", "--batch-size", "8", "--data"])
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .env("FERROCHEM_CACHE", dir.join("cache"))
        .output()
        .unwrap();
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
    let status = ferrochem()
        .args(["train", "--epochs", "3", "--layers", "16", "--batch-size", "8", "--data"])
        .arg(&input)
        .arg("--out")
        .arg(&again)
        .env("FERROCHEM_CACHE", dir.join("cache"))
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        std::fs::read(out.join("model.bin")).unwrap(),
        std::fs::read(again.join("model.bin")).unwrap()
    );

    // predict keeps every row, rejected ones with empty values, and eval
    // prints a table for the labelled file.
    let predictions = dir.join("predictions.csv");
    let status = ferrochem()
        .args(["predict", "--uncertainty", "--model"])
        .arg(&out)
        .arg("-i")
        .arg(&input)
        .arg("-o")
        .arg(&predictions)
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&predictions).unwrap();
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
}

#[test]
fn config_files_set_options_and_flags_override_them() {
    let dir = temp_dir("config");
    let input = write_small_csv(&dir);
    let config = dir.join("config.json");
    std::fs::write(&config, r#"{"epochs": 5, "layers": [8, 8], "batch_size": 10, "seed": 3}"#)
        .unwrap();
    let out = dir.join("run");
    let status = ferrochem()
        .args(["train", "--epochs", "2", "--config"])
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
    assert_eq!(std::fs::read_to_string(out.join("metrics.jsonl")).unwrap().lines().count(), 2);
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let result = ferrochem()
        .args(["train", "--data", "/nonexistent.csv", "--out", "/tmp/ferrochem-never"])
        .output()
        .unwrap();
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("/nonexistent.csv"), "{stderr}");
}
