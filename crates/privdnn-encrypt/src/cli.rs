//! Command line of the encrypt stage. Reads `results/<run>/train/model.bin` and the selection
//! (`he.selection` of the config, else `--selection <reference json>`, else
//! `results/<run>/select/selection.bin`); writes
//!
//! * `results/<run>/encrypt/encrypted_model.bin` and `evaluation_keys.bin` — for the user;
//! * `results/<run>/owner/secret_key.bin` — for the owner only (the user side never opens it);
//! * `results/<run>/encrypt/metrics.json` — sizes, bits, bounds, time.
//!
//! With `[he] mode = "user-keyed"` (or `PRIVDNN_HE__MODE=user-keyed`) it writes no key and no
//! encrypted weight, but `encrypt/keyed_model.bin` and `owner/keyed_block.bin` ([`crate::keyed`]).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand};
use privdnn_artifacts::{
    NeuronSelection, RunLayout, TrainedModel, read_artifact, write_json_atomic,
};
use privdnn_config::{HeMode, PipelineArgs, ResolvedConfig};

use privdnn_partial::setup::{Provenance, encrypt, write_outputs};

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

/// The selection to encrypt (config override, then `--selection`, then the select stage's) and
/// the file it came from, if any.
pub fn selection(
    cfg: &ResolvedConfig,
    common: &Common,
    model: &TrainedModel,
    layout: &RunLayout,
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
    let path = layout.selection();
    Ok((read_artifact(&path)?, Some(path)))
}

/// `run`: writes the three files and the metrics; returns the run's layout.
pub fn run(common: &Common) -> Result<RunLayout> {
    let clock = Instant::now();
    let cfg = common.target.load()?;
    let layout = RunLayout::new(cfg.results_dir(&common.target.root.join("results")))
        .with_variant(common.variant.as_deref());
    let model_path = layout.trained_model();
    let model: TrainedModel = read_artifact(&model_path)?;
    let (sel, sel_path) = selection(&cfg, common, &model, &layout)?;
    log::info!(
        "encrypting selection {:?} / {:?} of {}",
        sel.layer1,
        sel.layer2,
        model_path.display()
    );
    let mut inputs = vec![model_path.as_path()];
    inputs.extend(sel_path.as_deref());
    if cfg.pipeline.he.mode == HeMode::UserKeyed {
        crate::keyed::run(&cfg, &layout, &model, &sel, &inputs, clock)?;
        return Ok(layout);
    }
    let out = encrypt(&model, &sel, &cfg.pipeline.he)
        .with_context(|| format!("encrypting {}", model_path.display()))?;
    let hash = cfg.stage_hash("encrypt");
    let provenance = Provenance {
        producer: concat!("privdnn-encrypt ", env!("CARGO_PKG_VERSION")),
        config_hash: &hash,
        inputs: &inputs,
        seconds: clock.elapsed().as_secs_f64(),
    };
    write_outputs(&layout, &out, Some(&provenance))?;
    write_json_atomic(&layout.encrypt_metrics(), &out.report)?;
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
    Ok(layout)
}

/// Entry point of the binary.
pub fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match Cli::parse_from(std::env::args_os()).command {
        Command::Run(common) => run(&common).map(|_| ()),
    }
}
