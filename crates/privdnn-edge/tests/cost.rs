//! Cost profile on a VGG16 w0.25 CIFAR-10-shaped model with seeded weights (no training): the
//! device's CPU per image in the protocol against the integer shadow (the device running the
//! whole model alone). Ignored by default (seconds of CPU); run with
//! `cargo test --release -p privdnn-edge --test cost -- --ignored --nocapture`.

mod common;

use std::time::Instant;

use common::vgg::vgg_quick;
use privdnn_edge::device::Device;
use privdnn_edge::edge::EdgeServer;
use privdnn_edge::harness::InProcessLink;
use privdnn_edge::messages::IntegrityConfig;
use privdnn_edge::owner::setup;
use privdnn_mpc::shadow::{logits, op_counts};
use privdnn_mpc::{QuantConfig, import_model};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
#[ignore]
fn vgg_quick_cost_profile() {
    let model = import_model(&vgg_quick(), &QuantConfig::default()).expect("import");
    let counts = op_counts(&model);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let images: Vec<Vec<u8>> = (0..16)
        .map(|_| (0..3 * 32 * 32).map(|_| rng.random::<u8>()).collect())
        .collect();
    let clock = Instant::now();
    let shadow: Vec<Vec<i64>> = images
        .iter()
        .map(|i| logits(&model, i).expect("shadow"))
        .collect();
    let alone = clock.elapsed().as_secs_f64() / images.len() as f64;
    let s = setup(&model, &IntegrityConfig::default(), &mut rand::rng()).expect("setup");
    let device = Device::new(s.device).expect("device");
    let mut link = InProcessLink::new(EdgeServer::new(s.edge_a), EdgeServer::new(s.edge_b));
    let refs: Vec<&[u8]> = images.iter().map(Vec::as_slice).collect();
    let out = device.infer(&refs, &mut link).expect("infer");
    assert_eq!(out.logits, shadow);
    let n = images.len() as f64;
    let (dev, offline) = (out.device_seconds / n, out.offline_seconds / n);
    eprintln!(
        "VGG16 w0.25: {} MACs, {} linear I/O words, {} clear ops; shadow {:.2} ms/image, \
         device online {:.3} ms/image ({:.2} %), offline pads {:.3} ms/image (incl. EdgeB), \
         bytes to A {} per image",
        counts.linear_macs,
        counts.linear_io,
        counts.clear_ops,
        1e3 * alone,
        1e3 * dev,
        100.0 * dev / alone,
        1e3 * offline,
        link.a.bytes_in / images.len() as u64
    );
}

/// Seeded CIFAR-shaped images (3×32×32 bytes).
fn cifar_images(n: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| (0..3 * 32 * 32).map(|_| rng.random::<u8>()).collect())
        .collect()
}

/// The deployment's schedule over real TCP (edges on threads of this process): a pad thread
/// prepares chunks through EdgeB while this thread runs batches of 64 through EdgeA; the
/// device's CPU is each thread's own CPU time (`/proc/thread-self/schedstat`), compared with
/// the integer model alone on this thread, in the same run. Images: `EDGE_COST_IMAGES` (256).
#[test]
#[ignore]
fn vgg_quick_tcp_cost_profile() {
    use privdnn_edge::net::{TcpLink, serve, thread_cpu_seconds};
    use privdnn_edge::pads::Pads;
    use std::net::TcpListener;

    let n: usize = std::env::var("EDGE_COST_IMAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let model = import_model(&vgg_quick(), &QuantConfig::default()).expect("import");
    let images = cifar_images(n, 3);
    let (shadow, alone) = std::thread::scope(|sc| {
        let alone = std::thread::Builder::new().name("alone".into());
        let h = alone.spawn_scoped(sc, || {
            let cpu = thread_cpu_seconds();
            let shadow: Vec<Vec<i64>> = images
                .iter()
                .map(|i| logits(&model, i).expect("shadow"))
                .collect();
            (shadow, (thread_cpu_seconds() - cpu) / n as f64)
        });
        h.expect("spawn").join().expect("alone thread")
    });
    let s = setup(&model, &IntegrityConfig::default(), &mut rand::rng()).expect("setup");
    let mut addrs = Vec::new();
    let mut servers = Vec::new();
    for (name, bundle) in [("edge-a", s.edge_a), ("edge-b", s.edge_b)] {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        addrs.push(listener.local_addr().expect("addr").to_string());
        let edge = std::thread::Builder::new().name(name.into());
        servers.push(
            edge.spawn(move || serve(&listener, EdgeServer::new(bundle), Default::default()))
                .expect("spawn"),
        );
    }
    let device = Device::new(s.device).expect("device");
    let link = TcpLink::connect(&addrs[0], &addrs[1], Default::default()).expect("connect");
    let TcpLink { mut a, mut b } = link;
    let batch = 64;
    let tests = batch as f64 * device.test_probability();
    let per = batch + (tests + 3.0 * tests.sqrt()).ceil() as usize + 1;
    let counts = vec![per; device.linear_layers()];
    let preparer = device.preparer();
    let (online_cpu, offline_cpu, wall, logits_out) = std::thread::scope(|sc| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(Pads, f64)>(1);
        let bref = &mut b;
        let pads = std::thread::Builder::new().name("pads".into());
        let worker = pads.spawn_scoped(sc, move || {
            loop {
                let cpu = thread_cpu_seconds();
                let pads = preparer.prepare(&counts, bref).expect("pads");
                if tx.send((pads, thread_cpu_seconds() - cpu)).is_err() {
                    break;
                }
            }
        });
        let (clock, cpu, ticks) = (Instant::now(), thread_cpu_seconds(), user_sys_ticks());
        let (mut pool, mut offline, mut out) = (Pads::default(), 0.0, Vec::new());
        for start in (0..n).step_by(batch) {
            let imgs: Vec<&[u8]> = images[start..(start + batch).min(n)]
                .iter()
                .map(Vec::as_slice)
                .collect();
            let plan = device.plan(imgs.len());
            while !pool.covers(&plan.needs()) {
                let (pads, c) = rx.recv().expect("pad thread");
                pool.extend(pads);
                offline += c;
            }
            out.extend(
                device
                    .run(&plan, &imgs, &mut pool, &mut a)
                    .expect("run")
                    .logits,
            );
        }
        let r = (
            thread_cpu_seconds() - cpu,
            offline,
            clock.elapsed().as_secs_f64(),
            out,
        );
        let t = user_sys_ticks();
        eprintln!(
            "device online thread: user {} ticks, system {} ticks",
            t.0 - ticks.0,
            t.1 - ticks.1
        );
        drop(rx);
        worker.expect("spawn").join().expect("pad thread");
        r
    });
    assert_eq!(logits_out, shadow, "protocol logits equal the shadow's");
    a.shutdown().expect("shutdown a");
    b.shutdown().expect("shutdown b");
    for h in servers {
        h.join().expect("edge thread").expect("serve");
    }
    let (on, off) = (online_cpu / n as f64, offline_cpu / n as f64);
    eprintln!(
        "VGG16 w0.25 over TCP, {n} images: alone {:.3} ms/image; device online {:.3} ms/image \
         ({:.2} %), offline {:.3} ms/image ({:.2} %), total {:.2} %; {:.1} images/s",
        1e3 * alone,
        1e3 * on,
        100.0 * on / alone,
        1e3 * off,
        100.0 * off / alone,
        100.0 * (on + off) / alone,
        n as f64 / wall
    );
}

/// User and system clock ticks (10 ms) of the calling thread, from `/proc/thread-self/stat`.
fn user_sys_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    (
        f.get(11).copied().unwrap_or(0),
        f.get(12).copied().unwrap_or(0),
    )
}
