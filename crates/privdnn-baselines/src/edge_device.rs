//! `edge device`: the IoT device process. It reads only its own bundle (keys, weight-free model)
//! and the test images, connects to both edges, measures single-image latency and batched
//! throughput, and writes its measurements and predictions. Its offline phase (pads through the
//! second server, on a second thread while batches run) is timed apart from its online phase
//! (queries through the first server): CPU per image is each thread's own CPU time.

use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use privdnn_artifacts::DatasetSplit;
use privdnn_artifacts::write_json_atomic;
use privdnn_edge::device::{BatchOutcome, Device};
use privdnn_edge::messages::{DeviceBundle, from_bytes};
use privdnn_edge::net::{EdgeConn, TcpLink, thread_cpu_seconds};
use privdnn_edge::pads::{Pads, Preparer};
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

/// CPU and wall time of the offline phase (pads), and the pads it made.
#[derive(Default)]
struct Offline {
    cpu: f64,
    wall: f64,
    pads: u64,
}

impl Offline {
    /// Prepares `counts` pads per layer on this thread, timing it.
    fn prepare(&mut self, p: &Preparer, counts: &[usize], b: &mut EdgeConn) -> Result<Pads> {
        let (clock, cpu) = (Instant::now(), thread_cpu_seconds());
        let pads = p.prepare(counts, b)?;
        self.cpu += thread_cpu_seconds() - cpu;
        self.wall += clock.elapsed().as_secs_f64();
        self.pads += counts.iter().sum::<usize>() as u64;
        Ok(pads)
    }

    /// Adds a part prepared elsewhere.
    fn add(&mut self, part: &Offline) {
        self.cpu += part.cpu;
        self.wall += part.wall;
        self.pads += part.pads;
    }

    fn json(&self, n: usize) -> Value {
        let n = n.max(1) as f64;
        json!({
            "cpu_seconds_per_image": self.cpu / n,
            "wall_seconds_per_image": self.wall / n,
            "pads_per_image": self.pads as f64 / n,
        })
    }
}

/// Pads per layer in one offline chunk for `images` images: the images plus the expected
/// hidden tests and a few more (leftovers stay in the pool for the next batch).
fn chunk(images: usize, p: f64, layers: usize) -> Vec<usize> {
    let tests = images as f64 * p;
    vec![images + (tests + 3.0 * tests.sqrt()).ceil() as usize + 1; layers]
}

/// The online phase's measurements.
#[derive(Default)]
struct Online {
    logits: Vec<Vec<i64>>,
    tests: u64,
    failed: u64,
    code_seconds: f64,
    rounds: u64,
}

impl Online {
    fn add(&mut self, out: BatchOutcome) {
        self.logits.extend(out.logits);
        self.tests += out.tests;
        self.failed += out.failed_tests;
        self.code_seconds += out.device_seconds;
        self.rounds = out.rounds;
    }
}

/// Single images, one query each (pads prepared before, on this thread): latencies and the
/// online CPU.
fn single(
    device: &Device,
    test: &DatasetSplit,
    n: usize,
    conns: (&mut EdgeConn, &mut EdgeConn),
    offline: &mut Offline,
) -> Result<(Vec<f64>, f64, Online)> {
    let (a, b) = conns;
    let preparer = device.preparer();
    let p = device.test_probability();
    let mut pool = offline.prepare(&preparer, &chunk(n, p, device.linear_layers()), b)?;
    let (mut latencies, mut cpu_total, mut online) =
        (Vec::with_capacity(n), 0.0, Online::default());
    for i in 0..n {
        let plan = device.plan(1);
        if !pool.covers(&plan.needs()) {
            pool.extend(offline.prepare(&preparer, &pool.shortfall(&plan.needs()), b)?);
        }
        let (clock, cpu) = (Instant::now(), thread_cpu_seconds());
        let out = device.run(&plan, &[test.image(i)], &mut pool, a)?;
        cpu_total += thread_cpu_seconds() - cpu;
        latencies.push(clock.elapsed().as_secs_f64());
        online.add(out);
    }
    Ok((latencies, cpu_total, online))
}

/// Every image in batches; a second thread prepares the pads through EdgeB while this one runs
/// the batches through EdgeA (both edges compute at once). The pad thread prepares what it is
/// asked for: before each batch runs, the next batch's pads (its images, the expected hidden
/// tests and a margin, less what the pool keeps), so EdgeB works ahead by one batch and
/// prepares no pad past the last one. Returns wall seconds, online CPU seconds of this thread,
/// and the online results.
fn batched(
    device: &Device,
    test: &DatasetSplit,
    batch: usize,
    conns: (&mut EdgeConn, &mut EdgeConn),
    offline: &mut Offline,
) -> Result<(f64, f64, Online)> {
    let (a, b) = conns;
    let (n, batch) = (test.len(), batch.max(1));
    let (p, layers) = (device.test_probability(), device.linear_layers());
    let preparer = device.preparer();
    std::thread::scope(|s| {
        let (ask, asked) = std::sync::mpsc::channel::<Vec<usize>>();
        let (tx, rx) = std::sync::mpsc::channel::<Result<(Pads, Offline)>>();
        let worker = s.spawn(move || {
            for counts in asked {
                let mut part = Offline::default();
                let made = part.prepare(&preparer, &counts, b).map(|p| (p, part));
                let stop = made.is_err();
                if tx.send(made).is_err() || stop {
                    break;
                }
            }
        });
        let (clock, cpu) = (Instant::now(), thread_cpu_seconds());
        let mut pool = Pads::default();
        let mut online = Online::default();
        let mut in_flight = 0usize;
        let run = (|| -> Result<()> {
            for start in (0..n).step_by(batch) {
                let end = (start + batch).min(n);
                let imgs: Vec<&[u8]> = (start..end).map(|i| test.image(i)).collect();
                let plan = device.plan(imgs.len());
                let needs = plan.needs();
                while !pool.covers(&needs) {
                    if in_flight == 0 {
                        ask.send(pool.shortfall(&needs))
                            .context("pad preparer stopped")?;
                        in_flight += 1;
                    }
                    let (pads, part) = rx.recv().context("pad preparer stopped")??;
                    in_flight -= 1;
                    pool.extend(pads);
                    offline.add(&part);
                }
                let next = (n - end).min(batch);
                if next > 0 && in_flight == 0 {
                    let want = chunk(next, p, layers);
                    let left = |l: usize| pool.available(l).saturating_sub(needs[l]);
                    let counts: Vec<usize> = (0..layers)
                        .map(|l| want[l].saturating_sub(left(l)))
                        .collect();
                    if counts.iter().any(|&c| c > 0) {
                        ask.send(counts).context("pad preparer stopped")?;
                        in_flight += 1;
                    }
                }
                online.add(device.run(&plan, &imgs, &mut pool, a)?);
            }
            Ok(())
        })();
        let (wall, cpu) = (clock.elapsed().as_secs_f64(), thread_cpu_seconds() - cpu);
        drop(ask);
        // a chunk still in flight (a failed batch) is waited for and counted
        for (_, part) in rx.iter().flatten() {
            offline.add(&part);
        }
        worker
            .join()
            .map_err(|_| anyhow::anyhow!("pad preparer panicked"))?;
        run.map(|()| (wall, cpu, online))
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
    let TcpLink { mut a, mut b } = TcpLink::connect(&args.addr_a, &args.addr_b, Limits::default())?;

    let lat_n = args.latency_images.min(n);
    let (t0a, t0b) = (a.traffic(), b.traffic());
    let mut off_single = Offline::default();
    let (mut latencies, single_cpu, single) =
        self::single(&device, &test, lat_n, (&mut a, &mut b), &mut off_single)?;
    let (t1a, t1b) = (a.traffic(), b.traffic());
    let (s1a, s1b) = (a.stats()?, b.stats()?);

    let mut off = Offline::default();
    let (wall, batch_cpu, online) =
        batched(&device, &test, args.batch, (&mut a, &mut b), &mut off)?;
    let (t2a, t2b) = (a.traffic(), b.traffic());
    let (s2a, s2b) = (a.stats()?, b.stats()?);
    a.shutdown()?;
    b.shutdown()?;

    latencies.sort_by(f64::total_cmp);
    let median = latencies.get(latencies.len() / 2).copied().unwrap_or(0.0);
    let report = json!({
        "images": n,
        "batch": args.batch,
        "logits": online.logits,
        "schedule": "offline pads through the second server (query-independent), online queries through the first only",
        "single": {
            "images": lat_n,
            "latency_median_seconds": median,
            "latency_mean_seconds": latencies.iter().sum::<f64>() / lat_n.max(1) as f64,
            "device_cpu_seconds_per_image": single_cpu / lat_n.max(1) as f64,
            "device_offline": off_single.json(lat_n),
            "rounds_per_image": single.rounds,
            "link_a": per_image(&t1a.since(&t0a), lat_n),
            "link_b": per_image(&t1b.since(&t0b), lat_n),
            "server_a": cpu_delta(&s1a, &EdgeStats::default(), lat_n),
            "server_b": cpu_delta(&s1b, &EdgeStats::default(), lat_n),
        },
        "batched": {
            "wall_seconds": wall,
            "images_per_second": n as f64 / wall.max(1e-9),
            "device_cpu_seconds_per_image": batch_cpu / n.max(1) as f64,
            "device_code_seconds_per_image": online.code_seconds / n.max(1) as f64,
            "device_offline": off.json(n),
            "rounds_per_batch": online.rounds,
            "link_a": per_image(&t2a.since(&t1a), n),
            "link_b": per_image(&t2b.since(&t1b), n),
            "server_a": cpu_delta(&s2a, &s1a, n),
            "server_b": cpu_delta(&s2b, &s1b, n),
        },
        "integrity": { "tests": online.tests + single.tests, "failed_tests": online.failed + single.failed },
        "peak_rss_bytes": privdnn_artifacts::peak_rss_bytes(),
    });
    write_json_atomic(&files::device_json(&dir), &report)?;
    println!(
        "edge device: {n} images, {:.1} images/s batched, median latency {:.2} ms, device CPU \
         online {:.3} ms/image, offline {:.3} ms/image",
        n as f64 / wall.max(1e-9),
        1e3 * median,
        1e3 * batch_cpu / n.max(1) as f64,
        1e3 * off.cpu / n.max(1) as f64
    );
    Ok(())
}
