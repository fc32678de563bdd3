//! The percent sweep through the stage's command functions on a trained `tiny` model: it starts
//! from the `run` command's selection when that is current, searches again when the select
//! config differs, and its nested points extend one another up to every filter.

use std::path::Path;

use privdnn_artifacts::write_artifact;
use privdnn_config::PipelineArgs;
use privdnn_select::choose::SelectionRecord;
use privdnn_select::cli::{Common, run_default, sweep};

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    let text = std::fs::read_to_string(path).expect("read json");
    serde_json::from_str(&text).expect("parse json")
}

#[test]
fn sweep_reuses_a_current_default_selection_and_nests_its_points() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("pipelines")).expect("mkdir");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/tiny.toml");
    let text = std::fs::read_to_string(shipped).expect("tiny.toml");
    let text = text.replace(
        "[select]\n",
        "[select]\npercent = 50\nsweep_percents = [50.0, 75.0, 100.0]\n",
    );
    std::fs::write(root.join("pipelines/tiny.toml"), text).expect("write config");

    let args = PipelineArgs::new("tiny", root);
    let cfg = args.load().expect("config");
    let (splits, _) = privdnn_data::load_splits(root, &cfg.pipeline).expect("splits");
    let model = privdnn_training::run(&cfg, &splits, None, &mut privdnn_training::QuietObserver)
        .expect("train")
        .model;
    let run_dir = cfg.results_dir(&root.join("results"));
    write_artifact(&run_dir.join("train/model.bin"), &model).expect("write model");

    let common = Common {
        target: args,
        algorithm: None,
    };
    run_default(&common).expect("select run");
    let stage: SelectionRecord = read(&run_dir.join("select/metrics.json"));
    assert!(stage.evaluations > 0, "greedy scored candidates");

    sweep(&common).expect("sweep");
    let points: Vec<SelectionRecord> = read(&run_dir.join("select/sweep.json"));
    assert_eq!(points.len(), 3);
    assert_eq!(
        points[0].selection, stage.selection,
        "50 % is the stage's selection"
    );
    assert_eq!(
        points[0].evaluations, stage.evaluations,
        "not searched again"
    );
    assert_eq!(points[0].seconds, stage.seconds);
    for pair in points.windows(2) {
        for layer in ["1", "2"] {
            let small = pair[0].selection[layer].as_array().expect("list");
            let large = pair[1].selection[layer].as_array().expect("list");
            assert_eq!(&large[..small.len()], &small[..], "nested points");
        }
    }
    let channels = [3, 8];
    assert_eq!(points[2].sizes, channels, "100 % selects every filter");
    assert_eq!(
        points[2].test.separate, points[2].test.original,
        "nothing is separated"
    );

    // another algorithm is another select config: the stage's greedy choice is not reused
    let other = Common {
        algorithm: Some("l2".to_string()),
        ..common
    };
    sweep(&other).expect("l2 sweep");
    let points: Vec<SelectionRecord> = read(&run_dir.join("select/sweep.json"));
    assert_eq!(points[0].algorithm, "l2");
    assert_ne!(points[0].seconds, stage.seconds);
}
