//! The one error type of `privdnn-gc`.

use thiserror::Error;

/// Why a circuit could not be built, garbled, evaluated or fed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum GcError {
    /// Inputs, words or chunk buffers of the wrong length.
    #[error("length mismatch: {0}")]
    Length(String),
    /// A parameter out of range (ring width, shift, batch size, ...).
    #[error("invalid parameter: {0}")]
    Param(String),
    /// A chunk arrived out of order (its first gate index is not the expected one).
    #[error("stream out of order: {0}")]
    Order(String),
    /// More random OTs were consumed than the dealer provided.
    #[error("random OTs exhausted: {0}")]
    Exhausted(String),
}

impl GcError {
    pub(crate) fn length(msg: impl Into<String>) -> Self {
        GcError::Length(msg.into())
    }
    pub(crate) fn param(msg: impl Into<String>) -> Self {
        GcError::Param(msg.into())
    }
}
