//! The server's part of split training (SPNN, issue 18): the network after conv1, trained with
//! burn from first-layer activations it is given. [`UpperNet`] holds a whole [`Network`] whose
//! conv1 is never used (so the artifact shape and parameter names stay the ordinary ones).
//!
//! Two ways to train it: [`UpperNet::step`] runs `layer1 → conv2 → tail` on z1, computes the
//! cross-entropy loss from labels and back-propagates (the combined reference, the server sees
//! the labels); [`UpperNet::forward`] / [`UpperNet::backward`] stop before the final linear layer,
//! which the label holder trains with [`crate::TopNet`] (the server never sees labels, and its own
//! copy of the final layer gets no gradient). Either way the gradient with respect to z1 is
//! returned and the optimiser steps. [`UpperNet::export_with_head`] writes the ordinary
//! trained-model artifact with the first-layer (and final-layer) weights supplied by their
//! holders, so the select / encrypt / infer stages run on the result unchanged.

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Bytes, Device, Gradients, Tensor, TensorData};
use privdnn_artifacts::{ModelSpec, NamedTensor, Normalization, TrainedModel};

use crate::convert::tensor_values;
use crate::device::backend_device;
use crate::error::ModelError;
use crate::eval::label_tensor;
use crate::network::Network;
use crate::weights::{export_tensors, import_tensors};

static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Reads every float parameter once, which draws the lazily initialised ones.
struct Materialise;

impl ModuleVisitor for Materialise {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let _ = param.val();
    }
}

/// A fresh network initialised as the train stage initialises one with `seed`: the device is
/// seeded and every initial value drawn, in module order, under one lock. burn draws a
/// parameter's initial value on its first use from the device's global generator, so without
/// the lock (and the eager draw) two networks built at once (threads, parallel tests) would
/// interleave their draws. [`UpperNet::new`] and [`crate::TopNet::new`] both build through
/// here, so the label holder's final layer equals the server's for the same seed.
pub(crate) fn seeded_network(
    spec: &ModelSpec,
    seed: u64,
    device: &Device,
) -> Result<Network, ModelError> {
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(seed);
    let net = Network::new(spec, device)?;
    net.visit(&mut Materialise);
    Ok(net)
}

/// The optimiser of the upper network.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum UpperOptimizer {
    /// Adam (ε = 1e-8, as the train stage).
    Adam,
    /// Plain SGD.
    Sgd,
}

/// What one training step of the upper network measured and produced.
#[derive(Clone, Debug)]
pub struct UpperStep {
    /// Mean cross-entropy loss of the batch.
    pub loss: f64,
    /// Top-1 hits in the batch.
    pub correct: usize,
    /// ∂(mean loss)/∂z1, `[n, c1, h1, w1]` row-major.
    pub grad: Vec<f32>,
}

/// The upper network's resumable state: tensors, parameter ids and the optimiser's bytes.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UpperState {
    /// Every tensor of the network (conv1 included, unused).
    pub tensors: Vec<NamedTensor>,
    /// Parameter ids, so the optimiser state matches after a resume.
    pub ids: Vec<(String, u64)>,
    /// The optimiser's serialised state.
    pub optimizer: Vec<u8>,
}

/// The autodiff graph of a forward pass awaiting its backward pass.
struct Pending {
    /// z1, with `require_grad`.
    z: Tensor<4>,
    /// The features computed from it, `[n, d]`.
    h: Tensor<2>,
}

/// The server's network above conv1 with its optimiser (autodiff flex device).
pub struct UpperNet {
    spec: ModelSpec,
    net: Network,
    optim: ModuleOptimizer,
    kind: UpperOptimizer,
    weight_decay: f64,
    device: Device,
    pending: Option<Pending>,
}

/// The optimiser of `kind` (Adam with ε = 1e-8, as the train stage), with `weight_decay` when
/// positive. Shared by [`UpperNet`] and [`crate::TopNet`].
pub(crate) fn optimizer(kind: UpperOptimizer, weight_decay: f64) -> ModuleOptimizer {
    let decay = (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay as f32));
    match kind {
        UpperOptimizer::Adam => AdamConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(decay)
            .init(),
        UpperOptimizer::Sgd => SgdConfig::new().with_weight_decay(decay).init(),
    }
}

impl UpperNet {
    /// A fresh network initialised exactly as the train stage initialises one with `seed`
    /// (same device seeding, same construction order), so its conv1 is the plaintext run's.
    pub fn new(
        spec: &ModelSpec,
        seed: u64,
        kind: UpperOptimizer,
        weight_decay: f64,
    ) -> Result<Self, ModelError> {
        let device = backend_device(privdnn_config::Backend::Flex, true)?;
        let net = seeded_network(spec, seed, &device)?;
        Ok(Self {
            spec: spec.clone(),
            net,
            optim: optimizer(kind, weight_decay),
            kind,
            weight_decay,
            device,
            pending: None,
        })
    }

    /// Restores a network saved by [`UpperNet::state`].
    pub fn restore(
        spec: &ModelSpec,
        kind: UpperOptimizer,
        weight_decay: f64,
        state: &UpperState,
    ) -> Result<Self, ModelError> {
        let mut fresh = Self::new(spec, 0, kind, weight_decay)?;
        fresh.net = import_tensors(fresh.net, &state.tensors, Some(&state.ids))?;
        fresh.optim = optimizer(kind, weight_decay)
            .from_bytes(Bytes::from_bytes_vec(state.optimizer.clone()))
            .map_err(|e| ModelError::Tensor(format!("optimiser state: {e:?}")))?;
        Ok(fresh)
    }

    /// The resumable state.
    pub fn state(&self) -> Result<UpperState, ModelError> {
        let (tensors, ids) = export_tensors(&self.net)?;
        let optimizer = self
            .optim
            .into_bytes()
            .map_err(|e| ModelError::Tensor(format!("optimiser state: {e:?}")))?
            .to_vec();
        Ok(UpperState {
            tensors,
            ids,
            optimizer,
        })
    }

    /// The optimiser kind and weight decay this network was built with.
    pub fn optimizer(&self) -> (UpperOptimizer, f64) {
        (self.kind, self.weight_decay)
    }

    /// conv1's initial weight (`[c1, cin, k, k]`) and bias (`[c1]`) tensors.
    pub fn conv1(&self) -> Result<(NamedTensor, NamedTensor), ModelError> {
        let (tensors, _) = export_tensors(&self.net)?;
        let find = |name: &str| {
            tensors
                .iter()
                .find(|t| t.name == name)
                .cloned()
                .ok_or_else(|| ModelError::InvalidSpec(format!("the network has no `{name}`")))
        };
        Ok((find("conv1.weight")?, find("conv1.bias")?))
    }

    /// The shape `[c1, h1, w1]` of one image's z1.
    pub fn z1_shape(&self) -> Result<[usize; 3], ModelError> {
        let s = &self.spec;
        let probe =
            Tensor::<4>::zeros([1, s.in_channels, s.image_size, s.image_size], &self.device);
        let [_, c, h, w] = self.net.valid().conv1(probe).dims();
        Ok([c, h, w])
    }

    /// z1 (`n` images, `[n, c1, h1, w1]` row-major) as a tensor on `device`.
    fn z1_tensor(&self, z1: Vec<f32>, n: usize, device: &Device) -> Result<Tensor<4>, ModelError> {
        let [c, h, w] = self.z1_shape()?;
        if n == 0 || z1.len() != n * c * h * w {
            return Err(ModelError::Input(format!(
                "{} activations for {n} images of [{c}, {h}, {w}]",
                z1.len()
            )));
        }
        Ok(Tensor::<4>::from_data(
            TensorData::new(z1, [n, c, h, w]),
            device,
        ))
    }

    /// One optimiser step at learning rate `lr` with the parameter gradients in `grads`
    /// (parameters without a gradient are left as they are).
    fn apply(&mut self, grads: Gradients, lr: f64) -> Result<(), ModelError> {
        let params = GradientsParams::from_grads(grads, &self.net);
        let net = std::mem::replace(&mut self.net, Network::new(&self.spec, &self.device)?);
        self.net = self.optim.step(lr, net, params);
        Ok(())
    }

    /// One training step on `z1` (`n` images, `[n, c1, h1, w1]` row-major) with `labels`:
    /// forward, loss, backward, optimiser step at learning rate `lr`. The combined reference of
    /// [`UpperNet::forward`] → [`crate::TopNet::step`] → [`UpperNet::backward`].
    pub fn step(&mut self, z1: Vec<f32>, labels: &[i64], lr: f64) -> Result<UpperStep, ModelError> {
        let z = self
            .z1_tensor(z1, labels.len(), &self.device)?
            .require_grad();
        let y = label_tensor(labels.to_vec(), &self.device);
        let a1 = self.net.layer1(z.clone());
        let logits = self.net.tail(a1.clone(), self.net.conv2(a1));
        let correct = crate::eval::correct_count(logits.clone(), y.clone()) as usize;
        let loss = CrossEntropyLossConfig::new()
            .init(&self.device)
            .forward(logits, y);
        let loss_value = loss.clone().into_scalar::<f32>() as f64;
        if !loss_value.is_finite() {
            return Err(ModelError::Input(format!("loss is {loss_value}")));
        }
        let mut grads = loss.backward();
        let grad = z
            .grad_remove(&mut grads)
            .ok_or_else(|| ModelError::Tensor("no gradient for z1".to_string()))?;
        let grad = tensor_values(grad, "z1 gradient")?;
        self.apply(grads, lr)?;
        Ok(UpperStep {
            loss: loss_value,
            correct,
            grad,
        })
    }

    /// Width `d` of the features [`UpperNet::forward`] returns (the final layer's input).
    pub fn feature_dim(&self) -> usize {
        self.net.feature_dim()
    }

    /// Artifact names of the final layer's weight and bias (see [`Network::head_names`]).
    pub fn head_names(&self) -> [&'static str; 2] {
        self.net.head_names()
    }

    /// Training forward pass of the split protocol: `layer1 → conv2 → features` on `z1`
    /// (`n` images, `[n, c1, h1, w1]` row-major). Returns the features `[n, d]` row-major for the
    /// label holder's [`crate::TopNet::step`] and keeps the graph for [`UpperNet::backward`]
    /// (a pending forward that was never finished is dropped).
    pub fn forward(&mut self, z1: Vec<f32>, n: usize) -> Result<Vec<f32>, ModelError> {
        self.pending = None;
        let z = self.z1_tensor(z1, n, &self.device)?.require_grad();
        let a1 = self.net.layer1(z.clone());
        let h = self.net.features(a1.clone(), self.net.conv2(a1));
        let values = tensor_values(h.clone(), "features")?;
        self.pending = Some(Pending { z, h });
        Ok(values)
    }

    /// Backward pass of the pending [`UpperNet::forward`]: back-propagates `grad_h`
    /// (∂(mean loss)/∂h, `[n, d]` row-major, from [`crate::TopNet::step`]), steps the optimiser
    /// at learning rate `lr` (the final layer and conv1 of this network get no gradient) and
    /// returns ∂(mean loss)/∂z1, `[n, c1, h1, w1]` row-major.
    pub fn backward(&mut self, grad_h: &[f32], lr: f64) -> Result<Vec<f32>, ModelError> {
        let Some(pending) = self.pending.take() else {
            return Err(ModelError::Input(
                "backward without a pending forward: call UpperNet::forward first".to_string(),
            ));
        };
        let [n, d] = pending.h.dims();
        if grad_h.len() != n * d {
            return Err(ModelError::Input(format!(
                "{} feature gradients for features of [{n}, {d}]; the forward is dropped, \
                 call UpperNet::forward again",
                grad_h.len()
            )));
        }
        let g = Tensor::<2>::from_data(TensorData::new(grad_h.to_vec(), [n, d]), &self.device);
        let mut grads = (pending.h * g).sum().backward();
        let grad = pending
            .z
            .grad_remove(&mut grads)
            .ok_or_else(|| ModelError::Tensor("no gradient for z1".to_string()))?;
        let grad = tensor_values(grad, "z1 gradient")?;
        self.apply(grads, lr)?;
        Ok(grad)
    }

    /// Logits of `z1` (`[n, c1, h1, w1]`) without training (evaluation), through this
    /// network's own final layer.
    pub fn logits(&self, z1: Vec<f32>, n: usize) -> Result<Vec<f32>, ModelError> {
        let net = self.net.valid();
        let h = self.eval_features(&net, z1, n)?;
        tensor_values(net.head(h), "logits")
    }

    /// Features `[n, d]` of `z1` (`[n, c1, h1, w1]`) without training (evaluation), for the
    /// label holder's [`crate::TopNet::logits`].
    pub fn features_eval(&self, z1: Vec<f32>, n: usize) -> Result<Vec<f32>, ModelError> {
        let net = self.net.valid();
        tensor_values(self.eval_features(&net, z1, n)?, "features")
    }

    /// layer1 → conv2 → features of `z1` on the evaluation copy `net`.
    fn eval_features(
        &self,
        net: &Network,
        z1: Vec<f32>,
        n: usize,
    ) -> Result<Tensor<2>, ModelError> {
        let z = self.z1_tensor(
            z1,
            n,
            &backend_device(privdnn_config::Backend::Flex, false)?,
        )?;
        let a1 = net.layer1(z);
        Ok(net.features(a1.clone(), net.conv2(a1)))
    }

    /// The ordinary trained-model artifact: this network's tensors with conv1 replaced by
    /// `conv1_weight` (`[c1, cin, k, k]`) and `conv1_bias` (`[c1]`). Same as
    /// [`UpperNet::export_with_head`] with no head tensors (this network's own final layer).
    pub fn export(
        &self,
        dataset: &str,
        normalization: &Normalization,
        conv1_weight: &[f32],
        conv1_bias: &[f32],
    ) -> Result<TrainedModel, ModelError> {
        self.export_with_head(dataset, normalization, conv1_weight, conv1_bias, &[])
    }

    /// The ordinary trained-model artifact: this network's tensors with conv1 replaced by
    /// `conv1_weight` / `conv1_bias` and every tensor of `head` (the label holder's final layer,
    /// [`crate::TopNet::tensors`]) replacing the tensor of the same name.
    pub fn export_with_head(
        &self,
        dataset: &str,
        normalization: &Normalization,
        conv1_weight: &[f32],
        conv1_bias: &[f32],
        head: &[NamedTensor],
    ) -> Result<TrainedModel, ModelError> {
        let (mut tensors, _) = export_tensors(&self.net.valid())?;
        let mut given: Vec<(&str, &[f32])> =
            vec![("conv1.weight", conv1_weight), ("conv1.bias", conv1_bias)];
        for t in head {
            if !tensors
                .iter()
                .any(|own| own.name == t.name && own.shape == t.shape)
            {
                return Err(self.mismatch(format!(
                    "the network has no tensor `{}` of shape {:?}",
                    t.name, t.shape
                )));
            }
            given.push((t.name.as_str(), &t.values));
        }
        for t in &mut tensors {
            let Some((_, values)) = given.iter().find(|(name, _)| *name == t.name) else {
                continue;
            };
            if values.len() != t.values.len() {
                let (name, want) = (&t.name, t.values.len());
                return Err(self.mismatch(format!(
                    "`{name}` needs {want} values, got {}",
                    values.len()
                )));
            }
            t.values = values.to_vec();
        }
        Ok(TrainedModel {
            dataset: dataset.to_string(),
            spec: self.spec.clone(),
            normalization: normalization.clone(),
            tensors,
        })
    }

    fn mismatch(&self, message: String) -> ModelError {
        ModelError::WeightMismatch {
            architecture: self.spec.architecture.name().to_string(),
            message,
        }
    }
}
