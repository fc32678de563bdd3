//! The one error type of `privdnn-mpc`.

use thiserror::Error;

/// Why an integer model could not be built or evaluated.
#[derive(Debug, Error)]
pub enum MpcError {
    /// The trained model lacks a tensor, or a tensor has the wrong shape.
    #[error("model: {0}")]
    Model(String),
    /// The architecture has no integer tail here (ResNet18).
    #[error("architecture `{0}` is not supported by the integer model")]
    Unsupported(String),
    /// A vector of the wrong length was given to an operation.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// PrivDNN's block quantiser refused the model.
    #[error(transparent)]
    Quant(#[from] privdnn_quant::QuantError),
}

impl MpcError {
    pub(crate) fn shape(msg: impl Into<String>) -> Self {
        MpcError::Shape(msg.into())
    }

    pub(crate) fn model(msg: impl Into<String>) -> Self {
        MpcError::Model(msg.into())
    }
}
