//! The server's part of split training (SPNN, issue 18): the network after conv1, trained with
//! burn from first-layer activations it is given. [`UpperNet`] holds a whole [`Network`] whose
//! conv1 is never used (so the artifact shape and parameter names stay the ordinary ones), runs
//! `layer1 → conv2 → tail` on a given z1, computes the cross-entropy loss from labels, back-propagates
//! and returns the gradient with respect to z1, and steps its optimiser. [`UpperNet::export`]
//! writes the ordinary trained-model artifact with the first-layer weights supplied by the caller,
//! so the select / encrypt / infer stages run on the result unchanged.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Bytes, Device, Tensor, TensorData};
use privdnn_artifacts::{ModelSpec, NamedTensor, Normalization, TrainedModel};

use crate::convert::tensor_values;
use crate::device::backend_device;
use crate::error::ModelError;
use crate::eval::label_tensor;
use crate::network::Network;
use crate::weights::{export_tensors, import_tensors};

static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

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

/// The server's network above conv1 with its optimiser (autodiff flex device).
pub struct UpperNet {
    spec: ModelSpec,
    net: Network,
    optim: ModuleOptimizer,
    kind: UpperOptimizer,
    weight_decay: f64,
    device: Device,
}

fn optimizer(kind: UpperOptimizer, weight_decay: f64) -> ModuleOptimizer {
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
        // burn's device generator is global: seeding and drawing under one lock keeps two
        // networks built at once (threads, parallel tests) from interleaving their draws.
        let net = {
            let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
            device.seed(seed);
            Network::new(spec, &device)?
        };
        Ok(Self {
            spec: spec.clone(),
            net,
            optim: optimizer(kind, weight_decay),
            kind,
            weight_decay,
            device,
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

    /// One training step on `z1` (`n` images, `[n, c1, h1, w1]` row-major) with `labels`:
    /// forward, loss, backward, optimiser step at learning rate `lr`.
    pub fn step(&mut self, z1: Vec<f32>, labels: &[i64], lr: f64) -> Result<UpperStep, ModelError> {
        let [c, h, w] = self.z1_shape()?;
        let n = labels.len();
        if n == 0 || z1.len() != n * c * h * w {
            return Err(ModelError::Input(format!(
                "{} activations for {n} labels of [{c}, {h}, {w}]",
                z1.len()
            )));
        }
        let z =
            Tensor::<4>::from_data(TensorData::new(z1, [n, c, h, w]), &self.device).require_grad();
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
        let params = GradientsParams::from_grads(grads, &self.net);
        let net = std::mem::replace(&mut self.net, Network::new(&self.spec, &self.device)?);
        self.net = self.optim.step(lr, net, params);
        Ok(UpperStep {
            loss: loss_value,
            correct,
            grad,
        })
    }

    /// Logits of `z1` (`[n, c1, h1, w1]`) without training (evaluation).
    pub fn logits(&self, z1: Vec<f32>, n: usize) -> Result<Vec<f32>, ModelError> {
        let [c, h, w] = self.z1_shape()?;
        if z1.len() != n * c * h * w {
            return Err(ModelError::Input(format!(
                "{} activations for {n} images",
                z1.len()
            )));
        }
        let net = self.net.valid();
        let device = backend_device(privdnn_config::Backend::Flex, false)?;
        let z = Tensor::<4>::from_data(TensorData::new(z1, [n, c, h, w]), &device);
        let a1 = net.layer1(z);
        tensor_values(net.tail(a1.clone(), net.conv2(a1)), "logits")
    }

    /// The ordinary trained-model artifact: this network's tensors with conv1 replaced by
    /// `conv1_weight` (`[c1, cin, k, k]`) and `conv1_bias` (`[c1]`).
    pub fn export(
        &self,
        dataset: &str,
        normalization: &Normalization,
        conv1_weight: &[f32],
        conv1_bias: &[f32],
    ) -> Result<TrainedModel, ModelError> {
        let (mut tensors, _) = export_tensors(&self.net.valid())?;
        for t in &mut tensors {
            let values = match t.name.as_str() {
                "conv1.weight" => conv1_weight,
                "conv1.bias" => conv1_bias,
                _ => continue,
            };
            if values.len() != t.values.len() {
                return Err(ModelError::WeightMismatch {
                    architecture: self.spec.architecture.name().to_string(),
                    message: format!(
                        "`{}` needs {} values, got {}",
                        t.name,
                        t.values.len(),
                        values.len()
                    ),
                });
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
}
