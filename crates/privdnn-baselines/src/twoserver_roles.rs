//! `twoserver owner|server|dealer|client`: Li et al.'s two non-colluding servers (as
//! reconstructed, `privdnn-twoserver`), one process per role. The owner publishes the weight-free
//! architecture (`public.bin`, read by the dealer and the client), sends each server its shares
//! over TCP and exits; the servers listen (port files) and write their counters at shutdown; the
//! dealer streams each query's material; the client measures single-image latency, then pipelined
//! (batched) throughput over every image, and writes its logits and both servers' counters.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use privdnn_artifacts::{process_cpu_seconds, write_bytes_atomic, write_json_atomic};
use privdnn_mpc::shadow::op_counts;
use privdnn_mpc::{IntModel, QuantConfig};
use privdnn_net::Limits;
use privdnn_twoserver::cost::analytic;
use privdnn_twoserver::dealer::Dealer;
use privdnn_twoserver::messages::{from_bytes, to_bytes};
use privdnn_twoserver::net::{TcpClient, run_dealer, send_shares};
use privdnn_twoserver::owner::share_model;
use privdnn_twoserver::serve::{serve_one, serve_two};
use privdnn_twoserver::wire::{LinkTraffic, ServerStats};
use rand::RngCore;
use serde_json::{Value, json};

use crate::files::RunArgs;

/// `results/<run>/baselines/twoserver`.
pub fn dir(run: &RunArgs) -> Result<PathBuf> {
    Ok(run.run_dir()?.join("baselines").join("twoserver"))
}

/// The published architecture (no weights).
pub fn public_bin(dir: &Path) -> PathBuf {
    dir.join("public.bin")
}

/// Limits of every connection: long waits (a CIFAR-10 query takes seconds, the dealer may wait
/// for a slow server), frames up to 1 GiB (dealer material of a large model).
fn limits() -> Limits {
    Limits {
        max_frame: privdnn_net::MAX_FRAME_CEILING,
        idle_timeout: std::time::Duration::from_secs(1800),
        frame_timeout: std::time::Duration::from_secs(600),
        write_timeout: std::time::Duration::from_secs(1800),
    }
}

fn read_public(dir: &Path) -> Result<IntModel> {
    let path = public_bin(dir);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(from_bytes(&bytes)?)
}

/// Both servers' addresses.
#[derive(Args, Debug)]
pub struct Servers {
    /// Server 1's address.
    #[arg(long)]
    pub s1: String,
    /// Server 2's address.
    #[arg(long)]
    pub s2: String,
}

/// Options of `twoserver owner`.
#[derive(Args, Debug)]
pub struct OwnerArgs {
    /// Pipeline.
    #[command(flatten)]
    pub run: RunArgs,
    /// Where the servers listen.
    #[command(flatten)]
    pub servers: Servers,
}

/// `twoserver owner`.
pub fn owner(args: &OwnerArgs) -> Result<()> {
    let dir = dir(&args.run)?;
    let (model, _) = crate::edge_owner::int_model(&args.run)?;
    let clock = Instant::now();
    let setup = share_model(&model, &mut rand::rng())?;
    let share_seconds = clock.elapsed().as_secs_f64();
    write_bytes_atomic(&public_bin(&dir), &to_bytes(&setup.public)?)?;
    let traffic = send_shares(&setup, &args.servers.s1, &args.servers.s2, limits())?;
    let summary = json!({
        "architecture": model.spec.architecture.name(),
        "quant": QuantConfig::default(),
        "op_counts": op_counts(&model),
        "analytic": analytic(&model)?,
        "owner_share_seconds": share_seconds,
        "owner_seconds": clock.elapsed().as_secs_f64(),
        "owner_cpu_seconds": process_cpu_seconds(),
        "owner_peak_rss_bytes": privdnn_artifacts::peak_rss_bytes(),
        "owner_traffic": traffic,
    });
    write_json_atomic(&dir.join("setup.json"), &summary)?;
    println!(
        "twoserver owner: shares sent ({} B to server 1, {} B to server 2)",
        traffic.s1.bytes_sent, traffic.s2.bytes_sent
    );
    Ok(())
}

/// Options of `twoserver server`.
#[derive(Args, Debug)]
pub struct ServerArgs {
    /// `1` (garbler) or `2` (evaluator).
    #[arg(long)]
    pub role: u8,
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Server 2's address (server 1 dials it).
    #[arg(long)]
    pub peer: Option<String>,
    /// File to write the bound address to.
    #[arg(long)]
    pub port_file: Option<PathBuf>,
    /// File to write the final counters to (JSON).
    #[arg(long)]
    pub stats: Option<PathBuf>,
}

/// `twoserver server`.
pub fn server(args: &ServerArgs) -> Result<()> {
    let listener =
        TcpListener::bind(&args.listen).with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?.to_string();
    if let Some(p) = &args.port_file {
        write_bytes_atomic(p, addr.as_bytes())?;
    }
    eprintln!("twoserver server {} listening on {addr}", args.role);
    let stats: ServerStats = match (args.role, &args.peer) {
        (1, Some(peer)) => {
            let mut seed = [0u8; 32];
            rand::rng().fill_bytes(&mut seed);
            serve_one(&listener, peer, seed, limits())?
        }
        (1, None) => bail!("server 1 needs --peer (server 2's address)"),
        (2, _) => serve_two(&listener, limits())?,
        (r, _) => bail!("--role is 1 or 2, not {r}"),
    };
    if let Some(p) = &args.stats {
        write_json_atomic(p, &stats)?;
    }
    Ok(())
}

/// Options of `twoserver dealer`.
#[derive(Args, Debug)]
pub struct DealerArgs {
    /// Pipeline (where `public.bin` is).
    #[command(flatten)]
    pub run: RunArgs,
    /// Where the servers listen.
    #[command(flatten)]
    pub servers: Servers,
    /// Queries to deal for.
    #[arg(long)]
    pub queries: u64,
}

/// `twoserver dealer`.
pub fn dealer(args: &DealerArgs) -> Result<()> {
    let dir = dir(&args.run)?;
    let mut dealer = Dealer::new(read_public(&dir)?, &mut rand::rng())?;
    let s = &args.servers;
    let report = run_dealer(&mut dealer, &s.s1, &s.s2, args.queries, limits())?;
    let out = json!({
        "report": report,
        "rots_per_query": dealer.rot_count(),
        "cpu_seconds": process_cpu_seconds(),
        "peak_rss_bytes": privdnn_artifacts::peak_rss_bytes(),
    });
    write_json_atomic(&dir.join("dealer").join("dealer.json"), &out)?;
    Ok(())
}

/// Options of `twoserver client`.
#[derive(Args, Debug)]
pub struct ClientArgs {
    /// Pipeline and images.
    #[command(flatten)]
    pub run: RunArgs,
    /// Where the servers listen.
    #[command(flatten)]
    pub servers: Servers,
    /// Images classified one at a time first (latency).
    #[arg(long, default_value_t = 20)]
    pub latency_images: usize,
    /// Queries in flight in the batched run.
    #[arg(long, default_value_t = 8)]
    pub window: usize,
}

fn per_image(t: &LinkTraffic, n: usize) -> Value {
    let n = n.max(1) as f64;
    json!({
        "bytes_sent": t.bytes_sent as f64 / n,
        "bytes_received": t.bytes_received as f64 / n,
        "payload_sent": t.payload_sent() as f64 / n,
        "payload_received": t.payload_received() as f64 / n,
        "frames_sent": t.frames_sent as f64 / n,
    })
}

/// One phase's per-image deltas of both servers' counters and the client's links.
fn phase(
    before: &(ServerStats, ServerStats),
    after: &(ServerStats, ServerStats),
    links: (LinkTraffic, LinkTraffic),
    n: usize,
) -> Value {
    let nf = n.max(1) as f64;
    let server = |a: &ServerStats, b: &ServerStats| {
        json!({
            "compute_seconds_per_image": (a.compute_seconds - b.compute_seconds) / nf,
            "cpu_seconds_per_image": (a.cpu_seconds - b.cpu_seconds) / nf,
            "peer_link": per_image(&a.peer.since(&b.peer), n),
            "peak_rss_bytes": a.peak_rss_bytes,
        })
    };
    json!({
        "client_s1": per_image(&links.0, n),
        "client_s2": per_image(&links.1, n),
        "server1": server(&after.0, &before.0),
        "server2": server(&after.1, &before.1),
    })
}

/// `twoserver client`.
pub fn client(args: &ClientArgs) -> Result<()> {
    let dir = dir(&args.run)?;
    let test = args.run.test_images()?;
    let images: Vec<&[u8]> = (0..test.len()).map(|i| test.image(i)).collect();
    let s = &args.servers;
    let mut c = TcpClient::connect(read_public(&dir)?, &s.s1, &s.s2, limits())?;
    let mut rng = rand::rng();
    let st0 = c.stats()?;
    let t0 = c.traffic();
    let lat_n = args.latency_images.min(images.len());
    let mut lat = Vec::with_capacity(lat_n);
    for raw in &images[..lat_n] {
        let clock = Instant::now();
        c.classify(&[raw], 1, &mut rng)?;
        lat.push(clock.elapsed().as_secs_f64());
    }
    let t1 = c.traffic();
    let st1 = c.stats()?;
    let t1s = c.traffic();
    let (clock, cpu) = (Instant::now(), process_cpu_seconds());
    let logits = c.classify(&images, args.window, &mut rng)?;
    let (wall, cpu) = (clock.elapsed().as_secs_f64(), process_cpu_seconds() - cpu);
    let t2 = c.traffic();
    let st2 = c.stats()?;
    let client_seconds = c.compute_seconds;
    c.shutdown()?;
    lat.sort_by(f64::total_cmp);
    let n = images.len();
    let report = json!({
        "images": n,
        "window": args.window,
        "logits": logits,
        "single": {
            "images": lat_n,
            "latency_median_seconds": lat.get(lat.len() / 2).copied().unwrap_or(0.0),
            "latency_mean_seconds": lat.iter().sum::<f64>() / lat_n.max(1) as f64,
            "per_image": phase(&st0, &st1, (t1.0.since(&t0.0), t1.1.since(&t0.1)), lat_n),
        },
        "batched": {
            "wall_seconds": wall,
            "seconds_per_image": wall / n.max(1) as f64,
            "images_per_second": n as f64 / wall.max(1e-9),
            "client_cpu_seconds_per_image": cpu / n.max(1) as f64,
            "per_image": phase(&st1, &st2, (t2.0.since(&t1s.0), t2.1.since(&t1s.1)), n),
        },
        "client_compute_seconds": client_seconds,
        "client_peak_rss_bytes": privdnn_artifacts::peak_rss_bytes(),
        "servers": [st2.0, st2.1],
    });
    write_json_atomic(&dir.join("client").join("client.json"), &report)?;
    println!(
        "twoserver client: {n} images, {:.2} ms/image batched (window {}), median single latency {:.2} ms",
        1e3 * wall / n.max(1) as f64,
        args.window,
        1e3 * lat.get(lat.len() / 2).copied().unwrap_or(0.0)
    );
    Ok(())
}
