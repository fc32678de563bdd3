//! The artifact envelope and its payloads: whole files decoded in memory
//! (`privdnn_artifacts::decode_artifact`, checks of meaning included) and through the file
//! reader (`read_artifact`), and bare payloads through `codec::decode` / `decode_payload`.
//! Seeds are the committed golden fixtures, one per artifact kind. Half of the mutated files
//! get a repaired header (payload length and SHA-256), so the payload decoder is reached.

use std::path::Path;

use privdnn_artifacts::{
    Artifact, ArtifactKind, DatasetSplit, HEADER_LEN, NeuronSelection, TrainCheckpoint,
    TrainedModel, codec, decode_artifact, decode_payload, read_artifact,
};
use privdnn_he::files::{EncryptedModelFile, EvaluationKeysFile, OwnerSecretFile};
use privdnn_partial::keyed::{KeyedModelFile, KeyedOwnerFile};
use sha2::{Digest, Sha256};

use super::{Target, codec_bound};
use crate::Exec;

/// The committed golden fixtures (`tests/golden/`), one per artifact kind.
pub const GOLDEN: [(&str, &[u8]); 9] = [
    ("dataset", include_bytes!("../../../golden/dataset.bin")),
    (
        "encrypted-model",
        include_bytes!("../../../golden/encrypted-model.bin"),
    ),
    (
        "evaluation-keys",
        include_bytes!("../../../golden/evaluation-keys.bin"),
    ),
    (
        "keyed-model",
        include_bytes!("../../../golden/keyed-model.bin"),
    ),
    (
        "keyed-owner-block",
        include_bytes!("../../../golden/keyed-owner-block.bin"),
    ),
    (
        "owner-secret-key",
        include_bytes!("../../../golden/owner-secret-key.bin"),
    ),
    ("selection", include_bytes!("../../../golden/selection.bin")),
    (
        "train-checkpoint",
        include_bytes!("../../../golden/train-checkpoint.bin"),
    ),
    (
        "trained-model",
        include_bytes!("../../../golden/trained-model.bin"),
    ),
];

fn path() -> &'static Path {
    Path::new("<fuzz input>")
}

/// Decodes a whole artifact file as the type its header names (a reader always asks for one
/// type; an unknown kind is read as a dataset split, which must refuse it).
fn decode_file(bytes: &[u8]) -> bool {
    fn one<T: Artifact>(bytes: &[u8]) -> bool {
        decode_artifact::<T>(bytes, path()).is_ok()
    }
    let kind = bytes
        .get(8..10)
        .and_then(|k| ArtifactKind::from_code(u16::from_le_bytes([k[0], k[1]])));
    match kind {
        Some(ArtifactKind::TrainedModel) => one::<TrainedModel>(bytes),
        Some(ArtifactKind::TrainCheckpoint) => one::<TrainCheckpoint>(bytes),
        Some(ArtifactKind::Selection) => one::<NeuronSelection>(bytes),
        Some(ArtifactKind::EncryptedModel) => one::<EncryptedModelFile>(bytes),
        Some(ArtifactKind::EvaluationKeys) => one::<EvaluationKeysFile>(bytes),
        Some(ArtifactKind::OwnerSecretKey) => one::<OwnerSecretFile>(bytes),
        Some(ArtifactKind::KeyedModel) => one::<KeyedModelFile>(bytes),
        Some(ArtifactKind::KeyedOwnerBlock) => one::<KeyedOwnerFile>(bytes),
        Some(ArtifactKind::Dataset) | None => one::<DatasetSplit>(bytes),
    }
}

/// Rewrites the header's payload length and checksum to match the (mutated) payload.
fn repair_header(bytes: &mut [u8]) {
    if bytes.len() < HEADER_LEN {
        return;
    }
    let len = (bytes.len() - HEADER_LEN) as u64;
    let sum = Sha256::digest(&bytes[HEADER_LEN..]);
    bytes[14..22].copy_from_slice(&len.to_le_bytes());
    bytes[22..54].copy_from_slice(&sum);
}

/// Decodes a bare payload as the type selected by its first byte (`codec::decode` and the
/// envelope's `decode_payload`, which share one bounded decoder).
fn decode_bare(input: &[u8], cx: &mut Exec) -> bool {
    let Some((&which, payload)) = input.split_first() else {
        return false;
    };
    fn codec_one<T: serde::de::DeserializeOwned>(p: &[u8]) -> bool {
        codec::decode::<T>(p, "fuzz").is_ok()
    }
    fn payload_one<T: serde::de::DeserializeOwned>(p: &[u8]) -> bool {
        decode_payload::<T>(p, path(), "fuzz").is_ok()
    }
    cx.bounded(codec_bound(payload.len()), || match which % 9 {
        0 => codec_one::<DatasetSplit>(payload),
        1 => codec_one::<EncryptedModelFile>(payload),
        2 => codec_one::<EvaluationKeysFile>(payload),
        3 => codec_one::<KeyedModelFile>(payload),
        4 => payload_one::<KeyedOwnerFile>(payload),
        5 => payload_one::<OwnerSecretFile>(payload),
        6 => payload_one::<NeuronSelection>(payload),
        7 => payload_one::<TrainCheckpoint>(payload),
        _ => payload_one::<TrainedModel>(payload),
    })
}

/// The envelope, file-reader and payload targets.
pub fn targets() -> anyhow::Result<Vec<Target>> {
    let files: Vec<Vec<u8>> = GOLDEN.iter().map(|(_, b)| b.to_vec()).collect();
    let payloads: Vec<Vec<u8>> = GOLDEN
        .iter()
        .enumerate()
        .map(|(i, (_, b))| [vec![i as u8], b[HEADER_LEN..].to_vec()].concat())
        .collect();
    let dir = tempfile::tempdir()?;
    Ok(vec![
        Target {
            name: "artifact-envelope",
            weight: 48,
            seeds: files.clone(),
            run: Box::new(|input: &[u8], cx: &mut Exec| {
                cx.bounded(codec_bound(input.len()), || decode_file(input))
            }),
            fixup: Some(repair_header),
        },
        Target {
            name: "artifact-files",
            weight: 1,
            seeds: files,
            run: Box::new(move |input: &[u8], cx: &mut Exec| {
                let file = dir
                    .path()
                    .join(format!("{:?}.bin", std::thread::current().id()));
                if std::fs::write(&file, input).is_err() {
                    return false;
                }
                cx.bounded(codec_bound(input.len()), || {
                    read_artifact::<DatasetSplit>(&file).is_ok()
                        || read_artifact::<TrainedModel>(&file).is_ok()
                        || read_artifact::<NeuronSelection>(&file).is_ok()
                })
            }),
            fixup: Some(repair_header),
        },
        Target {
            name: "codec-payloads",
            weight: 48,
            seeds: payloads,
            run: Box::new(decode_bare),
            fixup: None,
        },
    ])
}
