//! Unit tests of config loading: profiles, env overrides, unknown keys, every shipped pipeline.

use std::collections::BTreeMap;
use std::path::Path;

use super::*;

const BASE: &str = r#"
name = "toy"
description = "toy pipeline"
seed = 1

[data]
dataset = "mnist"
source = "../shared/datasets"
cache = "data"
image_size = 28
split_seed = 0
normalization = { mean = [0.0], std = [1.0] }

[model]
architecture = "lenet5"

[train]
epochs = 20
batch_size = 128
optimizer = "adam"
learning_rate = 0.001
schedule = "cosine"

[select]
algorithm = "greedy"

[profiles.quick.train]
epochs = 2
"#;

fn write(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("toy.toml");
    std::fs::write(&path, text).expect("write fixture");
    path
}

fn no_env() -> BTreeMap<String, String> {
    BTreeMap::new()
}

#[test]
fn loads_default_and_profile() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), BASE);
    let base = load_with_env(&path, None, no_env()).expect("default loads");
    assert_eq!(base.pipeline.train.epochs, 20);
    assert_eq!(base.profile, "default");
    assert_eq!(base.pipeline.model.lenet_filters, [6, 16]);
    let quick = load_with_env(&path, Some("quick"), no_env()).expect("quick loads");
    assert_eq!(quick.pipeline.train.epochs, 2);
    assert_eq!(
        quick.pipeline.train.batch_size, 128,
        "profile keeps other keys"
    );
    assert_ne!(base.hash(), quick.hash());
    assert!(
        quick
            .results_dir(Path::new("results"))
            .ends_with("toy-quick")
    );
    assert!(base.results_dir(Path::new("results")).ends_with("toy"));
}

#[test]
fn env_overrides_nested_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), BASE);
    let env = BTreeMap::from([
        ("PRIVDNN_TRAIN__EPOCHS".to_string(), "3".to_string()),
        ("PRIVDNN_DATA__SOURCE".to_string(), "/elsewhere".to_string()),
        ("PRIVDNN_TRAIN__BACKEND".to_string(), "wgpu".to_string()),
    ]);
    let cfg = load_with_env(&path, Some("quick"), env).expect("loads");
    assert_eq!(cfg.pipeline.train.epochs, 3, "env beats profile");
    assert_eq!(cfg.pipeline.data.source, Path::new("/elsewhere"));
    assert_eq!(cfg.pipeline.train.backend, crate::Backend::Wgpu);
}

#[test]
fn unknown_key_is_rejected_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        &BASE.replace("epochs = 20", "epochs = 20\nepohcs = 3"),
    );
    let err = load_with_env(&path, None, no_env()).expect_err("must fail");
    let msg = err.to_string();
    assert!(msg.contains("epohcs"), "{msg}");
    assert!(msg.contains("toy.toml"), "{msg}");
}

#[test]
fn unknown_env_key_is_rejected_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), BASE);
    let env = BTreeMap::from([("PRIVDNN_TRAIN__EPOCS".to_string(), "3".to_string())]);
    let msg = load_with_env(&path, None, env)
        .expect_err("must fail")
        .to_string();
    assert!(msg.contains("epocs"), "{msg}");
}

#[test]
fn bad_values_and_profiles_are_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        &BASE.replace("batch_size = 128", "batch_size = 0"),
    );
    let msg = load_with_env(&path, None, no_env())
        .expect_err("zero batch")
        .to_string();
    assert!(msg.contains("train.batch_size"), "{msg}");
    let path = write(dir.path(), BASE);
    let msg = load_with_env(&path, Some("huge"), no_env())
        .expect_err("no profile")
        .to_string();
    assert!(msg.contains("huge") && msg.contains("quick"), "{msg}");
    let path = write(dir.path(), &BASE.replace("\"lenet5\"", "\"lenet6\""));
    let msg = load_with_env(&path, None, no_env())
        .expect_err("bad arch")
        .to_string();
    assert!(msg.contains("lenet6"), "{msg}");
    let msg = pipeline_path(dir.path(), "nope")
        .expect_err("no pipeline")
        .to_string();
    assert!(msg.contains("nope") && msg.contains("toy"), "{msg}");
}

#[test]
fn every_shipped_pipeline_loads_in_every_profile() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines");
    let names = available_pipelines(&dir);
    assert!(names.len() >= 8, "pipelines found: {names:?}");
    for name in names {
        let path = pipeline_path(&dir, &name).expect("exists");
        let cfg = load_with_env(&path, None, no_env()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(cfg.pipeline.name, name, "name key matches file name");
        if name != "tiny" {
            load_with_env(&path, Some("quick"), no_env())
                .unwrap_or_else(|e| panic!("{name} quick: {e}"));
        }
    }
}

#[test]
fn selection_sizes_follow_the_reference_rules() {
    let mut s = SelectConfig::default();
    assert_eq!(s.sizes([6, 16]), [1, 1]);
    s.add_factor = 3;
    assert_eq!(s.sizes([6, 16]), [1, 4]);
    s.initial_neurons = 2;
    s.multiply_factor = 3;
    assert_eq!(s.sizes([6, 16]), [2, 6]);
    s.percent = 5.0;
    assert_eq!(s.sizes([64, 64]), [3, 3], "CIFAR-10 VGG16 at 5 %");
    assert_eq!(s.sizes([96, 256]), [4, 12], "GTSRB AlexNet at 5 %");
    s.percent = 100.0;
    assert_eq!(s.sizes([6, 16]), [6, 16]);
    s.percent = 1.0;
    assert_eq!(s.sizes([6, 16]), [1, 1], "never below one filter");
}

#[test]
fn stage_hash_ignores_later_sections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), BASE);
    let a = load_with_env(&path, None, no_env()).expect("loads");
    let env = BTreeMap::from([(
        "PRIVDNN_SELECT__INITIAL_NEURONS".to_string(),
        "2".to_string(),
    )]);
    let b = load_with_env(&path, None, env).expect("loads");
    assert_ne!(a.hash(), b.hash());
    assert_eq!(a.stage_hash("train"), b.stage_hash("train"));
    assert_ne!(a.stage_hash("select"), b.stage_hash("select"));
}

#[test]
fn dropout_defaults_to_the_paper_and_keeps_old_stage_hashes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = load_with_env(&write(dir.path(), BASE), None, no_env()).expect("loads");
    assert_eq!(base.pipeline.train.dropout, 0.5);
    let explicit = BASE.replace("epochs = 20", "epochs = 20\ndropout = 0.5");
    let same = load_with_env(&write(dir.path(), &explicit), None, no_env()).expect("loads");
    assert_eq!(base.stage_hash("train"), same.stage_hash("train"));
    let lower = BASE.replace("epochs = 20", "epochs = 20\ndropout = 0.2");
    let other = load_with_env(&write(dir.path(), &lower), None, no_env()).expect("loads");
    assert_ne!(base.stage_hash("train"), other.stage_hash("train"));
    let bad = BASE.replace("epochs = 20", "epochs = 20\ndropout = 1.0");
    let msg = load_with_env(&write(dir.path(), &bad), None, no_env())
        .expect_err("dropout 1 drops everything")
        .to_string();
    assert!(msg.contains("train.dropout"), "{msg}");
}

#[test]
fn he_mode_defaults_to_owner_keyed_and_keeps_old_stage_hashes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = load_with_env(&write(dir.path(), BASE), None, no_env()).expect("loads");
    assert_eq!(base.pipeline.he.mode, HeMode::OwnerKeyed);
    let explicit = format!("{BASE}\n[he]\nmode = \"owner-keyed\"\n");
    let same = load_with_env(&write(dir.path(), &explicit), None, no_env()).expect("loads");
    assert_eq!(base.stage_hash("encrypt"), same.stage_hash("encrypt"));
    assert_eq!(base.hash(), same.hash());
    let env = BTreeMap::from([("PRIVDNN_HE__MODE".to_string(), "user-keyed".to_string())]);
    let keyed = load_with_env(&write(dir.path(), BASE), None, env).expect("loads");
    assert_eq!(keyed.pipeline.he.mode, HeMode::UserKeyed);
    assert_eq!(keyed.pipeline.he.mode.name(), "user-keyed");
    assert_ne!(base.stage_hash("encrypt"), keyed.stage_hash("encrypt"));
    assert_eq!(base.stage_hash("select"), keyed.stage_hash("select"));
    let typo = format!("{BASE}\n[he]\nmode = \"user-keys\"\n");
    let msg = load_with_env(&write(dir.path(), &typo), None, no_env())
        .expect_err("unknown mode")
        .to_string();
    assert!(msg.contains("user-keys") || msg.contains("mode"), "{msg}");
}

#[test]
fn service_section_is_optional_keeps_hashes_and_parses_users() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = load_with_env(&write(dir.path(), BASE), None, no_env()).expect("loads");
    assert!(base.pipeline.service.is_default());
    assert!(
        !serde_json::to_string(&base)
            .expect("json")
            .contains("service")
    );
    let with = format!(
        "{BASE}\n[service]\nca = \"certs/ca.pem\"\nwindow_seconds = 60\n\
         [service.users.alice]\nrequests = 5\nciphertexts = 100\n\
         [service.users.bob]\nrevoked = true\n"
    );
    let svc = load_with_env(&write(dir.path(), &with), None, no_env()).expect("loads");
    let s = &svc.pipeline.service;
    assert_eq!(s.window_seconds, 60);
    assert_eq!(s.users["alice"].requests, 5);
    assert_eq!(s.users["alice"].ciphertexts, 100);
    assert!(s.users["bob"].revoked && !s.users["alice"].revoked);
    assert_eq!(base.stage_hash("encrypt"), svc.stage_hash("encrypt"));
    let bad = format!("{BASE}\n[service]\nwindow_seconds = 0\n");
    assert!(load_with_env(&write(dir.path(), &bad), None, no_env()).is_err());
    let typo = format!("{BASE}\n[service.users.alice]\nrequest = 5\n");
    assert!(load_with_env(&write(dir.path(), &typo), None, no_env()).is_err());
    let file = dir.path().join("service.toml");
    std::fs::write(
        &file,
        "max_connections_per_peer = 2\n[users.carol]\nrequests = 1\n",
    )
    .expect("w");
    let standalone = ServiceConfig::from_file(&file).expect("standalone");
    assert_eq!(standalone.max_connections_per_peer, 2);
    assert_eq!(standalone.users["carol"].requests, 1);
    assert_eq!(
        standalone.users["carol"].ciphertexts,
        UserQuota::default().ciphertexts
    );
}
