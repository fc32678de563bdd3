//! The versioned, checksummed file envelope around a bincode payload.
//!
//! Layout (all integers little-endian):
//! `MAGIC (8) | kind code u16 | schema version u32 | payload length u64 | SHA-256 of payload (32) | payload`.
//! Reading checks every field in that order, so a wrong kind, an old version, a truncated or a
//! corrupt file each get their own typed error. Writing goes through a temporary file and a
//! rename, so a killed writer never leaves a half-written artifact under the final name and
//! never destroys the previous good file.

use std::io::Read;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::codec;
use crate::error::ArtifactError;
use crate::manifest::write_bytes_atomic;

/// First bytes of every artifact file.
pub const MAGIC: [u8; 8] = *b"PRIVDNN\x01";
/// Size of the fixed header that precedes the payload.
pub const HEADER_LEN: usize = 8 + 2 + 4 + 8 + 32;

/// The kinds of artifacts that cross stage boundaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ArtifactKind {
    /// A prepared dataset split (cache under `data/`).
    Dataset,
    /// Trained weights of one model (output of the train stage).
    TrainedModel,
    /// A resumable training checkpoint.
    TrainCheckpoint,
    /// A neuron selection (output of the select stage).
    Selection,
    /// The partly encrypted model shipped to the user.
    EncryptedModel,
    /// The owner's secret key; never read by user-side code.
    OwnerSecretKey,
    /// Public evaluation keys shipped to the user.
    EvaluationKeys,
    /// User-keyed mode: the public model shipped to the user (no selected weight at all).
    KeyedModel,
    /// User-keyed mode: the owner's plaintext block and selection (no key material).
    KeyedOwnerBlock,
}

impl ArtifactKind {
    /// Every kind.
    pub const ALL: [ArtifactKind; 9] = [
        ArtifactKind::Dataset,
        ArtifactKind::TrainedModel,
        ArtifactKind::TrainCheckpoint,
        ArtifactKind::Selection,
        ArtifactKind::EncryptedModel,
        ArtifactKind::OwnerSecretKey,
        ArtifactKind::EvaluationKeys,
        ArtifactKind::KeyedModel,
        ArtifactKind::KeyedOwnerBlock,
    ];

    /// Stable numeric code written in the header.
    pub fn code(self) -> u16 {
        match self {
            ArtifactKind::Dataset => 1,
            ArtifactKind::TrainedModel => 2,
            ArtifactKind::TrainCheckpoint => 3,
            ArtifactKind::Selection => 4,
            ArtifactKind::EncryptedModel => 5,
            ArtifactKind::OwnerSecretKey => 6,
            ArtifactKind::EvaluationKeys => 7,
            ArtifactKind::KeyedModel => 8,
            ArtifactKind::KeyedOwnerBlock => 9,
        }
    }

    /// Owner-only secrets (the secret key, the user-keyed owner block): [`write_artifact`]
    /// creates them with mode 0600.
    pub fn is_secret(self) -> bool {
        matches!(
            self,
            ArtifactKind::OwnerSecretKey | ArtifactKind::KeyedOwnerBlock
        )
    }

    /// Inverse of [`ArtifactKind::code`].
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// Human name, used in messages and manifests.
    pub fn name(self) -> &'static str {
        match self {
            ArtifactKind::Dataset => "dataset",
            ArtifactKind::TrainedModel => "trained-model",
            ArtifactKind::TrainCheckpoint => "train-checkpoint",
            ArtifactKind::Selection => "selection",
            ArtifactKind::EncryptedModel => "encrypted-model",
            ArtifactKind::OwnerSecretKey => "owner-secret-key",
            ArtifactKind::EvaluationKeys => "evaluation-keys",
            ArtifactKind::KeyedModel => "keyed-model",
            ArtifactKind::KeyedOwnerBlock => "keyed-owner-block",
        }
    }

    /// The schema version this build writes and reads for the kind; bump it here whenever the
    /// serialised layout of the kind's type changes. Manifests of older versions are not
    /// current, so `xtask` re-runs the stage instead of handing the next stage a file it
    /// rejects.
    pub const fn schema_version(self) -> u32 {
        match self {
            ArtifactKind::Dataset
            | ArtifactKind::TrainedModel
            | ArtifactKind::TrainCheckpoint
            | ArtifactKind::Selection
            | ArtifactKind::EncryptedModel
            | ArtifactKind::OwnerSecretKey
            | ArtifactKind::KeyedModel
            | ArtifactKind::KeyedOwnerBlock => 1,
            // 2: rotation keys of the rotated spatial layout.
            ArtifactKind::EvaluationKeys => 2,
        }
    }

    /// Kind from its [`ArtifactKind::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The command that produces this kind of file, quoted in error messages.
    pub fn producer(self) -> &'static str {
        match self {
            ArtifactKind::Dataset => "`cargo xtask data`",
            ArtifactKind::TrainedModel | ArtifactKind::TrainCheckpoint => {
                "the train stage (`cargo xtask pipeline <name> --only train`)"
            }
            ArtifactKind::Selection => {
                "the select stage (`cargo xtask pipeline <name> --only select`)"
            }
            ArtifactKind::EncryptedModel
            | ArtifactKind::OwnerSecretKey
            | ArtifactKind::EvaluationKeys => {
                "the encrypt stage (`cargo xtask pipeline <name> --only encrypt`)"
            }
            ArtifactKind::KeyedModel | ArtifactKind::KeyedOwnerBlock => {
                "the encrypt stage in user-keyed mode (`PRIVDNN_HE__MODE=user-keyed`, or \
                 `[he] mode = \"user-keyed\"`)"
            }
        }
    }
}

/// A type that can be stored as an artifact file.
pub trait Artifact: Serialize + DeserializeOwned {
    /// Kind written in the header.
    const KIND: ArtifactKind;
    /// Schema version: the kind's current one ([`ArtifactKind::schema_version`]).
    const SCHEMA_VERSION: u32 = Self::KIND.schema_version();

    /// Checks the decoded value for meaning (lengths that agree, indices in range), beyond the
    /// envelope's integrity checks; [`read_artifact`] and [`decode_artifact`] call it. The
    /// message says what is inconsistent. Default: nothing to check.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Encodes a value with the project's bincode configuration (no envelope; [`crate::codec`]).
pub fn encode_payload<T: Serialize>(value: &T, path: &Path) -> Result<Vec<u8>, ArtifactError> {
    codec::encode_raw(value).map_err(|reason| ArtifactError::Encode {
        path: path.to_path_buf(),
        what: std::any::type_name::<T>().to_string(),
        reason,
    })
}

/// Decodes a value written by [`encode_payload`], bounded by its length ([`crate::codec`]);
/// trailing bytes are an error.
pub fn decode_payload<T: DeserializeOwned>(
    bytes: &[u8],
    path: &Path,
    producer: &'static str,
) -> Result<T, ArtifactError> {
    codec::decode_raw(bytes, codec::decode_limit(bytes.len())).map_err(|reason| {
        ArtifactError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("payload does not decode: {reason}"),
            producer,
        }
    })
}

/// Writes `value` to `path` inside the envelope, atomically (a secret kind with mode 0600 from
/// creation, [`ArtifactKind::is_secret`]). Returns the bytes written.
pub fn write_artifact<T: Artifact>(path: &Path, value: &T) -> Result<u64, ArtifactError> {
    let payload = encode_payload(value, path)?;
    let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
    bytes.extend_from_slice(&MAGIC);
    bytes.extend_from_slice(&T::KIND.code().to_le_bytes());
    bytes.extend_from_slice(&T::SCHEMA_VERSION.to_le_bytes());
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&Sha256::digest(&payload));
    bytes.extend_from_slice(&payload);
    if T::KIND.is_secret() {
        crate::manifest::write_private_atomic(path, &bytes)?;
    } else {
        write_bytes_atomic(path, &bytes)?;
    }
    Ok(bytes.len() as u64)
}

/// Reads an artifact of type `T` from `path`, checking magic, kind, version, length, checksum
/// and meaning ([`Artifact::check`]).
pub fn read_artifact<T: Artifact>(path: &Path) -> Result<T, ArtifactError> {
    let producer = T::KIND.producer();
    let mut file = std::fs::File::open(path).map_err(|e| ArtifactError::io(path, e, producer))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| ArtifactError::io(path, e, producer))?;
    decode_artifact(&bytes, path)
}

/// Decodes the bytes of an artifact file of type `T` (what [`read_artifact`] does after reading
/// the file); `path` names the file in errors.
pub fn decode_artifact<T: Artifact>(bytes: &[u8], path: &Path) -> Result<T, ArtifactError> {
    let producer = T::KIND.producer();
    let header = parse_header(bytes, path, producer)?;
    let found_kind = ArtifactKind::from_code(header.kind_code);
    if found_kind != Some(T::KIND) {
        return Err(ArtifactError::WrongKind {
            path: path.to_path_buf(),
            expected: T::KIND.name().to_string(),
            found: found_kind
                .map(|k| k.name().to_string())
                .unwrap_or_else(|| format!("unknown (code {})", header.kind_code)),
        });
    }
    if header.version != T::SCHEMA_VERSION {
        return Err(ArtifactError::WrongVersion {
            path: path.to_path_buf(),
            kind: T::KIND.name().to_string(),
            expected: T::SCHEMA_VERSION,
            found: header.version,
            producer,
        });
    }
    let payload = &bytes[HEADER_LEN..];
    if (payload.len() as u64) < header.payload_len {
        return Err(ArtifactError::Truncated {
            path: path.to_path_buf(),
            expected: header.payload_len,
            found: payload.len() as u64,
            producer,
        });
    }
    if (payload.len() as u64) > header.payload_len {
        return Err(ArtifactError::Corrupt {
            path: path.to_path_buf(),
            reason: format!(
                "{} bytes after the end of the payload",
                payload.len() as u64 - header.payload_len
            ),
            producer,
        });
    }
    if Sha256::digest(payload).as_slice() != header.checksum {
        return Err(ArtifactError::Corrupt {
            path: path.to_path_buf(),
            reason: "payload checksum mismatch".to_string(),
            producer,
        });
    }
    let value: T = decode_payload(payload, path, producer)?;
    value.check().map_err(|reason| ArtifactError::Invalid {
        path: path.to_path_buf(),
        kind: T::KIND.name(),
        reason,
        producer,
    })?;
    Ok(value)
}

struct Header {
    kind_code: u16,
    version: u32,
    payload_len: u64,
    checksum: [u8; 32],
}

fn parse_header(
    bytes: &[u8],
    path: &Path,
    producer: &'static str,
) -> Result<Header, ArtifactError> {
    if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
        return Err(ArtifactError::BadMagic {
            path: path.to_path_buf(),
            producer,
        });
    }
    if bytes.len() < HEADER_LEN {
        return Err(ArtifactError::Truncated {
            path: path.to_path_buf(),
            expected: HEADER_LEN as u64,
            found: bytes.len() as u64,
            producer,
        });
    }
    let le = |range: std::ops::Range<usize>| &bytes[range];
    let mut checksum = [0u8; 32];
    checksum.copy_from_slice(le(22..54));
    Ok(Header {
        kind_code: u16::from_le_bytes([bytes[8], bytes[9]]),
        version: u32::from_le_bytes(le(10..14).try_into().unwrap_or_default()),
        payload_len: u64::from_le_bytes(le(14..22).try_into().unwrap_or_default()),
        checksum,
    })
}
