//! The one error enum of the model crate.

/// Why a model could not be built, loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A tensor of the artifact does not fit the architecture.
    #[error("weights do not fit the {architecture} model: {message}")]
    WeightMismatch {
        /// Architecture being loaded.
        architecture: String,
        /// What does not fit.
        message: String,
    },
    /// The requested backend is not compiled in.
    #[error(
        "backend `{0}` is not compiled into this binary; rebuild with `--features {0}` (e.g. `cargo build --release -p privdnn-train --features {0}`) or choose `flex`"
    )]
    BackendUnavailable(String),
    /// A tensor could not be read back as `f32` values.
    #[error("tensor conversion failed: {0}")]
    Tensor(String),
    /// Inputs that do not fit the network (batch, channels, injected outputs).
    #[error("input does not fit the network: {0}")]
    Input(String),
    /// A selection does not fit the model (index out of range, empty layer, other model).
    #[error("invalid selection: {0}")]
    Selection(String),
    /// The spec cannot produce a valid network (e.g. images too small).
    #[error("invalid model specification: {0}")]
    InvalidSpec(String),
}
