//! Source checks, run by `cargo xtask tidy` and as tests by `cargo test`.
//!
//! Each check walks the workspace's Rust files (skipping `target/`) and
//! collects `path:line: problem` findings.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::project_root;

pub fn run() -> Result<ExitCode, String> {
    let findings = check_all(&project_root());
    for finding in &findings {
        eprintln!("{finding}");
    }
    if findings.is_empty() {
        println!("tidy: ok");
        Ok(ExitCode::SUCCESS)
    } else {
        Err(format!("{} problems", findings.len()))
    }
}

fn check_all(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    let mut findings = Vec::new();
    for path in files {
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let shown = path.strip_prefix(root).unwrap_or(&path).display().to_string();
        check_file(&shown, &text, &mut findings);
    }
    findings
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') && name != "runs" {
                rust_files(&path, found);
            }
        } else if name.ends_with(".rs") {
            found.push(path);
        }
    }
}

/// The checks on one file. The patterns are assembled at run time so that
/// this file does not trip its own checks.
fn check_file(path: &str, text: &str, findings: &mut Vec<String>) {
    if !text.trim_start().starts_with("//!") {
        findings.push(format!("{path}:1: a file opens with a `//!` comment saying what it is for"));
    }
    let debug_macro = ["dbg", "!("].concat();
    let fixme = ["FIX", "ME"].concat();
    let bare_ignore = ["#[", "ignore]"].concat();
    for (line_idx, line) in text.lines().enumerate() {
        let line_no = line_idx + 1;
        let code = line.split("//").next().unwrap_or("");
        if code.contains(&debug_macro) {
            findings.push(format!("{path}:{line_no}: leftover debugging macro"));
        }
        if line.trim_start().starts_with(&bare_ignore) {
            findings.push(format!("{path}:{line_no}: #[ignore] needs a reason: #[ignore = \"…\"]"));
        }
        let comment = line.split_once("//").map_or("", |(_, comment)| comment);
        if let Some(rest) = comment.split(&fixme).nth(1) {
            let rest = rest.trim_start_matches(':').trim();
            if rest.is_empty() {
                findings.push(format!(
                    "{path}:{line_no}: a {fixme} says what is wrong, why, and the way out"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_sources_are_tidy() {
        let findings = check_all(&project_root());
        assert!(findings.is_empty(), "tidy findings:\n{}", findings.join("\n"));
    }

    #[test]
    fn checks_catch_what_they_describe() {
        let mut findings = Vec::new();
        let bad = format!(
            "fn f() {{\n    {}x);\n}}\n// {}:\n#[{}]\n",
            ["dbg", "!("].concat(),
            ["FIX", "ME"].concat(),
            "ignore"
        );
        check_file("bad.rs", &bad, &mut findings);
        assert_eq!(findings.len(), 4, "{findings:#?}");
        assert!(findings[0].starts_with("bad.rs:1: a file opens"));
    }
}
