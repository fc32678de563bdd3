//! Command line of the infer stage: `privdnn-infer run --pipeline <name> [--profile p]`.
//! Reads the encrypt stage's files and the dataset cache; writes `results/<run>/infer/`
//! `metrics.json` (every mode's costs and accuracy) and `summary.md` (the same, for people).
//! With `he.full_block_images > 0` it also encrypts the 100 %-block baseline itself under
//! `results/<run>/infer/full-block/`. With `he.mode = "user-keyed"` the stage runs that mode
//! instead ([`crate::keyed`]).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use privdnn_artifacts::{
    NeuronSelection, RunLayout, TrainedModel, read_artifact, write_bytes_atomic, write_json_atomic,
};
use privdnn_config::{HeLayout, HeMode, PipelineArgs};
use privdnn_he::engine::Layout;
use privdnn_he::files::EncryptedModelFile;
use serde::Serialize;

use crate::harness::{HeRun, ModeReport, float_modes, run_he};

#[derive(Parser, Debug)]
#[command(
    name = "privdnn-infer",
    version,
    about = "Infer stage: encrypted inference and its cost report"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run every mode and write the report.
    Run(Common),
    /// HE kernel benchmark and the MNIST {"1":[0],"2":[0]} run (`cargo xtask bench he`).
    Bench {
        /// Project root.
        #[arg(long, default_value = ".")]
        root: PathBuf,
        /// Only the kernel comparisons.
        #[arg(long)]
        kernels_only: bool,
    },
    /// HE unit costs, block shape and memory plans of a pipeline as JSON on stdout
    /// (`cargo xtask estimate` reads them).
    Calibrate(crate::calibrate::CalibrateArgs),
}

/// Options shared by the commands.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Pipeline, profile and root.
    #[command(flatten)]
    pub target: PipelineArgs,
    /// Override `he.images`.
    #[arg(long)]
    pub images: Option<usize>,
    /// Use the encryption of `privdnn-encrypt run --variant <name>` and write beside it.
    #[arg(long)]
    pub variant: Option<String>,
}

/// The infer stage's `metrics.json`.
#[derive(Debug, Serialize)]
pub struct InferReport {
    /// Pipeline.
    pub pipeline: String,
    /// Profile.
    pub profile: String,
    /// Threads rayon used.
    pub threads: usize,
    /// Every mode.
    pub mode_reports: Vec<ModeReport>,
    /// Peak resident memory of the whole run.
    pub peak_rss_bytes: u64,
    /// Wall time of the stage.
    pub wall_s: f64,
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} outputs ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(what.to_string());
    bar
}

fn layout(l: HeLayout) -> Layout {
    match l {
        HeLayout::Batch => Layout::Batch,
        HeLayout::Spatial => Layout::Spatial,
    }
}

/// `run`.
pub fn run(common: &Common) -> Result<PathBuf> {
    let started = Instant::now();
    let cfg = common.target.load()?;
    let he = &cfg.pipeline.he;
    if he.mode == HeMode::UserKeyed {
        return crate::keyed::run_stage(common, &cfg, started);
    }
    let paths = RunLayout::new(cfg.results_dir(&common.target.root.join("results")))
        .with_variant(common.variant.as_deref());
    let out_dir = paths.infer_dir();
    let model: TrainedModel = read_artifact(&paths.trained_model())?;
    let enc: EncryptedModelFile = read_artifact(&paths.encrypted_model())?;
    let sel = enc.selection.clone();
    drop(enc);
    // Only the test split is evaluated: the training images (47 MB for MNIST, 120 MB for GTSRB)
    // are dropped before the modes run.
    let test = privdnn_data::load_splits(&common.target.root, &cfg.pipeline)?
        .0
        .test;
    let wanted = common.images.unwrap_or(he.images);
    let n = if wanted == 0 {
        test.len()
    } else {
        wanted.min(test.len())
    };
    let indices: Vec<usize> = (0..n).collect();
    let device = privdnn_model::backend_device(cfg.pipeline.train.backend, false)?;
    let norm = model.normalization.clone();
    log::info!(
        "infer {}: {} test images, selection {:?} / {:?}",
        cfg.pipeline.name,
        n,
        sel.layer1,
        sel.layer2
    );
    let main_layout = layout(he.layout);
    let pb = bar(0, "separate");
    let run = HeRun {
        mode: "separate",
        paths: &paths,
        layout: main_layout,
        headroom_bits: he.headroom_bits,
        latency: he.latency,
        memory_budget: (he.memory_budget_mb as u64) << 20,
        device: device.clone(),
    };
    let mut separate = run_he(&run, &test, &indices, &|n| pb.set_length(n), &|k| pb.inc(k))
        .context("separate mode")?;
    if let Ok(text) = std::fs::read_to_string(paths.encrypt_metrics()) {
        let secs = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("seconds")?.as_f64());
        if let Some(secs) = secs {
            separate
                .phases_s
                .insert("owner_keygen_encrypt".into(), secs);
        }
    }
    pb.finish_and_clear();
    let test_subset = test.subset(&indices, "test");
    let (plain, ev_s, removed) = float_modes(
        &model,
        &sel,
        &test_subset,
        &norm,
        cfg.pipeline.train.eval_batch_size,
        &device,
    )?;
    separate.float_accuracy = Some(ev_s.accuracy());
    let mut reports = vec![separate];
    if he.full_block_images > 0 {
        let all = NeuronSelection {
            layer1: (0..sel.channels[0]).collect(),
            layer2: (0..sel.channels[1]).collect(),
            channels: sel.channels,
            algorithm: "all".into(),
        };
        let fb_paths = RunLayout::new(out_dir.join("full-block"));
        let clock = Instant::now();
        // The owner packs the 100 % block in chunks small enough for the user's memory budget
        // (a packed chunk is expanded whole while filters stream), under `[he.full_block]`.
        let fb_he = he.full_block_config();
        let out = privdnn_partial::setup::encrypt(&model, &all, &fb_he)
            .context("encrypting the 100 % block")?;
        let setup_s = clock.elapsed().as_secs_f64();
        privdnn_partial::setup::write_outputs(&fb_paths, &out, None)?;
        let m = he.full_block_images.min(n);
        let pb = bar(0, "full-block");
        let fb_run = HeRun {
            mode: "full-block",
            paths: &fb_paths,
            layout: main_layout,
            headroom_bits: he.headroom_bits,
            latency: false,
            memory_budget: (he.memory_budget_mb as u64) << 20,
            device: device.clone(),
        };
        let mut full = run_he(&fb_run, &test, &indices[..m], &|n| pb.set_length(n), &|k| {
            pb.inc(k)
        })
        .context("full-block mode")?;
        pb.finish_and_clear();
        full.phases_s.insert("owner_keygen_encrypt".into(), setup_s);
        reports.push(full);
    }
    reports.push(removed);
    reports.push(plain);
    let report = InferReport {
        pipeline: cfg.pipeline.name.clone(),
        profile: cfg.profile.clone(),
        threads: rayon::current_num_threads(),
        mode_reports: reports,
        peak_rss_bytes: crate::harness::process_peak_rss(),
        wall_s: started.elapsed().as_secs_f64(),
    };
    let metrics = out_dir.join("metrics.json");
    write_json_atomic(&metrics, &report)?;
    let summary = summary(&report);
    write_bytes_atomic(&out_dir.join("summary.md"), summary.as_bytes())?;
    println!("{summary}");
    Ok(metrics)
}

fn mb(b: f64) -> String {
    format!("{:.2}", b / 1e6)
}

/// Human summary of a report (Markdown).
pub fn summary(r: &InferReport) -> String {
    let mut s = format!(
        "# Encrypted inference: {} ({})\n\n{} threads, peak memory {} MB, stage wall time {:.1} s.\n\n",
        r.pipeline,
        r.profile,
        r.threads,
        mb(r.peak_rss_bytes as f64),
        r.wall_s
    );
    s += "| mode | images | accuracy % | quantised % | float % | exact | per image s | latency s | model MB | keys MB | user→owner MB | owner→user MB | peak MB |\n";
    s += "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("–".to_string(), f);
    for m in &r.mode_reports {
        s += &format!(
            "| {} | {} | {:.2} | {} | {} | {} | {:.5} | {} | {} | {} | {} | {} | {} |\n",
            m.mode,
            m.images,
            m.accuracy,
            opt(m.quantised_accuracy, &|v| format!("{v:.2}")),
            opt(m.float_accuracy, &|v| format!("{v:.2}")),
            opt(m.exact_match_rate, &|v| format!("{:.2}%", 100.0 * v)),
            m.per_image_s,
            opt(m.latency_s, &|v| format!("{v:.2}")),
            mb(m.model_bytes as f64),
            mb(m.eval_key_bytes as f64),
            mb(m.bytes_user_to_owner as f64),
            mb(m.bytes_owner_to_user as f64),
            mb(m.peak_rss_bytes as f64),
        );
    }
    for m in r.mode_reports.iter().filter(|m| m.ops.is_some()) {
        s += &format!("\n## {} phases (s)\n\n", m.mode);
        for (k, v) in &m.phases_s {
            s += &format!("- {k}: {v:.2}\n");
        }
        if let (Some(r), Some(b)) = (m.residency, m.memory_budget_bytes) {
            let plan = m.planned_bytes.map_or(String::new(), |p| {
                let fits = if p <= b { "within" } else { "OVER" };
                format!(" (planned {} MB, {fits} the budget)", mb(p as f64))
            });
            s += &format!(
                "\nWeights held {r:?} under a {} MiB budget{plan}; this mode's own peak memory: {} MB.\n",
                b >> 20,
                m.mode_peak_rss_bytes
                    .map_or("unknown".to_string(), |p| mb(p as f64)),
            );
        }
        if let Some(o) = &m.ops {
            s += &format!(
                "\nHE operations: {} ct×pt, {} ct×ct, {} relinearisations, {} lifts, {} encodes, {} \
                 expansion key switches, {} modulus switches.\n",
                o.ct_pt_mul,
                o.ct_ct_mul,
                o.relins,
                o.lifts,
                o.encodes,
                o.expansion_key_switches,
                o.mod_switches
            );
        }
    }
    s
}

/// Entry point of the binary.
pub fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match Cli::parse_from(std::env::args_os()).command {
        Command::Run(common) => run(&common).map(|_| ()),
        Command::Bench { root, kernels_only } => crate::bench::run(&root, kernels_only),
        Command::Calibrate(args) => {
            let report = crate::calibrate::run_calibration(&args)?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
    }
}
