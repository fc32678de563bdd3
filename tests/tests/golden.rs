//! Golden artifact fixtures: one small committed file per artifact kind under `tests/golden/`,
//! so that a change of an artifact's serialised layout without a schema-version bump fails.
//!
//! Each fixture is a hand-built value with a distinct number in every field (so swapped fields
//! change the bytes). The default test checks that (1) encoding the value today gives exactly
//! the committed bytes and (2) decoding the committed file and encoding it again gives them
//! back. A layout change breaks (1) or (2); a schema-version bump makes the committed file
//! unreadable (its version is old) and so also fails until the fixtures are regenerated (the
//! generator refuses to overwrite a fixture whose bytes changed under the same version):
//!
//! ```text
//! cargo test --release -p privdnn-e2e --test golden -- --ignored   # rewrites tests/golden/*.bin
//! ```
//!
//! The HE kinds hold tiny structurally valid values (a 16-slot parameter set, a few bytes
//! where real keys and ciphertexts go), never real keys: nothing secret is committed.

use std::path::{Path, PathBuf};

use privdnn_artifacts::{
    Architecture, Artifact, ArtifactKind, DatasetSplit, EpochRecord, ModelSpec, NamedTensor,
    NeuronSelection, Normalization, TrainCheckpoint, TrainedModel, read_artifact, write_artifact,
};
use privdnn_he::files::{EncryptedModelFile, EvaluationKeysFile, OwnerSecretFile};
use privdnn_he::params::HeParams;
use privdnn_he::protocol::{EncryptedBlock, KeySet, OwnerSecret, PublicKeys};
use privdnn_he::user_keyed::KeyedModel;
use privdnn_partial::keyed::{KeyedModelFile, KeyedOwnerFile};
use privdnn_quant::{BlockShape, IntBlock};
use serde_bytes::ByteBuf;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden")
}

fn split() -> DatasetSplit {
    DatasetSplit {
        dataset: "golden".into(),
        split: "test".into(),
        channels: 1,
        height: 2,
        width: 3,
        class_names: vec!["zero".into(), "one".into(), "two".into()],
        labels: vec![2, 0],
        images: (0u8..12).map(|i| i * 17 + 3).collect(),
    }
}

fn model(shift: f32) -> TrainedModel {
    TrainedModel {
        dataset: "golden".into(),
        spec: ModelSpec {
            architecture: Architecture::Lenet5,
            in_channels: 1,
            image_size: 28,
            num_classes: 3,
            lenet_filters: [2, 3],
            width: 0.5,
        },
        normalization: Normalization {
            mean: vec![0.5],
            std: vec![0.25],
        },
        tensors: vec![
            NamedTensor {
                name: "conv1.weight".into(),
                shape: vec![2, 1, 1, 1],
                values: vec![0.5 + shift, -1.25],
            },
            NamedTensor {
                name: "conv1.bias".into(),
                shape: vec![2],
                values: vec![0.125, 3.0 - shift],
            },
        ],
    }
}

fn checkpoint() -> TrainCheckpoint {
    TrainCheckpoint {
        config_hash: "c0ffee".into(),
        current: model(0.0),
        best: model(1.0),
        best_epoch: 4,
        history: vec![EpochRecord {
            epoch: 5,
            train_loss: 0.75,
            train_accuracy: 61.5,
            val_accuracy: 58.25,
            learning_rate: 0.003,
            seconds: 1.5,
        }],
        param_ids: vec![("conv1.weight".into(), 7), ("conv1.bias".into(), 9)],
        optimizer_state: vec![1, 2, 3, 4, 5],
    }
}

fn selection() -> NeuronSelection {
    NeuronSelection {
        layer1: vec![1],
        layer2: vec![0, 2],
        channels: [2, 3],
        algorithm: "greedy".into(),
    }
}

fn params() -> HeParams {
    HeParams {
        degree: 16,
        moduli: vec![0x3f_ffff_fffe_d001, 0x3f_ffff_fffc_0001],
        plaintext: 65537,
    }
}

fn int_block() -> IntBlock {
    IntBlock {
        shape: BlockShape {
            cin: 1,
            height: 6,
            width: 7,
            k1: 2,
            pad1: 0,
            pool: 1,
            c1: 2,
            h1: 5,
            w1: 6,
            k2: 3,
            pad2: 1,
            c2: 3,
            h2: 8,
            w2: 9,
        },
        w1: vec![3, -4, 5, -6, 7, -8, 9, -10],
        b1: vec![11, -12],
        w2: (0..54).map(|i| i - 27).collect(),
        b2: vec![13, -14, 15],
        input_offset: vec![16],
        bits: (8, 6),
        out_scale: 0.015625,
        u_scale: 0.25,
    }
}

/// A few distinct bytes standing where a key or a ciphertext goes.
fn blob(seed: u8, len: u8) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_mul(31).wrapping_add(i))
        .collect()
}

fn encrypted_model() -> EncryptedModelFile {
    EncryptedModelFile {
        block: EncryptedBlock {
            params: vec![params()],
            plain: int_block(),
            s1: vec![1],
            s2: vec![0, 2],
            chunk: 4,
            packed: vec![vec![ByteBuf::from(blob(1, 16)), ByteBuf::from(blob(2, 8))]],
        },
        selection: selection(),
        remainder: model(0.0),
        layer1_outputs: false,
    }
}

fn evaluation_keys() -> EvaluationKeysFile {
    EvaluationKeysFile {
        keys: PublicKeys {
            params: vec![params()],
            sets: vec![KeySet {
                public_key: blob(3, 12),
                relin_key: blob(4, 10),
                expansion_key: blob(5, 9),
                rotation_key: Some(ByteBuf::from(blob(6, 7))),
            }],
        },
    }
}

fn owner_secret() -> OwnerSecretFile {
    OwnerSecretFile {
        secret: OwnerSecret {
            params: vec![params()],
            secret_keys: vec![ByteBuf::from(blob(7, 16))],
        },
        block: int_block(),
    }
}

fn keyed_model() -> KeyedModelFile {
    KeyedModelFile {
        model: KeyedModel {
            params: vec![params()],
            plain: int_block(),
            s1: vec![1],
            s2: vec![0, 2],
            layer1: true,
        },
        selection: selection(),
        remainder: model(2.0),
    }
}

fn keyed_owner_block() -> KeyedOwnerFile {
    KeyedOwnerFile {
        params: vec![params()],
        block: int_block(),
        selection: selection(),
        layer1: true,
    }
}

/// The envelope bytes of `value` as this build writes them.
fn encoded<T: Artifact>(value: &T, scratch: &Path) -> Vec<u8> {
    let path = scratch.join(T::KIND.name());
    write_artifact(&path, value).expect("write");
    std::fs::read(&path).expect("read back")
}

/// Regenerates (`write`) or checks one fixture; returns its kind.
fn fixture<T: Artifact>(value: &T, scratch: &Path, write: bool) -> ArtifactKind {
    let kind = T::KIND;
    let path = golden_dir().join(format!("{}.bin", kind.name()));
    let now = encoded(value, scratch);
    if write {
        // Regenerating is for a deliberate layout change, which must come with a version bump.
        if let Ok(old) = std::fs::read(&path)
            && old != now
            && old.get(10..14) == Some(&kind.schema_version().to_le_bytes()[..])
        {
            panic!(
                "{}: the layout changed but schema version {} did not: bump \
                 ArtifactKind::schema_version for {} first",
                path.display(),
                kind.schema_version(),
                kind.name()
            );
        }
        std::fs::create_dir_all(golden_dir()).expect("mkdir");
        std::fs::write(&path, &now).expect("write fixture");
        return kind;
    }
    let regenerate = "if the change is intended, bump ArtifactKind::schema_version for this kind \
         and regenerate: cargo test --release -p privdnn-e2e --test golden -- --ignored";
    let committed = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (generate it: {regenerate})", path.display()));
    let decoded: T = read_artifact(&path).unwrap_or_else(|e| {
        panic!(
            "{}: the committed fixture no longer reads ({e}); {regenerate}",
            path.display()
        )
    });
    assert!(
        now == committed,
        "{}: the serialised layout of {} changed ({} bytes now, {} committed); {regenerate}",
        path.display(),
        kind.name(),
        now.len(),
        committed.len()
    );
    assert!(
        encoded(&decoded, scratch) == committed,
        "{}: decoding and re-encoding the fixture does not give its bytes back",
        path.display()
    );
    kind
}

fn all(write: bool) -> Vec<ArtifactKind> {
    let scratch = tempfile::tempdir().expect("tempdir");
    let s = scratch.path();
    vec![
        fixture(&split(), s, write),
        fixture(&model(0.0), s, write),
        fixture(&checkpoint(), s, write),
        fixture(&selection(), s, write),
        fixture(&encrypted_model(), s, write),
        fixture(&evaluation_keys(), s, write),
        fixture(&owner_secret(), s, write),
        fixture(&keyed_model(), s, write),
        fixture(&keyed_owner_block(), s, write),
    ]
}

#[test]
fn every_artifact_kind_matches_its_golden_fixture() {
    let covered = all(false);
    for kind in ArtifactKind::ALL {
        assert!(
            covered.contains(&kind),
            "no golden fixture for {}",
            kind.name()
        );
    }
    for entry in std::fs::read_dir(golden_dir()).expect("golden dir") {
        let path = entry.expect("entry").path();
        assert!(
            std::fs::metadata(&path).expect("size").len() < 4096,
            "{}: fixtures stay tiny",
            path.display()
        );
    }
}

#[test]
#[ignore = "rewrites tests/golden/*.bin; run after a deliberate schema-version bump"]
fn regenerate_golden_fixtures() {
    let written = all(true);
    eprintln!(
        "wrote {} fixtures to {}",
        written.len(),
        golden_dir().display()
    );
}
