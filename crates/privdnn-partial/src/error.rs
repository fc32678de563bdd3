//! The one error type of `privdnn-partial`.

use thiserror::Error;

/// Why a role or the owner's setup failed.
#[derive(Debug, Error)]
pub enum PartialError {
    /// Reading or writing an artifact failed (the message names the file and the producer).
    #[error(transparent)]
    Artifact(#[from] privdnn_artifacts::ArtifactError),
    /// HE failure (parameters, keys, evaluation, a malformed message).
    #[error(transparent)]
    He(#[from] privdnn_he::HeError),
    /// The block could not be read from the model or quantised (no-wrap bound).
    #[error(transparent)]
    Quant(#[from] privdnn_quant::QuantError),
    /// The selection does not fit the model.
    #[error("selection: {0}")]
    Selection(String),
    /// A reply that does not fit the request it answers.
    #[error("reply does not fit the request: {0}")]
    Reply(String),
}
