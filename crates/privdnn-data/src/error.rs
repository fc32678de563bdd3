//! The one error enum of the data crate, [`DataError`].
//!
//! Every message names the file (or dataset) it is about and says how to fix the problem. This
//! module must never decide policy (what is fatal, what is retried): it only describes failures.

use std::path::{Path, PathBuf};

use privdnn_artifacts::ArtifactError;

/// Why a dataset could not be read, prepared or loaded.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file or folder could not be opened or read (missing, permissions, I/O failure).
    #[error("{path}: {source}; check that the path exists and is readable")]
    Io {
        /// File or folder involved.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file is not in the expected format (bad magic number, corrupt gzip stream, garbage).
    #[error(
        "{path}: not a valid {format} file ({reason}); re-download it or point --source at a good copy"
    )]
    Corrupt {
        /// File involved.
        path: PathBuf,
        /// Format that was expected, e.g. `IDX images`.
        format: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The file ends before the data its header (or its record layout) promises.
    #[error(
        "{path}: truncated {format} file: {detail}; re-download it or point --source at a complete copy"
    )]
    Truncated {
        /// File involved.
        path: PathBuf,
        /// Format that was expected.
        format: &'static str,
        /// What was promised and what was found.
        detail: String,
    },
    /// One image inside a folder or archive does not decode.
    #[error(
        "{path}{member}: cannot decode image ({reason}); re-download the dataset or delete that image"
    )]
    BadImage {
        /// Image file, or the archive holding it.
        path: PathBuf,
        /// Empty for an image file, or ` (member `name`)` for an archive member.
        member: String,
        /// Decoder message.
        reason: String,
    },
    /// A folder or archive does not have the expected dataset layout.
    #[error(
        "{path}: unexpected dataset layout: {reason}; see the privdnn-data crate documentation for the accepted layouts"
    )]
    Layout {
        /// Folder, archive or annotation file involved.
        path: PathBuf,
        /// What is missing or inconsistent.
        reason: String,
    },
    /// A source file's SHA-256 differs from the published checksum.
    #[error(
        "{path}: sha256 mismatch: expected {expected}, found {actual}; the file is corrupt or another version: re-download it, or prepare with verify = false (skip checksum verification) if you trust this copy"
    )]
    Checksum {
        /// File involved.
        path: PathBuf,
        /// Published checksum.
        expected: String,
        /// Checksum of the file on disk.
        actual: String,
    },
    /// The dataset name is not in the catalogue.
    #[error("unknown dataset `{name}`; known datasets: {known}")]
    UnknownDataset {
        /// Name asked for.
        name: String,
        /// Comma-separated list of known names.
        known: String,
    },
    /// None of the accepted source layouts was found under the source root.
    #[error(
        "dataset `{dataset}`: source files not found under {root}; expected {expected}; pass `--source DIR` pointing at the folder that holds them"
    )]
    MissingSource {
        /// Dataset name.
        dataset: String,
        /// Source root that was searched.
        root: PathBuf,
        /// Human description of the files that would have been accepted.
        expected: String,
    },
    /// The prepared cache for this dataset and image size does not exist.
    #[error(
        "{path}: dataset `{dataset}` at image size {image_size} has not been prepared; run `cargo xtask data {dataset}`"
    )]
    NotPrepared {
        /// Cache file that was looked for.
        path: PathBuf,
        /// Dataset name.
        dataset: String,
        /// Image size asked for.
        image_size: usize,
    },
    /// A prepared cache file decodes but its contents are inconsistent.
    #[error(
        "{path}: prepared dataset is inconsistent ({reason}); delete it and run `cargo xtask data {dataset}`"
    )]
    BadCache {
        /// Cache file involved.
        path: PathBuf,
        /// Dataset name.
        dataset: String,
        /// What is inconsistent.
        reason: String,
    },
    /// The caller asked for something impossible (zero image size, unsupported channel count).
    #[error("{path}: cannot read: {reason}; fix the calling code or configuration")]
    InvalidArgument {
        /// File or folder the request was about.
        path: PathBuf,
        /// What is wrong with the request.
        reason: String,
    },
    /// Reading or writing a cache artifact failed (the message names the file and the fix).
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
}

impl DataError {
    /// Wraps an I/O error about `path`.
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A [`DataError::Corrupt`] about `path`.
    pub(crate) fn corrupt(path: &Path, format: &'static str, reason: impl Into<String>) -> Self {
        DataError::Corrupt {
            path: path.to_path_buf(),
            format,
            reason: reason.into(),
        }
    }

    /// A [`DataError::Truncated`] about `path`.
    pub(crate) fn truncated(path: &Path, format: &'static str, detail: impl Into<String>) -> Self {
        DataError::Truncated {
            path: path.to_path_buf(),
            format,
            detail: detail.into(),
        }
    }

    /// A [`DataError::Layout`] about `path`.
    pub(crate) fn layout(path: &Path, reason: impl Into<String>) -> Self {
        DataError::Layout {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    /// A [`DataError::InvalidArgument`] about `path`.
    pub(crate) fn invalid(path: &Path, reason: impl Into<String>) -> Self {
        DataError::InvalidArgument {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}
