//! Where each party's files live under `results/<run>/baselines/edge/`, and the run's config.
//! Each role's module uses only its own paths.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use privdnn_artifacts::DatasetSplit;
use privdnn_config::{PipelineArgs, ResolvedConfig};

/// Pipeline, profile, root and the number of test images.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Pipeline, profile and root.
    #[command(flatten)]
    pub target: PipelineArgs,
    /// Test images to classify (0 = all).
    #[arg(long, default_value_t = 0)]
    pub images: usize,
}

impl RunArgs {
    /// The resolved config.
    pub fn config(&self) -> Result<ResolvedConfig> {
        self.target
            .load()
            .with_context(|| format!("loading pipeline `{}`", self.target.pipeline))
    }

    /// `results/<run>`.
    pub fn run_dir(&self) -> Result<PathBuf> {
        Ok(self
            .config()?
            .results_dir(&self.target.root.join("results")))
    }

    /// `results/<run>/baselines/edge`.
    pub fn edge_dir(&self) -> Result<PathBuf> {
        Ok(self.run_dir()?.join("baselines").join("edge"))
    }

    /// The first `images` test images (all when 0).
    pub fn test_images(&self) -> Result<DatasetSplit> {
        let cfg = self.config()?;
        let (splits, _) = privdnn_data::load_splits(&self.target.root, &cfg.pipeline)
            .context("loading the test split")?;
        let n = if self.images == 0 {
            splits.test.len()
        } else {
            self.images.min(splits.test.len())
        };
        let idx: Vec<usize> = (0..n).collect();
        Ok(splits.test.subset(&idx, "test"))
    }
}

/// The owner's setup summary.
pub fn setup_json(dir: &Path) -> PathBuf {
    dir.join("setup.json")
}

/// The owner-side reference (float and shadow).
pub fn reference_json(dir: &Path) -> PathBuf {
    dir.join("reference.json")
}

/// The device's bundle.
pub fn device_bundle(dir: &Path) -> PathBuf {
    dir.join("device").join("keys.bin")
}

/// The device's measurements.
pub fn device_json(dir: &Path) -> PathBuf {
    dir.join("device").join("device.json")
}

/// An edge's bundle (`role` = `a` or `b`).
pub fn edge_bundle(dir: &Path, role: &str) -> PathBuf {
    dir.join(format!("edge-{role}")).join("layers.bin")
}

/// The merged metrics.
pub fn metrics_json(dir: &Path) -> PathBuf {
    dir.join("metrics.json")
}

/// Reads a JSON file written by one of the roles.
pub fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

/// A JSON number as `f64` (0 where the role did not record it).
pub fn number(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}
