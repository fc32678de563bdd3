//! `cargo xtask baseline spnn <pipeline>`: SPNN split training (as reconstructed) with every role
//! a separate `privdnn-baseline spnn` process on 127.0.0.1 — server, dealer, holder B, holder A —
//! once without and once with SGLD noise, then the plaintext training with the same settings, the
//! naive split network without cryptography (`spnn naive`, one process), the
//! report (`results/<run>/baselines/spnn/metrics.json`) and the server-side inversion
//! (`privdnn-attack run --only spnn_leakage`). Every role resumes from its last epoch, so an
//! interrupted command continues where it stopped (the naive split has no checkpoint: it retrains).

use std::path::Path;
use std::process::{Child, Command};

use anyhow::{Context, Result};

use crate::baseline::{BIN, reap_all, wait_for_port};

/// Options of the SPNN run.
#[derive(clap::Args, Debug)]
pub struct SpnnRun {
    /// Pipeline name (e.g. `mnist`, `fashion-mnist`).
    pub pipeline: String,
    /// Config profile, e.g. `quick`.
    #[arg(long)]
    pub profile: Option<String>,
    /// Epochs (default: the pipeline's).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Training images (0 = all).
    #[arg(long, default_value_t = 0)]
    pub train_images: usize,
    /// conv1's learning rate (plain SGD on the shares).
    #[arg(long, default_value_t = 0.05)]
    pub conv1_lr: f64,
    /// SGLD noise σ of the noisy variant (weight units); 0 skips that variant.
    #[arg(long, default_value_t = 0.001)]
    pub noise: f64,
    /// Skip the plaintext comparison run.
    #[arg(long)]
    pub skip_plaintext: bool,
    /// Skip the naive split network (no cryptography).
    #[arg(long)]
    pub skip_naive: bool,
    /// Skip the leakage experiment.
    #[arg(long)]
    pub skip_leakage: bool,
}

impl SpnnRun {
    fn common(&self) -> Vec<String> {
        let mut v = vec!["--pipeline".to_string(), self.pipeline.clone()];
        if let Some(p) = &self.profile {
            v.extend(["--profile".to_string(), p.clone()]);
        }
        if let Some(e) = self.epochs {
            v.extend(["--epochs".to_string(), e.to_string()]);
        }
        v.extend([
            "--train-images".to_string(),
            self.train_images.to_string(),
            "--conv1-lr".to_string(),
            self.conv1_lr.to_string(),
        ]);
        v
    }
}

/// glibc settings for every SPNN process: messages of megabytes are allocated and freed every
/// step, and above glibc's default threshold each one is a fresh `mmap` whose pages the kernel
/// zeroes and faults in again; keeping them on the heap cut an MNIST step's CPU by a quarter
/// (200 steps: 24.4 s → 18.3 s wall on 2 cores). Results are identical.
pub const MALLOC_ENV: [(&str, &str); 3] = [
    ("MALLOC_MMAP_THRESHOLD_", "268435456"),
    ("MALLOC_TRIM_THRESHOLD_", "1073741824"),
    ("MALLOC_TOP_PAD_", "67108864"),
];

/// `privdnn-baseline` with [`MALLOC_ENV`].
fn baseline() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.envs(MALLOC_ENV);
    cmd
}

/// Runs `privdnn-baseline <args>` to the end.
fn run(args: &[String]) -> Result<()> {
    let status = baseline()
        .args(args)
        .status()
        .with_context(|| format!("starting {BIN}"))?;
    if !status.success() {
        anyhow::bail!("`privdnn-baseline {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Starts `privdnn-baseline spnn <args>` and, with a port file, waits for its address.
fn start(args: &[String], port: Option<&Path>) -> Result<(Child, Option<String>)> {
    let mut cmd = baseline();
    cmd.args(args);
    if let Some(p) = port {
        let _ = std::fs::remove_file(p);
        cmd.arg("--port-file").arg(p);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {BIN} {}", args.join(" ")))?;
    let addr = match port {
        Some(p) => Some(wait_for_port(p, &mut child)?),
        None => None,
    };
    Ok((child, addr))
}

/// One variant: the four roles as processes until they finish.
fn variant(a: &SpnnRun, dir: &Path, name: &str, noise: f64) -> Result<()> {
    let ports = dir.join(name).join("ports");
    std::fs::create_dir_all(&ports)?;
    let args = |role: &str, extra: &[String]| -> Vec<String> {
        let mut v = vec!["spnn".to_string(), role.to_string()];
        v.extend(a.common());
        v.extend([
            "--variant".to_string(),
            name.to_string(),
            "--noise".to_string(),
            noise.to_string(),
        ]);
        v.extend(extra.iter().cloned());
        v
    };
    let mut children: Vec<(Child, String)> = Vec::new();
    let result = (|| -> Result<()> {
        let (c, server) = start(&args("server", &[]), Some(&ports.join("server")))?;
        children.push((c, "the server".to_string()));
        let (c, dealer) = start(&args("dealer", &[]), Some(&ports.join("dealer")))?;
        children.push((c, "the dealer".to_string()));
        let (server, dealer) = (server.unwrap_or_default(), dealer.unwrap_or_default());
        let peers = [
            "--server".to_string(),
            server,
            "--dealer".to_string(),
            dealer,
        ];
        let mut b_args = peers.to_vec();
        b_args.extend(["--party".to_string(), "b".to_string()]);
        let (c, holder_b) = start(&args("holder", &b_args), Some(&ports.join("holder-b")))?;
        children.push((c, "holder B".to_string()));
        let mut a_args = peers.to_vec();
        a_args.extend([
            "--party".to_string(),
            "a".to_string(),
            "--holder-b".to_string(),
            holder_b.unwrap_or_default(),
        ]);
        run(&args("holder", &a_args))
    })();
    reap_all(children, result.is_err())?;
    result
}

/// Runs the whole SPNN baseline.
pub fn spnn(root: &Path, a: &SpnnRun) -> Result<()> {
    crate::stages::build_binaries()?;
    let cfg = privdnn_config::load_pipeline(root, &a.pipeline, a.profile.as_deref())?;
    let dir = cfg
        .results_dir(&root.join("results"))
        .join("baselines/spnn");
    variant(a, &dir, "spnn", 0.0)?;
    if a.noise > 0.0 {
        variant(a, &dir, "spnn-noise", a.noise)?;
    }
    let with = |cmd: &str| {
        let mut v = vec!["spnn".to_string(), cmd.to_string()];
        v.extend(a.common());
        v
    };
    if !a.skip_plaintext {
        run(&with("plaintext"))?;
    }
    if !a.skip_naive {
        run(&with("naive"))?;
    }
    run(&with("report"))?;
    if !a.skip_leakage {
        let mut attack = vec![
            "run".to_string(),
            "--pipeline".to_string(),
            a.pipeline.clone(),
        ];
        if let Some(p) = &a.profile {
            attack.extend(["--profile".to_string(), p.clone()]);
        }
        attack.extend(["--only".to_string(), "spnn_leakage".to_string()]);
        let status = Command::new("target/release/privdnn-attack")
            .args(&attack)
            .status()
            .context("starting privdnn-attack")?;
        if !status.success() {
            anyhow::bail!("`privdnn-attack {}` failed ({status})", attack.join(" "));
        }
    }
    Ok(())
}
