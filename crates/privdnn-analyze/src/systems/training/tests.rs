//! Tests of the split-training tables on small hand-written files following the schema: a full
//! run (every variant, leakage), a run with a missing variant and no leakage file, a folder
//! found by its files alone, absent runs, a malformed file, and the figure.

use std::path::Path;

use super::table::{spnn_training, spnn_training_epochs};
use super::{TrainingRun, discover};
use crate::systems::table::NOT_MEASURED;
use crate::table::Table;
use crate::tests::snapshot;

fn epochs(accuracies: &[f64], seconds: f64) -> String {
    let entries: Vec<String> = accuracies
        .iter()
        .enumerate()
        .map(|(i, a)| {
            format!(
                r#"{{"epoch": {}, "test_accuracy": {a}, "train_loss": 0.3, "train_accuracy": 91.0, "seconds": {seconds}}}"#,
                i + 1
            )
        })
        .collect();
    format!("[{}]", entries.join(", "))
}

const BYTES: &str = r#"{"a_to_b": 1000, "b_to_a": 1000, "a_to_server": 50000, "b_to_server": 50000,
    "server_to_a": 50000, "server_to_b": 50000, "dealer_to_b": 20000}"#;
const ANALYTIC: &str = r#"{"a_to_b": 1000, "b_to_a": 1000, "a_to_server": 50000, "b_to_server": 50000,
    "server_to_a": 50000, "server_to_b": 50000, "dealer_to_b": 18000}"#;

fn spnn(name: &str, sigma: f64, accuracy: f64, history: &[f64]) -> String {
    format!(
        r#"{{"name": "{name}", "label": "SPNN", "noise_sigma": {sigma}, "test_accuracy": {accuracy},
          "seconds_per_epoch": 30.0, "crypto_seconds_per_epoch": 12.0, "server_seconds_per_epoch": 11.0,
          "transfer_seconds_per_epoch": 7.0, "forwards_checked": 860, "forwards_exact": 860, "steps": 860,
          "bytes_per_step": {BYTES}, "analytic_bytes_per_step": {ANALYTIC}, "rounds_per_step": 5,
          "roles": {{"holder_a": {{"cpu_seconds": 1.0, "peak_rss_bytes": 1}}}},
          "epochs": {}}}"#,
        epochs(history, 30.0)
    )
}

fn plaintext(accuracy: f64, history: &[f64]) -> String {
    format!(
        r#"{{"name": "plaintext", "label": "plaintext training", "noise_sigma": 0.0, "test_accuracy": {accuracy},
          "seconds_per_epoch": 10.0, "epochs": {}}}"#,
        epochs(history, 10.0)
    )
}

fn naive(accuracy: f64) -> String {
    format!(
        r#"{{"name": "naive_split", "label": "naive split", "noise_sigma": 0.0, "test_accuracy": {accuracy},
          "seconds_per_epoch": 12.5, "crypto_seconds_per_epoch": 0, "server_seconds_per_epoch": 11.0,
          "transfer_seconds_per_epoch": 1.5, "forwards_checked": 0, "forwards_exact": 0,
          "bytes_per_step": {{"a_to_server": 50000, "server_to_a": 50000}},
          "analytic_bytes_per_step": {{"a_to_server": 50000, "server_to_a": 50000}}, "rounds_per_step": 2,
          "epochs": {}}}"#,
        epochs(&[accuracy - 2.0, accuracy], 12.5)
    )
}

fn metrics(dataset: &str, variants: &[String]) -> String {
    format!(
        r#"{{"system": "spnn", "label": "split training (SPNN, as reconstructed)", "as_reconstructed": "text",
          "dataset": "{dataset}", "architecture": "lenet5", "settings": {{"epochs": 2}},
          "variants": [{}],
          "comparison": {{"epoch_time_ratio": 3.0}},
          "learns": {{"dealer": "nothing", "holder_a": "its columns", "holder_b": "its columns",
                     "server": "z1 of each training image"}}}}"#,
        variants.join(", ")
    )
}

const LEAKAGE: &str = r#"{"images": 16, "variants": [
  {"name": "spnn", "noise_sigma": 0.0, "epoch": 2, "attackers": [
     {"name": "blind", "knows": "z1 only", "psnr_db": 12.3, "ssim": 0.4},
     {"name": "released_conv1", "knows": "z1 and conv1", "psnr_db": 30.0, "ssim": 0.95}]},
  {"name": "spnn_noise", "noise_sigma": 0.01, "epoch": 2, "attackers": [
     {"name": "blind", "psnr_db": 11.0, "ssim": 0.31},
     {"name": "released_conv1", "psnr_db": 18.5, "ssim": null}]}],
 "reference": {"name": "mean training image", "psnr_db": 10.0, "ssim": 0.1},
 "grid": "spnn_leakage.png"}"#;

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// mnist-quick: everything; fashion-mnist-quick: no `spnn_noise`, no leakage file;
/// `mnist-split`: a folder without `config.toml` found by its leakage file alone.
fn fixture(results: &Path) {
    let full = metrics(
        "mnist",
        &[
            plaintext(98.9, &[97.0, 98.9]),
            spnn("spnn", 0.0, 98.8, &[96.5, 98.8]),
            spnn("spnn_noise", 0.01, 98.5, &[95.0, 98.5]),
            naive(98.7),
        ],
    );
    write(results, "mnist-quick/baselines/spnn/metrics.json", &full);
    write(results, "mnist-quick/attack/spnn_leakage.json", LEAKAGE);
    let partial = metrics(
        "fashion-mnist",
        &[
            plaintext(89.0, &[85.0, 89.0]),
            spnn("spnn", 0.0, 88.25, &[84.0, 88.25]),
            naive(88.0),
        ],
    );
    write(
        results,
        "fashion-mnist-quick/baselines/spnn/metrics.json",
        &partial,
    );
    write(results, "mnist-split/attack/spnn_leakage.json", LEAKAGE);
    write(results, "bench/train.json", "{}");
}

fn load(results: &Path) -> Vec<TrainingRun> {
    let mut problems = Vec::new();
    let runs = discover(results, &mut problems).expect("discover");
    assert!(problems.is_empty(), "{problems:?}");
    runs
}

fn cell<'t>(t: &'t Table, run: &str, variant: &str, column: &str) -> &'t str {
    let r = t
        .rows
        .iter()
        .find(|r| r[0] == run && r[2].starts_with(variant))
        .unwrap_or_else(|| panic!("no row {run} / {variant}"));
    let i = t
        .columns
        .iter()
        .position(|c| c.starts_with(column))
        .unwrap_or_else(|| panic!("no column {column}"));
    &r[i]
}

#[test]
fn training_tables_match_their_snapshots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let results = dir.path().join("results");
    fixture(&results);
    let runs = load(&results);
    let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["mnist-quick", "fashion-mnist-quick", "mnist-split"]);
    let t = spnn_training(&runs);
    assert_eq!(t.rows.len(), 3 * 4, "three runs × four variants");
    snapshot("spnn_training", &t.to_markdown(), dir.path());
    snapshot("spnn_training_csv", &t.to_csv(), dir.path());
    let e = spnn_training_epochs(&runs);
    snapshot("spnn_training_epochs", &e.to_markdown(), dir.path());
    assert_eq!(t.to_csv().lines().count(), 1 + t.rows.len());
}

#[test]
fn full_run_cells() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture(dir.path());
    let t = spnn_training(&load(dir.path()));
    let at = |variant: &str, column: &str| cell(&t, "mnist-quick", variant, column).to_string();
    assert_eq!(at("SPNN (", "gap to plaintext"), "-0.10");
    assert_eq!(at("SPNN (", "epoch time"), "3.000");
    assert_eq!(at("SPNN (", "first-layer forwards"), "860 / 860");
    assert_eq!(at("SPNN (", "bytes per step measured"), "222000");
    assert_eq!(at("SPNN (", "bytes deviation"), "+0.91");
    assert!(at("SPNN (", "bytes per step per link").contains("D→B 20000 / 18000 (+11.11 %)"));
    assert_eq!(at("SPNN (", "rounds"), "5");
    assert_eq!(at("SPNN (", "leakage, blind"), "12.30 dB / 0.400");
    assert_eq!(at("SPNN +", "leakage, attacker"), "18.50 dB / –");
    assert!(at("SPNN (", "threat model").starts_with("server: z1"));
    assert_eq!(at("plaintext", "gap"), "(reference)");
    assert_eq!(at("plaintext", "leakage, blind"), "–");
    assert_eq!(at("naive", "crypto"), "0");
    assert_eq!(at("naive", "first-layer forwards"), "–");
    assert_eq!(at("naive", "leakage, blind"), NOT_MEASURED);
    assert!(
        t.notes
            .iter()
            .any(|n| n.starts_with("mnist-quick: accuracy cost of the noise 0.30 points"))
    );
}

#[test]
fn missing_leakage_and_missing_variant_say_not_yet_measured() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture(dir.path());
    let runs = load(dir.path());
    let t = spnn_training(&runs);
    let at =
        |variant: &str, column: &str| cell(&t, "fashion-mnist-quick", variant, column).to_string();
    // the variant the file lacks: every metrics cell, and its leakage (no file)
    for column in [
        "final test accuracy",
        "s per epoch",
        "bytes per step measured",
        "rounds",
        "leakage, blind",
    ] {
        assert_eq!(at("SPNN +", column), NOT_MEASURED, "{column}");
    }
    // present variants are measured, their leakage is not (no leakage file)
    assert_eq!(at("SPNN (", "final test accuracy"), "88.25");
    assert_eq!(at("SPNN (", "leakage, attacker"), NOT_MEASURED);
    assert!(t.notes.iter().any(|n| n.starts_with("fashion-mnist-quick: missing `")
        && n.contains("attack/spnn_leakage.json`: run `privdnn-attack run --pipeline fashion-mnist --profile quick --only spnn_leakage`")), "{:?}", t.notes);
    // a folder found by its leakage file alone: leakage measured, metrics not
    let at = |variant: &str, column: &str| cell(&t, "mnist-split", variant, column).to_string();
    assert_eq!(at("SPNN (", "final test accuracy"), NOT_MEASURED);
    assert_eq!(at("SPNN (", "leakage, blind"), "12.30 dB / 0.400");
    let e = spnn_training_epochs(&runs);
    let row = e
        .rows
        .iter()
        .find(|r| r[0] == "fashion-mnist-quick" && r[1] == "2")
        .expect("epoch 2");
    assert_eq!(row[2..], ["89.00", "88.25", NOT_MEASURED, "88.00"]);
}

#[test]
fn no_results_lists_the_expected_runs_unmeasured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runs = load(&dir.path().join("nothing"));
    let t = spnn_training(&runs);
    assert_eq!(t.rows.len(), 2 * 4);
    assert!(t.rows.iter().all(|r| r[4] == NOT_MEASURED));
    assert!(
        t.notes
            .iter()
            .any(|n| { n.contains("run `cargo xtask baseline spnn mnist --profile quick`") })
    );
    assert_eq!(spnn_training_epochs(&runs).rows.len(), 2);
}

#[test]
fn malformed_file_is_named_and_the_rest_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture(dir.path());
    let bad = dir.path().join("mnist-quick/baselines/spnn/metrics.json");
    std::fs::write(
        &bad,
        r#"{"variants": [{"name": "spnn", "test_accuracy": "high"}]}"#,
    )
    .expect("write");
    let mut problems = Vec::new();
    let runs = discover(dir.path(), &mut problems).expect("discover");
    assert_eq!(problems.len(), 1);
    assert_eq!(
        problems[0].to_string(),
        format!(
            "{}: `/variants/0/test_accuracy`: expected a number, found a string",
            bad.display()
        )
    );
    let t = spnn_training(&runs);
    assert_eq!(
        cell(&t, "mnist-quick", "SPNN (", "final test accuracy"),
        NOT_MEASURED
    );
    assert_eq!(
        cell(&t, "mnist-quick", "SPNN (", "leakage, blind"),
        "12.30 dB / 0.400"
    );
    assert!(t.notes.iter().any(|n| n.contains("unreadable `")));
}

#[test]
fn run_writes_the_training_tables_and_figure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let results = dir.path().join("results");
    fixture(&results);
    let report = crate::run(&crate::Options::new(&results))
        .expect("run")
        .into_result()
        .expect("no problems");
    for id in ["spnn_training", "spnn_training_epochs"] {
        assert!(results.join(format!("tables/{id}.md")).is_file(), "{id}");
        assert!(results.join(format!("tables/{id}.csv")).is_file(), "{id}");
    }
    let made: Vec<&str> = report
        .figures
        .made
        .iter()
        .map(|(s, _)| s.as_str())
        .collect();
    for stem in [
        "spnn_accuracy_mnist-quick",
        "spnn_accuracy_fashion-mnist-quick",
    ] {
        assert!(made.contains(&stem), "{made:?}");
        let png = results.join(format!("figures/{stem}.png"));
        assert_eq!(
            crate::plot::tests::png_size(&png),
            crate::plot::SIZE,
            "{stem}"
        );
    }
    assert!(
        report
            .figures
            .skipped
            .iter()
            .any(|s| s
                .starts_with("spnn_accuracy_mnist-split: no per-epoch accuracy yet: missing `"))
    );
    let index = std::fs::read_to_string(results.join("tables/README.md")).expect("index");
    assert!(
        index.contains("[Split training (SPNN, as reconstructed) beside plaintext training"),
        "{index}"
    );
}
