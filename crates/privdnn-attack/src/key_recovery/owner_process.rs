//! The owner service as a child process for the `key_recovery` experiment: `privdnn-party serve`
//! for the pipeline (and its encryption variant) on an ephemeral loopback port, stopped when
//! dropped. The child inherits the environment, so `PRIVDNN_HE__MODE=user-keyed` starts the
//! user-keyed service.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};

use anyhow::{Context as _, Result, bail};
use privdnn_config::PipelineArgs;

/// The owner service as a child process; stopped when dropped.
pub struct OwnerProcess {
    child: Child,
    /// Address it listens on.
    pub addr: String,
    _stdout: BufReader<ChildStdout>,
}

/// `privdnn-party` next to the current executable (or in the folder above, for test binaries
/// under `target/<profile>/deps`), or `$PRIVDNN_PARTY_BIN`.
fn party_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("PRIVDNN_PARTY_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("locating the current executable")?;
    let name = format!("privdnn-party{}", std::env::consts::EXE_SUFFIX);
    let candidates: Vec<PathBuf> = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(|d| d.join(&name))
        .collect();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .with_context(|| {
            format!(
                "{name} not found next to {} (build it: `cargo build --release -p privdnn-party`, \
                 or pass --server ADDR of a running `cargo xtask serve`)",
                exe.display()
            )
        })
}

impl OwnerProcess {
    /// Starts `privdnn-party serve` for the pipeline (and `variant`, the encryption variant's
    /// folder) on an ephemeral loopback port and waits for its `listening on ADDR` line.
    pub fn start(target: &PipelineArgs, variant: Option<&str>) -> Result<Self> {
        let bin = party_binary()?;
        let mut cmd = Command::new(&bin);
        cmd.args(["serve", "--pipeline", &target.pipeline])
            .arg("--root")
            .arg(&target.root)
            .args(["--listen", "127.0.0.1:0"])
            // The attacker's target on this machine: plain TCP on loopback (a TLS owner started
            // elsewhere is reached with --server).
            .arg("--insecure");
        if let Some(p) = &target.profile {
            cmd.args(["--profile", p]);
        }
        if let Some(v) = variant {
            cmd.args(["--variant", v]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            bail!("no stdout from the owner service");
        };
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let read = reader.read_line(&mut line);
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .map(str::to_string);
        match (read, addr) {
            (Ok(_), Some(addr)) => Ok(Self {
                child,
                addr,
                _stdout: reader,
            }),
            (read, _) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "the owner service did not start (first line {line:?}{}); run `cargo xtask \
                     pipeline {} --only encrypt` first (user-keyed: `privdnn-encrypt run \
                     --variant user-keyed` with PRIVDNN_HE__MODE=user-keyed)",
                    read.err().map(|e| format!(", {e}")).unwrap_or_default(),
                    target.pipeline
                )
            }
        }
    }
}

impl Drop for OwnerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
