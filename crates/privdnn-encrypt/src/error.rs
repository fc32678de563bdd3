//! The one error type of `privdnn-encrypt`.

use thiserror::Error;

/// Why encryption failed.
#[derive(Debug, Error)]
pub enum EncryptError {
    /// The model lacks a tensor or has an unexpected shape.
    #[error("model: {0}")]
    Model(String),
    /// The selection does not fit the model.
    #[error("selection: {0}")]
    Selection(String),
    /// Parameters, bounds or encryption failed.
    #[error(transparent)]
    He(#[from] privdnn_he::HeError),
}
