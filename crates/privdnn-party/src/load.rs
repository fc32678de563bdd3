//! Load benchmark of the owner service: many concurrent users sending decryption requests.
//!
//! The user side prepares a few distinct blinded requests once (HE evaluation is the user's cost
//! and is not what is measured here), gets one reference answer for each, then `clients`
//! threads, each with its own connection, send `rounds` requests each, cycling through them.
//! Decryption is deterministic, so every answer must equal the reference answer of its request
//! byte for byte: a lost, swapped or corrupted answer is counted as a mismatch (and fails the
//! run). Reports requests/s, images/s, MB/s, latency percentiles and the cost of opening a
//! connection (TCP connect, the TLS 1.3 handshake when `tls` is set, one `info` round trip), so
//! a run against a TLS owner and one against a plain (`--insecure`) owner give the TLS overhead.

use std::time::{Duration, Instant};

use privdnn_artifacts::DatasetSplit;
use privdnn_he::engine::Layout;
use privdnn_he::ops::OpCounter;
use privdnn_partial::user::UserSide;
use serde::Serialize;

use crate::PartyError;
use crate::client::{Client, fetch_model};
use crate::wire::{Limits, ServerStats};

/// Settings of a load run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Owner address.
    pub server: String,
    /// Cache folder of the user files.
    pub cache_dir: std::path::PathBuf,
    /// Concurrent clients (one connection each).
    pub clients: usize,
    /// Requests per client.
    pub rounds: usize,
    /// Distinct requests prepared.
    pub distinct: usize,
    /// Images per request.
    pub images_per_request: usize,
    /// Layout of the requests.
    pub layout: Layout,
    /// Headroom for the output level.
    pub headroom_bits: f64,
    /// Frame limits.
    pub limits: Limits,
    /// Connection timeout.
    pub connect_timeout: Duration,
    /// TLS 1.3 with this user's certificate; `None`: plain TCP.
    pub tls: Option<privdnn_net::TlsClient>,
}

impl LoadConfig {
    /// A connection to the owner (TLS when configured).
    pub fn connect(&self) -> Result<Client, PartyError> {
        Client::connect_with(
            &self.server,
            self.limits,
            self.connect_timeout,
            self.tls.as_ref(),
        )
    }
}

/// Latency percentiles (seconds).
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// Of the samples `v` (all zero when empty).
    pub fn of(mut v: Vec<f64>) -> Self {
        v.sort_by(f64::total_cmp);
        let at = |q: f64| {
            v.get(((v.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or(0.0)
        };
        Self {
            mean: v.iter().sum::<f64>() / v.len().max(1) as f64,
            p50: at(0.5),
            p95: at(0.95),
            max: at(1.0),
        }
    }
}

/// What a load run reports (`results/<run>/party/load.json`).
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Owner address.
    pub server: String,
    /// The owner's model label.
    pub model: String,
    /// Concurrent clients.
    pub clients: usize,
    /// Requests per client.
    pub rounds: usize,
    /// `tls` (TLS 1.3, client certificate) or `tcp` (plain).
    pub transport: String,
    /// Opening one connection under load: TCP connect, TLS handshake (when TLS) and one `info`
    /// round trip (a TLS owner checks the certificate before it answers).
    pub connect_s: Percentiles,
    /// Requests answered.
    pub requests: usize,
    /// Answers that differed from their request's reference answer.
    pub mismatches: usize,
    /// Layout of the requests.
    pub layout: Layout,
    /// Images per request.
    pub images_per_request: usize,
    /// Mean request bytes (user → owner payload).
    pub request_bytes: f64,
    /// Mean reply bytes (owner → user payload).
    pub reply_bytes: f64,
    /// Seconds to prepare the requests (user HE evaluation, not part of the load).
    pub prepare_s: f64,
    /// Wall time of the concurrent phase.
    pub wall_s: f64,
    /// Requests per second.
    pub requests_per_s: f64,
    /// Images per second (decryption side).
    pub images_per_s: f64,
    /// Megabytes per second, both directions.
    pub megabytes_per_s: f64,
    /// Round-trip latency of a request under load.
    pub latency_s: Percentiles,
    /// Owner counters over the concurrent phase.
    pub owner: ServerStats,
}

/// Runs the benchmark with the first `distinct × images_per_request` images of `split`.
pub fn run_load(cfg: &LoadConfig, split: &DatasetSplit) -> Result<LoadReport, PartyError> {
    if cfg.clients == 0
        || cfg.rounds == 0
        || cfg.distinct == 0
        || cfg.images_per_request == 0
        || split.is_empty()
    {
        return Err(PartyError::Usage(
            "clients, rounds, distinct requests, images and the split must be non-empty".into(),
        ));
    }
    let mut control = cfg.connect()?;
    let download = fetch_model(&mut control, &cfg.cache_dir)?;
    let ops = OpCounter::default();
    let keys = download.keys.as_deref().ok_or_else(|| {
        PartyError::Internal("an owner-keyed download without evaluation keys".into())
    })?;
    let user = UserSide::load(&download.model, keys, cfg.headroom_bits, &ops)?;
    let clock = Instant::now();
    let requests = prepare(cfg, split, &mut control, &user, &ops)?;
    let prepare_s = clock.elapsed().as_secs_f64();
    let before = control.stats()?;
    let clock = Instant::now();
    let (latencies, connects, mismatches) = concurrent(cfg, &requests)?;
    let wall_s = clock.elapsed().as_secs_f64();
    let after = control.stats()?;
    let n = latencies.len();
    let sent: usize = (0..cfg.clients)
        .flat_map(|c| (0..cfg.rounds).map(move |k| (c + k) % cfg.distinct))
        .map(|i| requests[i].0.len() + requests[i].1.len())
        .sum();
    let owner = stats_delta(&before, &after);
    let report = LoadReport {
        server: cfg.server.clone(),
        model: download.label,
        clients: cfg.clients,
        rounds: cfg.rounds,
        transport: if cfg.tls.is_some() { "tls" } else { "tcp" }.into(),
        connect_s: Percentiles::of(connects),
        requests: n,
        mismatches,
        layout: cfg.layout,
        images_per_request: cfg.images_per_request,
        request_bytes: requests.iter().map(|r| r.0.len() as f64).sum::<f64>()
            / requests.len() as f64,
        reply_bytes: requests.iter().map(|r| r.1.len() as f64).sum::<f64>() / requests.len() as f64,
        prepare_s,
        wall_s,
        requests_per_s: n as f64 / wall_s,
        images_per_s: (n * cfg.images_per_request) as f64 / wall_s,
        megabytes_per_s: sent as f64 / 1e6 / wall_s,
        latency_s: Percentiles::of(latencies),
        owner,
    };
    if mismatches > 0 || n != cfg.clients * cfg.rounds {
        return Err(PartyError::Internal(format!(
            "{mismatches} mismatched and {} lost answers out of {}",
            cfg.clients * cfg.rounds - n,
            cfg.clients * cfg.rounds
        )));
    }
    Ok(report)
}

/// A request and its reference reply, as bytes on the wire.
type Exchange = (Vec<u8>, Vec<u8>);

/// The `distinct` requests and their reference answers (each checked: it unblinds).
fn prepare(
    cfg: &LoadConfig,
    split: &DatasetSplit,
    control: &mut Client,
    user: &UserSide,
    ops: &OpCounter,
) -> Result<Vec<Exchange>, PartyError> {
    let mut rng = rand::rng();
    let mut requests = Vec::with_capacity(cfg.distinct);
    for r in 0..cfg.distinct {
        let raw: Vec<&[u8]> = (0..cfg.images_per_request)
            .map(|k| split.image((r * cfg.images_per_request + k) % split.len()))
            .collect();
        let (request, pending) = user.request(cfg.layout, &raw, ops, &|_| {}, &mut rng)?;
        let reference = control.decrypt(request.clone())?;
        // The reference answer really is this request's decryption: it unblinds.
        user.finish(&reference.reply, pending)?;
        requests.push((request, reference.reply));
    }
    Ok(requests)
}

/// One client's share of the concurrent phase: request latencies, connection time, mismatches.
type ClientRun = (Vec<f64>, f64, usize);

/// The concurrent phase: every latency, every connection time, and the answers that differ
/// from their reference.
fn concurrent(
    cfg: &LoadConfig,
    requests: &[Exchange],
) -> Result<(Vec<f64>, Vec<f64>, usize), PartyError> {
    let results: Vec<Result<ClientRun, PartyError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..cfg.clients)
            .map(|c| {
                scope.spawn(move || -> Result<ClientRun, PartyError> {
                    let t = Instant::now();
                    let mut client = cfg.connect()?;
                    client.info()?;
                    let connect = t.elapsed().as_secs_f64();
                    let (mut latencies, mut mismatches) = (Vec::with_capacity(cfg.rounds), 0);
                    for k in 0..cfg.rounds {
                        let (request, expected) = &requests[(c + k) % requests.len()];
                        let t = Instant::now();
                        let reply = client.decrypt(request.clone())?;
                        latencies.push(t.elapsed().as_secs_f64());
                        mismatches += usize::from(reply.reply != *expected);
                    }
                    Ok((latencies, connect, mismatches))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(PartyError::Internal("a client thread panicked".into()))
                })
            })
            .collect()
    });
    let (mut latencies, mut connects, mut mismatches) = (Vec::new(), Vec::new(), 0);
    for r in results {
        let (l, c, m) = r?;
        latencies.extend(l);
        connects.push(c);
        mismatches += m;
    }
    Ok((latencies, connects, mismatches))
}

/// The owner's counters between two reads.
fn stats_delta(before: &ServerStats, after: &ServerStats) -> ServerStats {
    ServerStats {
        connections: after.connections - before.connections,
        active: after.active,
        busy: after.busy - before.busy,
        frames_in: after.frames_in - before.frames_in,
        frames_out: after.frames_out - before.frames_out,
        bytes_in: after.bytes_in - before.bytes_in,
        bytes_out: after.bytes_out - before.bytes_out,
        decrypts: after.decrypts - before.decrypts,
        files: after.files - before.files,
        errors: after.errors - before.errors,
        decrypt_seconds: after.decrypt_seconds - before.decrypt_seconds,
        uptime_s: after.uptime_s,
    }
}

/// The report for people.
pub fn load_summary(r: &LoadReport) -> String {
    format!(
        "load over {}: {} clients × {} requests ({:?}, {} image(s) each, {:.0} B up / {:.0} B down): {} answered, {} \
         mismatched, in {:.2} s = {:.1} requests/s, {:.1} images/s, {:.1} MB/s; latency mean {:.1} ms, p50 {:.1} \
         ms, p95 {:.1} ms, max {:.1} ms; connect{} + info mean {:.1} ms, p95 {:.1} ms; owner decryption {:.2} s \
         in total\n",
        r.transport,
        r.clients,
        r.rounds,
        r.layout,
        r.images_per_request,
        r.request_bytes,
        r.reply_bytes,
        r.requests,
        r.mismatches,
        r.wall_s,
        r.requests_per_s,
        r.images_per_s,
        r.megabytes_per_s,
        1e3 * r.latency_s.mean,
        1e3 * r.latency_s.p50,
        1e3 * r.latency_s.p95,
        1e3 * r.latency_s.max,
        if r.transport == "tls" {
            " + TLS handshake"
        } else {
            ""
        },
        1e3 * r.connect_s.mean,
        1e3 * r.connect_s.p95,
        r.owner.decrypt_seconds
    )
}
