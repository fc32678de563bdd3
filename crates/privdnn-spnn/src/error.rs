//! The one error type of `privdnn-spnn`.

use thiserror::Error;

/// Why a role of the split training could not proceed.
#[derive(Debug, Error)]
pub enum SpnnError {
    /// A ring operation (convolution) failed.
    #[error(transparent)]
    Mpc(#[from] privdnn_mpc::MpcError),
    /// The server's network failed.
    #[error(transparent)]
    Model(#[from] privdnn_model::ModelError),
    /// A message or checkpoint did not encode / decode, or a file could not be written.
    #[error(transparent)]
    Artifact(#[from] privdnn_artifacts::ArtifactError),
    /// Inputs that do not fit the configuration (architecture, image size, batch).
    #[error("configuration: {0}")]
    Config(String),
    /// A peer sent something out of protocol (wrong step, lengths).
    #[error("protocol: {0}")]
    Protocol(String),
    /// The transport to a peer failed.
    #[error("transport: {0}")]
    Transport(String),
}

impl SpnnError {
    pub(crate) fn protocol(msg: impl Into<String>) -> Self {
        SpnnError::Protocol(msg.into())
    }

    pub(crate) fn config(msg: impl Into<String>) -> Self {
        SpnnError::Config(msg.into())
    }
}
