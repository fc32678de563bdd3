//! The label holder's part of split training (SPNN): the network's final linear layer and the
//! cross-entropy loss, so the labels never leave the label holder. The server's
//! [`crate::UpperNet::forward`] sends the features `h` (the final layer's input); [`TopNet::step`]
//! computes the logits, the loss and ∂(mean loss)/∂h, which goes back to
//! [`crate::UpperNet::backward`], and steps its own optimiser.
//!
//! A [`TopNet`] built with a seed starts from exactly the final layer of the network
//! [`crate::UpperNet::new`] builds with that seed (both come from one seeded construction), so
//! split and combined training start from the same model.

use burn::module::{Module, Param, ParamId};
use burn::nn::Linear;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Bytes, Device, Tensor, TensorData};
use privdnn_artifacts::{ModelSpec, NamedTensor};

use crate::convert::tensor_values;
use crate::device::backend_device;
use crate::error::ModelError;
use crate::eval::{correct_count, label_tensor};
use crate::network::Network;
use crate::split::{UpperOptimizer, optimizer, seeded_network};

/// What one training step of the final layer measured and produced.
#[derive(Clone, Debug)]
pub struct TopStep {
    /// Mean cross-entropy loss of the batch.
    pub loss: f64,
    /// Top-1 hits in the batch.
    pub correct: usize,
    /// ∂(mean loss)/∂h, `[n, d]` row-major, for [`crate::UpperNet::backward`].
    pub grad_h: Vec<f32>,
}

/// The final layer's resumable state: tensors, parameter ids and the optimiser's bytes.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TopState {
    /// The final layer's weight and bias, named as in the model artifact.
    pub tensors: Vec<NamedTensor>,
    /// Parameter ids, so the optimiser state matches after a resume.
    pub ids: Vec<(String, u64)>,
    /// The optimiser's serialised state.
    pub optimizer: Vec<u8>,
}

/// The label holder's final linear layer with its optimiser (autodiff flex device).
pub struct TopNet {
    layer: Linear,
    names: [&'static str; 2],
    optim: ModuleOptimizer,
    kind: UpperOptimizer,
    weight_decay: f64,
    device: Device,
}

impl TopNet {
    /// The final layer of the network the train stage (and [`crate::UpperNet::new`]) builds
    /// with `seed`, with a fresh optimiser of `kind` (same settings as the upper network).
    pub fn new(
        spec: &ModelSpec,
        seed: u64,
        kind: UpperOptimizer,
        weight_decay: f64,
    ) -> Result<Self, ModelError> {
        let device = backend_device(privdnn_config::Backend::Flex, true)?;
        let net = seeded_network(spec, seed, &device)?;
        let names = net.head_names();
        Ok(Self {
            layer: net.into_head(),
            names,
            optim: optimizer(kind, weight_decay),
            kind,
            weight_decay,
            device,
        })
    }

    /// Restores a final layer saved by [`TopNet::state`] for a network of shape `spec`.
    pub fn restore(
        spec: &ModelSpec,
        kind: UpperOptimizer,
        weight_decay: f64,
        state: &TopState,
    ) -> Result<Self, ModelError> {
        let device = backend_device(privdnn_config::Backend::Flex, true)?;
        // unseeded and never read: only the names and shapes of the final layer are used
        let template = Network::new(spec, &device)?;
        let names = template.head_names();
        let layer = template.into_head();
        let shape = |p: &Param<Tensor<2>>| p.lazy_shape().dims::<2>();
        let [d, classes] = shape(&layer.weight);
        let weight = restored_param(state, names[0], &[d, classes], &device)?;
        let bias = restored_param(state, names[1], &[classes], &device)?;
        let optim = optimizer(kind, weight_decay)
            .from_bytes(Bytes::from_bytes_vec(state.optimizer.clone()))
            .map_err(|e| ModelError::Tensor(format!("optimiser state of the top layer: {e:?}")))?;
        Ok(Self {
            layer: Linear {
                weight,
                bias: Some(bias),
            },
            names,
            optim,
            kind,
            weight_decay,
            device,
        })
    }

    /// The resumable state.
    pub fn state(&self) -> Result<TopState, ModelError> {
        let optimizer = self
            .optim
            .into_bytes()
            .map_err(|e| ModelError::Tensor(format!("optimiser state of the top layer: {e:?}")))?
            .to_vec();
        let mut ids = vec![(self.names[0].to_string(), self.layer.weight.id.val())];
        if let Some(b) = &self.layer.bias {
            ids.push((self.names[1].to_string(), b.id.val()));
        }
        Ok(TopState {
            tensors: self.tensors()?,
            ids,
            optimizer,
        })
    }

    /// The final layer's weight (`[d, classes]`) and bias (`[classes]`), named as in the model
    /// artifact (for [`crate::UpperNet::export_with_head`]).
    pub fn tensors(&self) -> Result<Vec<NamedTensor>, ModelError> {
        fn named<const D: usize>(name: &str, t: Tensor<D>) -> Result<NamedTensor, ModelError> {
            Ok(NamedTensor {
                name: name.to_string(),
                shape: t.dims().to_vec(),
                values: tensor_values(t, name)?,
            })
        }
        let mut out = vec![named(self.names[0], self.layer.weight.val())?];
        if let Some(b) = &self.layer.bias {
            out.push(named(self.names[1], b.val())?);
        }
        Ok(out)
    }

    /// The optimiser kind and weight decay this layer was built with.
    pub fn optimizer(&self) -> (UpperOptimizer, f64) {
        (self.kind, self.weight_decay)
    }

    /// Width `d` of the features this layer takes.
    pub fn feature_dim(&self) -> usize {
        self.layer.weight.lazy_shape()[0]
    }

    /// The features `h` (`[n, d]` row-major) as a tensor on `device`.
    fn features(&self, h: Vec<f32>, n: usize, device: &Device) -> Result<Tensor<2>, ModelError> {
        let d = self.feature_dim();
        if n == 0 || h.len() != n * d {
            return Err(ModelError::Input(format!(
                "{} feature values for {n} images of width {d}",
                h.len()
            )));
        }
        Ok(Tensor::<2>::from_data(TensorData::new(h, [n, d]), device))
    }

    /// One training step on features `h` (`[n, d]` row-major, from
    /// [`crate::UpperNet::forward`]) with `labels`: logits, mean cross-entropy, ∂loss/∂h, then
    /// an optimiser step of the final layer at learning rate `lr`.
    pub fn step(&mut self, h: Vec<f32>, labels: &[i64], lr: f64) -> Result<TopStep, ModelError> {
        let h = self.features(h, labels.len(), &self.device)?.require_grad();
        let y = label_tensor(labels.to_vec(), &self.device);
        let logits = self.layer.forward(h.clone());
        let correct = correct_count(logits.clone(), y.clone()) as usize;
        let loss = CrossEntropyLossConfig::new()
            .init(&self.device)
            .forward(logits, y);
        let loss_value = loss.clone().into_scalar::<f32>() as f64;
        if !loss_value.is_finite() {
            return Err(ModelError::Input(format!("loss is {loss_value}")));
        }
        let mut grads = loss.backward();
        let grad_h = h
            .grad_remove(&mut grads)
            .ok_or_else(|| ModelError::Tensor("no gradient for the features".to_string()))?;
        let grad_h = tensor_values(grad_h, "feature gradient")?;
        let params = GradientsParams::from_grads(grads, &self.layer);
        self.layer = self.optim.step(lr, self.layer.clone(), params);
        Ok(TopStep {
            loss: loss_value,
            correct,
            grad_h,
        })
    }

    /// Logits `[n, classes]` row-major of features `h` (`[n, d]`) without training
    /// (evaluation; the features from [`crate::UpperNet::features_eval`]).
    pub fn logits(&self, h: Vec<f32>, n: usize) -> Result<Vec<f32>, ModelError> {
        let layer = self.layer.valid();
        let h = self.features(h, n, &backend_device(privdnn_config::Backend::Flex, false)?)?;
        tensor_values(layer.forward(h), "logits")
    }
}

/// The parameter `name` of `state` (shape `shape`) on `device`, with its saved id.
fn restored_param<const D: usize>(
    state: &TopState,
    name: &str,
    shape: &[usize; D],
    device: &Device,
) -> Result<Param<Tensor<D>>, ModelError> {
    let t = state
        .tensors
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| ModelError::WeightMismatch {
            architecture: "top layer".to_string(),
            message: format!("the saved state has no `{name}`; save it with TopNet::state"),
        })?;
    if t.shape != shape.as_slice() || t.values.len() != shape.iter().product::<usize>() {
        return Err(ModelError::WeightMismatch {
            architecture: "top layer".to_string(),
            message: format!(
                "`{name}` has shape {:?} ({} values), the model needs {shape:?}",
                t.shape,
                t.values.len()
            ),
        });
    }
    let id = state
        .ids
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, id)| ParamId::from(*id))
        .ok_or_else(|| ModelError::WeightMismatch {
            architecture: "top layer".to_string(),
            message: format!("the saved state has no parameter id for `{name}`"),
        })?;
    let value = Tensor::<D>::from_data(TensorData::new(t.values.clone(), *shape), device);
    Ok(Param::initialized(id, value.require_grad()))
}
