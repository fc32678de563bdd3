//! End-to-end test of the training stage's file interface on the synthetic `tiny` pipeline:
//! the results layout, manifest and metrics; a second run resumes instead of retraining; a
//! corrupt checkpoint is refused with an error naming the file, and the earlier model survives;
//! `--fresh` then retrains from epoch 0 and replaces the corrupt checkpoint.

use std::path::Path;

use privdnn_artifacts::{Manifest, TrainCheckpoint, TrainedModel, read_artifact};
use privdnn_train::cli::{RunArgs, run_stage};

fn temp_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let pipelines = dir.path().join("pipelines");
    std::fs::create_dir_all(&pipelines).expect("mkdir");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipelines/tiny.toml");
    std::fs::copy(shipped, pipelines.join("tiny.toml")).expect("copy tiny.toml");
    dir
}

#[test]
fn train_stage_writes_results_and_refuses_corrupt_checkpoint() {
    let root = temp_root();
    let args = RunArgs {
        target: privdnn_config::PipelineArgs::new("tiny", root.path()),
        fresh: false,
    };
    let model_path = run_stage(&args).expect("training stage");
    let out = root.path().join("results/tiny/train");
    assert_eq!(model_path, out.join("model.bin"));
    let model: TrainedModel = read_artifact(&model_path).expect("model artifact");
    assert_eq!(model.spec.num_classes, 10);
    let manifest = Manifest::read_beside(&model_path).expect("manifest");
    assert_eq!(manifest.kind, "trained-model");
    assert!(manifest.wall_seconds > 0.0 && manifest.peak_rss_bytes > 0);
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).expect("metrics"))
            .expect("json");
    assert_eq!(metrics["epochs_run"], 3);
    assert!(metrics["test_accuracy"].as_f64().expect("number") > 50.0);
    assert!(root.path().join("results/tiny/config.toml").exists());

    // same config again: resumes from the finished checkpoint, no new epoch
    run_stage(&args).expect("second run");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).expect("metrics"))
            .expect("json");
    assert_eq!(metrics["resumed_from_epoch"], 3);

    // a corrupt checkpoint: clear error naming it; the previous model is untouched
    let checkpoint = out.join("checkpoint.bin");
    let mut bytes = std::fs::read(&checkpoint).expect("read checkpoint");
    let n = bytes.len();
    bytes[n - 10] ^= 0xff;
    std::fs::write(&checkpoint, &bytes).expect("corrupt it");
    let err = run_stage(&args).expect_err("corrupt checkpoint must fail");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("checkpoint.bin") && msg.contains("corrupt"),
        "{msg}"
    );
    assert_eq!(
        read_artifact::<TrainedModel>(&model_path).expect("model intact"),
        model
    );

    // --fresh starts over: it ignores the corrupt checkpoint, trains every epoch again from
    // epoch 0, and replaces both the checkpoint and the model with readable ones.
    let fresh = RunArgs {
        fresh: true,
        ..args
    };
    let fresh_path = run_stage(&fresh).expect("fresh run");
    assert_eq!(fresh_path, model_path);
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).expect("metrics"))
            .expect("json");
    assert_eq!(metrics["resumed_from_epoch"], 0, "{metrics}");
    assert_eq!(metrics["epochs_run"], 3, "{metrics}");
    read_artifact::<TrainCheckpoint>(&checkpoint).expect("the corrupt checkpoint was replaced");
    let retrained: TrainedModel = read_artifact(&model_path).expect("model after --fresh");
    assert_eq!(retrained.spec, model.spec);
    let manifest_after = Manifest::read_beside(&model_path).expect("manifest");
    assert!(manifest_after.created_unix >= manifest.created_unix);
    assert_eq!(
        manifest_after.output_sha256,
        privdnn_artifacts::file_sha256(&model_path).expect("sha")
    );
}
