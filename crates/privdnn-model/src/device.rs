//! Maps the configured backend name to a burn device. flex is always compiled in; ndarray only
//! with the `ndarray` cargo feature, wgpu (the default GPU) only with the `wgpu` cargo feature.

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
        #[cfg(feature = "wgpu")]
        Backend::Wgpu => Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
        #[cfg(not(feature = "wgpu"))]
        Backend::Wgpu => return Err(ModelError::BackendUnavailable("wgpu".to_string())),
    };
    Ok(if autodiff { device.autodiff() } else { device })
}

/// Backends compiled into this binary.
pub fn available_backends() -> Vec<Backend> {
    let mut list = vec![Backend::Flex];
    if cfg!(feature = "ndarray") {
        list.push(Backend::Ndarray);
    }
    if cfg!(feature = "wgpu") {
        list.push(Backend::Wgpu);
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flex_is_always_available() {
        assert_eq!(available_backends()[0], Backend::Flex);
        assert!(backend_device(Backend::Flex, true).is_ok());
    }

    #[cfg(not(feature = "wgpu"))]
    #[test]
    fn wgpu_without_the_feature_names_the_rebuild() {
        assert!(!available_backends().contains(&Backend::Wgpu));
        let message = match backend_device(Backend::Wgpu, false) {
            Err(error) => error.to_string(),
            Ok(_) => panic!("wgpu must not be available without the feature"),
        };
        assert!(message.contains("--features wgpu"), "{message}");
    }
}
