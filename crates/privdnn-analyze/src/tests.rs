//! Tests of the whole analysis on small fixture results written into a temporary folder:
//! a snapshot of every table (Markdown files under `src/snapshots/`, compared with the temporary
//! folder replaced by `<tmp>`; `PRIVDNN_UPDATE_SNAPSHOTS=1` rewrites them), missing stages,
//! malformed files and figures rendered to PNGs of the expected size.

use std::path::{Path, PathBuf};

use crate::plot::SIZE;
use crate::runs::discover;
use crate::{Options, run, tables};

const MNIST_CONFIG: &str = r#"profile = "default"
[pipeline]
name = "mnist"
[pipeline.data]
dataset = "mnist"
image_size = 28
[pipeline.data.normalization]
mean = [0.0]
std = [1.0]
[pipeline.model]
architecture = "lenet5"
lenet_filters = [6, 16]
width = 1.0
[pipeline.select]
algorithm = "greedy"
percent = 0.0
max_group = [1, 2]
"#;

const CIFAR_CONFIG: &str = r#"profile = "quick"
[pipeline]
name = "cifar10"
[pipeline.data]
dataset = "cifar10"
image_size = 32
[pipeline.data.normalization]
mean = [0.5, 0.5, 0.5]
std = [0.5, 0.5, 0.5]
[pipeline.model]
architecture = "vgg16"
width = 0.25
[pipeline.select]
algorithm = "greedy"
percent = 50.0
sweep_percents = [50.0, 100.0]
max_group = [2, 6]
"#;

fn train_metrics(test: f64, top5: f64) -> String {
    format!(
        r#"{{"pipeline": "x", "epochs_run": 3, "test_accuracy": {test}, "test_top5_accuracy": {top5},
            "validation_accuracy": {test}, "test_per_class_accuracy": [1,2,3,4,5,6,7,8,9,10],
            "seconds": 12.5, "history": []}}"#
    )
}

fn record(algorithm: &str, percent: f64, sizes: [usize; 2], sel: &str, s: f64, r: f64) -> String {
    format!(
        r#"{{"algorithm": "{algorithm}", "percent": {percent}, "sizes": [{}, {}], "selection": {sel},
            "validation": {{"images": 100, "original": 99.0, "separate": {s}, "removed": {r}, "gap": 0, "point": 0.1}},
            "test": {{"images": 100, "original": 99.5, "separate": {s}, "removed": {r}, "gap": 0, "point": 0.25}},
            "evaluations": 38, "draws": 0, "seconds": 2.5}}"#,
        sizes[0], sizes[1]
    )
}

const EXHAUSTIVE: &str = r#"[
  {"sizes": [1, 1], "selections": 96, "seconds": 2.6,
   "best": {"1": [3], "2": [12]}, "best_scores": [98.58, 88.28, 0.2],
   "worst": {"1": [5], "2": [7]}, "worst_scores": [83.48, 85.68, -0.6],
   "ranks": [
     {"algorithm": "greedy", "selection": {"1": [4], "2": [12]}, "rank": 8, "seconds": 2.4, "draws": 0},
     {"algorithm": "l2", "selection": {"1": [1], "2": [7]}, "rank": 63, "seconds": 0.0002, "draws": 0},
     {"algorithm": "random", "selection": {"1": [4], "2": [7]}, "rank": 25, "seconds": 2.8, "draws": 8}],
   "expected_random_rank": 11.17},
  {"sizes": [1, 2], "selections": 720, "seconds": 6.5,
   "best": {"1": [3], "2": [3, 12]}, "best_scores": [98.72, 80.48, 0.32],
   "worst": {"1": [1], "2": [4, 11]}, "worst_scores": [89.72, 92.38, -0.63],
   "ranks": [
     {"algorithm": "greedy", "selection": {"1": [4], "2": [12, 7]}, "rank": 13, "seconds": 2.43, "draws": 0},
     {"algorithm": "l2", "selection": {"1": [1], "2": [7, 10]}, "rank": null, "seconds": 0.00001, "draws": 0},
     {"algorithm": "random", "selection": {"1": [4], "2": [3, 7]}, "rank": 307, "seconds": 2.48, "draws": 7}],
   "expected_random_rank": 90.5}
]"#;

/// `exhaustive_test.json`: group (1, 1) selected and ranked on the test split, with a tie and
/// the validation choice's held-out rank (the (1, 2) group is left out: its rows say so).
const EXHAUSTIVE_TEST: &str = r#"[
  {"sizes": [1, 1], "selections": 96, "seconds": 2.5, "split": "test",
   "best": {"1": [4], "2": [12]}, "best_scores": [98.4, 90.1, 0.21],
   "worst": {"1": [5], "2": [7]}, "worst_scores": [83.1, 85.2, -0.61],
   "ranks": [
     {"algorithm": "greedy", "selection": {"1": [4], "2": [3]}, "rank": 2, "worst_rank": 3, "seconds": 2.3, "draws": 0}],
   "greedy_other_split": {"algorithm": "greedy", "selection": {"1": [4], "2": [12]}, "rank": 1, "worst_rank": 1, "seconds": 2.4, "draws": 0},
   "expected_random_rank": 10.9}
]"#;

const INFER: &str = r#"{"mode_reports": [
  {"mode": "separate", "selection": [[0], [0]], "images": 5000, "accuracy": 95.6, "exact_match_rate": 1.0,
   "phases_s": {"keygen": 0.5, "user_eval": 9.65, "owner_decrypt": 0.11},
   "per_image_s": 0.00196, "latency_s": 1.03, "peak_rss_bytes": 104857600, "model_bytes": 623345,
   "eval_key_bytes": 16369768, "bytes_user_to_owner": 14160515, "bytes_owner_to_user": 5234881,
   "ops": {"ct_pt_mul": 25976, "ct_ct_mul": 3488, "relins": 416}},
  {"mode": "plaintext", "images": 5000, "accuracy": 99.4, "phases_s": {"plain_inference": 0.23},
   "per_image_s": 0.0000467, "ops": null}
]}"#;

const ATTACK: &str = r#"{"points": [
   {"percent": 50, "recovered_freeze": 80.5, "recovered_unfreeze": 82.25},
   {"percent": 100, "recovered_freeze": 20.0, "recovered_unfreeze": 30.0}],
 "from_scratch": {"samples": 1000, "accuracy": 45.5},
 "sample_curve": [{"samples": 100, "recovered_unfreeze": 40.0, "from_scratch": 20.0},
                  {"samples": 1000, "recovered_unfreeze": 82.25, "from_scratch": 45.5}],
 "key_recovery": {"variants": {"direct": {"mode": "owner-keyed", "requests": 1,
   "requests_decrypted": 1, "bytes_sent": 143397, "bytes_received": 49193, "seconds": 0.73,
   "key_fraction": 1.0, "weights_fraction": 1.0, "encrypted_weights": 188}}}}"#;

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// A results folder with an MNIST run (train, select, exhaustive, sweep, infer), a CIFAR-10
/// quick run (train, percent sweep, attack), a variant folder and a non-run folder.
fn fixture(root: &Path) -> PathBuf {
    let results = root.join("results");
    write(&results, "mnist/config.toml", MNIST_CONFIG);
    write(
        &results,
        "mnist/train/metrics.json",
        &train_metrics(99.4, 100.0),
    );
    write(
        &results,
        "mnist/select/metrics.json",
        &record(
            "greedy",
            0.0,
            [1, 1],
            r#"{"1": [4], "2": [12]}"#,
            97.8,
            89.44,
        ),
    );
    write(
        &results,
        "mnist/select/sweep.json",
        &format!(
            "[{}, {}]",
            record(
                "greedy",
                0.0,
                [1, 1],
                r#"{"1": [4], "2": [12]}"#,
                97.8,
                89.44
            ),
            record("l2", 0.0, [1, 1], r#"{"1": [1], "2": [7]}"#, 90.0, 88.0)
        ),
    );
    write(&results, "mnist/select/exhaustive.json", EXHAUSTIVE);
    write(
        &results,
        "mnist/select/exhaustive_test.json",
        EXHAUSTIVE_TEST,
    );
    let mut csv = String::from("s1_size,s2_size,layer1,layer2,separate,removed,point\n");
    for i in 0..96 {
        csv.push_str(&format!(
            "1,1,{},{},{:.4},{:.4},{:.6}\n",
            i / 16,
            i % 16,
            99.0 - i as f64 * 0.1,
            50.0 + i as f64 * 0.4,
            0.5 - i as f64 * 0.01
        ));
    }
    for i in 0..720 {
        csv.push_str(&format!(
            "1,2,{},{} {},{:.4},{:.4},{:.6}\n",
            i / 120,
            i % 15,
            15,
            98.0 - (i % 50) as f64 * 0.2,
            40.0 + (i % 90) as f64 * 0.5,
            0.4 - i as f64 * 0.001
        ));
    }
    write(&results, "mnist/select/exhaustive_points.csv", &csv);
    write(&results, "mnist/infer/metrics.json", INFER);
    // a renamed variant with training only
    write(&results, "mnist-noaug/config.toml", MNIST_CONFIG);
    write(
        &results,
        "mnist-noaug/train/metrics.json",
        &train_metrics(98.88, 100.0),
    );
    // CIFAR-10 quick: percent sweep and attack, no select/metrics.json, no infer stage
    write(&results, "cifar10-quick/config.toml", CIFAR_CONFIG);
    write(
        &results,
        "cifar10-quick/train/metrics.json",
        &train_metrics(85.5, 99.0),
    );
    write(
        &results,
        "cifar10-quick/select/sweep.json",
        &format!(
            "[{}, {}]",
            record(
                "greedy",
                50.0,
                [4, 4],
                r#"{"1": [0, 1, 2, 3], "2": [4, 5, 6, 7]}"#,
                85.0,
                50.0
            ),
            record(
                "greedy",
                100.0,
                [16, 16],
                r#"{"1": [], "2": []}"#,
                84.0,
                10.0
            )
        ),
    );
    write(&results, "cifar10-quick/attack/metrics.json", ATTACK);
    // its HE time at 100 %: the full-block variant (`cargo xtask full-block`)
    write(
        &results,
        "cifar10-quick/variants/full-block/infer/metrics.json",
        r#"{"mode_reports": [{"mode": "separate", "images": 16, "accuracy": 75.0, "per_image_s": 0.5},
            {"mode": "full-block", "images": 16, "accuracy": 81.25, "exact_match_rate": 1.0,
             "per_image_s": 1.25}]}"#,
    );
    write(&results, "bench/train.json", "{}");
    results
}

/// Compares `actual` (with `tmp` replaced by `<tmp>`) with `src/snapshots/<name>.md`.
pub(crate) fn snapshot(name: &str, actual: &str, tmp: &Path) {
    let actual = actual.replace(&tmp.display().to_string(), "<tmp>");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/snapshots")
        .join(format!("{name}.md"));
    if std::env::var_os("PRIVDNN_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, &actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing snapshot {}; run with PRIVDNN_UPDATE_SNAPSHOTS=1 and review it",
            path.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "table `{name}` differs from its snapshot {} (PRIVDNN_UPDATE_SNAPSHOTS=1 rewrites it)",
        path.display()
    );
}

#[test]
fn every_table_matches_its_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let results = fixture(dir.path());
    let mut problems = Vec::new();
    let runs = discover(&results, &mut problems).expect("discover");
    assert!(problems.is_empty(), "{problems:?}");
    let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["cifar10-quick", "mnist", "mnist-noaug"],
        "bench/ is not a run"
    );
    let all = tables::all(&runs);
    let ids: Vec<&str> = all.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "table1_accuracy",
            "table2_3_ranks",
            "greedy_layer1",
            "table4_5_selection_time",
            "table4_5_algorithms",
            "table7_recovery",
            "key_recovery",
            "he_costs",
            "fig5_he_operations",
            "reference_comparison",
            "systems_comparison"
        ]
    );
    for t in &all {
        snapshot(&t.id, &t.to_markdown(), dir.path());
        // the CSV has the same cells: one header line plus one line per row (no line breaks)
        assert_eq!(t.to_csv().lines().count(), 1 + t.rows.len(), "{}", t.id);
    }
    snapshot("table7_recovery_csv", &all[5].to_csv(), dir.path());
}

#[test]
fn missing_stages_say_what_to_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let results = dir.path().join("results");
    write(&results, "mnist/config.toml", MNIST_CONFIG);
    let mut problems = Vec::new();
    let runs = discover(&results, &mut problems).expect("discover");
    assert!(problems.is_empty());
    let t1 = tables::table1(&runs);
    let note = &t1.rows[0][10];
    assert!(
        note.contains("missing `")
            && note.contains("mnist/train/metrics.json`: run `cargo xtask pipeline mnist`"),
        "{note}"
    );
    assert!(
        note.contains("run `cargo xtask pipeline mnist --only select`"),
        "{note}"
    );
    let ranks = tables::ranks(&runs);
    assert!(ranks.rows.is_empty());
    assert!(
        ranks
            .notes
            .iter()
            .any(|n| n.contains("run `cargo xtask select exhaustive mnist`")),
        "{:?}",
        ranks.notes
    );
    let he = tables::he_costs(&runs);
    assert!(he.to_markdown().contains("(no rows)"));
    assert!(
        he.notes
            .iter()
            .any(|n| n
                .contains("infer/metrics.json`: run `cargo xtask pipeline mnist` (infer stage)")),
        "{:?}",
        he.notes
    );
    let rec = tables::recovery(&runs);
    assert!(rec.notes.iter().any(|n| n.contains("attack/metrics.json")));
    // no results folder at all: empty tables, no error
    let report = run(&Options::new(dir.path().join("nothing"))).expect("run");
    assert!(report.runs.is_empty());
    let training = crate::systems::training::tables(&[]).len();
    assert_eq!(report.tables.len(), tables::all(&[]).len() + training);
}

#[test]
fn malformed_inputs_are_named_and_the_rest_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let results = fixture(dir.path());
    let bad_select = results.join("mnist/select/metrics.json");
    std::fs::write(&bad_select, r#"{"algorithm": "greedy", "sizes": [1]}"#).expect("write");
    let bad_infer = results.join("mnist/infer/metrics.json");
    std::fs::write(&bad_infer, r#"{"mode_reports": [{"mode": 3}]}"#).expect("write");
    let report = run(&Options::new(&results)).expect("run");
    assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
    assert!(results.join("tables/table1_accuracy.md").is_file());
    assert!(results.join("figures/fig4_mnist.png").is_file());
    let table1 = std::fs::read_to_string(results.join("tables/table1_accuracy.md")).expect("t1");
    assert!(table1.contains("unreadable `"), "{table1}");
    let index = std::fs::read_to_string(results.join("tables/README.md")).expect("index");
    assert!(index.contains("## Unreadable inputs"), "{index}");
    let err = report
        .into_result()
        .expect_err("invalid inputs")
        .to_string();
    assert!(err.starts_with("2 unreadable input file(s)"), "{err}");
    assert!(
        err.contains(&format!("{}: malformed JSON", bad_select.display())),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{}: `/mode_reports/0/mode`: expected a string, found a number",
            bad_infer.display()
        )),
        "{err}"
    );
    // a run whose config.toml is broken is reported, the others still load
    std::fs::write(results.join("mnist-noaug/config.toml"), "profile = [").expect("write");
    let mut problems = Vec::new();
    let runs = discover(&results, &mut problems).expect("discover");
    assert_eq!(runs.len(), 2);
    assert!(
        problems.iter().any(|p| p
            .to_string()
            .contains("mnist-noaug/config.toml: malformed TOML")),
        "{problems:?}"
    );
    // a CSV row that is not numbers fails fig4 with the line named
    std::fs::write(
        results.join("mnist/select/exhaustive_points.csv"),
        "s1_size,s2_size,layer1,layer2,separate,removed,point\n1,2,0,1 2,x,1,1\n",
    )
    .expect("write");
    let report = run(&Options::new(&results)).expect("run");
    assert!(
        report.problems.iter().any(|p| p
            .to_string()
            .contains("exhaustive_points.csv: line 2: field 5")),
        "{:?}",
        report.problems
    );
}

#[test]
fn run_writes_tables_figures_and_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let results = fixture(dir.path());
    let mut options = Options::new(&results);
    options.publish = Some(dir.path().join("docs/results"));
    let report = run(&options)
        .expect("run")
        .into_result()
        .expect("no problems");
    for id in [
        "table1_accuracy",
        "reference_comparison",
        "fig5_he_operations",
    ] {
        assert!(results.join(format!("tables/{id}.md")).is_file(), "{id}");
        assert!(results.join(format!("tables/{id}.csv")).is_file(), "{id}");
    }
    let made: Vec<&str> = report
        .figures
        .made
        .iter()
        .map(|(s, _)| s.as_str())
        .collect();
    assert_eq!(
        made,
        [
            "fig4_mnist",
            "fig5_he_operations",
            "fig5_mnist",
            "fig5_cifar10-quick",
            "fig7_cifar10-quick_accuracy",
            "attack_samples_cifar10-quick",
            "systems_cost"
        ]
    );
    for stem in &made {
        let png = results.join(format!("figures/{stem}.png"));
        assert_eq!(crate::plot::tests::png_size(&png), SIZE, "{stem}");
        assert!(
            results.join(format!("figures/{stem}.svg")).is_file(),
            "{stem}"
        );
    }
    assert!(
        report
            .figures
            .skipped
            .iter()
            .any(|s| s.starts_with("fig7_cifar10-quick_he_time")),
        "{:?}",
        report.figures.skipped
    );
    let index = std::fs::read_to_string(results.join("tables/README.md")).expect("index");
    assert!(
        index.contains("[fig4_mnist](../figures/fig4_mnist.svg)"),
        "{index}"
    );
    for f in [
        "reference_comparison.md",
        "table1_accuracy.md",
        "fig4_mnist.png",
    ] {
        assert!(dir.path().join("docs/results").join(f).is_file(), "{f}");
    }
}
