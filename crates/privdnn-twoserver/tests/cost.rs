//! Cost profile on a VGG16 w0.25 CIFAR-10-shaped model with seeded weights (the builder of
//! privdnn-edge's cost test, no training): exact against the shadow, measured online bytes and
//! flights against the analytic count, seconds per party. Ignored by default (seconds of CPU);
//! `cargo test --release -p privdnn-twoserver --test cost -- --ignored --nocapture`.

// The model builder is privdnn-edge's (one copy for both protocols' cost profiles).
#[path = "../../privdnn-edge/tests/common/mod.rs"]
mod common;

use common::vgg::vgg_quick;
use privdnn_mpc::{QuantConfig, import_model};
use privdnn_twoserver::harness::Harness;
use privdnn_twoserver::metrics::run;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
#[ignore]
fn vgg_quick_cost_profile() {
    let model = import_model(&vgg_quick(), &QuantConfig::default()).expect("import");
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let images: Vec<Vec<u8>> = (0..2)
        .map(|_| (0..3 * 32 * 32).map(|_| rng.random::<u8>()).collect())
        .collect();
    let refs: Vec<&[u8]> = images.iter().map(Vec::as_slice).collect();
    let mut h = Harness::new(&model, 4).expect("harness");
    let m = run(&mut h, &model, &refs, &[0, 0]).expect("run");
    println!("{}", serde_json::to_string_pretty(&m).expect("json"));
    assert_eq!(m.exact_match_rate, 100.0);
    let (meas, ana) = (
        m.online_per_image.total() as f64,
        m.analytic.bytes.total() as f64,
    );
    assert!((meas - ana).abs() <= 0.05 * ana, "{meas} vs {ana}");
}
