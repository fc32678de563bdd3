//! Maps the configured backend name to a burn device. flex is always compiled in; ndarray only
//! with the `ndarray` cargo feature.

use burn::tensor::Device;
use privdnn_config::Backend;

use crate::error::ModelError;

/// The burn device for `backend`; `autodiff` wraps it for training.
pub fn backend_device(backend: Backend, autodiff: bool) -> Result<Device, ModelError> {
    let device = match backend {
        Backend::Flex => Device::flex(),
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        Backend::Ndarray => Device::ndarray(),
        #[cfg(not(feature = "ndarray"))]
        Backend::Ndarray => return Err(ModelError::BackendUnavailable("ndarray".to_string())),
    };
    Ok(if autodiff { device.autodiff() } else { device })
}

/// Backends compiled into this binary.
pub fn available_backends() -> Vec<Backend> {
    let mut list = vec![Backend::Flex];
    if cfg!(feature = "ndarray") {
        list.push(Backend::Ndarray);
    }
    list
}
