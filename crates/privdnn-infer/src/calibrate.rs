//! `privdnn-infer calibrate`: what `cargo xtask estimate` predicts the encrypt and infer stages
//! from, as one JSON object on stdout ([`HeCalibration`]): the HE unit costs measured on this
//! machine (`privdnn_he::bench_kernels`, one thread each), the block's shape for the pipeline's
//! model (from a randomly initialised model of the configured architecture and width), and the
//! user's memory plan for the configured selection and for the 100 % block, made by the HE
//! engine's own planner (`privdnn_he::engine::weights`).

use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use privdnn_artifacts::{ModelSpec, TrainedModel};
use privdnn_config::{HeConfig, HeLayout, ResolvedConfig};
use privdnn_he::bench_kernels::{UnitCosts, kernels};
use privdnn_he::block::{BlockShape, float_block};
use privdnn_he::engine::weights::{Selection, Sizes, plan_residency, weight_bytes, working_set};
use privdnn_he::engine::{Layout, Residency, max_terms};
use privdnn_he::params::HeParams;
use privdnn_model::{Network, backend_device, export_tensors};
use serde::Serialize;

/// Options of `privdnn-infer calibrate`.
#[derive(Args, Debug, Clone)]
pub struct CalibrateArgs {
    /// Pipeline, profile and root.
    #[command(flatten)]
    pub target: privdnn_config::PipelineArgs,
    /// Skip the kernel timings (shape and memory plans only).
    #[arg(long)]
    pub no_kernels: bool,
}

/// The user's memory plan for one selection.
#[derive(Debug, Serialize)]
pub struct MemoryPlan {
    /// Selected layer-1 channels.
    pub s1: usize,
    /// Selected layer-2 filters.
    pub s2: usize,
    /// Weights per packed ciphertext.
    pub chunk: usize,
    /// Residency the planner picks within the budget.
    pub residency: Residency,
    /// Bytes of the weights in that residency (all residues).
    pub weight_bytes: u64,
    /// Bytes of one call's working set in the configured layout.
    pub working_set_bytes: u64,
}

/// What `calibrate` reports.
#[derive(Debug, Serialize)]
pub struct HeCalibration {
    /// Unit costs, ms on one thread (None with `--no-kernels`).
    pub units: Option<UnitCosts>,
    /// One ct×pt product inside a dot product, ms (36-term dot product / 36).
    pub ct_pt_ms: Option<f64>,
    /// One SIMD encoding of N values, ms.
    pub encode_ms: Option<f64>,
    /// Process CPU seconds per wall second while the kernels ran on one thread (below 1 when
    /// other processes took the core): unit costs × this = CPU cost.
    pub cpu_fraction: f64,
    /// Speed-up of independent squares (the engine's dominant, memory-bound kernel) spread over
    /// every core now with rayon, as the engine runs them, against one thread: the parallelism
    /// the evaluation can expect at this load.
    pub parallel_speedup: f64,
    /// Resident bytes of this process with fhe's tables and a model built (no data, no keys).
    pub baseline_rss_bytes: u64,
    /// Bytes of a level-0 ciphertext, a lifted one and a plaintext.
    pub sizes: [u64; 3],
    /// The block's shape.
    pub shape: BlockShape,
    /// Plan of the configured selection (`select` sizes, or `he.selection`).
    pub selected: MemoryPlan,
    /// Plan of the 100 % block (`he.full_block_images`) under `he.full_block_config()`.
    pub full_block: MemoryPlan,
    /// Wall seconds of the calibration.
    pub seconds: f64,
}

/// The block shape of the pipeline's model (weights do not matter; the head has 10 classes).
fn block_shape(cfg: &ResolvedConfig) -> Result<BlockShape> {
    let p = &cfg.pipeline;
    let spec = ModelSpec {
        architecture: p.model.architecture,
        in_channels: p.in_channels(),
        image_size: p.data.image_size,
        num_classes: 10,
        lenet_filters: p.model.lenet_filters,
        width: p.model.width,
    };
    let device = backend_device(p.train.backend, false)?;
    let (tensors, _) = export_tensors(&Network::new(&spec, &device)?)?;
    let model = TrainedModel {
        dataset: p.data.dataset.clone(),
        spec,
        normalization: p.data.normalization.clone(),
        tensors,
    };
    Ok(float_block(&model)?.shape)
}

/// (|S1|, |S2|) the encrypt stage will use: `he.selection` when set, else the select sizes.
pub fn selected_sizes(cfg: &ResolvedConfig, channels: [usize; 2]) -> [usize; 2] {
    match &cfg.pipeline.he.selection {
        Some(map) => ["1", "2"].map(|k| map.get(k).map_or(0, Vec::len)),
        None => cfg.pipeline.select.sizes(channels),
    }
}

/// The memory plan of a selection of `[s1, s2]` filters under `he`'s parameters and chunk.
fn plan(he: &HeConfig, shape: &BlockShape, [s1, s2]: [usize; 2]) -> Result<(MemoryPlan, Sizes)> {
    let chunk = he.max_chunk;
    let par = HeParams::generate(he.degree, &he.moduli_bits, he.plaintext_bits)?.build()?;
    let extended = privdnn_he::lazy::extended_moduli(&par, max_terms(shape, s1));
    let sizes = Sizes::new(&par, extended);
    let layout = match he.layout {
        HeLayout::Batch => Layout::Batch,
        HeLayout::Spatial => Layout::Spatial,
    };
    let sel = Selection {
        shape,
        s1,
        s2,
        chunk,
    };
    let residues = he.crt_moduli as u64;
    let budget = (he.memory_budget_mb as u64) << 20;
    let residency = plan_residency(&sel, &sizes, residues, budget, Some(layout));
    let memory = MemoryPlan {
        s1,
        s2,
        chunk,
        residency,
        weight_bytes: weight_bytes(&sel, &sizes, residues, residency),
        working_set_bytes: working_set(&sel, &sizes, layout),
    };
    Ok((memory, sizes))
}

/// One SIMD encoding of N random values at the pipeline's parameters, ms.
fn encode_ms(cfg: &ResolvedConfig) -> Result<f64> {
    let he = &cfg.pipeline.he;
    let par = HeParams::generate(he.degree, &he.moduli_bits, he.plaintext_bits)?.build()?;
    let values: Vec<i64> = (0..he.degree as i64)
        .map(|i| (i * 7919) % 2001 - 1000)
        .collect();
    let reps = 20;
    let clock = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(privdnn_he::ops::encode_simd(&values, &par)?);
    }
    Ok(clock.elapsed().as_secs_f64() * 1e3 / reps as f64)
}

/// Runs the calibration of `args`' pipeline.
pub fn run_calibration(args: &CalibrateArgs) -> Result<HeCalibration> {
    let started = Instant::now();
    let cfg = args.target.load()?;
    let shape = block_shape(&cfg).context("building the pipeline's block shape")?;
    let he = &cfg.pipeline.he;
    let sizes = selected_sizes(&cfg, [shape.c1, shape.c2]);
    let (selected, s) = plan(he, &shape, sizes)?;
    let (full_block, _) = plan(&he.full_block_config(), &shape, [shape.c1, shape.c2])?;
    let baseline_rss_bytes = privdnn_artifacts::peak_rss_bytes();
    let (clock, cpu) = (Instant::now(), privdnn_artifacts::process_cpu_seconds());
    let parallel_speedup = privdnn_he::bench_kernels::parallel_speedup()?;
    let (units, ct_pt_ms, encode_ms) = if args.no_kernels {
        (None, None, None)
    } else {
        let (comparisons, _, units) = kernels()?;
        let ct_pt = comparisons
            .iter()
            .find(|c| c.kernel.starts_with("36-term ct×pt"))
            .map(|c| c.ours_ms / 36.0);
        (Some(units), ct_pt, Some(encode_ms(&cfg)?))
    };
    let cpu_fraction =
        (privdnn_artifacts::process_cpu_seconds() - cpu) / clock.elapsed().as_secs_f64().max(1e-9);
    Ok(HeCalibration {
        units,
        ct_pt_ms,
        encode_ms,
        cpu_fraction: cpu_fraction.clamp(0.05, 1.0),
        parallel_speedup,
        baseline_rss_bytes,
        sizes: [s.ciphertext, s.lifted, s.plaintext],
        shape,
        selected,
        full_block,
        seconds: started.elapsed().as_secs_f64(),
    })
}
