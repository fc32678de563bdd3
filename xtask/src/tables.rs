//! `cargo xtask tables`: regenerates every table and figure from `results/` by running the
//! `privdnn-analyze` binary. It is built on its own (`-p privdnn-analyze`, not the `--workspace`
//! build of the stage binaries), so it never compiles burn or fhe and takes seconds.

use anyhow::Result;

/// Builds and runs `privdnn-analyze <args>` in the workspace root.
pub fn run(args: &[String]) -> Result<()> {
    let mut cmd = vec!["run", "--release", "-q", "-p", "privdnn-analyze", "--"];
    cmd.extend(args.iter().map(String::as_str));
    crate::stages::cargo(&cmd)
}
