//! The attacker's training loop: mini-batch Adam / SGD with a per-epoch cosine schedule on a
//! small labelled set, optionally in evaluation mode (BN running statistics used and kept,
//! dropout off, as the reference's recovery) and with a per-element learning rate.
//!
//! Per-element rates: after each optimiser step the update `new − old` of the tensors listed in
//! [`StepScales`] is multiplied element-wise by a scale (and `old` added back). Adam's and
//! momentum-SGD's state does not depend on the learning rate (no weight decay here), so this is
//! exactly a per-element learning rate: scale 10 gives "10× the rate", scale 0 freezes an
//! element. Tensors not listed are stepped by the optimiser as usual (or not at all when they do
//! not require gradients).

use std::collections::HashMap;

use indicatif::ProgressBar;
use privdnn_artifacts::{DatasetSplit, Normalization};
use privdnn_config::{Augmentation, OptimizerKind};
use privdnn_model::burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use privdnn_model::burn::nn::loss::CrossEntropyLossConfig;
use privdnn_model::burn::optim::momentum::MomentumConfig;
use privdnn_model::burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use privdnn_model::burn::tensor::{Device, Tensor, TensorData};
use privdnn_model::{Network, batch_tensor, label_tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::AttackError;

/// How to train.
#[derive(Clone, Debug)]
pub struct FitSettings {
    /// What is trained (for messages).
    pub what: String,
    /// Epochs over the samples.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Optimiser family.
    pub optimizer: OptimizerKind,
    /// Base learning rate (cosine-annealed to 0 over `epochs`, per epoch).
    pub learning_rate: f64,
    /// SGD momentum (dampening 0).
    pub momentum: f64,
    /// Seed of batch order and augmentation.
    pub seed: u64,
    /// Training-time augmentation (None = none).
    pub augmentation: Option<Augmentation>,
}

/// Per-element multipliers of each step's update, by tensor name.
#[derive(Clone, Debug, Default)]
pub struct StepScales {
    /// `(tensor name, one scale per element)`.
    pub tensors: Vec<(String, Vec<f32>)>,
}

/// Dotted parameter path without the enum variant (as `privdnn_model::export_tensors`).
#[derive(Default)]
struct Path {
    parts: Vec<String>,
}

impl Path {
    fn name(&self) -> String {
        self.parts
            .iter()
            .skip(1)
            .cloned()
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// Sets `require_grad` on each float tensor from a predicate on its name.
struct GradSetter<'a> {
    path: Path,
    trainable: &'a dyn Fn(&str) -> bool,
}

impl ModuleMapper for GradSetter<'_> {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.parts.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.parts.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let on = (self.trainable)(&self.path.name());
        param.set_require_grad(on)
    }
}

/// Puts `net` in evaluation mode (BN uses and keeps its running statistics, dropout off) and
/// lets exactly the tensors for which `trainable(name)` holds receive gradients. BN running
/// statistics never do.
pub fn eval_mode_with_grads(net: Network, trainable: &dyn Fn(&str) -> bool) -> Network {
    let guarded = |name: &str| !name.contains("running_") && trainable(name);
    let mut setter = GradSetter {
        path: Path::default(),
        trainable: &guarded,
    };
    net.freeze().map(&mut setter)
}

/// Reads the listed tensors' values.
struct Reader<'a> {
    path: Path,
    wanted: &'a HashMap<String, Vec<f32>>,
    values: HashMap<String, Vec<f32>>,
    errors: Vec<String>,
}

impl ModuleVisitor for Reader<'_> {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.parts.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.parts.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let name = self.path.name();
        if self.wanted.contains_key(&name) {
            match privdnn_model::data_values(param.val().to_data(), &name) {
                Ok(values) => {
                    self.values.insert(name, values);
                }
                Err(e) => self.errors.push(e.to_string()),
            }
        }
    }
}

/// Replaces each listed tensor by `old + (new − old) · scale`.
struct Blender<'a> {
    path: Path,
    scales: &'a HashMap<String, Vec<f32>>,
    old: &'a HashMap<String, Vec<f32>>,
    errors: Vec<String>,
}

impl ModuleMapper for Blender<'_> {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.parts.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.parts.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = self.path.name();
        let (Some(scale), Some(old)) = (self.scales.get(&name), self.old.get(&name)) else {
            return param;
        };
        let (id, new, mapper) = param.consume();
        let dims = new.dims();
        let device = new.device();
        let grad = new.is_require_grad();
        let values = match privdnn_model::data_values(new.to_data(), &name) {
            Ok(v) => v,
            Err(e) => {
                self.errors.push(e.to_string());
                return Param::from_mapped_value(id, new, mapper);
            }
        };
        if values.len() != old.len() || values.len() != scale.len() {
            self.errors.push(format!(
                "`{name}`: {} values, {} old, {} scales",
                values.len(),
                old.len(),
                scale.len()
            ));
            return Param::from_mapped_value(id, new, mapper);
        }
        let blended: Vec<f32> = values
            .iter()
            .zip(old)
            .zip(scale)
            .map(|((n, o), s)| o + (n - o) * s)
            .collect();
        let mut fresh = Tensor::<D>::from_data(TensorData::new(blended, dims), &device);
        if grad {
            fresh = fresh.require_grad();
        }
        Param::from_mapped_value(id, fresh, mapper)
    }
}

fn optimizer(s: &FitSettings) -> ModuleOptimizer {
    match s.optimizer {
        OptimizerKind::Adam => AdamConfig::new().with_epsilon(1e-8).init(),
        OptimizerKind::Sgd => SgdConfig::new()
            .with_momentum((s.momentum > 0.0).then(|| {
                MomentumConfig::new()
                    .with_momentum(s.momentum)
                    .with_dampening(0.0)
            }))
            .init(),
    }
}

/// Trains `net` (on an autodiff `device`) on every image of `samples` for `s.epochs` epochs;
/// `scales` gives per-element learning-rate multipliers. Advances `bar` once per epoch.
pub fn fit(
    mut net: Network,
    samples: &DatasetSplit,
    norm: &Normalization,
    s: &FitSettings,
    scales: Option<&StepScales>,
    device: &Device,
    bar: &ProgressBar,
) -> Result<Network, AttackError> {
    if samples.is_empty() {
        return Err(AttackError::Invalid(format!("{}: no samples", s.what)));
    }
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let mut optim = optimizer(s);
    let scale_map: HashMap<String, Vec<f32>> = scales
        .map(|sc| sc.tensors.iter().cloned().collect())
        .unwrap_or_default();
    let n = samples.len();
    for epoch in 1..=s.epochs {
        let lr = s.learning_rate
            * 0.5
            * (1.0 + (std::f64::consts::PI * (epoch - 1) as f64 / s.epochs as f64).cos());
        let mut rng =
            ChaCha8Rng::seed_from_u64(s.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let order = privdnn_data::epoch_order(n, epoch, s.seed);
        for chunk in order.chunks(s.batch_size.max(1)) {
            let aug = s.augmentation.as_ref().map(|a| (a, &mut rng));
            let (values, labels) = privdnn_data::make_batch(samples, chunk, norm, aug);
            let x = batch_tensor(values, chunk.len(), samples, device);
            let y = label_tensor(labels, device);
            let loss = loss_fn.forward(net.forward(x), y);
            let loss_value = loss.clone().into_scalar::<f32>() as f64;
            if !loss_value.is_finite() {
                return Err(AttackError::Diverged {
                    what: s.what.clone(),
                    epoch,
                    loss: loss_value,
                });
            }
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            let old = if scale_map.is_empty() {
                HashMap::new()
            } else {
                let mut reader = Reader {
                    path: Path::default(),
                    wanted: &scale_map,
                    values: HashMap::new(),
                    errors: Vec::new(),
                };
                net.visit(&mut reader);
                if !reader.errors.is_empty() {
                    return Err(AttackError::Invalid(reader.errors.join("; ")));
                }
                reader.values
            };
            net = optim.step(lr, net, grads);
            if !scale_map.is_empty() {
                let mut blender = Blender {
                    path: Path::default(),
                    scales: &scale_map,
                    old: &old,
                    errors: Vec::new(),
                };
                net = net.map(&mut blender);
                if !blender.errors.is_empty() {
                    return Err(AttackError::Invalid(blender.errors.join("; ")));
                }
            }
        }
        bar.inc(1);
    }
    Ok(net)
}
