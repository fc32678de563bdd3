//! The user-keyed mode over loopback TCP on the tiny LeNet5: the owner serves only the public
//! keyed model, answers a request sent in many parts, and the decrypted outputs equal the
//! integer shadow bit for bit; a `decrypt` frame and the owner-keyed files are refused. The
//! `privdnn-party client` command detects the mode from the files the owner offers, and its
//! predictions equal the shadow's.

mod common;

use std::time::Duration;

use common::tiny::{tiny_model, tiny_selection};
use common::{client_command, finish_client, random_split, u, u_array};
use privdnn_artifacts::{RunLayout, read_artifact, write_artifact};
use privdnn_config::HeConfig;
use privdnn_he::engine::Layout;
use privdnn_partial::keyed::{KeyedModelFile, KeyedOwnerFile, KeyedUserSide, setup, write_setup};
use privdnn_partial::shadow_outputs;
use privdnn_party::client::Client;
use privdnn_party::server::{Server, ServerConfig, ServerHandle};
use privdnn_party::wire::{FileId, Limits};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The keyed setup of the tiny model (conv2 filters 2 and 4 selected) in a temporary run
/// folder, and an owner in user-keyed mode serving it on loopback.
fn keyed_service() -> (tempfile::TempDir, RunLayout, ServerHandle) {
    let model = tiny_model();
    let out = setup(&model, &tiny_selection(&[2, 4]), &HeConfig::default()).expect("keyed setup");
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = RunLayout::new(dir.path());
    write_setup(&layout, &out, None).expect("write");
    assert!(!layout.owner_secret().exists() && !layout.evaluation_keys().exists());
    let config = ServerConfig {
        listen: "127.0.0.1:0".into(),
        ..ServerConfig::default()
    };
    let server = Server::bind_keyed(&layout.keyed_model(), &layout.keyed_owner_block(), &config)
        .expect("bind")
        .spawn()
        .expect("spawn");
    (dir, layout, server)
}

#[test]
fn a_keyed_client_gets_shadow_exact_outputs_over_tcp_and_decrypt_is_refused() {
    let (dir, layout, server) = keyed_service();
    let selection = tiny_selection(&[2, 4]);
    let addr = server.addr().to_string();
    let mut client =
        Client::connect(&addr, Limits::default(), Duration::from_secs(5)).expect("connect");
    let info = client.info().expect("info");
    assert_eq!(
        info.files.iter().map(|f| f.id).collect::<Vec<_>>(),
        vec![FileId::KeyedModel]
    );
    let bytes = client.file(FileId::KeyedModel).expect("download");
    let cached = dir.path().join("client").join("keyed_model.bin");
    privdnn_artifacts::write_bytes_atomic(&cached, &bytes).expect("cache");
    let file: KeyedModelFile = read_artifact(&cached).expect("keyed model");
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let user = KeyedUserSide::new(file, Layout::Batch, &mut rng).expect("user");
    let images: Vec<Vec<u8>> = (0..3)
        .map(|_| (0..28 * 28).map(|_| rng.random::<u8>()).collect())
        .collect();
    let raw: Vec<&[u8]> = images.iter().map(Vec::as_slice).collect();
    let (request, pending) = user.request(&raw, &mut rng).expect("request");
    let request = privdnn_artifacts::codec::encode(&request).expect("encode");
    let (reply, call) = client.keyed(1, &request, 4 << 20).expect("keyed call");
    assert!(
        call.parts > 1,
        "{} bytes in {} parts",
        request.len(),
        call.parts
    );
    let got = user.finish(&pending, &reply).expect("finish");
    let owner: KeyedOwnerFile = read_artifact(&layout.keyed_owner_block()).expect("owner");
    let shadow = shadow_outputs(&owner.block, &selection, &raw, owner.layer1);
    assert_eq!(got.z, shadow.z, "decrypted outputs equal the shadow");
    // No decryption exists on this service: the frame is refused with a clear error.
    let err = client.decrypt(vec![1, 2, 3]).expect_err("refused");
    assert!(err.to_string().contains("user-keyed"), "{err}");
    let mut client =
        Client::connect(&addr, Limits::default(), Duration::from_secs(5)).expect("reconnect");
    let err = client.file(FileId::EvaluationKeys).expect_err("not served");
    assert!(err.to_string().contains("does not serve"), "{err}");
    server.shutdown();
}

#[test]
fn the_client_command_detects_the_keyed_mode_and_matches_the_shadow() {
    let (dir, layout, server) = keyed_service();
    let addr = server.addr().to_string();
    let n = 5;
    let dataset = dir.path().join("test.bin");
    write_artifact(&dataset, &random_split(n, 11)).expect("split");
    let (cache, report) = (dir.path().join("cache"), dir.path().join("client.json"));
    let block = layout.keyed_owner_block().display().to_string();
    // Two requests (batch 3), the owner's block given for the shadow check only.
    let child = client_command(
        &dataset,
        &addr,
        (&cache, &report),
        (0, n, 3),
        &["--audit-owner-block", &block],
    )
    .spawn()
    .expect("client");
    let r = finish_client(child, &report);
    assert_eq!(r["mode"], "user-keyed");
    assert_eq!(u(&r, "/images"), n as u64);
    assert_eq!(u(&r, "/shadow/exact_images"), n as u64, "{}", r["shadow"]);
    assert_eq!(u(&r, "/shadow/same_predictions"), n as u64);
    assert_eq!(u_array(&r, "predictions").len(), n);
    // Bytes: two keyed requests, each larger than its reply, all counted.
    let batches = r["batches"].as_array().expect("batches");
    assert_eq!(batches.len(), 2);
    let sent: u64 = batches.iter().map(|b| u(b, "/traffic/bytes_sent")).sum();
    for b in batches {
        assert!(u(b, "/traffic/bytes_sent") > u(b, "/request_bytes"));
        assert!(u(b, "/request_bytes") > u(b, "/reply_bytes"));
    }
    assert_eq!(u(&r, "/inference/traffic/bytes_sent"), sent);
    // The cache holds the keyed model only; the owner answered two keyed requests.
    let names: Vec<_> = std::fs::read_dir(&cache)
        .expect("cache")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["keyed_model.bin"]);
    // The counter of answered requests: the two keyed ones (the owner decrypts nothing here).
    assert_eq!(server.stats().decrypts, 2);
    // Asking for the other mode is a clear error, before any image is sent.
    let child = client_command(
        &dataset,
        &addr,
        (&cache, &report),
        (0, 1, 0),
        &["--mode", "owner-keyed"],
    )
    .spawn()
    .expect("client");
    let out = child.wait_with_output().expect("client");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("serves the user-keyed mode"), "{err}");
    server.shutdown();
}
