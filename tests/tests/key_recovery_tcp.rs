//! The key-recovery attack of the attack stage over TCP against the real owner service
//! (`privdnn-party`'s server, in process on loopback) with a tiny LeNet5 encrypted by the real
//! owner setup (N = 8192, two CRT residues): one crafted request per variant recovers every key
//! coefficient of both residues and every encrypted weight, and the owner counts each as an
//! ordinary decryption. The attacker's cache holds only the two user files.

use privdnn_artifacts::{
    Architecture, ModelSpec, NeuronSelection, Normalization, RunLayout, TrainedModel,
    write_artifact,
};
use privdnn_attack::key_recovery::{attack_service, record, score_with_owner_files};
use privdnn_config::{Backend, HeConfig};
use privdnn_he::key_recovery::CraftVariant;
use privdnn_model::{Network, export_tensors};
use privdnn_party::server::{OwnerFiles, Server, ServerConfig};

#[test]
fn one_request_over_tcp_recovers_the_owners_key_and_weights() {
    let device = privdnn_model::backend_device(Backend::Flex, false).expect("device");
    let spec = ModelSpec {
        architecture: Architecture::Lenet5,
        in_channels: 1,
        image_size: 28,
        num_classes: 10,
        lenet_filters: [4, 5],
        width: 1.0,
    };
    let (tensors, _) =
        export_tensors(&Network::new(&spec, &device).expect("network")).expect("export");
    let model = TrainedModel {
        dataset: "synthetic".into(),
        spec,
        normalization: Normalization {
            mean: vec![0.4],
            std: vec![0.25],
        },
        tensors,
    };
    let selection = NeuronSelection {
        layer1: vec![1],
        layer2: vec![2, 4],
        channels: [4, 5],
        algorithm: "test".into(),
    };
    let he = HeConfig {
        max_chunk: 64,
        ..HeConfig::default()
    };
    let out = privdnn_partial::setup::encrypt(&model, &selection, &he).expect("encrypt");
    let dir = tempfile::tempdir().expect("tempdir");
    let run_dir = dir.path().join("results/tiny");
    let layout = RunLayout::new(&run_dir);
    write_artifact(&layout.encrypted_model(), &out.model).expect("model");
    write_artifact(&layout.evaluation_keys(), &out.keys).expect("keys");
    write_artifact(&layout.owner_secret(), &out.secret).expect("secret");

    let config = ServerConfig {
        listen: "127.0.0.1:0".into(),
        ..ServerConfig::default()
    };
    let server = Server::bind(&OwnerFiles::of_run(&run_dir), &config)
        .expect("bind")
        .spawn()
        .expect("spawn");
    let addr = server.addr().to_string();

    // The attacker: an address and its own cache folder.
    let cache = dir.path().join("attacker");
    let mut attack = attack_service(&addr, &cache, &CraftVariant::ALL).expect("attack");
    let decrypts = server.stats().decrypts;
    server.shutdown();
    let mut cached: Vec<String> = std::fs::read_dir(&cache)
        .expect("cache")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    cached.sort();
    assert_eq!(cached, ["encrypted_model.bin", "evaluation_keys.bin"]);
    assert_eq!(
        decrypts, 2,
        "each crafted request is an ordinary decryption to the owner"
    );

    // Scoring against the owner's secret file.
    assert!(score_with_owner_files(&run_dir, &mut attack).expect("score"));
    let weights = out.model.block.weight_count();
    for outcome in &attack.outcomes {
        let r = &outcome.report;
        assert_eq!(r.requests, 1, "{:?}", r.variant);
        assert!(r.key_verified_with_public_key);
        assert_eq!(r.key_coefficients, 2 * 8192);
        assert_eq!(
            r.key_coefficients_recovered,
            Some(2 * 8192),
            "{:?}",
            r.variant
        );
        assert_eq!(r.key_bytes_identical, Some(true));
        assert_eq!(r.encrypted_weights, weights);
        assert_eq!(r.weights_fraction, Some(1.0), "{:?}", r.variant);
        assert!(r.bytes_sent > 0 && r.bytes_received > 0);
    }
    let rec = record(&attack, &addr, false, true);
    assert_eq!(rec["mode"], "owner-keyed");
    assert_eq!(rec["key_fraction"], 1.0);
    assert_eq!(rec["weights_fraction"], 1.0);
    assert_eq!(rec["requests_per_recovery"], 1);
}
