//! `privdnn-train calibrate`: the unit costs `cargo xtask estimate` predicts the train and select
//! stages from, measured on this machine with the pipeline's own model, batch sizes and data:
//! images/s of the real training loop (`privdnn_training::run` on a few batches), of evaluation,
//! and of the selection evaluator's candidate scorings (two candidates per core in parallel, as
//! the greedy search does), plus the resident memory of the loaded splits, of the training loop
//! and of the evaluator's caches. Prints one JSON object ([`TrainCalibration`]) on stdout.

use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use privdnn_artifacts::{DatasetSplit, TrainedModel, process_cpu_seconds};
use privdnn_config::ResolvedConfig;
use privdnn_model::partition::evaluator::Evaluator;
use privdnn_model::{Network, backend_device, evaluate, export_tensors};
use privdnn_training::{QuietObserver, TrainInputs, run};
use serde::Serialize;

/// Options of `privdnn-train calibrate`.
#[derive(Args, Debug, Clone)]
pub struct CalibrateArgs {
    /// Pipeline, profile and root.
    #[command(flatten)]
    pub target: privdnn_config::PipelineArgs,
    /// Seconds aimed at per timed measurement (training, evaluation, selection).
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
    /// Measure only `train` (training, evaluation, their peak memory) or only `select` (the
    /// evaluator's costs and memory); each part is cleanest in a fresh process, because freed
    /// memory that the allocator keeps hides the next part's growth. Default: both.
    #[arg(long)]
    pub part: Option<String>,
}

/// Unit costs of the selection evaluator, per image of the scored split, as (wall, CPU)
/// seconds.
#[derive(Debug, Default, Serialize)]
pub struct SelectUnits {
    /// Images the evaluator was built on.
    pub images: usize,
    /// Caching layers 1–2 (with the base tail pass), per image.
    pub cache_s: [f64; 2],
    /// One candidate of a greedy layer-1 step (layer-1 cache + A_r) per image, candidates run in
    /// parallel as the search runs them.
    pub layer1_candidate_s: [f64; 2],
    /// One candidate of a greedy layer-2 step (A_s + A_r) per image, in parallel.
    pub layer2_candidate_s: [f64; 2],
    /// Resident bytes per image of the evaluator's cache.
    pub evaluator_bytes_per_image: f64,
    /// Resident bytes per image of one layer-1 cache.
    pub layer1_cache_bytes_per_image: f64,
}

/// What `calibrate` measured. Times are (wall, CPU) seconds; CPU counts every thread, so
/// CPU / wall is the parallelism the machine gave the measurement.
#[derive(Debug, Serialize)]
pub struct TrainCalibration {
    /// Architecture name.
    pub architecture: String,
    /// Cores available to this process.
    pub threads: usize,
    /// 1-minute load average when the calibration started.
    pub load_average: f64,
    /// Images of the train / validation / test splits.
    pub split_sizes: [usize; 3],
    /// Bytes per image.
    pub image_len: usize,
    /// conv1 / conv2 filters.
    pub channels: [usize; 2],
    /// Scalar parameters of the model.
    pub parameters: usize,
    /// Loading the three splits from the cache.
    pub data_load_s: [f64; 2],
    /// Resident bytes once the splits are loaded.
    pub data_rss_bytes: u64,
    /// One training image of the real loop at `train.batch_size` (augmentation, step).
    pub train_s_per_image: [f64; 2],
    /// One evaluated image at `train.eval_batch_size`.
    pub eval_s_per_image: [f64; 2],
    /// Peak resident bytes after training and evaluation (splits included).
    pub train_peak_rss_bytes: u64,
    /// Selection evaluator unit costs.
    pub select: SelectUnits,
    /// Wall seconds of the calibration.
    pub seconds: f64,
}

/// 1-minute load average (0 where unknown).
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Current resident bytes of this process (`VmRSS`; 0 where unknown).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?.to_string();
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

fn first(split: &DatasetSplit, n: usize, name: &str) -> DatasetSplit {
    let idx: Vec<usize> = (0..n.clamp(1, split.len())).collect();
    split.subset(&idx, name)
}

/// (wall, CPU) seconds of `f`; CPU is the process's, all threads.
fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, [f64; 2])> {
    let (clock, cpu) = (Instant::now(), process_cpu_seconds());
    let out = f()?;
    Ok((
        out,
        [clock.elapsed().as_secs_f64(), process_cpu_seconds() - cpu],
    ))
}

/// (wall, CPU) seconds of one epoch of the real training loop on `n` training images (small
/// evaluation splits).
fn train_cost(cfg: &ResolvedConfig, inputs: &TrainInputs, n: usize) -> Result<[f64; 2]> {
    let mut short = cfg.clone();
    short.pipeline.train.epochs = 1;
    short.pipeline.train.patience = 0;
    let eval = cfg.pipeline.train.eval_batch_size.min(256);
    let small = TrainInputs {
        train: first(&inputs.train, n, "train"),
        validation: first(&inputs.validation, eval, "validation"),
        test: first(&inputs.test, eval, "test"),
    };
    Ok(timed(|| Ok(run(&short, &small, None, &mut QuietObserver)?))?.1)
}

/// Per training image (wall, CPU) seconds: the difference between an epoch of about `seconds`
/// and one of two batches, so that set-up and evaluation cancel out.
fn train_units(cfg: &ResolvedConfig, inputs: &TrainInputs, seconds: f64) -> Result<[f64; 2]> {
    let batch = cfg.pipeline.train.batch_size;
    let n0 = (2 * batch).min(inputs.train.len());
    let base = train_cost(cfg, inputs, n0)?;
    let rough = n0 as f64 / base[0].max(1e-9);
    let n = ((rough * seconds) as usize)
        .div_ceil(batch)
        .saturating_mul(batch)
        .clamp(4 * batch, inputs.train.len().max(n0 + 1));
    let long = train_cost(cfg, inputs, n)?;
    let per = |i: usize| ((long[i] - base[i]) / (n - n0) as f64).max(long[i] / n as f64 / 4.0);
    Ok([per(0), per(1)])
}

/// A randomly initialised model of the pipeline's shape (costs do not depend on the weights).
fn random_model(cfg: &ResolvedConfig, train: &DatasetSplit) -> Result<TrainedModel> {
    let spec = privdnn_training::model_spec(cfg, train);
    let device = backend_device(cfg.pipeline.train.backend, false)?;
    let (tensors, _) = export_tensors(&Network::new(&spec, &device)?)?;
    Ok(TrainedModel {
        dataset: cfg.pipeline.data.dataset.clone(),
        spec,
        normalization: cfg.pipeline.data.normalization.clone(),
        tensors,
    })
}

/// (wall, CPU) seconds of `f` over `jobs`, split across `threads` scoped threads.
fn parallel(jobs: &[usize], threads: usize, f: &(dyn Fn(usize) + Sync)) -> [f64; 2] {
    let (clock, cpu) = (Instant::now(), process_cpu_seconds());
    std::thread::scope(|s| {
        for part in jobs.chunks(jobs.len().div_ceil(threads.max(1)).max(1)) {
            s.spawn(move || part.iter().for_each(|&j| f(j)));
        }
    });
    [clock.elapsed().as_secs_f64(), process_cpu_seconds() - cpu]
}

/// The evaluator's unit costs on (at most) `n` validation images.
fn select_units(
    cfg: &ResolvedConfig,
    model: &TrainedModel,
    validation: &DatasetSplit,
    n: usize,
    threads: usize,
) -> Result<SelectUnits> {
    let device = backend_device(cfg.pipeline.train.backend, false)?;
    let split = first(validation, n, "validation");
    let images = split.len() as f64;
    let rss0 = rss_bytes();
    let batch = cfg.pipeline.train.eval_batch_size;
    let (ev, cache) = timed(|| Ok(Evaluator::new(model, &split, batch, &device)?))?;
    let evaluator_bytes = rss_bytes().saturating_sub(rss0) as f64;
    let [c1, c2] = ev.channels();
    // resident-size deltas miss memory the allocator reuses: the tensors' own sizes bound them
    let shapes = ev.bytes_per_image();
    let held = ev.layer1(&[0]);
    let cache_bytes = rss_bytes().saturating_sub(rss0) as f64 - evaluator_bytes;
    let jobs1: Vec<usize> = (0..c1.min(2 * threads)).collect();
    privdnn_artifacts::reset_peak_rss();
    let l1 = parallel(&jobs1, threads, &|c| {
        std::hint::black_box(ev.removed(&ev.layer1(&[c]), &[]));
    });
    // the parallel step holds one layer-1 cache per thread besides `held`
    let step_bytes = privdnn_artifacts::peak_rss_bytes().saturating_sub(rss0) as f64
        - evaluator_bytes
        - cache_bytes;
    let cache_bytes = cache_bytes.max(step_bytes / threads as f64);
    let jobs2: Vec<usize> = (0..c2.min(2 * threads)).collect();
    let l2 = parallel(&jobs2, threads, &|j| {
        std::hint::black_box(ev.scores(&held, &[j]));
    });
    ev.check()?;
    let per = |t: [f64; 2], k: usize| t.map(|v| v / (k as f64 * images));
    Ok(SelectUnits {
        images: split.len(),
        cache_s: per(cache, 1),
        layer1_candidate_s: per(l1, jobs1.len()),
        layer2_candidate_s: per(l2, jobs2.len()),
        evaluator_bytes_per_image: (evaluator_bytes / images).max(shapes[0] as f64),
        layer1_cache_bytes_per_image: (cache_bytes / images).max(shapes[1] as f64),
    })
}

/// Per image (wall, CPU) seconds of evaluation at the pipeline's evaluation batch.
fn eval_units(
    cfg: &ResolvedConfig,
    model: &TrainedModel,
    split: &DatasetSplit,
) -> Result<[f64; 2]> {
    let device = backend_device(cfg.pipeline.train.backend, false)?;
    let net = privdnn_model::partition::network(model, &device)?;
    let norm = &cfg.pipeline.data.normalization;
    let batch = cfg.pipeline.train.eval_batch_size;
    evaluate(
        &net,
        &first(split, batch, "warm-up"),
        norm,
        batch,
        None,
        &device,
    )?;
    let (_, t) = timed(|| Ok(evaluate(&net, split, norm, batch, None, &device)?))?;
    Ok(t.map(|v| v / split.len() as f64))
}

/// Runs the calibration of `args`' pipeline.
pub fn run_calibration(args: &CalibrateArgs) -> Result<TrainCalibration> {
    let started = Instant::now();
    let load = load_average();
    let cfg = args.target.load()?;
    let (inputs, data_load_s) = timed(|| {
        Ok(privdnn_data::load_splits(&args.target.root, &cfg.pipeline)
            .context("loading the dataset cache (run `cargo xtask data` first)")?
            .0)
    })?;
    let data_rss_bytes = rss_bytes();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let part = args.part.as_deref().unwrap_or("all");
    if !["all", "train", "select"].contains(&part) {
        anyhow::bail!("--part {part}: use `train` or `select`");
    }
    let model = random_model(&cfg, &inputs.train)?;
    let probe = eval_units(&cfg, &model, &first(&inputs.validation, 256, "probe"))?;
    // selection first, while freed memory cannot hide the caches' growth
    let sel_images = ((args.seconds / 8.0 / probe[0].max(1e-9)) as usize).clamp(100, 1000);
    let select = match part {
        "train" => SelectUnits::default(),
        _ => select_units(&cfg, &model, &inputs.validation, sel_images, threads)?,
    };
    privdnn_artifacts::reset_peak_rss();
    let (mut train_s_per_image, mut eval_s_per_image) = ([0.0; 2], [0.0; 2]);
    if part != "select" {
        train_s_per_image = train_units(&cfg, &inputs, args.seconds)?;
        let m = ((args.seconds / probe[0].max(1e-9)) as usize).clamp(256, inputs.validation.len());
        eval_s_per_image = eval_units(&cfg, &model, &first(&inputs.validation, m, "eval"))?;
    }
    let train_peak_rss_bytes = privdnn_artifacts::peak_rss_bytes();
    Ok(TrainCalibration {
        architecture: cfg.pipeline.model.architecture.name().to_string(),
        threads,
        load_average: load,
        split_sizes: [
            inputs.train.len(),
            inputs.validation.len(),
            inputs.test.len(),
        ],
        image_len: inputs.train.image_len(),
        channels: privdnn_model::partition::channels(&model)?,
        parameters: model.tensors.iter().map(|t| t.values.len()).sum(),
        data_load_s,
        data_rss_bytes,
        train_s_per_image,
        eval_s_per_image,
        train_peak_rss_bytes,
        select,
        seconds: started.elapsed().as_secs_f64(),
    })
}
