//! The one error enum of the training library.

/// Why training could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Model construction or weight loading failed.
    #[error(transparent)]
    Model(#[from] privdnn_model::ModelError),
    /// A checkpoint or artifact could not be read or written.
    #[error(transparent)]
    Artifact(#[from] privdnn_artifacts::ArtifactError),
    /// The dataset does not fit the configuration.
    #[error("dataset mismatch: {0}")]
    Data(String),
    /// The optimiser state could not be saved or restored.
    #[error("optimiser state: {0}")]
    Optimizer(String),
    /// The loss became NaN or infinite.
    #[error(
        "training diverged at epoch {epoch} (loss {loss}); lower `train.learning_rate` in the pipeline config"
    )]
    Diverged {
        /// Epoch (1-based).
        epoch: usize,
        /// Loss value.
        loss: f64,
    },
}
