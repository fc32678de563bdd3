//! The one error type of `privdnn-edge`.

use thiserror::Error;

/// Why a role could not proceed.
#[derive(Debug, Error)]
pub enum EdgeError {
    /// The integer model or a ring operation failed.
    #[error(transparent)]
    Mpc(#[from] privdnn_mpc::MpcError),
    /// A bundle or message did not encode / decode.
    #[error(transparent)]
    Artifact(#[from] privdnn_artifacts::ArtifactError),
    /// A peer sent something out of protocol (wrong layer, query, item count or length).
    #[error("protocol: {0}")]
    Protocol(String),
    /// The transport to an edge failed.
    #[error("transport: {0}")]
    Transport(String),
}

impl EdgeError {
    pub(crate) fn protocol(msg: impl Into<String>) -> Self {
        EdgeError::Protocol(msg.into())
    }
}
