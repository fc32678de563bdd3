//! Timing profile on the trained MNIST model (`results/mnist/train/model.bin`, skipped when it is
//! missing): the five roles as threads over TCP on 127.0.0.1 (the functions the
//! `privdnn-baseline twoserver` processes run), 20 images one at a time, then `PROFILE_IMAGES`
//! (default 1,000) with 8 queries in flight. Prints wall ms per image and each role's on-CPU ms
//! per image (its thread's schedstat; the servers garble / evaluate on their own thread with
//! `GC_THREADS = 1`), and checks every logit against the integer shadow. Ignored by default:
//! `cargo test --release -p privdnn-twoserver --test mnist_tcp -- --ignored --nocapture`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Instant;

use privdnn_artifacts::{TrainedModel, read_artifact};
use privdnn_mpc::shadow::logits;
use privdnn_mpc::{QuantConfig, import_model};
use privdnn_net::Limits;
use privdnn_twoserver::dealer::Dealer;
use privdnn_twoserver::net::{TcpClient, run_dealer, send_shares};
use privdnn_twoserver::owner::share_model;
use privdnn_twoserver::serve::{serve_one, serve_two};
use rand::SeedableRng;
use rand_chacha::ChaCha12Rng;

/// This thread's on-CPU seconds (`/proc/thread-self/schedstat`, ns).
fn thread_cpu_s() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns / 1e9)
}

/// Runs `f` and returns its result with the seconds this thread spent on a CPU meanwhile.
fn on_cpu<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = thread_cpu_s();
    let out = f();
    (out, thread_cpu_s() - t)
}

#[test]
#[ignore]
fn mnist_five_roles_over_tcp_profile() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = root.join("results/mnist/train/model.bin");
    let Ok(trained) = read_artifact::<TrainedModel>(&path) else {
        eprintln!("skipped: no trained model at {}", path.display());
        return;
    };
    let model = import_model(&trained, &QuantConfig::default()).expect("import");
    let (_, test) = privdnn_data::load_prepared(&root.join("data"), "mnist", 28).expect("data");
    let n: usize = std::env::var("PROFILE_IMAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
        .min(test.len());
    let single = 20.min(n);
    let images: Vec<&[u8]> = (0..n).map(|i| test.image(i)).collect();
    let limits = Limits::default();
    let bind = || TcpListener::bind("127.0.0.1:0").expect("bind");
    let (l1, l2) = (bind(), bind());
    let (a1, a2) = (
        l1.local_addr().expect("addr").to_string(),
        l2.local_addr().expect("addr").to_string(),
    );
    let mut rng = ChaCha12Rng::seed_from_u64(1);
    let setup = share_model(&model, &mut rng).expect("share");
    let mut dealer = Dealer::new(setup.public.clone(), &mut rng).expect("dealer");
    let queries = (single + n) as u64;
    let (out, wall, cpu) = std::thread::scope(|s| {
        let h1 = s.spawn(|| on_cpu(|| serve_one(&l1, &a2, [3; 32], limits)));
        let h2 = s.spawn(|| on_cpu(|| serve_two(&l2, limits)));
        send_shares(&setup, &a1, &a2, limits).expect("owner");
        let hd = s.spawn(|| on_cpu(|| run_dealer(&mut dealer, &a1, &a2, queries, limits)));
        let mut client = TcpClient::connect(setup.public.clone(), &a1, &a2, limits).expect("c");
        client
            .classify(&images[..single], 1, &mut rng)
            .expect("single");
        let clock = Instant::now();
        let (out, c_cpu) = on_cpu(|| client.classify(&images, 8, &mut rng).expect("batched"));
        let wall = clock.elapsed().as_secs_f64();
        client.shutdown().expect("shutdown");
        let (r1, s1) = h1.join().expect("s1 thread");
        let (r2, s2) = h2.join().expect("s2 thread");
        let (rd, d) = hd.join().expect("dealer thread");
        r1.expect("s1");
        r2.expect("s2");
        rd.expect("dealer");
        (out, wall, [s1, s2, d, c_cpu])
    });
    for (i, raw) in images.iter().enumerate() {
        assert_eq!(out[i], logits(&model, raw).expect("shadow"), "image {i}");
    }
    let per = |x: f64| 1e3 * x / queries as f64;
    println!(
        "{n} images, window 8: {:.2} ms/image batched (wall); on-CPU ms/image over all {queries} \
         queries: server 1 {:.2}, server 2 {:.2}, dealer {:.2}; client {:.3} (batched part)",
        1e3 * wall / n as f64,
        per(cpu[0]),
        per(cpu[1]),
        per(cpu[2]),
        1e3 * cpu[3] / n as f64,
    );
}
