//! Records the commit the binary was built from, for `summary.json`:
//! `FERROCHEM_COMMIT` when set (a build outside a git checkout can say
//! it), else `git rev-parse HEAD`, else "unknown".

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=FERROCHEM_COMMIT");
    let from_git = || {
        let output = Command::new("git").args(["rev-parse", "HEAD"]).output().ok()?;
        let commit = String::from_utf8(output.stdout).ok()?.trim().to_owned();
        (output.status.success() && !commit.is_empty()).then_some(commit)
    };
    let commit = std::env::var("FERROCHEM_COMMIT").ok().or_else(from_git);
    // Rebuild when HEAD moves: the file HEAD names, and HEAD itself.
    if let Ok(output) = Command::new("git").args(["rev-parse", "--git-dir"]).output()
        && output.status.success()
    {
        let git_dir = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        // Only files that exist: cargo treats a missing one as changed and
        // would rebuild every time (a fresh clone keeps its refs packed).
        let watch = |path: String| {
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        };
        watch(format!("{git_dir}/HEAD"));
        if let Ok(head) = std::fs::read_to_string(format!("{git_dir}/HEAD"))
            && let Some(reference) = head.strip_prefix("ref: ")
        {
            watch(format!("{git_dir}/{}", reference.trim()));
        }
        watch(format!("{git_dir}/packed-refs"));
    }
    println!("cargo:rustc-env=FERROCHEM_COMMIT={}", commit.as_deref().unwrap_or("unknown"));
}
