//! `cargo xtask baseline edge <pipeline>`: Tian et al.'s two-edge outsourcing (as reconstructed)
//! with every role a separate `privdnn-baseline` process on 127.0.0.1 — owner setup, owner-side
//! reference (float and integer shadow), edge A and edge B servers, the device — then the merged
//! `results/<run>/baselines/edge/metrics.json`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Options of the edge baseline run.
#[derive(clap::Args, Debug)]
pub struct EdgeRun {
    /// Pipeline name (its trained model must exist).
    pub pipeline: String,
    /// Config profile, e.g. `quick`.
    #[arg(long)]
    pub profile: Option<String>,
    /// Test images (0 = all).
    #[arg(long, default_value_t = 1000)]
    pub images: usize,
    /// Images per batch in the throughput run.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Images classified one at a time for the latency figure.
    #[arg(long, default_value_t = 50)]
    pub latency_images: usize,
    /// Probability per image and layer of a hidden integrity test.
    #[arg(long, default_value_t = 0.1)]
    pub test_probability: f64,
}

const BIN: &str = "target/release/privdnn-baseline";

fn run(args: &[String]) -> Result<()> {
    let status = Command::new(BIN)
        .args(args)
        .status()
        .with_context(|| format!("starting {BIN}"))?;
    if !status.success() {
        bail!("`privdnn-baseline {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Waits (≤ 60 s) for a server's port file and returns the address in it.
fn wait_for_port(file: &Path, child: &mut Child) -> Result<String> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Ok(addr) = std::fs::read_to_string(file) {
            return Ok(addr.trim().to_string());
        }
        if let Some(status) = child.try_wait()? {
            bail!("edge server exited before listening ({status})");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("no address in {} after 60 s", file.display())
}

/// Waits (≤ 30 s) for a server to exit after the device's shutdown; kills it otherwise.
fn reap(mut child: Child, name: &str) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("edge {name} exited with {status}");
            }
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill()?;
    bail!("edge {name} did not exit after the device's shutdown")
}

/// Runs the whole edge baseline.
pub fn edge(root: &Path, a: &EdgeRun) -> Result<()> {
    // one feature set for every binary (as `stages::run_binary`): no second burn build
    crate::stages::cargo(&["build", "--release", "--workspace", "--bins", "-q"])?;
    let cfg = privdnn_config::load_pipeline(root, &a.pipeline, a.profile.as_deref())?;
    let dir: PathBuf = cfg
        .results_dir(&root.join("results"))
        .join("baselines/edge");
    let mut common = vec!["--pipeline".to_string(), a.pipeline.clone()];
    if let Some(p) = &a.profile {
        common.extend(["--profile".to_string(), p.clone()]);
    }
    let images = a.images.to_string();
    let with = |cmd: &[&str], extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        v.extend(common.iter().cloned());
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let p = a.test_probability.to_string();
    let call = |v: Vec<String>| run(&v);
    call(with(&["edge", "setup"], &["--test-probability", &p]))?;
    call(with(&["edge", "reference"], &["--images", &images]))?;
    let mut servers = Vec::new();
    let mut addrs = Vec::new();
    for role in ["a", "b"] {
        let sub = dir.join(format!("edge-{role}"));
        let port = sub.join("port");
        let _ = std::fs::remove_file(&port);
        let mut child = Command::new(BIN)
            .args(["edge", "serve", "--role", role])
            .arg("--bundle")
            .arg(sub.join("layers.bin"))
            .arg("--port-file")
            .arg(&port)
            .arg("--stats")
            .arg(sub.join("stats.json"))
            .spawn()
            .with_context(|| format!("starting edge {role}"))?;
        addrs.push(wait_for_port(&port, &mut child)?);
        servers.push((child, role));
    }
    let batch = a.batch.to_string();
    let lat = a.latency_images.to_string();
    let device = call(with(
        &["edge", "device"],
        &[
            "--images",
            &images,
            "--addr-a",
            &addrs[0],
            "--addr-b",
            &addrs[1],
            "--batch",
            &batch,
            "--latency-images",
            &lat,
        ],
    ));
    for (child, role) in servers {
        if device.is_err() {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        } else {
            reap(child, role)?;
        }
    }
    device?;
    call(with(&["edge", "report"], &[]))
}
