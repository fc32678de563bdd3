//! The one error type of `privdnn-infer`.

use thiserror::Error;

/// Why inference failed.
#[derive(Debug, Error)]
pub enum InferError {
    /// Reading an artifact failed (the message names the file and the producing command).
    #[error(transparent)]
    Artifact(#[from] privdnn_artifacts::ArtifactError),
    /// HE failure.
    #[error(transparent)]
    He(#[from] privdnn_he::HeError),
    /// A role of the protocol failed.
    #[error(transparent)]
    Partial(#[from] privdnn_partial::PartialError),
    /// Model failure.
    #[error(transparent)]
    Model(#[from] privdnn_model::ModelError),
    /// Inputs that do not fit the model.
    #[error("{0}")]
    Mismatch(String),
}
