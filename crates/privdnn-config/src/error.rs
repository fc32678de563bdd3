//! The one error enum of the config crate; every message names the file and the offending key.

use std::path::PathBuf;

/// Why a pipeline configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// Config file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{path}: not valid TOML: {message}")]
    Parse {
        /// Config file.
        path: PathBuf,
        /// Parser message.
        message: String,
    },
    /// A key is unknown, has the wrong type, or a value is out of range.
    #[error("{path}: {message}")]
    Invalid {
        /// Config file.
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },
    /// No pipeline of that name exists.
    #[error("unknown pipeline `{name}`: no {dir}/{name}.toml; available: {available}")]
    UnknownPipeline {
        /// Name asked for.
        name: String,
        /// Folder searched.
        dir: PathBuf,
        /// Pipelines that exist.
        available: String,
    },
    /// The profile is not defined in the file.
    #[error("{path}: unknown profile `{profile}`; available: default, {available}")]
    UnknownProfile {
        /// Config file.
        path: PathBuf,
        /// Profile asked for.
        profile: String,
        /// Profiles defined in the file.
        available: String,
    },
}
