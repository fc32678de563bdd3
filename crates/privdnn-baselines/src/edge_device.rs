//! `edge device`: the IoT device process. It reads only its own bundle (keys, weight-free model)
//! and the test images, connects to both edges, measures single-image latency and batched
//! throughput, and writes its measurements and predictions.

use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use privdnn_artifacts::write_json_atomic;
use privdnn_edge::device::Device;
use privdnn_edge::messages::{DeviceBundle, from_bytes};
use privdnn_edge::net::{TcpLink, thread_cpu_seconds};
use privdnn_edge::wire::EdgeStats;
use privdnn_net::{Limits, Traffic};
use serde_json::{Value, json};

use crate::files::{self, RunArgs};

/// Options of `edge device`.
#[derive(Args, Debug)]
pub struct DeviceArgs {
    /// Pipeline and images.
    #[command(flatten)]
    pub run: RunArgs,
    /// First server's address (receives x + r).
    #[arg(long)]
    pub addr_a: String,
    /// Second server's address (receives S_in − r).
    #[arg(long)]
    pub addr_b: String,
    /// Images per batch in the throughput run.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Images classified one at a time for the latency figure.
    #[arg(long, default_value_t = 50)]
    pub latency_images: usize,
}

fn per_image(t: &Traffic, n: usize) -> Value {
    let n = n.max(1) as f64;
    json!({
        "bytes_sent": t.bytes_sent as f64 / n,
        "bytes_received": t.bytes_received as f64 / n,
        "frames_sent": t.frames_sent as f64 / n,
    })
}

fn cpu_delta(after: &EdgeStats, before: &EdgeStats, n: usize) -> Value {
    let n = n.max(1) as f64;
    json!({
        "cpu_seconds_per_image": (after.cpu_seconds - before.cpu_seconds) / n,
        "compute_seconds_per_image": (after.compute_seconds - before.compute_seconds) / n,
        "peak_rss_bytes": after.peak_rss_bytes,
        "corrupted_requests": after.corrupted,
    })
}

/// `edge device`.
pub fn device(args: &DeviceArgs) -> Result<()> {
    let dir = args.run.edge_dir()?;
    let path = files::device_bundle(&dir);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let bundle: DeviceBundle = from_bytes(&bytes)?;
    let device = Device::new(bundle)?;
    let test = args.run.test_images()?;
    let n = test.len();
    let mut link = TcpLink::connect(&args.addr_a, &args.addr_b, Limits::default())?;

    // single images, one query each
    let lat_n = args.latency_images.min(n);
    let (t0a, t0b) = link.traffic();
    let mut latencies = Vec::with_capacity(lat_n);
    let (mut single_cpu, mut rounds) = (0.0, 0);
    for i in 0..lat_n {
        let (clock, cpu) = (Instant::now(), thread_cpu_seconds());
        let out = device.infer(&[test.image(i)], &mut link)?;
        single_cpu += thread_cpu_seconds() - cpu;
        latencies.push(clock.elapsed().as_secs_f64());
        rounds = out.rounds;
    }
    let (t1a, t1b) = link.traffic();
    let (s1a, s1b) = link.stats()?;

    // batched throughput over every image
    let (clock, cpu) = (Instant::now(), thread_cpu_seconds());
    let (mut logits, mut tests, mut failed, mut layer_seconds) = (Vec::new(), 0, 0, 0.0);
    for start in (0..n).step_by(args.batch.max(1)) {
        let imgs: Vec<&[u8]> = (start..(start + args.batch.max(1)).min(n))
            .map(|i| test.image(i))
            .collect();
        let out = device.infer(&imgs, &mut link)?;
        logits.extend(out.logits);
        tests += out.tests;
        failed += out.failed_tests;
        layer_seconds += out.device_seconds;
    }
    let (wall, batch_cpu) = (clock.elapsed().as_secs_f64(), thread_cpu_seconds() - cpu);
    let (t2a, t2b) = link.traffic();
    let (s2a, s2b) = link.stats()?;
    link.shutdown()?;

    latencies.sort_by(f64::total_cmp);
    let median = latencies.get(latencies.len() / 2).copied().unwrap_or(0.0);
    let report = json!({
        "images": n,
        "batch": args.batch,
        "logits": logits,
        "single": {
            "images": lat_n,
            "latency_median_seconds": median,
            "latency_mean_seconds": latencies.iter().sum::<f64>() / lat_n.max(1) as f64,
            "device_cpu_seconds_per_image": single_cpu / lat_n.max(1) as f64,
            "rounds_per_image": rounds,
            "link_a": per_image(&t1a.since(&t0a), lat_n),
            "link_b": per_image(&t1b.since(&t0b), lat_n),
            "server_a": cpu_delta(&s1a, &EdgeStats::default(), lat_n),
            "server_b": cpu_delta(&s1b, &EdgeStats::default(), lat_n),
        },
        "batched": {
            "wall_seconds": wall,
            "images_per_second": n as f64 / wall.max(1e-9),
            "device_cpu_seconds_per_image": batch_cpu / n.max(1) as f64,
            "device_code_seconds_per_image": layer_seconds / n.max(1) as f64,
            "rounds_per_batch": rounds,
            "link_a": per_image(&t2a.since(&t1a), n),
            "link_b": per_image(&t2b.since(&t1b), n),
            "server_a": cpu_delta(&s2a, &s1a, n),
            "server_b": cpu_delta(&s2b, &s1b, n),
        },
        "integrity": { "tests": tests, "failed_tests": failed },
        "peak_rss_bytes": privdnn_artifacts::peak_rss_bytes(),
    });
    write_json_atomic(&files::device_json(&dir), &report)?;
    println!(
        "edge device: {n} images, {:.1} images/s batched, median latency {:.2} ms, device CPU {:.3} ms/image",
        n as f64 / wall.max(1e-9),
        1e3 * median,
        1e3 * batch_cpu / n.max(1) as f64
    );
    Ok(())
}
