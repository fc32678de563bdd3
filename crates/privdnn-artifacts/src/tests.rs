//! Tests of the envelope: round trip, atomic writes, and every rejection path (missing file, bad
//! magic, wrong kind, wrong version, truncated header and payload, corrupt payload, trailing
//! bytes), each naming the file.

use std::path::Path;

use super::*;

fn model() -> TrainedModel {
    TrainedModel {
        dataset: "mnist".to_string(),
        spec: ModelSpec {
            architecture: Architecture::Lenet5,
            in_channels: 1,
            image_size: 28,
            num_classes: 10,
            lenet_filters: [6, 16],
            width: 1.0,
        },
        normalization: Normalization {
            mean: vec![0.0],
            std: vec![1.0],
        },
        tensors: vec![NamedTensor {
            name: "conv1.weight".to_string(),
            shape: vec![2, 3],
            values: vec![1.0, -2.5, 3.25, 0.0, 7.0, -0.125],
        }],
    }
}

fn written(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("model.bin");
    write_artifact(&path, &model()).expect("write");
    path
}

fn assert_names_file(err: &ArtifactError, path: &Path) {
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "message must name the file: {msg}"
    );
}

#[test]
fn round_trip_is_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = written(dir.path());
    let back: TrainedModel = read_artifact(&path).expect("read");
    assert_eq!(back, model());
    let split = DatasetSplit {
        dataset: "x".into(),
        split: "train".into(),
        channels: 1,
        height: 2,
        width: 2,
        class_names: vec!["a".into(), "b".into()],
        labels: vec![0, 1],
        images: vec![0, 1, 2, 3, 4, 5, 6, 255],
    };
    let p = dir.path().join("split.bin");
    write_artifact(&p, &split).expect("write split");
    assert_eq!(
        read_artifact::<DatasetSplit>(&p).expect("read split"),
        split
    );
    assert_eq!(split.subset(&[1], "t").images, vec![4, 5, 6, 255]);
}

#[test]
fn missing_file_names_producer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("absent.bin");
    let err = read_artifact::<TrainedModel>(&path).expect_err("missing");
    assert!(matches!(err, ArtifactError::NotFound { .. }));
    assert_names_file(&err, &path);
    assert!(err.to_string().contains("train stage"), "{err}");
}

#[test]
fn bad_magic_is_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("junk.bin");
    std::fs::write(&path, b"definitely not an artifact at all, just some text").expect("write");
    let err = read_artifact::<TrainedModel>(&path).expect_err("junk");
    assert!(matches!(err, ArtifactError::BadMagic { .. }), "{err}");
    assert_names_file(&err, &path);
}

#[test]
fn wrong_kind_is_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = written(dir.path());
    let err = read_artifact::<DatasetSplit>(&path).expect_err("kind");
    assert!(matches!(err, ArtifactError::WrongKind { .. }), "{err}");
    assert!(err.to_string().contains("trained-model"), "{err}");
    assert_names_file(&err, &path);
}

#[test]
fn wrong_version_is_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = written(dir.path());
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[10..14].copy_from_slice(&99u32.to_le_bytes());
    std::fs::write(&path, &bytes).expect("write");
    let err = read_artifact::<TrainedModel>(&path).expect_err("version");
    match &err {
        ArtifactError::WrongVersion {
            expected, found, ..
        } => {
            assert_eq!((*expected, *found), (1, 99));
        }
        other => panic!("wrong error {other}"),
    }
    assert!(
        err.to_string().contains("99") && err.to_string().contains("re-run"),
        "{err}"
    );
    assert_names_file(&err, &path);
}

#[test]
fn truncation_is_detected_in_header_and_payload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = written(dir.path());
    let bytes = std::fs::read(&path).expect("read");
    for cut in [12, HEADER_LEN - 1, HEADER_LEN + 3, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..cut]).expect("write");
        let err = read_artifact::<TrainedModel>(&path).expect_err("truncated");
        assert!(
            matches!(err, ArtifactError::Truncated { .. }),
            "cut {cut}: {err}"
        );
        assert_names_file(&err, &path);
    }
}

#[test]
fn corruption_and_trailing_bytes_are_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = written(dir.path());
    let bytes = std::fs::read(&path).expect("read");
    let mut flipped = bytes.clone();
    let last = flipped.len() - 2;
    flipped[last] ^= 0x40;
    std::fs::write(&path, &flipped).expect("write");
    let err = read_artifact::<TrainedModel>(&path).expect_err("corrupt");
    assert!(matches!(err, ArtifactError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("checksum"), "{err}");
    let mut longer = bytes.clone();
    longer.extend_from_slice(b"xx");
    std::fs::write(&path, &longer).expect("write");
    let err = read_artifact::<TrainedModel>(&path).expect_err("trailing");
    assert!(matches!(err, ArtifactError::Corrupt { .. }), "{err}");
}

#[test]
fn failed_write_keeps_previous_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = written(dir.path());
    // a directory squatting on the temp name makes the write fail before the rename
    let tmp = dir
        .path()
        .join(format!(".model.bin.tmp-{}", std::process::id()));
    std::fs::create_dir(&tmp).expect("mkdir");
    let mut other = model();
    other.dataset = "changed".to_string();
    assert!(write_artifact(&path, &other).is_err());
    let back: TrainedModel = read_artifact(&path).expect("old file intact");
    assert_eq!(back.dataset, "mnist");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("ls")
        .flatten()
        .collect();
    assert_eq!(
        leftovers.len(),
        2,
        "only the artifact and the squatting dir remain"
    );
}

/// An artifact and one input file ("abc") in `dir`.
fn artifact_with_input(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let input = dir.join("input.txt");
    std::fs::write(&input, b"abc").expect("write");
    (written(dir), input)
}

/// The trained-model manifest of `path` with config hash "cfg" in schema `version`.
fn manifest_of(path: &Path, input: &Path, version: u32) -> Manifest {
    Manifest::for_artifact(
        ArtifactKind::TrainedModel,
        version,
        "test 0",
        path,
        "cfg",
        &[input],
        1.5,
    )
    .expect("manifest")
}

#[test]
fn manifest_records_hashes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, input) = artifact_with_input(dir.path());
    let m = manifest_of(&path, &input, 1);
    assert_eq!(
        m.inputs[0].sha256,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    m.write_beside(&path).expect("write manifest");
    assert_eq!(Manifest::read_beside(&path).expect("read manifest"), m);
    assert_eq!(m.output_sha256, file_sha256(&path).expect("hash"));
    assert!(m.peak_rss_bytes > 0);
}

#[test]
fn manifest_is_current_only_for_same_config_inputs_and_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, input) = artifact_with_input(dir.path());
    let current = ArtifactKind::TrainedModel.schema_version();
    let write = |version| {
        manifest_of(&path, &input, version)
            .write_beside(&path)
            .expect("write manifest")
    };
    assert!(!Manifest::is_current(&path, "cfg"), "no manifest yet");
    write(current);
    assert!(Manifest::is_current(&path, "cfg"));
    assert!(!Manifest::is_current(&path, "other cfg"), "config changed");
    write(current + 1);
    assert!(
        !Manifest::is_current(&path, "cfg"),
        "made in another schema version: the stage must run again"
    );
    write(current);
    std::fs::write(&input, b"abd").expect("change input");
    assert!(!Manifest::is_current(&path, "cfg"), "input changed");
}

#[test]
fn kinds_round_trip_through_code_and_name() {
    for kind in ArtifactKind::ALL {
        assert_eq!(ArtifactKind::from_code(kind.code()), Some(kind));
        assert_eq!(ArtifactKind::from_name(kind.name()), Some(kind));
        assert!(kind.schema_version() >= 1);
    }
    assert_eq!(ArtifactKind::from_name("no-such-kind"), None);
}

fn split() -> DatasetSplit {
    DatasetSplit {
        dataset: "t".into(),
        split: "test".into(),
        channels: 1,
        height: 2,
        width: 2,
        class_names: vec!["a".into(), "b".into()],
        labels: vec![0, 1, 1],
        images: vec![7; 12],
    }
}

/// Writes `value` and reads it back as bytes through `decode_artifact` and as a file.
fn reread<T: Artifact + std::fmt::Debug>(value: &T) -> (Result<T>, Result<T>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("x.bin");
    write_artifact(&path, value).expect("write");
    let bytes = std::fs::read(&path).expect("read");
    (decode_artifact(&bytes, &path), read_artifact(&path))
}

fn invalid_reason<T: Artifact + std::fmt::Debug>(value: &T) -> String {
    let (mem, file) = reread(value);
    let (mem, file) = (mem.expect_err("invalid"), file.expect_err("invalid"));
    assert_eq!(mem.to_string(), file.to_string());
    assert!(matches!(mem, ArtifactError::Invalid { .. }), "{mem}");
    assert!(mem.to_string().contains("x.bin"), "{mem}");
    mem.to_string()
}

#[test]
fn splits_are_checked_for_meaning() {
    let (mem, file) = reread(&split());
    assert_eq!(mem.expect("valid"), split());
    assert_eq!(file.expect("valid"), split());
    let mut short = split();
    short.images.truncate(11);
    assert!(invalid_reason(&short).contains("11 image bytes for 3 labels"));
    let mut label = split();
    label.labels[2] = 2;
    assert!(invalid_reason(&label).contains("label 2 but only 2 classes"));
    let mut flat = split();
    flat.width = 0;
    flat.images.clear();
    assert!(invalid_reason(&flat).contains("1×2×0"));
    let mut huge = split();
    huge.height = usize::MAX / 2;
    assert!(invalid_reason(&huge).contains("overflow") || invalid_reason(&huge).contains("×"));
}

#[test]
fn selections_and_models_are_checked_for_meaning() {
    let sel = NeuronSelection {
        layer1: vec![1],
        layer2: vec![0, 3],
        channels: [2, 4],
        algorithm: "greedy".into(),
    };
    assert_eq!(reread(&sel).0.expect("valid"), sel);
    let mut out = sel.clone();
    out.layer2 = vec![4];
    assert!(invalid_reason(&out).contains("layer 2 selects filter 4 of a layer with 4"));
    let mut twice = sel.clone();
    twice.layer1 = vec![1, 1];
    assert!(invalid_reason(&twice).contains("twice"));
    let mut m = model();
    m.tensors[0].shape = vec![3, 3];
    assert!(invalid_reason(&m).contains("conv1.weight of shape [3, 3] holds 6 values"));
    let mut m = model();
    m.tensors[0].shape = vec![usize::MAX, 3];
    assert!(invalid_reason(&m).contains("holds 6 values"));
    let mut m = model();
    m.normalization.std.push(1.0);
    assert!(invalid_reason(&m).contains("normalisation"));
}
