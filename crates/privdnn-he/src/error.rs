//! The one error type of `privdnn-he`.

use thiserror::Error;

/// Everything that can go wrong while building parameters, encrypting or evaluating.
#[derive(Debug, Error)]
pub enum HeError {
    /// Error reported by fhe.rs.
    #[error("fhe: {0}")]
    Fhe(#[from] fhe::Error),
    /// Error reported by fhe-math.
    #[error("fhe-math: {0}")]
    Math(#[from] fhe_math::Error),
    /// The parameter set is unsafe or unusable; the message says which rule failed and the fix.
    #[error("invalid HE parameters: {0}")]
    Parameters(String),
    /// Inputs of the wrong shape or a message that does not match the model.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// Building or quantising the integer block failed.
    #[error(transparent)]
    Quant(#[from] privdnn_quant::QuantError),
    /// A message or key blob could not be decoded.
    #[error("malformed {what}: {detail}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// Why it failed.
        detail: String,
    },
}

impl HeError {
    pub(crate) fn shape(msg: impl Into<String>) -> Self {
        HeError::Shape(msg.into())
    }
}
