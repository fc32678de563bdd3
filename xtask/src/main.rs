//! `cargo xtask`: the orchestrator. Prepares datasets, runs pipeline stages in order (each stage
//! is its own binary, run through cargo so it is always up to date), skips stages whose manifest
//! says they are current, and runs benchmarks. It never trains or encrypts in-process and never
//! deletes results.

mod baseline;
mod baseline_spnn;
mod estimate;
mod estimate_compare;
mod estimate_model;
mod estimate_stages;
mod fuzz;
mod party;
mod rules;
mod stages;
mod tables;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

/// privdnn task runner.
#[derive(Parser, Debug)]
#[command(name = "cargo xtask", about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Convert datasets from a source folder into the cache under data/ (checksums verified).
    Data {
        /// Datasets to prepare (default: every dataset the shipped pipelines use that is present).
        datasets: Vec<String>,
        /// Folder holding the original files (default: each pipeline's `data.source`).
        #[arg(long)]
        source: Option<PathBuf>,
        /// Image side to cache at (default: the native size, and 64 for cifar10 too).
        #[arg(long)]
        size: Option<usize>,
        /// Skip the SHA-256 check of known source files.
        #[arg(long)]
        no_verify: bool,
    },
    /// Run a pipeline's stages in order: data, train, select, encrypt, infer.
    Pipeline {
        /// Pipeline name (pipelines/<name>.toml).
        name: String,
        /// Config profile, e.g. `quick`.
        #[arg(long)]
        profile: Option<String>,
        /// Run only this stage.
        #[arg(long)]
        only: Option<String>,
        /// Run this stage and the ones after it.
        #[arg(long)]
        from: Option<String>,
        /// Re-run stages even when their outputs are up to date.
        #[arg(long)]
        force: bool,
    },
    /// Selection experiments: `sweep` (percent points or every group × algorithm),
    /// `exhaustive` (ground truth + ranks, LeNet5), `evaluate FILE` (A_s / A_r of a selection).
    Select {
        /// `sweep`, `exhaustive` or `evaluate`.
        what: String,
        /// Pipeline name.
        pipeline: String,
        /// Config profile.
        #[arg(long)]
        profile: Option<String>,
        /// Selection file for `evaluate` (reference JSON).
        #[arg(long)]
        selection: Option<String>,
        /// Override `select.algorithm`.
        #[arg(long)]
        algorithm: Option<String>,
        /// `exhaustive`: the split to select and rank on (`validation`, the default, or `test`,
        /// the reference's setting).
        #[arg(long)]
        split: Option<String>,
    },
    /// HE time with 100 % of layers 1–2 encrypted, for models whose infer stage skips that
    /// block (the 32-pixel ones): encrypts a `full-block` variant and runs the infer stage on a
    /// few test images with the 100 %-block mode → results/<run>/variants/full-block/infer/.
    FullBlock {
        /// Pipeline name.
        pipeline: String,
        /// Config profile, e.g. `quick`.
        #[arg(long)]
        profile: Option<String>,
        /// Test images of both HE modes.
        #[arg(long, default_value_t = 16)]
        images: usize,
    },
    /// Benchmarks: `train` (images/s per model and CPU backend), `he` (HE kernels against fhe's
    /// own operations, then the MNIST {"1":[0],"2":[0]} encrypted run on 5,000 images).
    Bench {
        /// Which benchmark.
        what: String,
        /// Extra arguments passed to the benchmark binary.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Regenerate every table (results/tables/, Markdown + CSV) and figure (results/figures/,
    /// SVG + PNG) from results/ with privdnn-analyze, which builds neither burn nor fhe.
    Tables {
        /// Extra arguments for privdnn-analyze, e.g. `--publish docs/results`, `--no-figures`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Start the owner service of a pipeline run over TCP (`privdnn-party serve`). In
    /// owner-keyed mode it decrypts for anyone who can connect, and one crafted request returns
    /// its secret key: read README.md "Threat model" before listening beyond loopback.
    Serve {
        /// Pipeline name.
        pipeline: String,
        /// Extra arguments for `privdnn-party serve`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run the user client against an owner (`privdnn-party client`): IMAGES is a number (first
    /// N test images), a dataset split file or an image folder. Extra arguments, e.g. `--server`.
    Client {
        /// Pipeline name.
        pipeline: String,
        /// Number of test images, split file or image folder.
        images: String,
        /// Extra arguments for `privdnn-party client`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Seed systems beside PrivDNN as separate processes on 127.0.0.1: `edge <pipeline>` (Tian et
    /// al.'s two-edge outsourcing, as reconstructed) writes results/<run>/baselines/edge/metrics.json;
    /// `twoserver <pipeline>` (Li et al.'s two servers with a dealer) .../baselines/twoserver/.
    Baseline {
        #[command(subcommand)]
        system: BaselineSystem,
    },
    /// Fuzz every bounded decoder (frame reader, codec, artifact envelope, compact ciphertexts,
    /// packed slots, wire messages) with the `privdnn-fuzz` binary; fails on any panic or
    /// allocation beyond a decoder's bound.
    Fuzz {
        /// Minutes to run.
        #[arg(long, default_value_t = 10.0)]
        minutes: f64,
        /// Seed of the input generator.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Worker threads (default: available cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Predict each stage's wall time, peak memory and bytes written/sent for a pipeline, from
    /// a short calibration on this machine (cached in results/calibration.json); `--compare`
    /// sets them against the run's recorded reports (results/tables/estimate_<run>.md).
    Estimate {
        /// Pipeline name (pipelines/<name>.toml).
        name: String,
        /// Config profile, e.g. `quick`.
        #[arg(long)]
        profile: Option<String>,
        /// Compare with results/<run>/ (predicted at the calibration's load unless --load).
        #[arg(long)]
        compare: bool,
        /// Calibrate again even when results/calibration.json has a matching entry.
        #[arg(long)]
        recalibrate: bool,
        /// Load average of other processes to predict for (default: now).
        #[arg(long)]
        load: Option<f64>,
        /// Use the stage binaries as built (skip `cargo build --workspace --bins`).
        #[arg(long)]
        no_build: bool,
    },
    /// Check the architecture rules on `cargo metadata` (layers, where burn, fhe and bincode may
    /// appear, what analyze and encrypt may build); lists every violation.
    CheckRules,
}

/// The seed systems `cargo xtask baseline` runs.
#[derive(Subcommand, Debug)]
enum BaselineSystem {
    /// Two-edge-server outsourcing (Tian et al.).
    Edge(baseline::EdgeRun),
    /// Two non-colluding servers with a dealer (Li et al.), as reconstructed.
    Twoserver(baseline::TwoServerRun),
    /// SPNN split training (Zhou et al.), as reconstructed: writes
    /// results/<run>/baselines/spnn/metrics.json and the leakage experiment's files.
    Spnn(baseline_spnn::SpnnRun),
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let root = workspace_root();
    std::env::set_current_dir(&root).with_context(|| format!("entering {}", root.display()))?;
    match cli.command {
        Command::Data {
            datasets,
            source,
            size,
            no_verify,
        } => stages::prepare_data(&root, &datasets, source.as_deref(), size, !no_verify),
        Command::Pipeline {
            name,
            profile,
            only,
            from,
            force,
        } => {
            let plan = stages::plan(only.as_deref(), from.as_deref())?;
            stages::run_pipeline(&root, &name, profile.as_deref(), &plan, force)
        }
        Command::Select {
            what,
            pipeline,
            profile,
            selection,
            algorithm,
            split,
        } => {
            if !["sweep", "exhaustive", "evaluate"].contains(&what.as_str()) {
                bail!(
                    "unknown selection experiment `{what}`; available: sweep, exhaustive, evaluate"
                );
            }
            let mut args = vec![what.as_str(), "--pipeline", pipeline.as_str()];
            for (flag, value) in [
                ("--profile", &profile),
                ("--selection", &selection),
                ("--algorithm", &algorithm),
                ("--split", &split),
            ] {
                if let Some(v) = value {
                    args.extend([flag, v.as_str()]);
                }
            }
            stages::run_binary("privdnn-select", &args)
        }
        Command::FullBlock {
            pipeline,
            profile,
            images,
        } => full_block(&pipeline, profile.as_deref(), images),
        Command::Bench { what, args } => match what.as_str() {
            "train" => {
                let mut cmd = vec![
                    "run",
                    "--release",
                    "-p",
                    "privdnn-train",
                    "--features",
                    "ndarray",
                    "--",
                    "bench",
                ];
                cmd.extend(args.iter().map(String::as_str));
                stages::cargo(&cmd)
            }
            "he" => {
                let mut cmd = vec!["privdnn-infer", "bench"];
                cmd.extend(args.iter().map(String::as_str));
                stages::run_binary(cmd[0], &cmd[1..])
            }
            other => bail!("unknown benchmark `{other}`; available: train, he"),
        },
        Command::Tables { args } => tables::run(&args),
        Command::Serve { pipeline, args } => party::serve(&root, &pipeline, &args),
        Command::Client {
            pipeline,
            images,
            args,
        } => party::client(&pipeline, &images, &args),
        Command::Estimate {
            name,
            profile,
            compare,
            recalibrate,
            load,
            no_build,
        } => {
            let opts = estimate::Options {
                compare,
                recalibrate,
                load,
                build: !no_build,
            };
            estimate::run(&root, &name, profile.as_deref(), &opts)
        }
        Command::CheckRules => rules::run(),
        Command::Fuzz {
            minutes,
            seed,
            threads,
        } => fuzz::run(minutes, seed, threads),
        Command::Baseline {
            system: BaselineSystem::Edge(args),
        } => baseline::edge(&root, &args),
        Command::Baseline {
            system: BaselineSystem::Twoserver(args),
        } => baseline::twoserver(&root, &args),
        Command::Baseline {
            system: BaselineSystem::Spnn(args),
        } => baseline_spnn::spnn(&root, &args),
    }
}

/// `cargo xtask full-block`: the `full-block` variant's encryption, then its infer run on
/// `images` test images with the 100 %-block mode on the same images and no single-image
/// latency run.
fn full_block(pipeline: &str, profile: Option<&str>, images: usize) -> Result<()> {
    let mut args = vec!["run", "--pipeline", pipeline, "--variant", "full-block"];
    if let Some(p) = profile {
        args.extend(["--profile", p]);
    }
    stages::run_binary("privdnn-encrypt", &args)?;
    let n = images.to_string();
    args.extend(["--images", n.as_str()]);
    stages::run_binary_with(
        "privdnn-infer",
        &args,
        &[
            ("PRIVDNN_HE__FULL_BLOCK_IMAGES", n.as_str()),
            ("PRIVDNN_HE__LATENCY", "false"),
        ],
    )
}
