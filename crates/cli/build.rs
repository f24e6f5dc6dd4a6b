//! Records the git commit the CLI is built from, for `lockbox version`
//! (`Lockbox v0.1.0 (<commit>), committed <time>`, as `vault version` prints).
//!
//! `LOCKBOX_GIT_COMMIT` and `LOCKBOX_GIT_COMMIT_DATE` in the build
//! environment win (for builds without a `.git`, such as a container build);
//! otherwise git is asked. Without either, the version has no commit.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("TZ", "UTC")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn from_env(name: &str) -> Option<String> {
    println!("cargo:rerun-if-env-changed={name}");
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()));

    let env_commit = from_env("LOCKBOX_GIT_COMMIT");
    let env_date = from_env("LOCKBOX_GIT_COMMIT_DATE");
    if env_commit.is_none() {
        // Rebuild when HEAD moves: HEAD itself, the branch it points at, and
        // packed refs. Only files that exist: a missing one would make cargo
        // rerun this script on every build.
        let git_dir = git(&dir, &["rev-parse", "--absolute-git-dir"]);
        let common_dir = git(
            &dir,
            &["rev-parse", "--path-format=absolute", "--git-common-dir"],
        );
        let head_ref = git(&dir, &["symbolic-ref", "-q", "HEAD"]);
        let mut watched: Vec<PathBuf> = Vec::new();
        if let Some(g) = &git_dir {
            watched.push(Path::new(g).join("HEAD"));
        }
        if let Some(c) = common_dir.as_ref().or(git_dir.as_ref()) {
            watched.push(Path::new(c).join("packed-refs"));
            if let Some(r) = &head_ref {
                watched.push(Path::new(c).join(r));
            }
        }
        for path in watched.iter().filter(|p| p.is_file()) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }

    let commit = env_commit.or_else(|| git(&dir, &["rev-parse", "HEAD"]));
    let Some(commit) = commit else {
        return;
    };
    println!("cargo:rustc-env=LOCKBOX_GIT_COMMIT={commit}");
    let date = env_date.or_else(|| {
        git(
            &dir,
            &[
                "show",
                "-s",
                "--format=%cd",
                "--date=format-local:%Y-%m-%dT%H:%M:%SZ",
                &commit,
            ],
        )
    });
    if let Some(date) = date {
        println!("cargo:rustc-env=LOCKBOX_GIT_COMMIT_DATE={date}");
    }
}
