//! Command line of the training stage: reads the pipeline config and the dataset cache, trains
//! with progress bars, and writes `results/<run>/train/{model.bin, metrics.json, checkpoint.bin}`
//! plus manifests and the resolved config. Never writes outside the run's results folder.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use privdnn_artifacts::{
    EpochRecord, Manifest, RunLayout, TrainedModel, write_artifact, write_json_atomic,
};
use privdnn_config::ResolvedConfig;

use privdnn_training::{Observer, TrainInputs, run};

/// privdnn training stage.
#[derive(Parser, Debug)]
#[command(name = "privdnn-train", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a pipeline's model.
    Run(RunArgs),
    /// Measure training images/s of every model on every compiled-in backend.
    Bench(crate::bench::BenchArgs),
    /// Unit costs of this pipeline's training and selection on this machine, as JSON on stdout
    /// (`cargo xtask estimate` reads them).
    Calibrate(crate::calibrate::CalibrateArgs),
}

/// Which pipeline to run, and where.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Pipeline, profile and root.
    #[command(flatten)]
    pub target: privdnn_config::PipelineArgs,
    /// Ignore an existing checkpoint and start from scratch.
    #[arg(long)]
    pub fresh: bool,
}

/// Loads (or synthesises) the train / validation / test splits of a pipeline.
pub fn load_inputs(root: &Path, cfg: &ResolvedConfig) -> Result<(TrainInputs, Vec<PathBuf>)> {
    Ok(privdnn_data::load_splits(root, &cfg.pipeline)?)
}

struct Bars {
    bar: Option<ProgressBar>,
}

impl Observer for Bars {
    fn epoch_started(&mut self, epoch: usize, epochs: usize, steps: usize) {
        let bar = ProgressBar::new(steps as u64);
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{epoch}/{epochs}"));
        self.bar = Some(bar);
    }

    fn step(&mut self, step: usize, loss: f64, accuracy: f64) {
        if let Some(bar) = &self.bar {
            bar.set_position(step as u64);
            if step.is_multiple_of(10) {
                bar.set_message(format!("loss {loss:.4} acc {accuracy:.2}%"));
            }
        }
    }

    fn epoch_finished(&mut self, r: &EpochRecord, best: bool) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        log::info!(
            "epoch {:>3}: loss {:.4}  train {:.2}%  val {:.2}%{}  lr {:.2e}  {:.1}s",
            r.epoch,
            r.train_loss,
            r.train_accuracy,
            r.val_accuracy,
            if best { " (best)" } else { "" },
            r.learning_rate,
            r.seconds
        );
    }
}

/// Runs the training stage for `args` and writes its results.
pub fn run_stage(args: &RunArgs) -> Result<PathBuf> {
    let cfg = args.target.load()?;
    let layout = RunLayout::new(cfg.results_dir(&args.target.root.join("results")));
    let out = layout.stage_dir("train");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    privdnn_artifacts::write_bytes_atomic(&layout.config_toml(), cfg.to_toml().as_bytes())?;
    let (inputs, input_files) = load_inputs(&args.target.root, &cfg)?;
    log::info!(
        "training {} ({}, profile {}): {} train / {} validation / {} test images",
        cfg.pipeline.name,
        cfg.pipeline.model.architecture.name(),
        cfg.profile,
        inputs.train.len(),
        inputs.validation.len(),
        inputs.test.len()
    );
    let checkpoint = layout.train_checkpoint();
    if args.fresh && checkpoint.exists() {
        log::info!("--fresh: ignoring {}", checkpoint.display());
        std::fs::remove_file(&checkpoint)
            .with_context(|| format!("removing {}", checkpoint.display()))?;
    }
    let outcome = run(&cfg, &inputs, Some(&checkpoint), &mut Bars { bar: None })?;
    let model_path = layout.trained_model();
    write_artifact(&model_path, &outcome.model)?;
    let inputs_ref: Vec<&Path> = input_files.iter().map(PathBuf::as_path).collect();
    Manifest::for_artifact(
        <TrainedModel as privdnn_artifacts::Artifact>::KIND,
        <TrainedModel as privdnn_artifacts::Artifact>::SCHEMA_VERSION,
        concat!("privdnn-train ", env!("CARGO_PKG_VERSION")),
        &model_path,
        &cfg.stage_hash("train"),
        &inputs_ref,
        outcome.metrics.seconds,
    )?
    .write_beside(&model_path)?;
    write_json_atomic(&layout.train_metrics(), &outcome.metrics)?;
    let m = &outcome.metrics;
    println!(
        "{}: test accuracy {:.2}% (top-5 {:.2}%), validation {:.2}%, best epoch {}/{}, {:.0} s, {:.0} images/s",
        cfg.pipeline.name,
        m.test_accuracy,
        m.test_top5_accuracy,
        m.validation_accuracy,
        m.best_epoch,
        m.epochs_run,
        m.seconds,
        m.train_images_per_second
    );
    Ok(model_path)
}

/// Entry point of the `privdnn-train` binary.
pub fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run_stage(&args).map(|_| ()),
        Command::Bench(args) => {
            print!("{}", crate::bench::run(&args)?);
            Ok(())
        }
        Command::Calibrate(args) => {
            let report = crate::calibrate::run_calibration(&args)?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
    }
}
