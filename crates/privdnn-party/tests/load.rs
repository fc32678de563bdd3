//! Load on an owner process (owner-keyed mode): 8 concurrent clients, and 64 concurrent TLS
//! clients × 8 requests beside the same load on plain TCP (the TLS handshake and per-request
//! overhead, measured in one run); every answer matched to its request (decryption is
//! deterministic, so the right answer is known byte for byte); and the `privdnn-party load`
//! benchmark's library function over TCP and TLS.

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{IMAGES, OwnerProcess, fixture, load_user, spatial_request};
use privdnn_he::engine::Layout;
use privdnn_partial::owner::OwnerSide;
use privdnn_party::load::{LoadConfig, Percentiles, load_summary, run_load};
use privdnn_party::wire::Limits;

/// What one client measured: connect (+ TLS handshake) + one `info` round trip, then the
/// latency of each request.
struct ClientTimes {
    connect: f64,
    requests: Vec<f64>,
}

/// `clients` connections, `rounds` requests each (cycling through `requests`), every answer
/// checked against its request's; the times of each client.
fn hammer(
    owner: &OwnerProcess,
    requests: &[(Vec<u8>, Vec<u8>)],
    clients: usize,
    rounds: usize,
) -> Vec<ClientTimes> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                scope.spawn(move || {
                    let t = Instant::now();
                    let mut client = owner.client();
                    client.info().expect("info");
                    let connect = t.elapsed().as_secs_f64();
                    let mut lat = Vec::new();
                    for k in 0..rounds {
                        let (request, expected) = &requests[(c + k) % requests.len()];
                        let t = Instant::now();
                        let reply = client.decrypt(request.clone()).expect("decrypt");
                        lat.push(t.elapsed().as_secs_f64());
                        assert!(
                            reply.reply == *expected,
                            "client {c} round {k}: answer to another request"
                        );
                    }
                    ClientTimes {
                        connect,
                        requests: lat,
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect()
    })
}

/// Four distinct requests (other images, other masks) with their answers (decryption is
/// deterministic, so the right answer to each is known byte for byte), each checked: it
/// unblinds to the shadow.
fn four_requests() -> Vec<(Vec<u8>, Vec<u8>)> {
    static REQUESTS: OnceLock<Vec<(Vec<u8>, Vec<u8>)>> = OnceLock::new();
    REQUESTS
        .get_or_init(|| {
            let fx = fixture();
            let user = load_user(fx);
            let owner_side = OwnerSide::load(&fx.paths.secret).expect("owner");
            let clock = Instant::now();
            let mut requests = Vec::new();
            for r in 0..4usize {
                let idx: Vec<usize> = (0..1 + r % 2).map(|k| (2 * r + k) % IMAGES).collect();
                let raw = fx.raw(idx.iter().copied());
                let (request, pending) = spatial_request(&user, &raw);
                let expected = owner_side.answer(&request).expect("answer");
                let out = user.finish(&expected, pending).expect("finish");
                assert_eq!(out, fx.shadow(&raw));
                requests.push((request, expected));
            }
            eprintln!(
                "4 requests prepared in {:.1} s",
                clock.elapsed().as_secs_f64()
            );
            requests
        })
        .clone()
}

/// What a load run measured.
struct LoadRun {
    wall: f64,
    connect: Percentiles,
    latency: Percentiles,
    requests_per_s: f64,
}

/// `clients × rounds` requests against `owner`: nothing lost, nothing mixed up (every answer
/// equal to its request's), the owner's counters agree; prints and returns the times.
fn load_run(owner: &OwnerProcess, clients: usize, rounds: usize) -> LoadRun {
    let requests = four_requests();
    let before = owner.client().stats().expect("stats");
    let clock = Instant::now();
    let times = hammer(owner, &requests, clients, rounds);
    let wall = clock.elapsed().as_secs_f64();
    let connect = Percentiles::of(times.iter().map(|t| t.connect).collect());
    let all: Vec<f64> = times.into_iter().flat_map(|t| t.requests).collect();
    assert_eq!(all.len(), clients * rounds, "lost answers");
    let n = all.len();
    let bytes: usize = (0..n)
        .map(|i| requests[i % 4].0.len() + requests[i % 4].1.len())
        .sum();
    let stats = owner.client().stats().expect("stats");
    assert_eq!(stats.decrypts - before.decrypts, n as u64);
    assert_eq!(stats.errors - before.errors, 0);
    assert_eq!(stats.busy - before.busy, 0);
    let latency = Percentiles::of(all);
    let run = LoadRun {
        wall,
        requests_per_s: n as f64 / wall,
        connect,
        latency,
    };
    eprintln!(
        "load over {}: {clients} clients × {rounds} requests in {wall:.2} s = {:.1} requests/s, {:.1} MB/s; \
         connect+info mean {:.2} ms, p95 {:.2} ms; request latency mean {:.1} ms, p50 {:.1} ms, p95 {:.1} ms, \
         max {:.1} ms; owner decrypt time {:.2} s",
        if owner.tls.is_some() { "TLS" } else { "TCP" },
        run.requests_per_s,
        bytes as f64 / 1e6 / wall,
        1e3 * run.connect.mean,
        1e3 * run.connect.p95,
        1e3 * run.latency.mean,
        1e3 * run.latency.p50,
        1e3 * run.latency.p95,
        1e3 * run.latency.max,
        stats.decrypt_seconds - before.decrypt_seconds
    );
    run
}

#[test]
fn eight_concurrent_clients_get_their_own_answers() {
    let owner = OwnerProcess::start(fixture(), "load-owner", &[]);
    load_run(&owner, 8, 6);
}

/// 64 concurrent TLS clients × 8 requests, and the same load over plain TCP in the same run:
/// nothing lost or mixed up on either; the TLS overhead per connection and per request.
#[test]
fn sixty_four_tls_clients_get_their_own_answers_and_tls_overhead_is_measured() {
    let fx = fixture();
    let many = ["--max-connections", "80"];
    let tls = OwnerProcess::start_tls(fx, "load-tls-owner", &many);
    let tcp = OwnerProcess::start(fx, "load-tcp-owner", &many);
    let (clients, rounds) = (64, 8);
    let t = load_run(&tls, clients, rounds);
    let p = load_run(&tcp, clients, rounds);
    eprintln!(
        "TLS overhead, {clients} clients × {rounds} requests: connect+handshake+info mean {:.2} ms vs \
         {:.2} ms TCP (+{:.2} ms); request latency mean {:.2} ms vs {:.2} ms TCP (+{:.2} ms, {:+.1} %); \
         throughput {:.1} vs {:.1} requests/s; wall {:.2} s vs {:.2} s",
        1e3 * t.connect.mean,
        1e3 * p.connect.mean,
        1e3 * (t.connect.mean - p.connect.mean),
        1e3 * t.latency.mean,
        1e3 * p.latency.mean,
        1e3 * (t.latency.mean - p.latency.mean),
        100.0 * (t.latency.mean / p.latency.mean - 1.0),
        t.requests_per_s,
        p.requests_per_s,
        t.wall,
        p.wall
    );
}

#[test]
fn the_load_command_checks_every_answer_over_tcp_and_tls() {
    let fx = fixture();
    let tcp = OwnerProcess::start(fx, "load-command-owner", &[]);
    let tls = OwnerProcess::start_tls(fx, "load-command-tls-owner", &[]);
    // The benchmark command's library function (`privdnn-party load [--ca --cert --key]`).
    for owner in [&tcp, &tls] {
        let cache = tempfile::tempdir().expect("cache");
        let cfg = LoadConfig {
            server: owner.addr.clone(),
            cache_dir: cache.path().to_path_buf(),
            clients: 3,
            rounds: 2,
            distinct: 2,
            images_per_request: 2,
            layout: Layout::Spatial,
            headroom_bits: 20.0,
            limits: Limits::default(),
            connect_timeout: Duration::from_secs(10),
            tls: owner.tls.clone(),
        };
        let report = run_load(&cfg, &fx.split).expect("load benchmark");
        eprint!("{}", load_summary(&report));
        assert_eq!((report.requests, report.mismatches), (6, 0));
        assert_eq!((report.owner.decrypts, report.owner.errors), (6, 0));
        let transport = if owner.tls.is_some() { "tls" } else { "tcp" };
        assert_eq!(report.transport, transport);
        assert!(report.connect_s.mean > 0.0);
    }
}
