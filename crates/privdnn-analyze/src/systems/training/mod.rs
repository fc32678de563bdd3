//! Split training (SPNN, issue 18, "as reconstructed"): the training table beside the inference
//! comparison. SPNN is a training protocol, so its numbers do not fit the per-image inference
//! columns of [`systems_comparison`](super::table::systems_comparison); they are read here from
//! two files per run folder (schema: `coord/spnn_schema.md`):
//!
//! - `results/<run>/baselines/spnn/metrics.json` (`cargo xtask baseline spnn <pipeline>`, its
//!   `privdnn-baseline spnn report` step): one entry per
//!   variant (`plaintext`, `spnn`, `spnn_noise`, `naive_split`) with accuracy and time per epoch,
//!   crypto / server / transfer seconds, first-layer forwards checked against the integer shadow,
//!   bytes per step per link (measured and analytic) and rounds per step;
//! - `results/<run>/attack/spnn_leakage.json` (`privdnn-attack run … --only spnn_leakage`):
//!   input reconstruction (PSNR / SSIM) from the server's view per variant and attacker.
//!
//! A run folder needs no `config.toml` here: every folder under `results/` with either file is a
//! training run, and the quick MNIST and Fashion-MNIST runs are always listed (as "not yet
//! measured" until their files exist). Every field is optional ("any variant may be missing, any
//! number may be null"); a present field of the wrong type is an error naming the file and the
//! JSON pointer, and the run's cells then say the file is unreadable.

pub mod figure;
pub mod parse;
pub mod table;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use crate::error::AnalyzeError;
use crate::json::Input;

use parse::{parse_leakage, parse_metrics};

/// The run folders always listed, in table order (others follow by name).
pub const EXPECTED_RUNS: [&str; 2] = ["mnist-quick", "fashion-mnist-quick"];

/// The variants, in table order: (name in the files, display name).
pub const VARIANTS: [(&str, &str); 4] = [
    ("plaintext", "plaintext"),
    ("spnn", "SPNN (σ = 0)"),
    ("spnn_noise", "SPNN + SGLD noise"),
    ("naive_split", "naive split (no crypto)"),
];

/// The training metrics file, relative to the run folder.
pub const METRICS: &str = "baselines/spnn/metrics.json";

/// The leakage file, relative to the run folder.
pub const LEAKAGE: &str = "attack/spnn_leakage.json";

/// One epoch of one variant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Epoch {
    /// Epoch number (1-based).
    pub epoch: Option<f64>,
    /// Test accuracy after the epoch, percent.
    pub test_accuracy: Option<f64>,
    /// Mean training loss.
    pub train_loss: Option<f64>,
    /// Wall seconds of the epoch.
    pub seconds: Option<f64>,
}

/// What one variant measured (`None`: the file does not record it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Variant {
    /// `plaintext`, `spnn`, `spnn_noise`, `naive_split`.
    pub name: String,
    /// SGLD noise σ.
    pub noise_sigma: Option<f64>,
    /// Final test accuracy, percent.
    pub test_accuracy: Option<f64>,
    /// Wall seconds per epoch.
    pub seconds_per_epoch: Option<f64>,
    /// Seconds per epoch in the secret-shared first layer (holders and dealer).
    pub crypto_seconds: Option<f64>,
    /// Seconds per epoch of the server's layers.
    pub server_seconds: Option<f64>,
    /// Seconds per epoch moving messages.
    pub transfer_seconds: Option<f64>,
    /// First-layer forwards compared with the integer shadow.
    pub forwards_checked: Option<f64>,
    /// Of those, the ones equal to the shadow.
    pub forwards_exact: Option<f64>,
    /// Measured bytes per training step, per link (`a_to_b`, …).
    pub bytes: Vec<(String, f64)>,
    /// Analytic bytes per training step, per link.
    pub analytic_bytes: Vec<(String, f64)>,
    /// Sequential rounds per training step.
    pub rounds_per_step: Option<f64>,
    /// Per-epoch history.
    pub epochs: Vec<Epoch>,
}

/// `baselines/spnn/metrics.json`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainingMetrics {
    /// Dataset name.
    pub dataset: Option<String>,
    /// Variants in file order.
    pub variants: Vec<Variant>,
    /// What each party learns (party, text), in file order of serde_json's map.
    pub learns: Vec<(String, String)>,
}

impl TrainingMetrics {
    /// The variant called `name`.
    pub fn variant(&self, name: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| v.name == name)
    }
}

/// One attacker's reconstruction quality.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attacker {
    /// `blind`, `released_conv1`, ….
    pub name: String,
    /// Peak signal-to-noise ratio of the reconstructions, dB.
    pub psnr_db: Option<f64>,
    /// Structural similarity of the reconstructions.
    pub ssim: Option<f64>,
}

/// The attacks on one variant's server view.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LeakageVariant {
    /// Variant name (as in `metrics.json`).
    pub name: String,
    /// Attackers in file order.
    pub attackers: Vec<Attacker>,
}

/// `attack/spnn_leakage.json`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Leakage {
    /// Images reconstructed per variant.
    pub images: Option<f64>,
    /// Variants in file order.
    pub variants: Vec<LeakageVariant>,
    /// The reference guess (mean training image): PSNR dB, SSIM.
    pub reference: Option<Attacker>,
}

impl Leakage {
    /// `attacker` on `variant`, when the file has both.
    pub fn score(&self, variant: &str, attacker: &str) -> Option<&Attacker> {
        self.variants
            .iter()
            .find(|v| v.name == variant)?
            .attackers
            .iter()
            .find(|a| a.name == attacker)
    }
}

/// One training run folder and its two files.
#[derive(Debug)]
pub struct TrainingRun {
    /// Folder name under `results/`.
    pub name: String,
    /// `baselines/spnn/metrics.json`.
    pub metrics: Input<TrainingMetrics>,
    /// `attack/spnn_leakage.json`.
    pub leakage: Input<Leakage>,
}

impl TrainingRun {
    /// Loads the files of the run folder `dir`; unreadable ones go to `problems`.
    pub fn load(dir: &Path, problems: &mut Vec<AnalyzeError>) -> TrainingRun {
        TrainingRun {
            name: folder_name(dir),
            metrics: Input::load(dir.join(METRICS), problems, parse_metrics),
            leakage: Input::load(dir.join(LEAKAGE), problems, parse_leakage),
        }
    }

    /// (pipeline, profile) from the folder name (`mnist-quick` → `mnist`, `quick`).
    fn pipeline_profile(&self) -> (&str, Option<&str>) {
        match self.name.strip_suffix("-quick") {
            Some(p) => (p, Some("quick")),
            None => (&self.name, None),
        }
    }

    /// `--pipeline P [--profile Q]` of this run.
    fn flags(&self) -> String {
        let (pipeline, profile) = self.pipeline_profile();
        let profile = profile
            .map(|p| format!(" --profile {p}"))
            .unwrap_or_default();
        format!("--pipeline {pipeline}{profile}")
    }

    /// The command that writes `metrics.json` (and, after it, the leakage file).
    pub fn metrics_command(&self) -> String {
        let (pipeline, profile) = self.pipeline_profile();
        let profile = profile
            .map(|p| format!(" --profile {p}"))
            .unwrap_or_default();
        format!("cargo xtask baseline spnn {pipeline}{profile}")
    }

    /// The command that writes `spnn_leakage.json`.
    pub fn leakage_command(&self) -> String {
        format!("privdnn-attack run {} --only spnn_leakage", self.flags())
    }
}

fn folder_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The training runs under `results`: [`EXPECTED_RUNS`] first (even when absent), then every
/// other folder holding [`METRICS`] or [`LEAKAGE`], by name.
pub fn discover(
    results: &Path,
    problems: &mut Vec<AnalyzeError>,
) -> Result<Vec<TrainingRun>, AnalyzeError> {
    let mut others: Vec<PathBuf> = match std::fs::read_dir(results) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join(METRICS).is_file() || p.join(LEAKAGE).is_file())
            .filter(|p| !EXPECTED_RUNS.contains(&folder_name(p).as_str()))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(AnalyzeError::io(results, e)),
    };
    others.sort();
    let expected = EXPECTED_RUNS.iter().map(|name| results.join(name));
    Ok(expected
        .chain(others)
        .map(|dir| TrainingRun::load(&dir, problems))
        .collect())
}

/// The training tables: [`table::spnn_training`] and [`table::spnn_training_epochs`].
pub fn tables(runs: &[TrainingRun]) -> Vec<crate::table::Table> {
    vec![
        table::spnn_training(runs),
        table::spnn_training_epochs(runs),
    ]
}
