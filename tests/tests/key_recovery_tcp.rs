//! The key-recovery attack of the attack stage over TCP against the real owner service
//! (`privdnn-party`'s server, in process on loopback) with a tiny LeNet5 set up by the real
//! owner setup (N = 8192, two CRT residues), in both protocol modes:
//! * owner-keyed: one crafted request per variant recovers every key coefficient of both
//!   residues and every encrypted weight, and the owner counts each as an ordinary decryption.
//!   The attacker's cache holds only the two user files.
//! * user-keyed: the owner has no decryption path; both crafted decryption requests are
//!   refused, the crafted keyed request reaches no decryption on the owner and gives the
//!   attacker (under its own key) exactly the integer shadow of its chosen input; no key
//!   coefficient and no encrypted weight exist to recover.

#[path = "../../crates/privdnn-party/tests/common/tiny.rs"]
mod tiny;

use privdnn_artifacts::RunLayout;
use privdnn_attack::key_recovery::{
    attack_service, keyed::KEYED_PROBE, metrics_key, record, score_with_owner_files,
};
use privdnn_config::HeConfig;
use privdnn_he::key_recovery::CraftVariant;
use privdnn_party::server::{OwnerFiles, Server, ServerConfig};
use tiny::{encrypt_run, tiny_model, tiny_selection};

/// Conv2 filters 2 and 4 selected.
fn selection() -> privdnn_artifacts::NeuronSelection {
    tiny_selection(&[2, 4])
}

fn loopback() -> ServerConfig {
    ServerConfig {
        listen: "127.0.0.1:0".into(),
        ..ServerConfig::default()
    }
}

#[test]
fn one_request_over_tcp_recovers_the_owners_key_and_weights() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run_dir = dir.path().join("results/tiny");
    let out = encrypt_run(&tiny_model(), &selection(), &run_dir);

    let server = Server::bind(&OwnerFiles::of_run(&run_dir), &loopback())
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
    assert_eq!(metrics_key(attack.mode), "key_recovery");
}

#[test]
fn against_a_user_keyed_owner_no_request_reaches_a_decryption_and_nothing_is_recovered() {
    let (model, selection) = (tiny_model(), selection());
    let out = privdnn_partial::keyed::setup(&model, &selection, &HeConfig::default())
        .expect("keyed setup");
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = RunLayout::new(dir.path().join("results/tiny/variants/user-keyed"));
    privdnn_partial::keyed::write_setup(&layout, &out, None).expect("write");
    let server = Server::bind_keyed(
        &layout.keyed_model(),
        &layout.keyed_owner_block(),
        &loopback(),
    )
    .expect("bind")
    .spawn()
    .expect("spawn");
    let addr = server.addr().to_string();

    let cache = dir.path().join("attacker");
    let mut attack = attack_service(&addr, &cache, &CraftVariant::ALL).expect("attack");
    let stats = server.stats();
    server.shutdown();
    assert_eq!(attack.mode, "user-keyed");
    assert!(attack.outcomes.is_empty(), "no key recovery ran");
    let cached: Vec<String> = std::fs::read_dir(&cache)
        .expect("cache")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(cached, ["keyed_model.bin"], "nothing else is served");
    assert_eq!(
        stats.errors, 2,
        "both crafted decryption requests were refused"
    );

    assert!(score_with_owner_files(layout.output_dir(), &mut attack).expect("score"));
    let names: Vec<&str> = attack.probes.iter().map(|p| p.variant).collect();
    assert_eq!(names, ["direct", "stealth", KEYED_PROBE]);
    for p in &attack.probes {
        assert_eq!(p.requests, 1);
        assert_eq!(
            p.requests_decrypted, 0,
            "{}: reached a decryption",
            p.variant
        );
        assert_eq!(p.key_coefficients_recovered, Some(0));
        assert_eq!(p.key_fraction, Some(0.0));
        assert_eq!(p.encrypted_weights, 0, "no encrypted weight is shipped");
        assert!(p.bytes_sent > 0 && p.bytes_received > 0, "{}", p.variant);
        if p.variant == KEYED_PROBE {
            assert!(p.refused.is_none());
            // 2 selected filters × 8×8 outputs, decrypted with the attacker's own key
            assert_eq!(p.outputs_learned, 2 * 64);
            assert_eq!(
                p.outputs_equal_shadow,
                Some(true),
                "the attacker learns exactly the shadow of its chosen input"
            );
        } else {
            let why = p.refused.as_deref().expect("refused");
            assert!(why.contains("no secret key"), "{why}");
        }
    }
    let rec = record(&attack, &addr, false, true);
    assert_eq!(rec["mode"], "user-keyed");
    assert_eq!(rec["requests"], 3);
    assert_eq!(rec["requests_decrypted"], 0);
    assert_eq!(rec["requests_refused"], 2);
    assert_eq!(rec["key_fraction"], 0.0);
    assert_eq!(rec["encrypted_weights"], 0);
    assert_eq!(rec["variants"]["keyed"]["mode"], "user-keyed");
    assert_eq!(metrics_key(attack.mode), "key_recovery_user_keyed");
}
