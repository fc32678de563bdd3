//! Tensor → `Vec<f32>` conversions that fail loudly: a conversion error is a [`ModelError`],
//! never an empty vector (an empty vector would become empty weights in a model file or an
//! accuracy over zero images).

use burn::tensor::{Tensor, TensorData};

use crate::error::ModelError;

/// The values of `data` as `f32`, or an error naming `what`.
pub fn data_values(data: TensorData, what: &str) -> Result<Vec<f32>, ModelError> {
    data.try_into_vec::<f32>()
        .map_err(|e| ModelError::Tensor(format!("{what}: {e:?}")))
}

/// The values of a tensor as `f32` (consumes it), or an error naming `what`.
pub fn tensor_values<const D: usize>(t: Tensor<D>, what: &str) -> Result<Vec<f32>, ModelError> {
    data_values(t.into_data(), what)
}
