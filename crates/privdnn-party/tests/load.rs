//! Load on an owner process (owner-keyed mode): 8 concurrent clients, every answer matched to
//! its request (decryption is deterministic, so the right answer is known byte for byte), and
//! the `privdnn-party load` benchmark's library function.

mod common;

use std::time::{Duration, Instant};

use common::{IMAGES, OwnerProcess, fixture, load_user, spatial_request};
use privdnn_he::engine::Layout;
use privdnn_partial::owner::OwnerSide;
use privdnn_party::client::Client;
use privdnn_party::load::{LoadConfig, load_summary, run_load};
use privdnn_party::wire::Limits;

/// `clients` connections, `rounds` requests each (cycling through `requests`), every answer
/// checked against its request's; the latencies of each client.
fn hammer(
    addr: &str,
    requests: &[(Vec<u8>, Vec<u8>)],
    clients: usize,
    rounds: usize,
) -> Vec<Vec<f64>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let addr = addr.to_string();
                scope.spawn(move || {
                    let mut client =
                        Client::connect(&addr, Limits::default(), Duration::from_secs(10))
                            .expect("connect");
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
                    lat
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect()
    })
}

#[test]
fn eight_concurrent_clients_get_their_own_answers() {
    let fx = fixture();
    let owner = OwnerProcess::start(fx, "load-owner", &[]);
    let user = load_user(fx);
    let owner_side = OwnerSide::load(&fx.paths.secret).expect("owner");
    // Four distinct requests (other images, other masks); decryption is deterministic, so the
    // right answer to each is known byte for byte.
    let clock = Instant::now();
    let mut requests = Vec::new();
    let mut pendings = Vec::new();
    for r in 0..4usize {
        let idx: Vec<usize> = (0..1 + r % 2).map(|k| (2 * r + k) % IMAGES).collect();
        let (request, pending) = spatial_request(&user, &fx.raw(idx.iter().copied()));
        let expected = owner_side.answer(&request).expect("answer");
        requests.push((request, expected));
        pendings.push((idx, pending));
    }
    eprintln!(
        "4 requests prepared in {:.1} s",
        clock.elapsed().as_secs_f64()
    );
    let (clients, rounds) = (8usize, 6usize);
    let clock = Instant::now();
    let latencies = hammer(&owner.addr, &requests, clients, rounds);
    let wall = clock.elapsed().as_secs_f64();
    let mut all: Vec<f64> = latencies.into_iter().flatten().collect();
    assert_eq!(all.len(), clients * rounds, "lost answers");
    all.sort_by(f64::total_cmp);
    let bytes: usize = (0..clients * rounds)
        .map(|i| requests[i % 4].0.len() + requests[i % 4].1.len())
        .sum();
    let stats = owner.client().stats().expect("stats");
    assert_eq!(stats.decrypts, (clients * rounds) as u64);
    assert_eq!(stats.errors, 0);
    eprintln!(
        "load: {clients} clients × {rounds} requests in {wall:.2} s = {:.1} requests/s, {:.1} MB/s; latency p50 {:.1} ms, \
         p95 {:.1} ms, max {:.1} ms; owner decrypt time {:.2} s in total",
        all.len() as f64 / wall,
        bytes as f64 / 1e6 / wall,
        1e3 * all[all.len() / 2],
        1e3 * all[all.len() * 95 / 100],
        1e3 * all[all.len() - 1],
        stats.decrypt_seconds
    );
    // And the answers really are the decryptions of these requests.
    for ((idx, pending), (_, expected)) in pendings.into_iter().zip(&requests) {
        let out = user.finish(expected, pending).expect("finish");
        assert_eq!(out, fx.shadow(&fx.raw(idx)));
    }
}

#[test]
fn the_load_command_checks_every_answer() {
    let fx = fixture();
    let owner = OwnerProcess::start(fx, "load-command-owner", &[]);
    // The benchmark command's library function (`privdnn-party load`).
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
    };
    let report = run_load(&cfg, &fx.split).expect("load benchmark");
    eprint!("{}", load_summary(&report));
    assert_eq!((report.requests, report.mismatches), (6, 0));
    assert_eq!((report.owner.decrypts, report.owner.errors), (6, 0));
}
