//! The owner and the user as separate processes on loopback (owner-keyed mode): an owner
//! process and two client processes, predictions equal to the in-process run, bytes reported
//! by the clients equal to the owner's counters and to the frame sizes, the cached model reused;
//! the owner refuses to serve its secret as a user file.

mod common;

use std::process::Command;
use std::time::Instant;

use common::{
    BIN, Fixture, User, assert_no_secret_in_cache, client_command, finish_client, fixture,
    load_user, spatial_request, u, u_array,
};
use privdnn_partial::owner::OwnerSide;
use privdnn_party::client::argmax_rows;
use privdnn_party::wire::HEADER_LEN;
use serde_json::Value;

/// The in-process run (both roles in this process, bytes between them): logits per batch and
/// request sizes; every batch's outputs equal the shadow.
fn in_process(
    fx: &Fixture,
    user: &User,
    owner: &OwnerSide,
    indices: &[usize],
    batch: usize,
) -> (Vec<f32>, Vec<usize>) {
    let (mut logits, mut request_sizes) = (Vec::new(), Vec::new());
    for chunk in indices.chunks(batch) {
        let raw = fx.raw(chunk.iter().copied());
        let (request, pending) = spatial_request(user, &raw);
        request_sizes.push(request.len());
        let reply = owner.answer(&request).expect("answer");
        let out = user.finish(&reply, pending).expect("finish");
        assert_eq!(
            out,
            fx.shadow(&raw),
            "in-process run differs from the shadow"
        );
        logits.extend(user.logits(&fx.split, chunk, &out));
    }
    (logits, request_sizes)
}

/// A client's predictions, logits and correct count equal the in-process run's.
fn check_predictions(r: &Value, logits: &[f32], count: usize) {
    let want = argmax_rows(logits, 10);
    let got = u_array(r, "predictions");
    let got: Vec<usize> = got.iter().map(|&p| p as usize).collect();
    assert_eq!(
        got, want,
        "predictions over the network differ from the in-process run"
    );
    let got_logits: Vec<f64> = r["logits"]
        .as_array()
        .expect("logits")
        .iter()
        .map(|v| v.as_f64().expect("f"))
        .collect();
    for (g, w) in got_logits.iter().zip(logits) {
        assert!(
            (g - *w as f64).abs() <= 1e-4 * (1.0 + w.abs() as f64),
            "logit {g} vs {w}"
        );
    }
    let labels = u_array(r, "labels");
    let correct = labels
        .iter()
        .zip(&got)
        .filter(|(l, p)| **l as usize == **p)
        .count() as u64;
    assert_eq!(u(r, "/correct"), correct);
    assert_eq!(u(r, "/images"), count as u64);
}

/// Bytes: every batch's frames are its request / reply plus the frame overhead, the request
/// sizes equal the in-process ones, the parts add up to the totals, and the first run
/// downloaded both files in 1 info + 2 file round trips.
fn check_bytes(r: &Value, sizes: &[usize], count: usize, files_len: u64) {
    let batches = r["batches"].as_array().expect("batches");
    assert_eq!(batches.len(), sizes.len());
    let (mut up, mut down) = (0, 0);
    for (b, size) in batches.iter().zip(sizes) {
        let (req, rep) = (u(b, "/request_bytes"), u(b, "/reply_bytes"));
        assert_eq!(req, *size as u64, "request bytes vs the in-process request");
        let (s, rcv) = (u(b, "/traffic/bytes_sent"), u(b, "/traffic/bytes_received"));
        assert!(
            s > req + HEADER_LEN as u64 && s <= req + HEADER_LEN as u64 + 20,
            "sent {s} for a {req}-byte request"
        );
        assert!(
            rcv > rep + HEADER_LEN as u64 && rcv <= rep + HEADER_LEN as u64 + 30,
            "received {rcv} for a {rep}-byte reply"
        );
        assert_eq!(u(b, "/traffic/round_trips"), 1);
        up += s;
        down += rcv;
    }
    assert_eq!(u(r, "/inference/traffic/bytes_sent"), up);
    assert_eq!(u(r, "/inference/traffic/bytes_received"), down);
    let per_image = r["inference"]["bytes_sent_per_image"]
        .as_f64()
        .expect("per image");
    assert!((per_image - up as f64 / count as f64).abs() < 1e-6);
    let dl = u(r, "/download/traffic/bytes_received");
    assert_eq!(u(r, "/download/file_bytes"), files_len);
    assert!(
        dl > files_len && dl < files_len + 1024,
        "download {dl} bytes"
    );
    assert_eq!(u(r, "/download/traffic/round_trips"), 3);
    assert_eq!(u(r, "/total/bytes_received"), dl + down);
    assert_eq!(u(r, "/total/round_trips"), 3 + batches.len() as u64);
    assert_eq!(r["mode"], "owner-keyed");
}

#[test]
fn owner_and_two_client_processes_match_the_in_process_run() {
    let fx = fixture();
    let owner = common::OwnerProcess::start(fx, "e2e-owner", &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let (cache_a, cache_b) = (dir.path().join("a"), dir.path().join("b"));
    let (report_a, report_b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let spatial = ["--layout", "spatial"];
    // Client A: images 0..3 in one request; client B: images 3..8 in requests of 2.
    let clock = Instant::now();
    let run = |cache, report, images| {
        client_command(&fx.dataset, &owner.addr, (cache, report), images, &spatial)
            .spawn()
            .expect("client")
    };
    let (a, b) = (
        run(&cache_a, &report_a, (0, 3, 0)),
        run(&cache_b, &report_b, (3, 5, 2)),
    );
    let (ra, rb) = (finish_client(a, &report_a), finish_client(b, &report_b));
    eprintln!("two clients: {:.1} s", clock.elapsed().as_secs_f64());

    // The owner's counters equal what the clients report (plus this stats request).
    let stats = owner.client().stats().expect("stats");
    let sent = u(&ra, "/total/bytes_sent") + u(&rb, "/total/bytes_sent");
    let received = u(&ra, "/total/bytes_received") + u(&rb, "/total/bytes_received");
    assert_eq!(
        stats.bytes_in,
        sent + HEADER_LEN as u64,
        "owner bytes in vs client bytes sent"
    );
    assert_eq!(
        stats.bytes_out, received,
        "owner bytes out vs client bytes received"
    );
    assert_eq!((stats.decrypts, stats.files, stats.errors), (1 + 3, 4, 0));

    // Predictions (and logits) and bytes equal the in-process run with the same batches.
    let user = load_user(fx);
    let owner_side = OwnerSide::load(&fx.paths.secret).expect("owner");
    let files_len = std::fs::metadata(&fx.paths.model).expect("model").len()
        + std::fs::metadata(&fx.paths.keys).expect("keys").len();
    for (r, offset, count, batch) in [(&ra, 0usize, 3usize, 3usize), (&rb, 3, 5, 2)] {
        let indices: Vec<usize> = (offset..offset + count).collect();
        let (logits, sizes) = in_process(fx, &user, &owner_side, &indices, batch);
        check_predictions(r, &logits, count);
        check_bytes(r, &sizes, count, files_len);
    }
    // The user never holds the secret.
    assert_no_secret_in_cache(fx, &cache_a);
    assert_no_secret_in_cache(fx, &cache_b);

    // Client A again: the model comes from the cache (one info round trip, no file).
    let ra2 = finish_client(run(&cache_a, &report_a, (0, 3, 0)), &report_a);
    assert_eq!(
        ra2["download"]["downloaded"].as_array().map(Vec::len),
        Some(0)
    );
    assert_eq!(u(&ra2, "/download/traffic/round_trips"), 1);
    assert!(u(&ra2, "/download/traffic/bytes_received") < 1024);
    assert_eq!(ra2["predictions"], ra["predictions"]);
}

#[test]
fn owner_refuses_to_serve_a_secret_as_a_user_file() {
    let fx = fixture();
    let out = Command::new(BIN)
        .arg("serve")
        .arg("--model")
        .arg(&fx.paths.secret)
        .arg("--keys")
        .arg(&fx.paths.keys)
        .arg("--secret")
        .arg(&fx.paths.secret)
        .args(["--listen", "127.0.0.1:0", "--insecure"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    // Refused either by the kind check of the model file or by the explicit secret check.
    assert!(
        err.contains("refusing to serve") || err.contains("holds a owner-secret-key artifact"),
        "{err}"
    );
}
