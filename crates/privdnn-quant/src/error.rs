//! The one error type of `privdnn-quant`.

use thiserror::Error;

/// Why a block could not be built or quantised.
#[derive(Debug, Error)]
pub enum QuantError {
    /// Weights, biases or geometry of the wrong shape.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// Some intermediate value could wrap modulo t: the message gives the bound and the fix.
    #[error("no-wrap check failed: {0}")]
    Overflow(String),
    /// The trained model lacks a tensor the block needs.
    #[error("model: {0}")]
    Model(String),
}

impl QuantError {
    pub(crate) fn shape(msg: impl Into<String>) -> Self {
        QuantError::Shape(msg.into())
    }
}
