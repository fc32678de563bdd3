//! Role separation and metrics: neither server's code can name the other's messages (so it cannot
//! read the other's shares or the client's other share), and the metrics of a LeNet run (printed
//! with `--nocapture`) report a 100 % exact match and the analytic byte count.

// The seeded `tiny`-shaped fixture is privdnn-edge's (one copy for both protocols' tests).
#[path = "../../privdnn-edge/tests/common/mod.rs"]
mod common;

use privdnn_mpc::{QuantConfig, import_model};
use privdnn_twoserver::harness::Harness;
use privdnn_twoserver::metrics::run;

#[test]
fn servers_cannot_name_the_other_servers_inputs() {
    let s1 = include_str!("../src/server1.rs");
    let s2 = include_str!("../src/server2.rs");
    for name in ["InputShare", "DealerToS2", "EvaluatorRots", "Evaluator"] {
        assert!(!s1.contains(name), "server 1 names `{name}`");
    }
    for name in ["InputSeed", "DealerToS1", "GarblerRots", "Garbler"] {
        assert!(!s2.contains(name), "server 2 names `{name}`");
    }
    // the check is not vacuous: each names its own
    assert!(s1.contains("InputSeed") && s2.contains("InputShare"));
}

#[test]
fn lenet_metrics() {
    let tiny = common::fixture();
    let model = import_model(&tiny.model, &QuantConfig::default()).expect("import");
    let n = 50;
    let images: Vec<&[u8]> = (0..n).map(|i| tiny.test.image(i)).collect();
    let labels: Vec<usize> = tiny.test.labels[..n].iter().map(|&l| l as usize).collect();
    let mut h = Harness::new(&model, 3).expect("harness");
    let m = run(&mut h, &model, &images, &labels).expect("run");
    println!(
        "{}",
        serde_json::to_string_pretty(&m).expect("metrics serialise")
    );
    assert_eq!(m.images, n);
    assert_eq!(m.exact_match_rate, 100.0);
    assert_eq!(m.protocol_accuracy, m.integer_accuracy);
    let (meas, ana) = (
        m.online_per_image.total() as f64,
        m.analytic.bytes.total() as f64,
    );
    assert!((meas - ana).abs() <= 0.05 * ana, "{meas} vs {ana}");
    assert_eq!(m.rounds_per_image, m.analytic.rounds);
    assert!(m.seconds_per_image.s1 > 0.0 && m.seconds_per_image.s2 > 0.0);
}
