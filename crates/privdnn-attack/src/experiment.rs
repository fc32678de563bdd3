//! What the attack experiments need from the stage, as plain data (no CLI types in library
//! modules): the attack settings, the seed, the trained model, the evaluation images, the
//! devices and the folder for pictures; and the progress bar style of the stage.

use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use privdnn_artifacts::{DatasetSplit, TrainedModel};
use privdnn_config::AttackConfig;

use crate::recover::Devices;

/// Inputs of one experiment (extraction, inversion).
#[derive(Clone, Copy)]
pub struct Experiment<'a> {
    /// The pipeline's `[attack]` settings.
    pub attack: &'a AttackConfig,
    /// The pipeline's seed.
    pub seed: u64,
    /// The trained model.
    pub model: &'a TrainedModel,
    /// Test images every accuracy is measured on.
    pub eval: &'a DatasetSplit,
    /// Devices.
    pub devices: &'a Devices,
    /// Folder for the pictures an experiment draws.
    pub out: &'a Path,
}

/// A progress bar in the workspace's style.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} ({elapsed}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(what.to_string());
    bar
}
