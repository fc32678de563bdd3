//! `cargo xtask baseline edge <pipeline>`: Tian et al.'s two-edge outsourcing (as reconstructed)
//! with every role a separate `privdnn-baseline` process on 127.0.0.1 — owner setup, owner-side
//! reference (float and integer shadow), edge A and edge B servers, the device — then the merged
//! `results/<run>/baselines/edge/metrics.json`.
//!
//! `cargo xtask baseline twoserver <pipeline>`: Li et al.'s two non-colluding servers with a
//! dealer (as reconstructed) the same way — owner-side reference, server 2, server 1 (dials
//! server 2), the owner (shares over TCP, then exits), the dealer, the client — then
//! `results/<run>/baselines/twoserver/metrics.json`.

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

pub(crate) const BIN: &str = "target/release/privdnn-baseline";

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
pub(crate) fn wait_for_port(file: &Path, child: &mut Child) -> Result<String> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Ok(addr) = std::fs::read_to_string(file) {
            return Ok(addr.trim().to_string());
        }
        if let Some(status) = child.try_wait()? {
            bail!("server exited before listening ({status})");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("no address in {} after 60 s", file.display())
}

/// Waits (≤ 30 s) for a server to exit after the client's shutdown; kills it otherwise.
fn reap(mut child: Child, name: &str) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("{name} exited with {status}");
            }
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill()?;
    bail!("{name} did not exit after the client's shutdown")
}

/// Kills `children` (after a failure), or waits for each to exit.
pub(crate) fn reap_all(children: Vec<(Child, String)>, failed: bool) -> Result<()> {
    let mut first = Ok(());
    for (mut child, name) in children {
        if failed {
            let _ = child.kill();
            let _ = child.wait();
        } else if let Err(e) = reap(child, &name) {
            first = first.and(Err(e));
        }
    }
    first
}

/// Runs the whole edge baseline.
pub fn edge(root: &Path, a: &EdgeRun) -> Result<()> {
    // one feature set for every binary (as `stages::run_binary`): no second burn build
    crate::stages::build_binaries()?;
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
            reap(child, &format!("edge {role}"))?;
        }
    }
    device?;
    call(with(&["edge", "report"], &[]))
}

/// Options of the two-server baseline run.
#[derive(clap::Args, Debug)]
pub struct TwoServerRun {
    /// Pipeline name (its trained model must exist).
    pub pipeline: String,
    /// Config profile, e.g. `quick`.
    #[arg(long)]
    pub profile: Option<String>,
    /// Test images (0 = all).
    #[arg(long, default_value_t = 1000)]
    pub images: usize,
    /// Images classified one at a time first, for the latency figure.
    #[arg(long, default_value_t = 20)]
    pub latency_images: usize,
    /// Queries in flight in the batched run.
    #[arg(long, default_value_t = 8)]
    pub window: usize,
}

/// Starts `privdnn-baseline twoserver server --role R` and returns it with its address.
fn start_server(dir: &Path, role: &str, peer: Option<&str>) -> Result<(Child, String)> {
    let sub = dir.join(format!("server{role}"));
    std::fs::create_dir_all(&sub)?;
    let port = sub.join("port");
    let _ = std::fs::remove_file(&port);
    let mut cmd = Command::new(BIN);
    cmd.args(["twoserver", "server", "--role", role])
        .arg("--port-file")
        .arg(&port)
        .arg("--stats")
        .arg(sub.join("stats.json"));
    if let Some(p) = peer {
        cmd.args(["--peer", p]);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting server {role}"))?;
    let addr = wait_for_port(&port, &mut child)?;
    Ok((child, addr))
}

/// Runs the whole two-server baseline: reference, both servers, owner, dealer, client, report.
pub fn twoserver(root: &Path, a: &TwoServerRun) -> Result<()> {
    crate::stages::build_binaries()?;
    let cfg = privdnn_config::load_pipeline(root, &a.pipeline, a.profile.as_deref())?;
    let dir: PathBuf = cfg
        .results_dir(&root.join("results"))
        .join("baselines/twoserver");
    let mut common = vec!["--pipeline".to_string(), a.pipeline.clone()];
    if let Some(p) = &a.profile {
        common.extend(["--profile".to_string(), p.clone()]);
    }
    let with = |cmd: &str, extra: &[&str]| -> Vec<String> {
        let mut v = vec!["twoserver".to_string(), cmd.to_string()];
        v.extend(common.iter().cloned());
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    // the dealer deals exactly the client's queries: latency images, then every image
    let (splits, _) = privdnn_data::load_splits(root, &cfg.pipeline)?;
    let n = match a.images {
        0 => splits.test.len(),
        k => k.min(splits.test.len()),
    };
    let queries = a.latency_images.min(n) + n;
    let images = n.to_string();
    run(&with("reference", &["--images", &images]))?;
    let (c2, s2) = start_server(&dir, "2", None)?;
    let mut children = vec![(c2, "server 2".to_string())];
    let started = start_server(&dir, "1", Some(&s2));
    let s1 = match started {
        Ok((c1, s1)) => {
            children.push((c1, "server 1".to_string()));
            s1
        }
        Err(e) => {
            reap_all(children, true)?;
            return Err(e);
        }
    };
    let servers = ["--s1", s1.as_str(), "--s2", s2.as_str()];
    let parties = (|| -> Result<()> {
        run(&with("owner", &servers))?;
        let mut dealer_args = with("dealer", &servers);
        dealer_args.extend(["--queries".to_string(), queries.to_string()]);
        let dealer = Command::new(BIN)
            .args(&dealer_args)
            .spawn()
            .context("starting the dealer")?;
        let lat = a.latency_images.to_string();
        let window = a.window.to_string();
        let mut client_args = with("client", &servers);
        client_args.extend(
            [
                "--images",
                &images,
                "--latency-images",
                &lat,
                "--window",
                &window,
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        let client = run(&client_args);
        reap_all(vec![(dealer, "the dealer".to_string())], client.is_err())?;
        client
    })();
    reap_all(children, parties.is_err())?;
    parties?;
    run(&with("report", &[]))
}
