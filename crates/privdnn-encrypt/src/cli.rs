//! Command line of the encrypt stage. Reads `results/<run>/train/model.bin` and the selection
//! (`he.selection` of the config, else `--selection <reference json>`, else
//! `results/<run>/select/selection.bin`); writes
//!
//! * `results/<run>/encrypt/encrypted_model.bin` and `evaluation_keys.bin` — for the user;
//! * `results/<run>/owner/secret_key.bin` — for the owner only (the user side never opens it);
//! * `results/<run>/encrypt/metrics.json` — sizes, bits, bounds, time.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand};
use privdnn_artifacts::{
    Artifact, Manifest, NeuronSelection, TrainedModel, read_artifact, write_artifact,
    write_json_atomic,
};
use privdnn_config::{PipelineArgs, ResolvedConfig};

use crate::encrypt;

#[derive(Parser, Debug)]
#[command(
    name = "privdnn-encrypt",
    version,
    about = "Encrypt stage: keys and the partly encrypted model"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Quantise, generate keys and encrypt the selected filters.
    Run(Common),
}

/// Options shared by the commands.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Pipeline, profile and root.
    #[command(flatten)]
    pub target: PipelineArgs,
    /// A selection in the reference JSON format (`{"1": [..], "2": [..]}`).
    #[arg(long)]
    pub selection: Option<PathBuf>,
    /// Write under `results/<run>/variants/<name>/` instead of the run folder (experiments that
    /// must not replace the pipeline's own encryption).
    #[arg(long)]
    pub variant: Option<String>,
}

/// Folder holding the encrypt/owner/infer outputs of a run (or of one of its variants).
pub fn output_dir(run_dir: &Path, variant: Option<&str>) -> PathBuf {
    match variant {
        Some(v) => run_dir.join("variants").join(v),
        None => run_dir.to_path_buf(),
    }
}

/// Files of one run's encrypt stage.
pub struct EncryptPaths {
    /// Encrypted model (user).
    pub model: PathBuf,
    /// Evaluation keys (user).
    pub keys: PathBuf,
    /// Owner secret (owner only).
    pub secret: PathBuf,
    /// Metrics.
    pub metrics: PathBuf,
}

impl EncryptPaths {
    /// Paths under a run directory.
    pub fn new(run_dir: &Path) -> Self {
        let enc = run_dir.join("encrypt");
        Self {
            model: enc.join("encrypted_model.bin"),
            keys: enc.join("evaluation_keys.bin"),
            secret: run_dir.join("owner").join("secret_key.bin"),
            metrics: enc.join("metrics.json"),
        }
    }
}

/// The selection to encrypt (config override, then `--selection`, then the select stage's) and
/// the file it came from, if any.
pub fn selection(
    cfg: &ResolvedConfig,
    common: &Common,
    model: &TrainedModel,
    run_dir: &Path,
) -> Result<(NeuronSelection, Option<PathBuf>)> {
    let channels = [
        model.tensor("conv1.weight").map_or(0, |t| t.shape[0]),
        model.tensor("conv2.weight").map_or(0, |t| t.shape[0]),
    ];
    if let Some(map) = &cfg.pipeline.he.selection {
        let json = serde_json::to_string(map)?;
        return NeuronSelection::from_reference_json(&json, channels, "config")
            .map(|s| (s, None))
            .map_err(|e| anyhow::anyhow!("`he.selection` in the pipeline config: {e}"));
    }
    if let Some(path) = &common.selection {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return NeuronSelection::from_reference_json(&text, channels, "file")
            .map(|s| (s, Some(path.clone())))
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()));
    }
    let path = run_dir.join("select").join("selection.bin");
    Ok((read_artifact(&path)?, Some(path)))
}

fn write_with_manifest<T: Artifact>(
    path: &Path,
    value: &T,
    cfg: &ResolvedConfig,
    inputs: &[&Path],
    secs: f64,
) -> Result<()> {
    write_artifact(path, value)?;
    Manifest::for_artifact(
        T::KIND,
        T::SCHEMA_VERSION,
        concat!("privdnn-encrypt ", env!("CARGO_PKG_VERSION")),
        path,
        &cfg.stage_hash("encrypt"),
        inputs,
        secs,
    )?
    .write_beside(path)?;
    Ok(())
}

/// `run`: writes the three files and the metrics; returns their paths.
pub fn run(common: &Common) -> Result<EncryptPaths> {
    let clock = Instant::now();
    let cfg = common.target.load()?;
    let run_dir = cfg.results_dir(&common.target.root.join("results"));
    let model_path = run_dir.join("train").join("model.bin");
    let model: TrainedModel = read_artifact(&model_path)?;
    let (sel, sel_path) = selection(&cfg, common, &model, &run_dir)?;
    log::info!(
        "encrypting selection {:?} / {:?} of {}",
        sel.layer1,
        sel.layer2,
        model_path.display()
    );
    let out = encrypt(&model, &sel, &cfg.pipeline.he)
        .with_context(|| format!("encrypting {}", model_path.display()))?;
    let paths = EncryptPaths::new(&output_dir(&run_dir, common.variant.as_deref()));
    let secs = clock.elapsed().as_secs_f64();
    let mut inputs = vec![model_path.as_path()];
    inputs.extend(sel_path.as_deref());
    write_with_manifest(&paths.secret, &out.secret, &cfg, &inputs, secs)?;
    write_with_manifest(&paths.model, &out.model, &cfg, &inputs, secs)?;
    write_with_manifest(&paths.keys, &out.keys, &cfg, &inputs, secs)?;
    write_json_atomic(&paths.metrics, &out.report)?;
    let r = &out.report;
    println!(
        "encrypted {} weights in {} ciphertexts: {:.2} MB (keys {:.1} MB), {}/{}-bit weights, \
         |Z| ≤ 2^{:.1} < 2^{:.1}, {:.1} s",
        r.packed_weights,
        r.packed_ciphertexts,
        r.encrypted_weight_bytes as f64 / 1e6,
        r.evaluation_key_bytes as f64 / 1e6,
        r.weight_bits.0,
        r.weight_bits.1,
        r.log_bound,
        r.log_plaintext_space - 1.0,
        r.seconds
    );
    Ok(paths)
}

/// Entry point of the binary.
pub fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match Cli::parse_from(std::env::args_os()).command {
        Command::Run(common) => run(&common).map(|_| ()),
    }
}
