//! The two-edge protocol on a real-shaped LeNet5 (the `tiny` pipeline's shape, seeded weights): exact against the integer shadow on every image; the edges' views uniform
//! and fresh across identical queries; a corrupting edge caught at the configured rate; the
//! device code names no edge file or type. (Trained-model checks: `tests/tests/edge_tiny.rs`.)

mod common;

use common::uniform::{byte_chi_square, looks_uniform, worst_bit_deviation};

use privdnn_edge::device::Device;
use privdnn_edge::edge::{Cheat, CheatMode, EdgeServer};
use privdnn_edge::harness::InProcessLink;
use privdnn_edge::messages::{IntegrityConfig, LayerRequest, from_bytes};
use privdnn_edge::owner::{Setup, setup};
use privdnn_mpc::shadow::logits;
use privdnn_mpc::{IntModel, MaskKey, QuantConfig, import_model};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn int_model() -> IntModel {
    import_model(&common::fixture().model, &QuantConfig::default()).expect("import")
}

fn roles(model: &IntModel, p: f64, seed: u64) -> Setup {
    let integrity = IntegrityConfig {
        test_probability: p,
        tests_per_layer: 3,
    };
    setup(model, &integrity, &mut ChaCha8Rng::seed_from_u64(seed)).expect("setup")
}

#[test]
fn protocol_equals_the_shadow_on_every_test_image() {
    let (tiny, model) = (common::fixture(), int_model());
    let s = roles(&model, 0.3, 1);
    let device = Device::new(s.device).expect("device");
    let mut link = InProcessLink::new(EdgeServer::new(s.edge_a), EdgeServer::new(s.edge_b));
    let n = tiny.test.len();
    let mut tests = 0;
    for start in (0..n).step_by(16) {
        let imgs: Vec<&[u8]> = (start..(start + 16).min(n))
            .map(|i| tiny.test.image(i))
            .collect();
        let out = device.infer(&imgs, &mut link).expect("infer");
        for (k, raw) in imgs.iter().enumerate() {
            assert_eq!(
                out.logits[k],
                logits(&model, raw).expect("shadow"),
                "image {}",
                start + k
            );
        }
        assert_eq!(out.failed_tests, 0, "honest edges never fail a test");
        assert_eq!(out.rounds, 5);
        tests += out.tests;
    }
    // about 0.3 tests per image and layer were hidden among the items
    let expected = 0.3 * 5.0 * n as f64;
    assert!(
        (tests as f64 - expected).abs() < 6.0 * (expected * 0.7).sqrt(),
        "{tests} tests"
    );
}

fn words(view: &[Vec<u8>]) -> Vec<u64> {
    view.iter()
        .flat_map(|bytes| {
            let req: LayerRequest = from_bytes(bytes).expect("request");
            req.items.into_iter().flat_map(|v| v.0)
        })
        .collect()
}

#[test]
fn edge_views_are_uniform_and_fresh_across_identical_queries() {
    let (tiny, model) = (common::fixture(), int_model());
    let s = roles(&model, 0.0, 2);
    let device = Device::new(s.device).expect("device");
    let mut link = InProcessLink::new(EdgeServer::new(s.edge_a), EdgeServer::new(s.edge_b));
    let img = [tiny.test.image(0)];
    link.record_views();
    device.infer(&img, &mut link).expect("first");
    let (a1, b1) = (
        link.a.view.take().expect("a"),
        link.b.view.take().expect("b"),
    );
    link.record_views();
    device.infer(&img, &mut link).expect("second");
    let (a2, b2) = (
        link.a.view.take().expect("a"),
        link.b.view.take().expect("b"),
    );
    for (first, second) in [(words(&a1), words(&a2)), (words(&b1), words(&b2))] {
        assert_eq!(first.len(), second.len());
        assert!(first.len() > 1000, "{} words", first.len());
        // each view alone: every bit position fair (a fixed-seed 5σ bound over 64 bits)
        assert!(
            looks_uniform(&first),
            "bits {} bytes {}",
            worst_bit_deviation(&first),
            byte_chi_square(&first)
        );
        assert!(looks_uniform(&second));
        // fresh: no word repeats between the two identical queries, and their difference is
        // uniform too (a reused mask would make it the zero vector)
        let same = first.iter().zip(&second).filter(|(x, y)| x == y).count();
        assert_eq!(same, 0, "{same} repeated words");
        let diff: Vec<u64> = first
            .iter()
            .zip(&second)
            .map(|(x, y)| x.wrapping_sub(*y))
            .collect();
        assert!(looks_uniform(&diff));
    }
    // the same statistic rejects what an unmasked protocol would send: the centred image
    let clear = privdnn_mpc::shadow::center(&model, img[0]).expect("centre");
    assert!(
        !looks_uniform(&clear),
        "the uniformity test must be able to fail"
    );
}

/// Runs `queries` single-image queries against a cheating EdgeA; returns (corrupted requests,
/// detected requests, queries with a detection).
fn cheat_run(model: &IntModel, p: f64, mode: CheatMode, queries: usize) -> (u64, u64, u64) {
    let tiny = common::fixture();
    let s = roles(model, p, 3);
    let device = Device::new(s.device).expect("device");
    let cheat = Cheat { rate: 1.0, mode };
    let prg = MaskKey([9; 32]).stream("cheat", &[]);
    let mut link = InProcessLink::new(
        EdgeServer::cheating(s.edge_a, cheat, prg),
        EdgeServer::new(s.edge_b),
    );
    let (mut detected, mut queries_caught) = (0, 0);
    for q in 0..queries {
        let out = device
            .infer(&[tiny.test.image(q % tiny.test.len())], &mut link)
            .expect("infer");
        detected += out.failed_layers.len() as u64;
        queries_caught += u64::from(!out.failed_layers.is_empty());
    }
    (link.a.server.corrupted(), detected, queries_caught)
}

fn assert_rate(hits: u64, trials: u64, p: f64, what: &str) {
    let (n, mean) = (trials as f64, trials as f64 * p);
    let sd = (n * p * (1.0 - p)).sqrt();
    eprintln!(
        "{what}: {hits}/{trials} = {:.4} (expected {p:.4})",
        hits as f64 / n
    );
    assert!(
        (hits as f64 - mean).abs() < 4.5 * sd,
        "{what}: {hits} of {trials}, expected {mean:.1} ± {sd:.1}"
    );
}

#[test]
fn corrupting_edge_is_detected_at_the_configured_rate() {
    let model = int_model();
    let p = 0.25;
    let queries = 400;
    // Corrupting every item of every request: caught exactly when a test is present (p), and
    // a query (5 layers) is caught with 1 − (1 − p)^5.
    let (corrupted, detected, caught) = cheat_run(&model, p, CheatMode::AllItems, queries);
    assert_eq!(corrupted, 5 * queries as u64);
    assert_rate(detected, corrupted, p, "all items, per request");
    assert_rate(
        caught,
        queries as u64,
        1.0 - (1.0 - p).powi(5),
        "all items, per query",
    );
    // Corrupting one item of a request (1 real + maybe 1 test): caught with p / 2.
    let (corrupted, detected, _) = cheat_run(&model, p, CheatMode::OneItem, queries);
    assert_rate(detected, corrupted, p / 2.0, "one item, per request");
    // No sampling, no detection.
    assert_eq!(cheat_run(&model, 0.0, CheatMode::AllItems, 20).1, 0);
}

#[test]
fn device_code_cannot_name_the_edges_files_or_layers() {
    for source in [
        include_str!("../src/device.rs"),
        include_str!("../src/pads.rs"),
        include_str!("../src/clear.rs"),
        include_str!("../src/frames.rs"),
        include_str!("../../privdnn-baselines/src/edge_device.rs"),
    ] {
        for forbidden in [
            "EdgeBundle",
            "edge_a",
            "edge_b",
            "EDGE_A",
            "EDGE_B",
            "edge-a",
            "edge-b",
            "weights",
            "linear::",
        ] {
            assert!(
                !source.contains(forbidden),
                "device code names `{forbidden}`"
            );
        }
    }
    let s = roles(&int_model(), 0.1, 4);
    let bare = &s.device.model;
    assert!(bare.ops.iter().all(|op| match op {
        privdnn_mpc::Op::Conv(c) => c.weights.is_empty() && c.bias.is_empty(),
        privdnn_mpc::Op::Fc(f) => f.weights.is_empty() && f.bias.is_empty(),
        _ => true,
    }));
    assert!(bare.block.w1.is_empty() && bare.block.w2.is_empty());
}

#[test]
fn corrupting_second_edge_is_caught_through_the_pads() {
    // EdgeB answers offline (the pads); a corrupted pad makes the item it serves wrong, and the
    // hidden tests use pads like any item, so every test on a corrupted pad fails.
    let (tiny, model) = (common::fixture(), int_model());
    let s = roles(&model, 0.25, 5);
    let device = Device::new(s.device).expect("device");
    let cheat = Cheat {
        rate: 1.0,
        mode: CheatMode::AllItems,
    };
    let prg = MaskKey([8; 32]).stream("cheat", &[]);
    let mut link = InProcessLink::new(
        EdgeServer::new(s.edge_a),
        EdgeServer::cheating(s.edge_b, cheat, prg),
    );
    let (mut tests, mut failed) = (0, 0);
    for q in 0..100 {
        let out = device
            .infer(&[tiny.test.image(q % tiny.test.len())], &mut link)
            .expect("infer");
        tests += out.tests;
        failed += out.failed_tests;
    }
    assert!(tests > 50, "{tests} tests");
    assert_eq!(failed, tests);
}
