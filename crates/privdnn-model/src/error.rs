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
        "backend `{0}` is not compiled into this binary; rebuild with `--features ndarray` or choose `flex`"
    )]
    BackendUnavailable(String),
    /// The spec cannot produce a valid network (e.g. images too small).
    #[error("invalid model specification: {0}")]
    InvalidSpec(String),
}
