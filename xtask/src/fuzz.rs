//! `cargo xtask fuzz`: builds and runs the `privdnn-fuzz` binary (tests/fuzz), which fuzzes
//! every bounded decoder and fails on a panic or an allocation beyond a decoder's bound.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::stages;

/// Builds `privdnn-fuzz` and runs it for `minutes` with `seed` (and `threads` workers).
pub fn run(minutes: f64, seed: u64, threads: Option<usize>) -> Result<()> {
    stages::cargo(&["build", "--release", "-q", "-p", "privdnn-fuzz"])?;
    let path = Path::new("target/release/privdnn-fuzz");
    let mut cmd = Command::new(path);
    cmd.args([
        "--minutes",
        &minutes.to_string(),
        "--seed",
        &seed.to_string(),
    ]);
    if let Some(t) = threads {
        cmd.args(["--threads", &t.to_string()]);
    }
    let status = cmd
        .status()
        .with_context(|| format!("starting {}", path.display()))?;
    if !status.success() {
        bail!("privdnn-fuzz found problems ({status}); the findings are printed above");
    }
    Ok(())
}
