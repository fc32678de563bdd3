//! End to end through files only: the `tiny` pipeline's stages data → train → select → encrypt
//! → infer, each run as its own binary the way `cargo xtask pipeline` runs them, in a temporary
//! root, then `privdnn-analyze` on the results. Checks that every stage read the files of the
//! stage before it (the input hashes of each manifest are the output hashes of the previous
//! one, and the files on disk still have them) and that the analysis parses what the stages
//! wrote: its tables carry the tiny run's own numbers, not "missing" notes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use privdnn_artifacts::{NeuronSelection, read_artifact};
use serde_json::Value;

/// `target/<profile>` of this test binary (`target/<profile>/deps/<test>`), where cargo puts
/// the stage binaries.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_path_buf()
}

/// Builds the stage binaries once, exactly as `cargo xtask` does (one `--workspace` build, so
/// they share the tests' feature set; a no-op under `cargo test --workspace`).
fn built() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = bin_dir();
        let release = dir.file_name().is_some_and(|n| n == "release");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "--workspace", "--bins", "-q"]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
            .status()
            .expect("start cargo build");
        assert!(status.success(), "building the stage binaries failed");
        dir
    })
}

/// Runs `<binary> <args>` in `root`; returns its stdout, panics with its output on failure.
fn run(root: &Path, binary: &str, args: &[&str]) -> String {
    let path = built().join(binary);
    let clock = std::time::Instant::now();
    let out = Command::new(&path)
        .args(args)
        .current_dir(root)
        // Latency runs and the full-block baseline are measurements the test does not need.
        .env("PRIVDNN_HE__LATENCY", "false")
        .env("PRIVDNN_HE__FULL_BLOCK_IMAGES", "0")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap_or_else(|e| panic!("starting {}: {e}", path.display()));
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(
        out.status.success(),
        "`{binary} {}` failed ({}):\n{}\n{}",
        args.join(" "),
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    eprintln!("{binary}: {:.1} s", clock.elapsed().as_secs_f64());
    text(&out.stdout)
}

fn stage(root: &Path, stage: &str, extra: &[&str]) {
    let root_arg = root.display().to_string();
    let mut args = vec!["run", "--pipeline", "tiny", "--root", root_arg.as_str()];
    args.extend(extra);
    run(root, &format!("privdnn-{stage}"), &args);
}

fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn manifest(artifact: &Path) -> Value {
    let mut name = artifact.as_os_str().to_owned();
    name.push(".manifest.json");
    json(Path::new(&name))
}

fn sha256_of(path: &Path) -> String {
    privdnn_artifacts::file_sha256(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `artifact`'s manifest names `input` among its inputs with `input`'s current hash, and that
/// hash is the output hash in `input`'s own manifest.
fn assert_reads(artifact: &Path, input: &Path) {
    let produced = manifest(input)["output_sha256"]
        .as_str()
        .expect("output_sha256")
        .to_string();
    assert_eq!(
        produced,
        sha256_of(input),
        "{} changed on disk",
        input.display()
    );
    let inputs = manifest(artifact)["inputs"].clone();
    let file = input.file_name().and_then(|n| n.to_str()).expect("name");
    let hit = inputs
        .as_array()
        .expect("inputs")
        .iter()
        .find(|i| i["path"].as_str().is_some_and(|p| p.ends_with(file)))
        .unwrap_or_else(|| panic!("{} does not list {file}: {inputs}", artifact.display()));
    assert_eq!(
        hit["sha256"].as_str(),
        Some(produced.as_str()),
        "{} was computed from another {file}",
        artifact.display()
    );
}

#[test]
fn tiny_pipeline_through_files_then_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("pipelines")).expect("mkdir");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipelines/tiny.toml");
    std::fs::copy(shipped, root.join("pipelines/tiny.toml")).expect("copy tiny.toml");
    let run_dir = root.join("results/tiny");

    stage(root, "train", &[]);
    let model = run_dir.join("train/model.bin");
    assert_eq!(manifest(&model)["kind"], "trained-model");
    let train_metrics = json(&run_dir.join("train/metrics.json"));
    let test_accuracy = train_metrics["test_accuracy"]
        .as_f64()
        .expect("test_accuracy");
    assert!(test_accuracy > 50.0, "tiny trains: {test_accuracy}");

    stage(root, "select", &[]);
    let selection = run_dir.join("select/selection.bin");
    assert_reads(&selection, &model);

    stage(root, "encrypt", &[]);
    let encrypted = run_dir.join("encrypt/encrypted_model.bin");
    assert_reads(&encrypted, &selection);
    assert_reads(&encrypted, &model);
    assert!(run_dir.join("owner/secret_key.bin").exists());

    stage(root, "infer", &["--images", "4"]);
    let infer = json(&run_dir.join("infer/metrics.json"));
    check_infer(&infer, &run_dir);

    let results = root.join("results");
    let stdout = run(
        root,
        "privdnn-analyze",
        &["--results", &results.display().to_string(), "--no-figures"],
    );
    assert!(stdout.contains("tables in"), "{stdout}");
    let select_metrics = json(&run_dir.join("select/metrics.json"));
    let separate_accuracy = select_metrics
        .pointer("/test/separate")
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("select/metrics.json has no test.separate: {select_metrics}"));
    check_tables(&results.join("tables"), test_accuracy, separate_accuracy);
}

/// The infer report measured the selection the select stage chose, on the images asked for,
/// with every HE output equal to the exact integer shadow.
fn check_infer(infer: &Value, run_dir: &Path) {
    assert_eq!(infer["pipeline"], "tiny");
    let modes = infer["mode_reports"].as_array().expect("mode_reports");
    let separate = modes
        .iter()
        .find(|m| m["mode"] == "separate")
        .unwrap_or_else(|| panic!("no separate mode: {infer}"));
    assert_eq!(separate["images"], 4, "{separate}");
    let chosen: NeuronSelection =
        read_artifact(&run_dir.join("select/selection.bin")).expect("selection");
    assert_eq!(
        separate["selection"],
        serde_json::json!([chosen.layer1, chosen.layer2]),
        "infer evaluated another selection than select chose"
    );
    assert_eq!(
        separate["exact_match_rate"].as_f64(),
        Some(1.0),
        "{separate}"
    );
}

/// Table 1 has a row for the tiny run with the train stage's A_o and the select stage's A_s,
/// and no note says one of its inputs is missing.
fn check_tables(tables: &Path, test_accuracy: f64, separate_accuracy: f64) {
    let table1 = std::fs::read_dir(tables)
        .expect("tables folder")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("table1") && n.ends_with(".md"))
        })
        .unwrap_or_else(|| panic!("no table1*.md in {}", tables.display()));
    let text = std::fs::read_to_string(&table1).expect("table1");
    let row = text
        .lines()
        .find(|l| l.contains("tiny"))
        .unwrap_or_else(|| panic!("no tiny row in {}:\n{text}", table1.display()));
    for (what, value) in [("A_o", test_accuracy), ("A_s", separate_accuracy)] {
        assert!(
            row.contains(&format!("{value:.2}")),
            "{what} {value:.2} not in the tiny row: {row}"
        );
    }
    let lower = text.to_lowercase();
    assert!(
        !(lower.contains("tiny") && lower.contains("missing")),
        "a tiny input is reported missing:\n{text}"
    );
}
