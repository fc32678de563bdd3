//! The one error enum of the artifacts crate. Every variant names the file it is about and, where
//! there is one, the fix (usually: re-run the stage that produces the file).

use std::path::PathBuf;

/// Why an artifact could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The file does not exist.
    #[error("{path}: file not found; it is produced by {producer}")]
    NotFound {
        /// File asked for.
        path: PathBuf,
        /// Which stage or command writes it.
        producer: &'static str,
    },
    /// Any other I/O failure.
    #[error("{path}: {source}")]
    Io {
        /// File involved.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file does not start with the privdnn magic bytes.
    #[error("{path}: not a privdnn artifact (bad magic bytes); delete it and re-run {producer}")]
    BadMagic {
        /// File involved.
        path: PathBuf,
        /// Which stage or command writes the expected kind.
        producer: &'static str,
    },
    /// The file holds another kind of artifact than the one expected.
    #[error("{path}: expected a {expected} artifact but the file holds a {found} artifact")]
    WrongKind {
        /// File involved.
        path: PathBuf,
        /// Kind the caller asked for.
        expected: String,
        /// Kind recorded in the file.
        found: String,
    },
    /// The file was written with another schema version of this kind.
    #[error(
        "{path}: {kind} artifact has schema version {found}, this build reads version {expected}; re-run {producer} to regenerate it"
    )]
    WrongVersion {
        /// File involved.
        path: PathBuf,
        /// Artifact kind.
        kind: String,
        /// Version this build understands.
        expected: u32,
        /// Version recorded in the file.
        found: u32,
        /// Which stage or command writes it.
        producer: &'static str,
    },
    /// The file is shorter than its header says.
    #[error(
        "{path}: truncated ({found} payload bytes, header promises {expected}); the writer was probably killed: re-run {producer}"
    )]
    Truncated {
        /// File involved.
        path: PathBuf,
        /// Bytes promised.
        expected: u64,
        /// Bytes present.
        found: u64,
        /// Which stage or command writes it.
        producer: &'static str,
    },
    /// The payload does not match its checksum or does not decode.
    #[error("{path}: corrupt artifact ({reason}); delete it and re-run {producer}")]
    Corrupt {
        /// File involved.
        path: PathBuf,
        /// What is wrong.
        reason: String,
        /// Which stage or command writes it.
        producer: &'static str,
    },
    /// The payload decodes but its content is inconsistent (a split whose images are shorter
    /// than its labels say, a label outside the classes, a selection index out of range).
    #[error("{path}: invalid {kind} artifact: {reason}; re-run {producer}")]
    Invalid {
        /// File involved.
        path: PathBuf,
        /// Artifact kind.
        kind: &'static str,
        /// What is inconsistent.
        reason: String,
        /// Which stage or command writes it.
        producer: &'static str,
    },
    /// A value could not be serialised.
    #[error("{path}: cannot encode {what}: {reason}")]
    Encode {
        /// File being written.
        path: PathBuf,
        /// What was being encoded.
        what: String,
        /// Encoder message.
        reason: String,
    },
    /// A message or payload did not encode or decode with the project's codec.
    #[error("malformed {what}: {reason}")]
    Codec {
        /// What was being encoded or decoded.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// A JSON file could not be parsed or written.
    #[error("{path}: invalid JSON: {source}")]
    Json {
        /// File involved.
        path: PathBuf,
        /// Parser error.
        source: serde_json::Error,
    },
}

impl ArtifactError {
    /// Wraps an I/O error, turning "not found" into [`ArtifactError::NotFound`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error, producer: &'static str) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            ArtifactError::NotFound { path, producer }
        } else {
            ArtifactError::Io { path, source }
        }
    }
}
