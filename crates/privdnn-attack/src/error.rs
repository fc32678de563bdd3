//! The one error enum of the attack crate.

/// Why an attack could not be run.
#[derive(Debug, thiserror::Error)]
pub enum AttackError {
    /// Model construction or weight loading failed.
    #[error(transparent)]
    Model(#[from] privdnn_model::ModelError),
    /// An artifact could not be read or written.
    #[error(transparent)]
    Artifact(#[from] privdnn_artifacts::ArtifactError),
    /// Selection helpers (separation, greedy choice) failed.
    #[error(transparent)]
    Select(#[from] privdnn_selection::SelectError),
    /// The model, the selection or the settings do not fit the attack.
    #[error("{0}")]
    Invalid(String),
    /// An optimisation diverged (non-finite loss).
    #[error("{what} diverged (loss {loss}) at epoch {epoch}")]
    Diverged {
        /// Which optimisation.
        what: String,
        /// Epoch (1-based).
        epoch: usize,
        /// The loss value.
        loss: f64,
    },
    /// The extraction solver met a singular system.
    #[error("singular least-squares system: {0}")]
    Singular(String),
}
