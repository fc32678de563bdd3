//! The one error type of the crate. Every variant names the file it is about, so a malformed
//! input is reported as "this file, this place, this problem".

use std::path::PathBuf;

/// Everything that can go wrong while reading results or writing tables and figures.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// A file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A JSON file is not valid JSON or does not have the expected shape.
    #[error("{}: malformed JSON: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's error (with line and column).
        source: serde_json::Error,
    },
    /// A TOML file (a run's resolved `config.toml`) does not parse.
    #[error("{}: malformed TOML: {source}", path.display())]
    Toml {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        source: toml::de::Error,
    },
    /// A file parses but a value is missing or has the wrong type or range.
    #[error("{}: {what}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key (JSON pointer) or line.
        what: String,
    },
    /// Drawing a figure failed.
    #[error("{}: drawing failed: {message}", path.display())]
    Plot {
        /// The figure file.
        path: PathBuf,
        /// The backend's message.
        message: String,
    },
    /// Encoding a PNG failed.
    #[error("{}: PNG encoding failed: {source}", path.display())]
    Png {
        /// The figure file.
        path: PathBuf,
        /// The encoder's error.
        source: png::EncodingError,
    },
    /// The embedded font could not be registered with plotters.
    #[error("the embedded DejaVu Sans font could not be registered")]
    Font,
    /// Some inputs were unreadable; every table and figure that could be made was written.
    #[error(
        "{} unreadable input file(s); the tables mark them, fix or regenerate them:\n{}",
        .0.len(),
        .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n")
    )]
    InvalidInputs(Vec<AnalyzeError>),
}

impl AnalyzeError {
    /// An I/O error about `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// A "malformed" error about `path`.
    pub fn malformed(path: impl Into<PathBuf>, what: impl Into<String>) -> Self {
        Self::Malformed {
            path: path.into(),
            what: what.into(),
        }
    }
}
