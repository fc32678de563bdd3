//! Every type that crosses a stage boundary, plus the versioned file envelope that carries it.
//!
//! Stages never share code paths, only files: a stage reads the previous stage's artifacts with
//! [`read_artifact`] and writes its own with [`write_artifact`] (atomic, checksummed, versioned) and
//! a JSON [`Manifest`] beside it. This crate is a leaf: it must never depend on burn, fhe or another
//! privdnn crate, and it is the only crate that touches bincode ([`codec`]: one bounded
//! configuration for files and messages). [`RunLayout`] names the files of a run folder.

pub mod codec;
mod envelope;
mod error;
mod heap;
mod layout;
mod manifest;
mod meter;
mod types;

pub use envelope::{
    Artifact, ArtifactKind, HEADER_LEN, MAGIC, decode_artifact, decode_payload, encode_payload,
    read_artifact, write_artifact,
};
pub use error::ArtifactError;
pub use heap::release_free_heap;
pub use layout::RunLayout;
pub use manifest::{
    InputRecord, Manifest, file_sha256, git_revision, manifest_path, peak_rss_bytes,
    write_bytes_atomic, write_json_atomic, write_private_atomic,
};
pub use meter::{PhaseCost, measure, process_cpu_seconds, reset_peak_rss};
pub use types::{
    Architecture, DatasetSplit, EpochRecord, ModelSpec, NamedTensor, NeuronSelection,
    Normalization, TrainCheckpoint, TrainedModel,
};

/// Convenience alias for results of this crate.
pub type Result<T> = std::result::Result<T, ArtifactError>;

#[cfg(test)]
mod tests;
