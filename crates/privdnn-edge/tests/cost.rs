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
