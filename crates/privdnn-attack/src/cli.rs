//! Command line of the attack stage. Reads a pipeline run's trained model, its default selection
//! (`select/selection.bin`, or chosen here with the pipeline's settings) and optional
//! `select/sweep.json`, and the dataset cache; writes `results/<run>/attack/metrics.json`
//! (re-running a subset of the experiments keeps the other keys) and the input-recovery
//! picture grids `attack/inversion_<case>.png`.
//!
//! `metrics.json` keys: `original` (A_o on the evaluation images), `recovery` (default
//! selection, `samples` attacker images: A_s, A_r, A_rec before / after both variants, A_t),
//! `from_scratch` ({samples, accuracy}), `sample_curve` (per sample count), `points` (per
//! selection percent), `extraction`, `extraction_protocol`, `inversion`, `key_recovery` /
//! `key_recovery_user_keyed`, `spnn_leakage` (also written alone as `attack/spnn_leakage.json`
//! with the grid `attack/spnn_leakage.png`), `settings`.
//!
//! `--only spnn_leakage` on its own needs no trained model of the pipeline: only the SPNN runs
//! of `cargo xtask baseline spnn <pipeline>` (`baselines/spnn/{spnn,spnn-noise}/`).
//!
//! The experiments' shared state is [`Stage`] (`stage.rs`); the recovery experiments are in
//! `recovery_runs.rs`, the selections they need in `selections.rs`.

use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};
use privdnn_config::ResolvedConfig;
use serde_json::{Value, json};

pub use crate::experiment::bar;
use crate::recover::accuracy;
pub use crate::stage::{Stage, load};

/// privdnn attack stage.
#[derive(Parser, Debug)]
#[command(name = "privdnn-attack", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the configured attack experiments of a pipeline.
    Run(RunArgs),
}

/// Which pipeline, and which experiments.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Pipeline, profile and root.
    #[command(flatten)]
    pub target: privdnn_config::PipelineArgs,
    /// Experiments to run (comma-separated: recover, samples, sweep, extract, extract_protocol,
    /// invert, key_recovery, spnn_leakage); default `attack.experiments`.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Override an `[attack]` setting with a JSON value, e.g. `--set extract_queries=[16,32]`
    /// (lists cannot come from `PRIVDNN_ATTACK__*` variables). Repeatable.
    #[arg(long = "set")]
    pub set: Vec<String>,
    /// Owner service attacked by `key_recovery` (default: one started here on loopback).
    #[arg(long)]
    pub server: Option<String>,
    /// Start over: by default a full run (no `--only`) whose inputs (attack config, trained
    /// model, selection) equal those of an interrupted earlier run skips the experiments that
    /// run finished and keeps the finished points of `samples` and `sweep`.
    #[arg(long)]
    pub fresh: bool,
    /// Encryption variant whose owner service `key_recovery` starts and scores against (e.g.
    /// `user-keyed`, with `PRIVDNN_HE__MODE=user-keyed`); default: the run's own files.
    #[arg(long)]
    pub variant: Option<String>,
}

pub(crate) fn apply_overrides(cfg: &mut ResolvedConfig, sets: &[String]) -> Result<()> {
    if sets.is_empty() {
        return Ok(());
    }
    let mut value = serde_json::to_value(&cfg.pipeline.attack)?;
    for s in sets {
        let (key, raw) = s
            .split_once('=')
            .with_context(|| format!("`--set {s}`: expected KEY=VALUE"))?;
        let v = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
        let obj = value
            .as_object_mut()
            .context("attack settings are not an object")?;
        if !obj.contains_key(key) {
            bail!("`--set {s}`: no setting `attack.{key}`");
        }
        obj.insert(key.to_string(), v);
    }
    cfg.pipeline.attack =
        serde_json::from_value(value).context("`--set`: value of the wrong type")?;
    Ok(())
}

const EXPERIMENTS: [&str; 8] = [
    "recover",
    "samples",
    "sweep",
    "extract",
    "extract_protocol",
    "invert",
    "key_recovery",
    "spnn_leakage",
];

/// Fails on a name that is no experiment of the stage.
fn check_names(experiments: &[String]) -> Result<()> {
    if let Some(bad) = experiments
        .iter()
        .find(|e| !EXPERIMENTS.contains(&e.as_str()))
    {
        bail!(
            "unknown attack experiment `{bad}`; available: {}",
            EXPERIMENTS.join(", ")
        );
    }
    Ok(())
}

/// `run`.
pub fn run(args: &RunArgs) -> Result<()> {
    let started = Instant::now();
    check_names(&args.only)?;
    if !args.only.is_empty() && args.only.iter().all(|e| e == "spnn_leakage") {
        return crate::stage::run_spnn_leakage_alone(args);
    }
    let mut stage = load(args)?;
    let experiments = if args.only.is_empty() {
        stage.cfg.pipeline.attack.experiments.clone()
    } else {
        args.only.clone()
    };
    check_names(&experiments)?;
    let same_inputs = stage.prior_resume_key.as_deref() == Some(stage.resume_key.as_str());
    stage.resume = same_inputs && args.only.is_empty() && !args.fresh;
    if !same_inputs || (args.fresh && args.only.is_empty()) {
        // earlier completion marks belong to other inputs
        stage.metrics.remove("seconds");
        stage.put("seconds", json!({}))?;
    }
    let finished = stage.finished_experiments();
    let original = accuracy(
        &stage.model,
        &stage.eval,
        stage.training.eval_batch_size,
        &stage.devices.eval,
    )?;
    log::info!(
        "A_o {original:.2} % on {} test images; default selection {}",
        stage.eval.len(),
        stage.selection.to_reference_json()
    );
    stage.put("pipeline", json!(stage.cfg.pipeline.name))?;
    stage.put("profile", json!(stage.cfg.profile))?;
    stage.put("architecture", json!(stage.model.spec.architecture.name()))?;
    stage.put("original", json!(original))?;
    stage.put("eval_images", json!(stage.eval.len()))?;
    stage.put(
        "settings",
        serde_json::to_value(&stage.cfg.pipeline.attack)?,
    )?;
    stage.put("config_hash", json!(stage.cfg.stage_hash("attack")))?;
    stage.put("resume_key", json!(stage.resume_key))?;
    for e in &experiments {
        if finished.contains(e) {
            log::info!(
                "{e}: finished by an earlier run with the same inputs (skipped; `--fresh` reruns)"
            );
            continue;
        }
        let clock = Instant::now();
        match e.as_str() {
            "recover" => stage.run_recover()?,
            "samples" => stage.run_samples()?,
            "sweep" => stage.run_sweep()?,
            "extract" => stage.run_extract()?,
            "extract_protocol" => stage.run_extract_protocol()?,
            "invert" => stage.run_invert()?,
            "spnn_leakage" => stage.run_spnn_leakage()?,
            "key_recovery" => {
                let (key, record) = crate::key_recovery::run_experiment(
                    &stage,
                    &args.target,
                    args.server.as_deref(),
                    args.variant.as_deref(),
                )?;
                stage.put(key, record)?
            }
            _ => {}
        }
        let secs = clock.elapsed().as_secs_f64();
        log::info!("{e}: {secs:.1}s");
        let mut timing = stage
            .metrics
            .get("seconds")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        timing.insert(e.clone(), json!(secs));
        stage.put("seconds", Value::Object(timing))?;
    }
    log::info!(
        "attack stage done in {:.1}s: {}",
        started.elapsed().as_secs_f64(),
        stage.out.join("metrics.json").display()
    );
    Ok(())
}

/// Entry point of the `privdnn-attack` binary.
pub fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match Cli::parse().command {
        Command::Run(a) => run(&a),
    }
}
