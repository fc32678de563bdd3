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
    Evaluation, Network, backend_device, batch_tensor, evaluate, export_tensors, import_tensors,
    label_tensor,
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

/// What every phase of a run reads: configuration, splits, model shape, devices, checkpoint.
struct Setup<'a> {
    cfg: &'a ResolvedConfig,
    inputs: &'a TrainInputs,
    checkpoint: Option<&'a Path>,
    spec: ModelSpec,
    /// Training device (autodiff).
    device: Device,
    /// Evaluation device.
    eval_device: Device,
}

impl Setup<'_> {
    /// Accuracy of `net` on `split` (no channel masks).
    fn evaluate(&self, net: &Network, split: &DatasetSplit) -> Result<Evaluation, TrainError> {
        let p = &self.cfg.pipeline;
        Ok(evaluate(
            net,
            split,
            &p.data.normalization,
            p.train.eval_batch_size,
            None,
            &self.eval_device,
        )?)
    }
}

/// Running sums of one epoch's mini-batches.
#[derive(Default)]
struct EpochSums {
    loss: f64,
    correct: usize,
    seen: usize,
}

/// Images and seconds of the mini-batch steps run by this process (resumed epochs excluded).
#[derive(Default)]
struct Throughput {
    images: usize,
    seconds: f64,
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
    let (setup, mut state) = prepare(cfg, inputs, checkpoint)?;
    let resumed_from_epoch = state.history.len();
    let t = &cfg.pipeline.train;
    let mut throughput = Throughput::default();
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
        state = run_epoch(&setup, state, epoch, &mut throughput, observer)?;
        if !observer.keep_going() {
            log::info!("stopped after epoch {epoch} on request");
            break;
        }
    }
    finish(&setup, state, &throughput, resumed_from_epoch, started)
}

/// Setup phase: checks the splits, picks the devices, seeds, and resumes or starts fresh.
fn prepare<'a>(
    cfg: &'a ResolvedConfig,
    inputs: &'a TrainInputs,
    checkpoint: Option<&'a Path>,
) -> Result<(Setup<'a>, State), TrainError> {
    check_inputs(cfg, inputs)?;
    let p = &cfg.pipeline;
    let spec = model_spec(cfg, &inputs.train);
    let device = backend_device(p.train.backend, true)?;
    let eval_device = backend_device(p.train.backend, false)?;
    device.seed(p.seed);
    let state = resume(cfg, &spec, &device, checkpoint)?;
    let setup = Setup {
        cfg,
        inputs,
        checkpoint,
        spec,
        device,
        eval_device,
    };
    Ok((setup, state))
}

/// One epoch: the mini-batch steps, validation, best-model bookkeeping and the checkpoint.
fn run_epoch(
    setup: &Setup<'_>,
    state: State,
    epoch: usize,
    throughput: &mut Throughput,
    observer: &mut dyn Observer,
) -> Result<State, TrainError> {
    let epoch_start = Instant::now();
    let lr = learning_rate(setup.cfg, epoch - 1);
    let (mut state, sums) = train_steps(setup, state, epoch, lr, observer)?;
    let train_time = epoch_start.elapsed().as_secs_f64();
    throughput.seconds += train_time;
    throughput.images += sums.seen;
    let valid = state.net.valid();
    let val = setup.evaluate(&valid, &setup.inputs.validation)?;
    let record = EpochRecord {
        epoch,
        train_loss: sums.loss / sums.seen.max(1) as f64,
        train_accuracy: 100.0 * sums.correct as f64 / sums.seen.max(1) as f64,
        val_accuracy: val.accuracy(),
        learning_rate: lr,
        seconds: epoch_start.elapsed().as_secs_f64(),
    };
    state.train_seconds += train_time;
    let improved = state
        .best
        .as_ref()
        .is_none_or(|(_, acc, _)| record.val_accuracy > *acc);
    let (current, ids) = snapshot(&valid, &setup.spec, setup.cfg)?;
    if improved {
        state.best = Some((epoch, record.val_accuracy, current.clone()));
    }
    observer.epoch_finished(&record, improved);
    state.history.push(record);
    write_checkpoint(setup, &mut state, current, ids)?;
    Ok(state)
}

/// The mini-batch steps of one epoch (shuffled order, augmentation, optimiser steps).
fn train_steps(
    setup: &Setup<'_>,
    mut state: State,
    epoch: usize,
    lr: f64,
    observer: &mut dyn Observer,
) -> Result<(State, EpochSums), TrainError> {
    let p = &setup.cfg.pipeline;
    let train = &setup.inputs.train;
    let batch_size = p.train.batch_size;
    let loss_fn = CrossEntropyLossConfig::new().init(&setup.device);
    let mut rng =
        ChaCha8Rng::seed_from_u64(p.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let order = privdnn_data::epoch_order(train.len(), epoch, p.seed);
    observer.epoch_started(epoch, p.train.epochs, train.len().div_ceil(batch_size));
    let mut sums = EpochSums::default();
    for (step, chunk) in order.chunks(batch_size).enumerate() {
        let (values, labels) = privdnn_data::make_batch(
            train,
            chunk,
            &p.data.normalization,
            Some((&p.data.augmentation, &mut rng)),
        );
        let x = batch_tensor(values, chunk.len(), train, &setup.device);
        let y = label_tensor(labels, &setup.device);
        let logits = state.net.forward(x);
        let hits = privdnn_model::correct_count(logits.clone(), y.clone());
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
        sums.loss += loss_value * chunk.len() as f64;
        sums.correct += hits as usize;
        sums.seen += chunk.len();
        observer.step(
            step + 1,
            sums.loss / sums.seen as f64,
            100.0 * sums.correct as f64 / sums.seen as f64,
        );
    }
    Ok((state, sums))
}

/// Rewrites the checkpoint (when configured and a best model exists): current and best weights,
/// history, parameter ids and the optimiser state.
fn write_checkpoint(
    setup: &Setup<'_>,
    state: &mut State,
    current: TrainedModel,
    param_ids: Vec<(String, u64)>,
) -> Result<(), TrainError> {
    let (Some(path), Some((best_epoch, _, best))) = (setup.checkpoint, &state.best) else {
        return Ok(());
    };
    let optimizer_state = state
        .optim
        .into_bytes()
        .map_err(|e| TrainError::Optimizer(format!("{e:?}")))?
        .to_vec();
    write_artifact(
        path,
        &TrainCheckpoint {
            config_hash: setup.cfg.stage_hash("train"),
            current,
            best: best.clone(),
            best_epoch: *best_epoch,
            history: state.history.clone(),
            param_ids,
            optimizer_state,
        },
    )?;
    Ok(())
}

/// Evaluation and outputs: the best-validation model on the validation and test splits, and the
/// metrics.
fn finish(
    setup: &Setup<'_>,
    state: State,
    throughput: &Throughput,
    resumed_from_epoch: usize,
    started: Instant,
) -> Result<TrainOutcome, TrainError> {
    let (best_epoch, _, model) = match state.best {
        Some(best) => best,
        None => {
            let (m, _) = snapshot(&state.net.valid(), &setup.spec, setup.cfg)?;
            (0, 0.0, m)
        }
    };
    let net = import_tensors(
        Network::new(&setup.spec, &setup.eval_device)?,
        &model.tensors,
        None,
    )?;
    let val = setup.evaluate(&net, &setup.inputs.validation)?;
    let test = setup.evaluate(&net, &setup.inputs.test)?;
    let (p, t, inputs) = (&setup.cfg.pipeline, &setup.cfg.pipeline.train, setup.inputs);
    let metrics = TrainMetrics {
        pipeline: p.name.clone(),
        profile: setup.cfg.profile.clone(),
        dataset: p.data.dataset.clone(),
        architecture: setup.spec.architecture.name().to_string(),
        width: setup.spec.width,
        parameters: model.tensors.iter().map(|t| t.values.len()).sum(),
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
        train_images_per_second: if throughput.seconds > 0.0 {
            throughput.images as f64 / throughput.seconds
        } else {
            0.0
        },
        resumed_from_epoch,
        history: state.history,
    };
    Ok(TrainOutcome { model, metrics })
}
