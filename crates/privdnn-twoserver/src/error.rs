//! The one error type of `privdnn-twoserver`.

use thiserror::Error;

/// Why a two-server role or the harness failed.
#[derive(Debug, Error)]
pub enum TwoServerError {
    /// The integer model or a ring operation refused its input.
    #[error(transparent)]
    Mpc(#[from] privdnn_mpc::MpcError),
    /// The garbled-circuit engine refused its input.
    #[error(transparent)]
    Gc(#[from] privdnn_gc::GcError),
    /// A message could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] privdnn_artifacts::ArtifactError),
    /// A connection failed or carried a malformed frame.
    #[error(transparent)]
    Net(#[from] privdnn_net::NetError),
    /// The model has an op sequence this protocol does not implement.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A message arrived out of order or with the wrong size.
    #[error("protocol: {0}")]
    Protocol(String),
}

impl TwoServerError {
    pub(crate) fn protocol(msg: impl Into<String>) -> Self {
        TwoServerError::Protocol(msg.into())
    }
}
