//! The typed pipeline configuration. Every struct rejects unknown keys; `validate` checks ranges
//! that types cannot express (positive sizes, matching normalisation lengths, known backend).

use std::path::PathBuf;

use privdnn_artifacts::{Architecture, Normalization};
use serde::{Deserialize, Serialize};

/// One pipeline: dataset, model and the settings of every stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Pipeline name (also the results folder name).
    pub name: String,
    /// One line saying what the pipeline reproduces.
    pub description: String,
    /// Master seed for every random choice of the pipeline.
    pub seed: u64,
    /// Dataset settings.
    pub data: DataConfig,
    /// Model settings.
    pub model: ModelConfig,
    /// Training stage settings.
    pub train: TrainConfig,
}

/// Where the data comes from and how it is presented to the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Dataset name (`mnist`, `fashion-mnist`, `emnist`, `gtsrb`, `cifar10`, `tinyimagenet`,
    /// or `synthetic`).
    pub dataset: String,
    /// Folder holding the original dataset files.
    pub source: PathBuf,
    /// Folder of the converted cache (git-ignored).
    pub cache: PathBuf,
    /// Side of the (square) images fed to the model; images are resized once when cached.
    pub image_size: usize,
    /// Seed of the 50/50 validation/test split of the official test set.
    pub split_seed: u64,
    /// Use only the first `train_limit` training images (0 = all).
    #[serde(default)]
    pub train_limit: usize,
    /// Synthetic dataset size `[train, test]` (only for `dataset = "synthetic"`).
    #[serde(default)]
    pub synthetic_sizes: [usize; 2],
    /// Per-channel normalisation.
    pub normalization: Normalization,
    /// Training-time augmentation.
    #[serde(default)]
    pub augmentation: Augmentation,
}

/// Training-time augmentation, applied to raw bytes before normalisation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Augmentation {
    /// Random horizontal flip with probability 0.5.
    pub hflip: bool,
    /// Probability of turning an RGB image grey.
    pub grayscale_p: f32,
    /// Random crop after zero padding by this many pixels (0 = off).
    pub crop_padding: usize,
}

/// Model family and size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Model family.
    pub architecture: Architecture,
    /// LeNet5 conv1/conv2 filters (6/16 for MNIST, 10/20 for EMNIST); ignored by the others.
    #[serde(default = "default_lenet_filters")]
    pub lenet_filters: [usize; 2],
    /// Width multiplier of every conv and hidden layer (1.0 = paper).
    #[serde(default = "one")]
    pub width: f64,
}

fn default_lenet_filters() -> [usize; 2] {
    [6, 16]
}

fn one() -> f64 {
    1.0
}

/// Optimiser family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam (β = 0.9, 0.999).
    Adam,
    /// SGD with momentum.
    Sgd,
}

/// Learning-rate schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// Cosine annealing from the base rate to 0 over all epochs (per step).
    Cosine,
    /// Constant rate.
    Constant,
}

/// CPU backend of burn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// burn-flex (default, fastest on CPU).
    Flex,
    /// burn-ndarray (baseline; needs the `ndarray` cargo feature).
    Ndarray,
}

/// Settings of the training stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Optimiser.
    pub optimizer: OptimizerKind,
    /// Base learning rate.
    pub learning_rate: f64,
    /// SGD momentum (ignored by Adam).
    #[serde(default)]
    pub momentum: f64,
    /// L2 weight decay.
    #[serde(default)]
    pub weight_decay: f64,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Batch size for evaluation.
    #[serde(default = "default_eval_batch")]
    pub eval_batch_size: usize,
    /// burn backend.
    #[serde(default = "default_backend")]
    pub backend: Backend,
    /// Stop early when this many epochs pass without a better validation accuracy (0 = never).
    #[serde(default)]
    pub patience: usize,
}

fn default_eval_batch() -> usize {
    500
}

fn default_backend() -> Backend {
    Backend::Flex
}

impl PipelineConfig {
    /// Checks ranges that the types cannot express; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("data.image_size", self.data.image_size),
            ("train.epochs", self.train.epochs),
            ("train.batch_size", self.train.batch_size),
            ("train.eval_batch_size", self.train.eval_batch_size),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(format!("`{key}` must be at least 1"));
            }
        }
        let norm = &self.data.normalization;
        if norm.mean.len() != norm.std.len() || norm.mean.is_empty() {
            return Err(format!(
                "`data.normalization`: mean has {} values and std {}; give one per input channel",
                norm.mean.len(),
                norm.std.len()
            ));
        }
        if norm.std.iter().any(|s| *s <= 0.0) {
            return Err("`data.normalization.std` values must be positive".to_string());
        }
        if !(self.model.width > 0.0 && self.model.width <= 4.0) {
            return Err(format!(
                "`model.width` = {} must be in (0, 4]",
                self.model.width
            ));
        }
        if !(self.train.learning_rate > 0.0) {
            return Err("`train.learning_rate` must be positive".to_string());
        }
        if !(0.0..=1.0).contains(&self.data.augmentation.grayscale_p) {
            return Err("`data.augmentation.grayscale_p` must be in [0, 1]".to_string());
        }
        if self.data.dataset == "synthetic" && self.data.synthetic_sizes.contains(&0) {
            return Err("`data.synthetic_sizes` needs [train, test] counts above 0".to_string());
        }
        Ok(())
    }

    /// Number of input channels implied by the normalisation.
    pub fn in_channels(&self) -> usize {
        self.data.normalization.mean.len()
    }
}
