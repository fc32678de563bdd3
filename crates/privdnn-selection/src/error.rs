//! The one error enum of the selection library.

/// Why a selection could not be made or evaluated.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    /// Model construction or weight loading failed.
    #[error(transparent)]
    Model(#[from] privdnn_model::ModelError),
    /// An artifact could not be read or written.
    #[error(transparent)]
    Artifact(#[from] privdnn_artifacts::ArtifactError),
    /// A selection does not fit the model (index out of range, empty layer, other model).
    #[error("invalid selection: {0}")]
    InvalidSelection(String),
    /// The request cannot be served (e.g. an exhaustive search that is too large).
    #[error("{0}")]
    Unsupported(String),
}
