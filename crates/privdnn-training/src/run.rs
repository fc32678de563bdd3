//! The training loop: mini-batch SGD/Adam with a per-epoch cosine schedule (as the reference's
//! CosineAnnealingLR with T_max = epochs), validation after every epoch, best-validation
//! checkpoint, early stopping, and resumable checkpoints (weights, parameter ids, optimiser
//! state, history).

use std::path::Path;
use std::time::Instant;

use privdnn_artifacts::{
    DatasetSplit, EpochRecord, ModelSpec, TrainCheckpoint, TrainedModel, read_artifact,
    write_artifact,
};
use privdnn_config::{OptimizerKind, ResolvedConfig, Schedule};
use privdnn_model::burn::module::Module;
use privdnn_model::burn::nn::loss::CrossEntropyLossConfig;
use privdnn_model::burn::optim::decay::WeightDecayConfig;
use privdnn_model::burn::optim::momentum::MomentumConfig;
use privdnn_model::burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use privdnn_model::burn::tensor::{Bytes, Device};
use privdnn_model::{
    Network, backend_device, batch_tensor, evaluate, export_tensors, import_tensors, label_tensor,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::TrainError;
use crate::metrics::TrainMetrics;

/// The three splits the stage works on.
pub use privdnn_data::Splits as TrainInputs;

/// Result of a training run.
pub struct TrainOutcome {
    /// Weights of the best-validation epoch.
    pub model: TrainedModel,
    /// Measurements.
    pub metrics: TrainMetrics,
}

/// Receives progress events (the CLI draws progress bars from them).
pub trait Observer {
    /// Start of an epoch with `steps` mini-batches.
    fn epoch_started(&mut self, _epoch: usize, _epochs: usize, _steps: usize) {}
    /// After each mini-batch: running mean loss and accuracy of the epoch so far.
    fn step(&mut self, _step: usize, _loss: f64, _accuracy: f64) {}
    /// After validation of an epoch.
    fn epoch_finished(&mut self, _record: &EpochRecord, _best: bool) {}
    /// Asked after every epoch (checkpoint written): `false` stops the run there, as an
    /// interruption would.
    fn keep_going(&mut self) -> bool {
        true
    }
}

/// An observer that ignores everything (tests).
pub struct QuietObserver;

impl Observer for QuietObserver {}

/// The model shape implied by the configuration and the dataset.
pub fn model_spec(cfg: &ResolvedConfig, train: &DatasetSplit) -> ModelSpec {
    let p = &cfg.pipeline;
    ModelSpec {
        architecture: p.model.architecture,
        in_channels: train.channels,
        image_size: train.height,
        num_classes: train.num_classes(),
        lenet_filters: p.model.lenet_filters,
        width: p.model.width,
    }
}

fn learning_rate(cfg: &ResolvedConfig, epoch0: usize) -> f64 {
    let t = &cfg.pipeline.train;
    match t.schedule {
        Schedule::Constant => t.learning_rate,
        Schedule::Cosine => {
            let progress = epoch0 as f64 / t.epochs as f64;
            t.learning_rate * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
        }
    }
}

fn optimizer(cfg: &ResolvedConfig) -> ModuleOptimizer {
    let t = &cfg.pipeline.train;
    let decay = (t.weight_decay > 0.0).then(|| WeightDecayConfig::new(t.weight_decay as f32));
    match t.optimizer {
        // PyTorch's ε (burn defaults to 1e-5), as the reference trained with torch.optim.Adam
        OptimizerKind::Adam => AdamConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(decay)
            .init(),
        OptimizerKind::Sgd => SgdConfig::new()
            .with_weight_decay(decay)
            .with_momentum((t.momentum > 0.0).then(|| {
                MomentumConfig::new()
                    .with_momentum(t.momentum)
                    .with_dampening(0.0)
            }))
            .init(),
    }
}

fn check_inputs(cfg: &ResolvedConfig, inputs: &TrainInputs) -> Result<(), TrainError> {
    let p = &cfg.pipeline;
    let t = &inputs.train;
    if t.is_empty() || inputs.validation.is_empty() || inputs.test.is_empty() {
        return Err(TrainError::Data("a split is empty".to_string()));
    }
    if t.channels != p.in_channels() {
        return Err(TrainError::Data(format!(
            "dataset has {} channels but `data.normalization` describes {}",
            t.channels,
            p.in_channels()
        )));
    }
    if t.height != p.data.image_size || t.width != p.data.image_size {
        return Err(TrainError::Data(format!(
            "dataset images are {}×{} but `data.image_size` is {}; re-run `cargo xtask data`",
            t.height, t.width, p.data.image_size
        )));
    }
    Ok(())
}

struct State {
    net: Network,
    optim: ModuleOptimizer,
    history: Vec<EpochRecord>,
    best: Option<(usize, f64, TrainedModel)>,
    train_seconds: f64,
}

fn snapshot(
    net: &Network,
    spec: &ModelSpec,
    cfg: &ResolvedConfig,
) -> Result<(TrainedModel, Vec<(String, u64)>), TrainError> {
    let (tensors, ids) = export_tensors(net)?;
    let model = TrainedModel {
        dataset: cfg.pipeline.data.dataset.clone(),
        spec: spec.clone(),
        normalization: cfg.pipeline.data.normalization.clone(),
        tensors,
    };
    Ok((model, ids))
}

fn resume(
    cfg: &ResolvedConfig,
    spec: &ModelSpec,
    device: &Device,
    checkpoint: Option<&Path>,
) -> Result<State, TrainError> {
    let fresh = || -> Result<State, TrainError> {
        Ok(State {
            net: Network::new(spec, device)?.with_dropout(cfg.pipeline.train.dropout),
            optim: optimizer(cfg),
            history: Vec::new(),
            best: None,
            train_seconds: 0.0,
        })
    };
    let Some(path) = checkpoint.filter(|p| p.exists()) else {
        return fresh();
    };
    let ckpt: TrainCheckpoint = read_artifact(path)?;
    if ckpt.config_hash != cfg.stage_hash("train") || ckpt.current.spec != *spec {
        log::warn!(
            "{}: checkpoint was written with another configuration; starting fresh",
            path.display()
        );
        return fresh();
    }
    let net = import_tensors(
        Network::new(spec, device)?.with_dropout(cfg.pipeline.train.dropout),
        &ckpt.current.tensors,
        Some(&ckpt.param_ids),
    )?;
    let optim = if ckpt.optimizer_state.is_empty() {
        optimizer(cfg)
    } else {
        optimizer(cfg)
            .from_bytes(Bytes::from_bytes_vec(ckpt.optimizer_state.clone()))
            .map_err(|e| TrainError::Optimizer(format!("{}: {e:?}", path.display())))?
    };
    let best_val = ckpt
        .history
        .get(ckpt.best_epoch.saturating_sub(1))
        .map(|r| r.val_accuracy)
        .unwrap_or(0.0);
    log::info!(
        "resuming {} after epoch {}",
        path.display(),
        ckpt.epochs_done()
    );
    Ok(State {
        net,
        optim,
        train_seconds: ckpt.history.iter().map(|r| r.seconds).sum(),
        best: Some((ckpt.best_epoch, best_val, ckpt.best)),
        history: ckpt.history,
    })
}

/// Trains the configured model. With `checkpoint`, resumes from it when it was written with the
/// same configuration and rewrites it after every epoch.
pub fn run(
    cfg: &ResolvedConfig,
    inputs: &TrainInputs,
    checkpoint: Option<&Path>,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome, TrainError> {
    let started = Instant::now();
    check_inputs(cfg, inputs)?;
    let p = &cfg.pipeline;
    let t = &p.train;
    let spec = model_spec(cfg, &inputs.train);
    let device = backend_device(t.backend, true)?;
    let eval_device = backend_device(t.backend, false)?;
    device.seed(p.seed);
    let mut state = resume(cfg, &spec, &device, checkpoint)?;
    let resumed_from_epoch = state.history.len();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let norm = &p.data.normalization;
    let n = inputs.train.len();
    let steps = n.div_ceil(t.batch_size);
    let mut images_trained = 0usize;
    let mut step_seconds = 0.0;

    for epoch in state.history.len() + 1..=t.epochs {
        if let Some((best_epoch, _, _)) = &state.best
            && t.patience > 0
            && epoch > best_epoch + t.patience
        {
            log::info!(
                "early stop: no better validation accuracy for {} epochs",
                t.patience
            );
            break;
        }
        let epoch_start = Instant::now();
        let lr = learning_rate(cfg, epoch - 1);
        let mut rng =
            ChaCha8Rng::seed_from_u64(p.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let order = privdnn_data::epoch_order(n, epoch, p.seed);
        observer.epoch_started(epoch, t.epochs, steps);
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        for (step, chunk) in order.chunks(t.batch_size).enumerate() {
            let (values, labels) = privdnn_data::make_batch(
                &inputs.train,
                chunk,
                norm,
                Some((&p.data.augmentation, &mut rng)),
            );
            let x = batch_tensor(values, chunk.len(), &inputs.train, &device);
            let y = label_tensor(labels, &device);
            let logits = state.net.forward(x);
            let hits = logits
                .clone()
                .argmax(1)
                .flatten::<1>(0, 1)
                .equal(y.clone())
                .int()
                .sum()
                .into_scalar::<i64>();
            let loss = loss_fn.forward(logits, y);
            let loss_value = loss.clone().into_scalar::<f32>() as f64;
            if !loss_value.is_finite() {
                return Err(TrainError::Diverged {
                    epoch,
                    loss: loss_value,
                });
            }
            let grads = GradientsParams::from_grads(loss.backward(), &state.net);
            state.net = state.optim.step(lr, state.net, grads);
            loss_sum += loss_value * chunk.len() as f64;
            correct += hits as usize;
            seen += chunk.len();
            observer.step(
                step + 1,
                loss_sum / seen as f64,
                100.0 * correct as f64 / seen as f64,
            );
        }
        let train_time = epoch_start.elapsed().as_secs_f64();
        step_seconds += train_time;
        images_trained += seen;
        let valid = state.net.valid();
        let val = evaluate(
            &valid,
            &inputs.validation,
            norm,
            t.eval_batch_size,
            None,
            &eval_device,
        )?;
        let record = EpochRecord {
            epoch,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: 100.0 * correct as f64 / seen.max(1) as f64,
            val_accuracy: val.accuracy(),
            learning_rate: lr,
            seconds: epoch_start.elapsed().as_secs_f64(),
        };
        state.train_seconds += train_time;
        let improved = state
            .best
            .as_ref()
            .is_none_or(|(_, acc, _)| record.val_accuracy > *acc);
        let (current, ids) = snapshot(&valid, &spec, cfg)?;
        if improved {
            state.best = Some((epoch, record.val_accuracy, current.clone()));
        }
        observer.epoch_finished(&record, improved);
        state.history.push(record);
        if let (Some(path), Some((best_epoch, _, best))) = (checkpoint, &state.best) {
            let optimizer_state = state
                .optim
                .into_bytes()
                .map_err(|e| TrainError::Optimizer(format!("{e:?}")))?
                .to_vec();
            write_artifact(
                path,
                &TrainCheckpoint {
                    config_hash: cfg.stage_hash("train"),
                    current,
                    best: best.clone(),
                    best_epoch: *best_epoch,
                    history: state.history.clone(),
                    param_ids: ids,
                    optimizer_state,
                },
            )?;
        }
        if !observer.keep_going() {
            log::info!("stopped after epoch {epoch} on request");
            break;
        }
    }

    let (best_epoch, _, model) = match state.best {
        Some(best) => best,
        None => {
            let (m, _) = snapshot(&state.net.valid(), &spec, cfg)?;
            (0, 0.0, m)
        }
    };
    let net = import_tensors(Network::new(&spec, &eval_device)?, &model.tensors, None)?;
    let val = evaluate(
        &net,
        &inputs.validation,
        norm,
        t.eval_batch_size,
        None,
        &eval_device,
    )?;
    let test = evaluate(
        &net,
        &inputs.test,
        norm,
        t.eval_batch_size,
        None,
        &eval_device,
    )?;
    let parameters = model.tensors.iter().map(|t| t.values.len()).sum();
    let throughput = if step_seconds > 0.0 {
        images_trained as f64 / step_seconds
    } else {
        0.0
    };
    let metrics = TrainMetrics {
        pipeline: p.name.clone(),
        profile: cfg.profile.clone(),
        dataset: p.data.dataset.clone(),
        architecture: spec.architecture.name().to_string(),
        width: spec.width,
        parameters,
        backend: format!("{:?}", t.backend).to_lowercase(),
        split_sizes: [
            inputs.train.len(),
            inputs.validation.len(),
            inputs.test.len(),
        ],
        epochs_configured: t.epochs,
        epochs_run: state.history.len(),
        best_epoch,
        test_accuracy: test.accuracy(),
        test_top5_accuracy: test.top5_accuracy(),
        validation_accuracy: val.accuracy(),
        validation_top5_accuracy: val.top5_accuracy(),
        test_per_class_accuracy: test.per_class_accuracy(),
        seconds: started.elapsed().as_secs_f64(),
        train_seconds: state.train_seconds,
        train_images_per_second: throughput,
        resumed_from_epoch,
        history: state.history,
    };
    Ok(TrainOutcome { model, metrics })
}
