//! Finding the pipeline runs under `results/` and loading what each stage wrote. A run is a
//! folder with the resolved `config.toml` the pipeline writes first; its stage folders may or
//! may not exist yet. Also maps a run to the reference dataset it stands for (spec §7).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::attack::{self, AttackMetrics};
use crate::error::AnalyzeError;
use crate::infer::{self, InferMetrics};
use crate::json::{Input, parse_typed};
use crate::ops::{Arch, Shape};
use crate::stages::{GroupSummary, SelectionRecord, TrainMetrics};
use crate::systems::SystemFiles;

/// The parts of a run's resolved `config.toml` the analysis needs.
#[derive(Clone, Debug, Deserialize)]
pub struct RunConfig {
    /// Config profile (`default`, `quick`, …).
    #[serde(default = "default_profile")]
    pub profile: String,
    /// The pipeline.
    pub pipeline: PipelineSection,
}

fn default_profile() -> String {
    "default".to_string()
}

/// `[pipeline]`.
#[derive(Clone, Debug, Deserialize)]
pub struct PipelineSection {
    /// Pipeline name.
    pub name: String,
    /// `[pipeline.data]`.
    pub data: DataSection,
    /// `[pipeline.model]`.
    pub model: ModelSection,
    /// `[pipeline.select]`.
    #[serde(default)]
    pub select: SelectSection,
}

/// `[pipeline.data]`.
#[derive(Clone, Debug, Deserialize)]
pub struct DataSection {
    /// Dataset name.
    pub dataset: String,
    /// Image side.
    pub image_size: usize,
    /// Normalisation (its length gives the input channels).
    #[serde(default)]
    pub normalization: Normalization,
}

/// `[pipeline.data.normalization]`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Normalization {
    /// Per-channel mean.
    #[serde(default)]
    pub mean: Vec<f64>,
}

/// `[pipeline.model]`.
#[derive(Clone, Debug, Deserialize)]
pub struct ModelSection {
    /// `lenet5`, `alexnet`, `vgg16`, `resnet18`.
    pub architecture: String,
    /// LeNet5 filters of conv1 / conv2.
    #[serde(default = "default_lenet")]
    pub lenet_filters: [usize; 2],
    /// Width multiplier.
    #[serde(default = "one")]
    pub width: f64,
}

fn default_lenet() -> [usize; 2] {
    [6, 16]
}

fn one() -> f64 {
    1.0
}

/// `[pipeline.select]`.
#[derive(Clone, Debug, Deserialize)]
pub struct SelectSection {
    /// Default algorithm.
    #[serde(default)]
    pub algorithm: String,
    /// Percent sizing (0 = counts).
    #[serde(default)]
    pub percent: f64,
    /// Percent points of a sweep.
    #[serde(default)]
    pub sweep_percents: Vec<f64>,
    /// Largest exhaustive group.
    #[serde(default = "default_group")]
    pub max_group: [usize; 2],
}

fn default_group() -> [usize; 2] {
    [2, 6]
}

impl Default for SelectSection {
    fn default() -> Self {
        Self {
            algorithm: String::new(),
            percent: 0.0,
            sweep_percents: Vec::new(),
            max_group: default_group(),
        }
    }
}

/// A dataset of the reference's §7 numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RefDataset {
    /// MNIST, LeNet5 6/16.
    Mnist,
    /// EMNIST letters, LeNet5 10/20 (our stand-in: Fashion-MNIST).
    Emnist,
    /// GTSRB, AlexNet variant.
    Gtsrb,
    /// CIFAR-10, VGG16 variant.
    Cifar10,
    /// Tiny ImageNet, ResNet18 variant (our stand-in: CIFAR-10 at 64 px), top-5 accuracy.
    TinyImageNet,
}

impl RefDataset {
    /// All, in the reference's order.
    pub const ALL: [RefDataset; 5] = [
        RefDataset::Mnist,
        RefDataset::Emnist,
        RefDataset::Gtsrb,
        RefDataset::Cifar10,
        RefDataset::TinyImageNet,
    ];

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            RefDataset::Mnist => "MNIST",
            RefDataset::Emnist => "EMNIST",
            RefDataset::Gtsrb => "GTSRB",
            RefDataset::Cifar10 => "CIFAR10",
            RefDataset::TinyImageNet => "TinyImageNet",
        }
    }

    /// The pipeline that reproduces it here.
    pub fn pipeline(self) -> &'static str {
        match self {
            RefDataset::Mnist => "mnist",
            RefDataset::Emnist => "fashion-mnist",
            RefDataset::Gtsrb => "gtsrb",
            RefDataset::Cifar10 => "cifar10",
            RefDataset::TinyImageNet => "cifar10-resnet18",
        }
    }

    /// Whether the reference reports top-5 accuracy for it.
    pub fn top5(self) -> bool {
        self == RefDataset::TinyImageNet
    }

    /// The reference's model at full width on its own data (for formula comparisons).
    pub fn paper_shape(self) -> Shape {
        let (arch, in_channels, image_size, classes, lenet) = match self {
            RefDataset::Mnist => (Arch::Lenet5, 1, 28, 10, [6, 16]),
            RefDataset::Emnist => (Arch::Lenet5, 1, 28, 27, [10, 20]),
            RefDataset::Gtsrb => (Arch::Alexnet, 3, 32, 43, [6, 16]),
            RefDataset::Cifar10 => (Arch::Vgg16, 3, 32, 10, [6, 16]),
            RefDataset::TinyImageNet => (Arch::Resnet18, 3, 64, 200, [6, 16]),
        };
        Shape {
            arch,
            in_channels,
            image_size,
            classes,
            width: 1.0,
            lenet_filters: lenet,
        }
    }
}

/// Folder (under a run) of the infer run that measures the 100 %-encrypted block.
pub const FULL_BLOCK_VARIANT: &str = "variants/full-block";

/// One pipeline run and what its stages wrote.
#[derive(Debug)]
pub struct Run {
    /// Folder name under `results/`.
    pub name: String,
    /// The folder.
    pub dir: PathBuf,
    /// Its resolved config.
    pub config: RunConfig,
    /// `train/metrics.json`.
    pub train: Input<TrainMetrics>,
    /// `select/metrics.json`.
    pub select: Input<SelectionRecord>,
    /// `select/sweep.json`.
    pub sweep: Input<Vec<SelectionRecord>>,
    /// `select/exhaustive.json`.
    pub exhaustive: Input<Vec<GroupSummary>>,
    /// `select/exhaustive_test.json` (selected and ranked on the test split, the reference's
    /// setting).
    pub exhaustive_test: Input<Vec<GroupSummary>>,
    /// `infer/metrics.json`.
    pub infer: Input<InferMetrics>,
    /// `variants/full-block/infer/metrics.json`: a short infer run with the 100 %-encrypted
    /// block (`he.full_block_images`), the HE time at 100 % of models whose own infer stage
    /// skips that block.
    pub full_block: Input<InferMetrics>,
    /// `attack/metrics.json`.
    pub attack: Input<AttackMetrics>,
    /// The other systems' files of the comparison table.
    pub systems: SystemFiles,
}

impl Run {
    /// Loads the run in `dir` (which holds `config.toml`); unreadable stage files are recorded
    /// in `problems` and marked invalid, the config itself must parse.
    pub fn load(dir: &Path, problems: &mut Vec<AnalyzeError>) -> Result<Self, AnalyzeError> {
        let config_path = dir.join("config.toml");
        let text =
            std::fs::read_to_string(&config_path).map_err(|e| AnalyzeError::io(&config_path, e))?;
        let config: RunConfig = toml::from_str(&text).map_err(|source| AnalyzeError::Toml {
            path: config_path.clone(),
            source,
        })?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Run {
            name,
            dir: dir.to_path_buf(),
            config,
            train: Input::load(dir.join("train/metrics.json"), problems, parse_typed),
            select: Input::load(dir.join("select/metrics.json"), problems, parse_typed),
            sweep: Input::load(dir.join("select/sweep.json"), problems, parse_typed),
            exhaustive: Input::load(dir.join("select/exhaustive.json"), problems, parse_typed),
            exhaustive_test: Input::load(
                dir.join("select/exhaustive_test.json"),
                problems,
                parse_typed,
            ),
            infer: Input::load(dir.join("infer/metrics.json"), problems, infer::parse),
            full_block: Input::load(
                dir.join(FULL_BLOCK_VARIANT).join("infer/metrics.json"),
                problems,
                infer::parse,
            ),
            attack: Input::load(dir.join("attack/metrics.json"), problems, attack::parse),
            systems: SystemFiles::load(dir, problems),
        })
    }

    /// `--profile P` when the profile is not the default one.
    fn profile_flag(&self) -> String {
        if self.config.profile == "default" {
            String::new()
        } else {
            format!(" --profile {}", self.config.profile)
        }
    }

    /// The command that produces every stage of this run.
    pub fn pipeline_command(&self) -> String {
        format!(
            "cargo xtask pipeline {}{}",
            self.config.pipeline.name,
            self.profile_flag()
        )
    }

    /// The command of one selection experiment (`sweep`, `exhaustive`).
    pub fn select_command(&self, what: &str) -> String {
        format!(
            "cargo xtask select {what} {}{}",
            self.config.pipeline.name,
            self.profile_flag()
        )
    }

    /// Whether the folder is the one the pipeline writes (`<name>[-<profile>]`), not a renamed
    /// variant kept for comparison.
    pub fn is_canonical(&self) -> bool {
        let expected = if self.config.profile == "default" {
            self.config.pipeline.name.clone()
        } else {
            format!("{}-{}", self.config.pipeline.name, self.config.profile)
        };
        self.name == expected
    }

    /// The architecture name.
    pub fn architecture(&self) -> &str {
        &self.config.pipeline.model.architecture
    }

    /// The dataset name.
    pub fn dataset(&self) -> &str {
        &self.config.pipeline.data.dataset
    }

    /// The model's layer shapes, when the architecture is known.
    pub fn shape(&self) -> Option<Shape> {
        let p = &self.config.pipeline;
        let classes = self
            .train
            .get()
            .map(|t| t.test_per_class_accuracy.len())
            .filter(|n| *n > 0)
            .unwrap_or_else(|| dataset_classes(&p.data.dataset));
        Some(Shape {
            arch: Arch::parse(&p.model.architecture)?,
            in_channels: p.data.normalization.mean.len().max(1),
            image_size: p.data.image_size,
            classes,
            width: p.model.width,
            lenet_filters: p.model.lenet_filters,
        })
    }

    /// The reference dataset this run stands for, and whether it is a stand-in.
    pub fn reference(&self) -> Option<(RefDataset, bool)> {
        let arch = self.architecture();
        Some(match (self.dataset(), arch) {
            ("mnist", "lenet5") => (RefDataset::Mnist, false),
            ("emnist", "lenet5") => (RefDataset::Emnist, false),
            ("fashion-mnist", "lenet5") => (RefDataset::Emnist, true),
            ("gtsrb", "alexnet") => (RefDataset::Gtsrb, false),
            ("cifar10", "vgg16") => (RefDataset::Cifar10, false),
            ("tinyimagenet", "resnet18") => (RefDataset::TinyImageNet, false),
            ("cifar10", "resnet18") => (RefDataset::TinyImageNet, true),
            _ => return None,
        })
    }

    /// A_o as the reference reports it for this run's dataset (top-5 for Tiny ImageNet).
    pub fn original_accuracy(&self) -> Option<f64> {
        let t = self.train.get()?;
        Some(match self.reference() {
            Some((r, _)) if r.top5() => t.test_top5_accuracy,
            _ => t.test_accuracy,
        })
    }
}

/// Number of classes of a dataset when no training metrics say it.
pub fn dataset_classes(dataset: &str) -> usize {
    match dataset {
        "emnist" => 27,
        "gtsrb" => 43,
        "tinyimagenet" => 200,
        _ => 10,
    }
}

/// All runs under `results`, sorted by folder name. Folders without `config.toml` (bench,
/// tables, figures) are not runs.
pub fn discover(
    results: &Path,
    problems: &mut Vec<AnalyzeError>,
) -> Result<Vec<Run>, AnalyzeError> {
    let entries = match std::fs::read_dir(results) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            log::warn!(
                "{} does not exist: no runs (run `cargo xtask pipeline mnist` first)",
                results.display()
            );
            return Ok(Vec::new());
        }
        Err(e) => return Err(AnalyzeError::io(results, e)),
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("config.toml").is_file())
        .collect();
    dirs.sort();
    let mut runs = Vec::new();
    for dir in dirs {
        match Run::load(&dir, problems) {
            Ok(run) => runs.push(run),
            Err(e) => problems.push(e),
        }
    }
    Ok(runs)
}

/// The run that represents `dataset` in comparisons with the reference: canonical folders
/// first, a real dataset before a stand-in, the default profile before others, then by name.
pub fn representative(runs: &[Run], dataset: RefDataset) -> Option<&Run> {
    runs.iter()
        .filter_map(|r| match r.reference() {
            Some((d, stand_in)) if d == dataset => Some((r, stand_in)),
            _ => None,
        })
        .min_by_key(|(r, stand_in)| {
            (
                !r.is_canonical(),
                *stand_in,
                r.config.profile != "default",
                r.name.clone(),
            )
        })
        .map(|(r, _)| r)
}
