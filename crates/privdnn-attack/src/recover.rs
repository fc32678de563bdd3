//! Model recovery (spec §4.1 → A_rec) and training from scratch (§4.2 → A_t).
//!
//! Recovery: the attacker holds the user's (separated) model, the indices of the encrypted
//! filters and `N` labelled validation samples. The encrypted filters are re-initialised
//! ([`crate::reinit`]) — they really enter the forward pass, unlike the reference's HEAD — and
//! the model is fine-tuned in evaluation mode (as the reference): *unfreeze* trains every weight,
//! the re-initialised ones at `lr_ratio`× the others' rate; *freeze* trains only the
//! re-initialised values. Training from scratch trains a fresh network on the same samples in
//! training mode with the pipeline's augmentation.

use std::time::Instant;

use indicatif::ProgressBar;
use privdnn_artifacts::{DatasetSplit, NeuronSelection, Normalization, TrainedModel};
use privdnn_config::{Augmentation, OptimizerKind};
use privdnn_model::burn::module::Module;
use privdnn_model::burn::tensor::Device;
use privdnn_model::{Network, evaluate, export_tensors, import_tensors};
use serde::{Deserialize, Serialize};

use crate::error::AttackError;
use crate::fit::{FitSettings, StepScales, eval_mode_with_grads, fit};
use crate::reinit::{ReinitMasks, reinitialize};

/// Which weights the recovery trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// Only the re-initialised (encrypted) values.
    Freeze,
    /// Every weight; the re-initialised ones at `lr_ratio`× the rate of the others.
    Unfreeze,
}

/// Optimiser settings of the attacks.
#[derive(Clone, Debug)]
pub struct AttackTraining {
    /// Recovery epochs.
    pub epochs: usize,
    /// Epochs of training from scratch.
    pub scratch_epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Optimiser family (the pipeline's).
    pub optimizer: OptimizerKind,
    /// SGD momentum.
    pub momentum: f64,
    /// Rate of the re-initialised values.
    pub learning_rate: f64,
    /// Re-initialised rate / other weights' rate (unfreeze).
    pub lr_ratio: f64,
    /// Base rate of training from scratch (the pipeline's training rate).
    pub scratch_learning_rate: f64,
    /// Augmentation of training from scratch.
    pub scratch_augmentation: Augmentation,
    /// Evaluation batch size.
    pub eval_batch_size: usize,
    /// Seed.
    pub seed: u64,
}

/// Devices: autodiff for training, plain for evaluation.
#[derive(Clone, Debug)]
pub struct Devices {
    /// Training device (autodiff).
    pub train: Device,
    /// Evaluation device.
    pub eval: Device,
}

/// Outcome of one recovery run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Recovery {
    /// Variant.
    pub variant: Variant,
    /// Test accuracy of the re-initialised model before fine-tuning, percent.
    pub before: f64,
    /// Test accuracy after fine-tuning (A_rec), percent.
    pub after: f64,
    /// Re-initialised values.
    pub reinitialized_values: usize,
    /// Wall seconds.
    pub seconds: f64,
}

/// Test accuracy (percent) of `model` on `test`.
pub fn accuracy(
    model: &TrainedModel,
    test: &DatasetSplit,
    batch: usize,
    device: &Device,
) -> Result<f64, AttackError> {
    let net = import_tensors(Network::new(&model.spec, device)?, &model.tensors, None)?;
    Ok(evaluate(&net, test, &model.normalization, batch, None, device)?.accuracy())
}

/// The trained weights of `net` as a model like `like`.
pub fn snapshot(net: &Network, like: &TrainedModel) -> Result<TrainedModel, AttackError> {
    let (tensors, _) = export_tensors(&net.valid())?;
    Ok(TrainedModel {
        tensors,
        ..like.clone()
    })
}

/// The step scales of `variant` for the re-initialised `masks`.
pub fn step_scales(masks: &ReinitMasks, variant: Variant, lr_ratio: f64) -> StepScales {
    StepScales {
        tensors: masks
            .tensors
            .iter()
            .map(|(name, m)| {
                let scale = m
                    .iter()
                    .map(|&v| match variant {
                        Variant::Freeze => v,
                        Variant::Unfreeze => 1.0 + (lr_ratio as f32 - 1.0) * v,
                    })
                    .collect();
                (name.clone(), scale)
            })
            .collect(),
    }
}

/// The model-recovery attack: returns the outcome and the recovered model.
#[allow(clippy::too_many_arguments)]
pub fn recover(
    model: &TrainedModel,
    selection: &NeuronSelection,
    samples: &DatasetSplit,
    test: &DatasetSplit,
    variant: Variant,
    t: &AttackTraining,
    devices: &Devices,
    bar: &ProgressBar,
) -> Result<(Recovery, TrainedModel), AttackError> {
    let started = Instant::now();
    let separated = privdnn_model::partition::separate_weights(model, selection)?;
    let (start, masks) = reinitialize(&separated, selection, t.seed)?;
    let before = accuracy(&start, test, t.eval_batch_size, &devices.eval)?;
    devices.train.seed(t.seed);
    let net = import_tensors(
        Network::new(&start.spec, &devices.train)?,
        &start.tensors,
        None,
    )?;
    let reinit_names: Vec<String> = masks.tensors.iter().map(|(n, _)| n.clone()).collect();
    let (net, base_lr) = match variant {
        Variant::Freeze => (
            eval_mode_with_grads(net, &|name| reinit_names.iter().any(|n| n == name)),
            t.learning_rate,
        ),
        Variant::Unfreeze => (
            eval_mode_with_grads(net, &|_| true),
            t.learning_rate / t.lr_ratio,
        ),
    };
    let scales = step_scales(&masks, variant, t.lr_ratio);
    let settings = FitSettings {
        what: format!("recovery ({variant:?})"),
        epochs: t.epochs,
        batch_size: t.batch_size,
        optimizer: t.optimizer,
        learning_rate: base_lr,
        momentum: t.momentum,
        seed: t.seed,
        augmentation: None,
    };
    let net = fit(
        net,
        samples,
        &model.normalization,
        &settings,
        Some(&scales),
        &devices.train,
        bar,
    )?;
    let recovered = snapshot(&net, model)?;
    let after = accuracy(&recovered, test, t.eval_batch_size, &devices.eval)?;
    Ok((
        Recovery {
            variant,
            before,
            after,
            reinitialized_values: masks.count(),
            seconds: started.elapsed().as_secs_f64(),
        },
        recovered,
    ))
}

/// Training a fresh network of `like`'s shape from scratch on `samples`; returns A_t (percent)
/// and the trained model.
pub fn from_scratch(
    like: &TrainedModel,
    samples: &DatasetSplit,
    test: &DatasetSplit,
    norm: &Normalization,
    t: &AttackTraining,
    devices: &Devices,
    bar: &ProgressBar,
) -> Result<(f64, TrainedModel), AttackError> {
    devices.train.seed(t.seed ^ 0x5C_2A7C4);
    let net = Network::new(&like.spec, &devices.train)?;
    let settings = FitSettings {
        what: "training from scratch".to_string(),
        epochs: t.scratch_epochs,
        batch_size: t.batch_size,
        optimizer: t.optimizer,
        learning_rate: t.scratch_learning_rate,
        momentum: t.momentum,
        seed: t.seed,
        augmentation: Some(t.scratch_augmentation.clone()),
    };
    let net = fit(net, samples, norm, &settings, None, &devices.train, bar)?;
    let model = snapshot(&net, like)?;
    let acc = accuracy(&model, test, t.eval_batch_size, &devices.eval)?;
    Ok((acc, model))
}
