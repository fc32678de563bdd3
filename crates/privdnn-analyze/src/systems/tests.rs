//! Tests of the four-system comparison on small fixture files written into a temporary results
//! folder: rows filled from the files, missing systems "not yet measured", the latency model.

use std::path::Path;

use super::table::{NOT_APPLICABLE, NOT_MEASURED, systems_comparison};
use super::{LAN, Measured, WAN};
use crate::runs::discover;
use crate::table::Table;

const CONFIG: &str = r#"[pipeline]
name = "mnist"
[pipeline.data]
dataset = "mnist"
image_size = 28
[pipeline.model]
architecture = "lenet5"
"#;

const INFER: &str = r#"{"mode_reports": [
  {"mode": "separate", "images": 1000, "accuracy": 98.5, "exact_match_rate": 1.0,
   "phases_s": {"owner_decrypt": 0.5, "user_he_eval": 2.0, "user_unblind": 0.25, "plain_tail": 0.25,
                "owner_load": 9.0},
   "per_image_s": 0.004, "latency_s": 0.75, "peak_rss_bytes": 104857600,
   "bytes_user_to_owner": 2000000, "bytes_owner_to_user": 500000}]}"#;

const EDGE: &str = r#"{"accuracy": {"float": 99.0, "integer": 99.0, "protocol": 99.0},
 "exact_match_rate": 100.0,
 "device": {"cpu_seconds_per_image_batched": 0.0001, "peak_rss_bytes": 2097152},
 "edges": {"a": {"cpu_seconds_per_image": 0.0002}, "b": {"cpu_seconds_per_image": 0.0003}},
 "latency": {"single_image_median_seconds": 0.0006},
 "throughput": {"images_per_second": 1600.0},
 "communication": {"rounds_per_image": 5,
   "batched_per_image": {"link_a": {"bytes_sent": 1000, "bytes_received": 900},
                         "link_b": {"bytes_sent": 1000, "bytes_received": 900}}},
 "peak_rss_bytes": {"device": 2097152, "edge_a": 1048576}}"#;

const TWOSERVER: &str = r#"{"accuracy": {"protocol": 99.0}, "exact_match_rate": 100.0,
 "latency": {"single_image_median_seconds": 0.11}, "throughput": {"images_per_second": 9.5},
 "online": {"rounds_per_image": 23, "per_image_batched": {
   "client_s1": {"bytes_sent": 40, "bytes_received": 100},
   "client_s2": {"bytes_sent": 6000, "bytes_received": 100},
   "s1_s2": {"bytes_sent": 10000000, "bytes_received": 36000}}},
 "parties": {"client": {"cpu_seconds_per_image": 0.0001, "peak_rss_bytes": 1048576},
   "server1": {"cpu_seconds_per_image": 0.024}, "server2": {"cpu_seconds_per_image": 0.016}}}"#;

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn row<'t>(t: &'t Table, system: &str, model: &str) -> &'t [String] {
    t.rows
        .iter()
        .find(|r| r[0].starts_with(system) && r[1] == model)
        .unwrap_or_else(|| panic!("no row {system} / {model}"))
}

fn cell<'t>(t: &'t Table, r: &'t [String], column: &str) -> &'t str {
    let i = t
        .columns
        .iter()
        .position(|c| c.starts_with(column))
        .unwrap_or_else(|| panic!("no column {column}"));
    &r[i]
}

#[test]
fn rows_come_from_the_files_and_missing_systems_say_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let results = dir.path().join("results");
    write(&results, "mnist/config.toml", CONFIG);
    write(&results, "mnist/infer/metrics.json", INFER);
    write(&results, "mnist/baselines/edge/metrics.json", EDGE);
    write(
        &results,
        "mnist/baselines/twoserver/metrics.json",
        TWOSERVER,
    );
    let mut problems = Vec::new();
    let runs = discover(&results, &mut problems).expect("discover");
    assert!(problems.is_empty(), "{problems:?}");
    let t = systems_comparison(&runs);
    assert_eq!(t.rows.len(), 5 * 3, "five systems × three models");
    // PrivDNN owner-keyed on MNIST: per image = totals / 1000 images
    let owner = row(&t, "PrivDNN owner-keyed", "MNIST");
    assert_eq!(cell(&t, owner, "accuracy"), "98.50");
    assert_eq!(cell(&t, owner, "exact match"), "100.00");
    assert_eq!(cell(&t, owner, "client/device CPU"), "2.50e-3 (wall)");
    assert_eq!(cell(&t, owner, "server CPU"), "5.00e-4 (wall)");
    assert_eq!(cell(&t, owner, "batched throughput"), "250.0");
    assert_eq!(cell(&t, owner, "bytes client→server"), "2000");
    assert_eq!(cell(&t, owner, "bytes server→client"), "500");
    assert_eq!(cell(&t, owner, "rounds"), "1");
    assert_eq!(cell(&t, owner, "peak memory"), "both (one process) 100.00");
    // 1 × 40 ms + 2500 B × 8 / 100 Mbit/s (0.2 ms) + 3 ms CPU
    assert_eq!(cell(&t, owner, "modelled WAN"), "43.200");
    // two-edge masking on MNIST: both links and both edges summed
    let edge = row(&t, "two-edge masking", "MNIST");
    assert_eq!(cell(&t, edge, "accuracy"), "99.00");
    assert_eq!(cell(&t, edge, "server CPU"), "5.00e-4");
    assert_eq!(cell(&t, edge, "bytes client→server"), "2000");
    assert_eq!(cell(&t, edge, "bytes server→client"), "1800");
    assert_eq!(cell(&t, edge, "rounds"), "5");
    assert_eq!(cell(&t, edge, "peak memory"), "device 2.00; edge A 1.00");
    // 5 × 0.2 ms + 3800 B × 8 / 1 Gbit/s (0.0304 ms) + 0.6 ms CPU
    assert_eq!(cell(&t, edge, "modelled LAN"), "1.630");
    // two-server GC (TCP report): server↔server bytes count in the modelled latency
    let two = row(&t, "two-server GC", "MNIST");
    assert_eq!(cell(&t, two, "server CPU"), "0.04");
    assert_eq!(cell(&t, two, "bytes client→server"), "6040");
    assert_eq!(cell(&t, two, "rounds"), "23");
    assert_eq!(cell(&t, two, "peak memory"), "client 1.00");
    // 23 × 40 ms + 10,042,240 B × 8 / 100 Mbit/s (803.3792 ms) + 40.1 ms CPU
    assert_eq!(cell(&t, two, "modelled WAN"), "1763.479");
    // no file: every measured cell says so, never a number
    for (system, model, expected) in [
        ("PrivDNN user-keyed", "MNIST", NOT_MEASURED),
        ("split training", "MNIST", NOT_APPLICABLE),
        ("PrivDNN owner-keyed", "GTSRB quick", NOT_MEASURED),
        ("two-edge masking", "CIFAR-10 quick", NOT_MEASURED),
    ] {
        let r = row(&t, system, model);
        for column in ["accuracy", "rounds", "modelled LAN", "modelled WAN"] {
            assert_eq!(cell(&t, r, column), expected, "{system} / {model}");
        }
        assert!(!cell(&t, r, "threat model").is_empty());
    }
    assert!(t.notes.iter().any(|n| n.contains("40 ms RTT, 100 Mbit/s")));
    // an unreadable file is reported and its row is not measured
    write(&results, "mnist/baselines/edge/metrics.json", "{ not json");
    let mut problems = Vec::new();
    let runs = discover(&results, &mut problems).expect("discover");
    assert_eq!(problems.len(), 1, "{problems:?}");
    let t = systems_comparison(&runs);
    let edge = row(&t, "two-edge masking", "MNIST");
    assert_eq!(cell(&t, edge, "accuracy"), NOT_MEASURED);
}

#[test]
fn modelled_latency_is_rounds_rtt_plus_bytes_over_bandwidth_plus_cpu() {
    let m = Measured {
        rounds: Some(5.0),
        bytes_up: Some(1000.0),
        bytes_down: Some(250.0),
        bytes_between: Some(1250.0),
        client_cpu: Some(0.001),
        server_cpu: Some(0.002),
        ..Measured::default()
    };
    let close = |a: Option<f64>, b: f64| {
        let a = a.expect("modelled");
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    };
    // 5 × 40 ms + 2500 B × 8 bit / 100 Mbit/s + 3 ms
    close(m.modelled_latency(WAN), 0.2 + 2e-4 + 0.003);
    // 5 × 0.2 ms + 2500 B × 8 bit / 1 Gbit/s + 3 ms
    close(m.modelled_latency(LAN), 0.001 + 2e-5 + 0.003);
    let no_rounds = Measured {
        rounds: None,
        ..m.clone()
    };
    assert_eq!(
        no_rounds.modelled_latency(WAN),
        None,
        "missing input: no model"
    );
    let no_between = Measured {
        bytes_between: None,
        ..m
    };
    close(no_between.modelled_latency(WAN), 0.2 + 1e-4 + 0.003);
}
