//! Pipeline configuration: one TOML file per pipeline under `pipelines/`, optional named profiles
//! (`[profiles.quick]`, merged over the base table), and `PRIVDNN_SECTION__KEY=value` environment
//! overrides, loaded with the `config` crate. Unknown keys are rejected with their name, so a typo
//! never silently falls back to a default. The resolved configuration is hashed into every
//! manifest. This crate only parses and validates; it never touches datasets or models.

mod error;
mod service;
mod types;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use error::ConfigError;
pub use service::{ServiceConfig, UserQuota};
pub use types::{
    AttackConfig, Augmentation, Backend, DataConfig, FULL_BLOCK_CHUNK, FullBlockParams, HeConfig,
    HeLayout, HeMode, ModelConfig, OptimizerKind, PipelineConfig, Schedule, SelectAlgorithm,
    SelectConfig, TrainConfig,
};

/// Prefix of environment overrides: `PRIVDNN_TRAIN__EPOCHS=3` sets `train.epochs`.
pub const ENV_PREFIX: &str = "PRIVDNN";

/// A pipeline configuration after profile merging and environment overrides.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResolvedConfig {
    /// Profile that was applied (`default` when none).
    pub profile: String,
    /// The resolved settings.
    pub pipeline: PipelineConfig,
}

impl ResolvedConfig {
    /// SHA-256 (hex) of the canonical JSON of this resolved configuration.
    pub fn hash(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        Sha256::digest(json.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// SHA-256 (hex) of only the settings a stage depends on, so that editing a later stage's
    /// section does not make an earlier stage's outputs stale. `train` depends on
    /// `seed`, `data`, `model` and `train`; `select` adds `select`.
    pub fn stage_hash(&self, stage: &str) -> String {
        let full = serde_json::to_value(&self.pipeline).unwrap_or_default();
        let keys: &[&str] = match stage {
            "train" => &["seed", "data", "model", "train"],
            "select" => &["seed", "data", "model", "train", "select"],
            "encrypt" => &["seed", "data", "model", "train", "select", "he"],
            "attack" => &["seed", "data", "model", "train", "select", "attack"],
            _ => return self.hash(),
        };
        let picked: serde_json::Map<String, serde_json::Value> = keys
            .iter()
            .filter_map(|k| full.get(*k).map(|v| (k.to_string(), v.clone())))
            .collect();
        let json = serde_json::to_string(&picked).unwrap_or_default();
        Sha256::digest(json.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Folder of this run's results: `results/<name>` or `results/<name>-<profile>`.
    pub fn results_dir(&self, results_root: &Path) -> PathBuf {
        if self.profile == "default" {
            results_root.join(&self.pipeline.name)
        } else {
            results_root.join(format!("{}-{}", self.pipeline.name, self.profile))
        }
    }

    /// The resolved configuration as TOML text (stored in every run's results).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

/// Path of pipeline `name` under `pipelines_dir`, or an error listing the pipelines that exist.
pub fn pipeline_path(pipelines_dir: &Path, name: &str) -> Result<PathBuf, ConfigError> {
    let path = pipelines_dir.join(format!("{name}.toml"));
    if path.is_file() {
        return Ok(path);
    }
    Err(ConfigError::UnknownPipeline {
        name: name.to_string(),
        dir: pipelines_dir.to_path_buf(),
        available: available_pipelines(pipelines_dir).join(", "),
    })
}

/// Names of the pipelines defined in `pipelines_dir` (sorted).
pub fn available_pipelines(pipelines_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(pipelines_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            if p.extension()? != "toml" {
                return None;
            }
            Some(p.file_stem()?.to_string_lossy().to_string())
        })
        .collect();
    names.sort();
    names
}

/// Loads `path` with `profile` (None = default) and the process environment's overrides.
pub fn load(path: &Path, profile: Option<&str>) -> Result<ResolvedConfig, ConfigError> {
    let env: BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}_")))
        .filter(|(k, _)| k.contains("__"))
        .collect();
    load_with_env(path, profile, env)
}

/// Loads pipeline `name` from `<root>/pipelines/` with a profile (and the environment overrides).
pub fn load_pipeline(
    root: &Path,
    name: &str,
    profile: Option<&str>,
) -> Result<ResolvedConfig, ConfigError> {
    load(&pipeline_path(&root.join("pipelines"), name)?, profile)
}

/// The command-line options every stage binary shares: which pipeline, which profile, where.
#[derive(clap::Args, Debug, Clone)]
pub struct PipelineArgs {
    /// Pipeline name (a file `pipelines/<name>.toml`).
    #[arg(long)]
    pub pipeline: String,
    /// Config profile (`quick` for the 2-core sizes).
    #[arg(long)]
    pub profile: Option<String>,
    /// Workspace root holding `pipelines/`, `data/` and `results/`.
    #[arg(long, default_value = ".")]
    pub root: PathBuf,
}

impl PipelineArgs {
    /// Options for `pipeline` at `root` without a profile.
    pub fn new(pipeline: &str, root: &Path) -> Self {
        Self {
            pipeline: pipeline.to_string(),
            profile: None,
            root: root.to_path_buf(),
        }
    }

    /// The resolved configuration.
    pub fn load(&self) -> Result<ResolvedConfig, ConfigError> {
        load_pipeline(&self.root, &self.pipeline, self.profile.as_deref())
    }
}

/// Like [`load`] but with an explicit set of environment variables (used by tests).
pub fn load_with_env(
    path: &Path,
    profile: Option<&str>,
    env: BTreeMap<String, String>,
) -> Result<ResolvedConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let profiles = match table.remove("profiles") {
        Some(toml::Value::Table(t)) => t,
        Some(_) => {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                message: "`profiles` must be a table of tables".to_string(),
            });
        }
        None => toml::Table::new(),
    };
    let profile_name = profile.unwrap_or("default").to_string();
    if profile_name != "default" {
        match profiles.get(&profile_name) {
            Some(toml::Value::Table(overlay)) => merge(&mut table, overlay),
            _ => {
                return Err(ConfigError::UnknownProfile {
                    path: path.to_path_buf(),
                    profile: profile_name,
                    available: profiles.keys().cloned().collect::<Vec<_>>().join(", "),
                });
            }
        }
    }
    let merged = toml::to_string(&table).map_err(|e| ConfigError::Invalid {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let pipeline: PipelineConfig = config::Config::builder()
        .add_source(config::File::from_str(&merged, config::FileFormat::Toml))
        .add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .source(Some(env.into_iter().collect())),
        )
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| ConfigError::Invalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    pipeline
        .validate()
        .map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
    Ok(ResolvedConfig {
        profile: profile_name,
        pipeline,
    })
}

/// Deep-merges `overlay` into `base` (tables merge, everything else replaces).
fn merge(base: &mut toml::Table, overlay: &toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests;
