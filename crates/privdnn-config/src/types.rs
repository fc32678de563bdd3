//! The typed pipeline configuration. Every struct rejects unknown keys; `validate` checks ranges
//! that types cannot express (positive sizes, matching normalisation lengths, known backend).

use std::path::PathBuf;

use privdnn_artifacts::{Architecture, Normalization};
use serde::{Deserialize, Serialize};

use crate::service::ServiceConfig;

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
    /// Selection stage settings.
    pub select: SelectConfig,
    /// Encryption and encrypted-inference settings (encrypt and infer stages).
    #[serde(default)]
    pub he: HeConfig,
    /// Attack stage settings (model recovery, training from scratch, extraction, inversion).
    #[serde(default)]
    pub attack: AttackConfig,
    /// Owner service settings (TLS files, users and quotas, audit log). Left out of the
    /// serialised config when unset, so the hashes of existing runs do not change.
    #[serde(default, skip_serializing_if = "ServiceConfig::is_default")]
    pub service: ServiceConfig,
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

/// burn backend used for training and evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// burn-flex (default, fastest on CPU).
    Flex,
    /// burn-ndarray (baseline; needs the `ndarray` cargo feature).
    Ndarray,
    /// burn-wgpu on the default GPU (Vulkan/Metal/DX12; needs the `wgpu` cargo feature and a GPU
    /// driver at run time; for paper-profile training).
    Wgpu,
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
    /// Dropout probability of the fully connected layers (AlexNet, VGG16; the paper's 0.5).
    /// Left out of the serialised config at 0.5 so that stage hashes of older runs still match.
    #[serde(
        default = "default_dropout",
        skip_serializing_if = "is_default_dropout"
    )]
    pub dropout: f64,
}

fn default_dropout() -> f64 {
    0.5
}

fn is_default_dropout(p: &f64) -> bool {
    *p == default_dropout()
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
        self.he.check_params("he")?;
        self.he.full_block_config().check_params("he.full_block")?;
        if norm.std.iter().any(|s| *s <= 0.0) {
            return Err("`data.normalization.std` values must be positive".to_string());
        }
        if !(self.model.width > 0.0 && self.model.width <= 4.0) {
            return Err(format!(
                "`model.width` = {} must be in (0, 4]",
                self.model.width
            ));
        }
        // NaN is refused too.
        if self.train.learning_rate.is_nan() || self.train.learning_rate <= 0.0 {
            return Err("`train.learning_rate` must be positive".to_string());
        }
        if !(0.0..1.0).contains(&self.train.dropout) {
            return Err(format!(
                "`train.dropout` = {} must be in [0, 1)",
                self.train.dropout
            ));
        }
        if !(0.0..=1.0).contains(&self.data.augmentation.grayscale_p) {
            return Err("`data.augmentation.grayscale_p` must be in [0, 1]".to_string());
        }
        if self.select.greedy_step == 0 {
            return Err("`select.greedy_step` must be at least 1".to_string());
        }
        if !(0.0..=100.0).contains(&self.select.percent) {
            return Err("`select.percent` must be in [0, 100]".to_string());
        }
        if self.data.dataset == "synthetic" && self.data.synthetic_sizes.contains(&0) {
            return Err("`data.synthetic_sizes` needs [train, test] counts above 0".to_string());
        }
        self.service.validate()?;
        Ok(())
    }

    /// Number of input channels implied by the normalisation.
    pub fn in_channels(&self) -> usize {
        self.data.normalization.mean.len()
    }
}

/// Neuron-selection algorithm (spec §3.4–3.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SelectAlgorithm {
    /// Greedy on accuracy of removal (layer 1) and point(A_s, A_r) (layer 2).
    Greedy,
    /// Largest L2 norm per layer.
    L2,
    /// Largest summed distance to the other filters (FPGM).
    Fpgm,
    /// Highest average feature-map rank (HRank).
    Hrank,
    /// Greedy restricted to the top-2n filters by L2 norm.
    L2Greedy,
    /// Greedy restricted to the top-2n filters by FPGM.
    FpgmGreedy,
    /// Seeded uniform random draws within a time budget; the best point is kept.
    Random,
}

impl SelectAlgorithm {
    /// Every algorithm, in table order.
    pub const ALL: [SelectAlgorithm; 7] = [
        SelectAlgorithm::Greedy,
        SelectAlgorithm::L2,
        SelectAlgorithm::Fpgm,
        SelectAlgorithm::Hrank,
        SelectAlgorithm::L2Greedy,
        SelectAlgorithm::FpgmGreedy,
        SelectAlgorithm::Random,
    ];

    /// Name as written in configs and tables.
    pub fn name(self) -> &'static str {
        match self {
            SelectAlgorithm::Greedy => "greedy",
            SelectAlgorithm::L2 => "l2",
            SelectAlgorithm::Fpgm => "fpgm",
            SelectAlgorithm::Hrank => "hrank",
            SelectAlgorithm::L2Greedy => "l2-greedy",
            SelectAlgorithm::FpgmGreedy => "fpgm-greedy",
            SelectAlgorithm::Random => "random",
        }
    }
}

/// Settings of the selection stage. Sizes follow the reference: |S1| = `initial_neurons`, then
/// |S2| = |S1| + `add_factor` (or |S1| · `multiply_factor` when that is above 0); a `percent`
/// above 0 overrides both with max(1, ⌊C·p/100⌋) per layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelectConfig {
    /// Algorithm of the default selection.
    pub algorithm: SelectAlgorithm,
    /// |S1|.
    pub initial_neurons: usize,
    /// |S2| = |S1| + add_factor.
    pub add_factor: usize,
    /// |S2| = |S1| · multiply_factor when above 0.
    pub multiply_factor: usize,
    /// Percent of both layers (0 = use the counts).
    pub percent: f64,
    /// Filters appended per greedy iteration.
    pub greedy_step: usize,
    /// Validation images used to score candidates (0 = the whole validation split).
    pub eval_images: usize,
    /// Seconds of random draws (0 = the greedy time measured in the same run).
    pub random_seconds: f64,
    /// Training images HRank averages feature-map ranks over.
    pub hrank_images: usize,
    /// Percent points of the selection sweep (large models).
    pub sweep_percents: Vec<f64>,
    /// Largest (|S1|, |S2|) of the sweep over groups and of the exhaustive search (LeNet5).
    pub max_group: [usize; 2],
}

impl Default for SelectConfig {
    fn default() -> Self {
        Self {
            algorithm: SelectAlgorithm::Greedy,
            initial_neurons: 1,
            add_factor: 0,
            multiply_factor: 0,
            percent: 0.0,
            greedy_step: 1,
            eval_images: 0,
            random_seconds: 0.0,
            hrank_images: 500,
            sweep_percents: (10..=20).map(|i| f64::from(i) * 5.0).collect(),
            max_group: [2, 6],
        }
    }
}

impl SelectConfig {
    /// (|S1|, |S2|) for a model with `channels` filters in conv1 and conv2.
    pub fn sizes(&self, channels: [usize; 2]) -> [usize; 2] {
        if self.percent > 0.0 {
            return channels
                .map(|c| ((c as f64 * self.percent / 100.0).floor() as usize).clamp(1, c));
        }
        let n1 = self.initial_neurons.clamp(1, channels[0]);
        let n2 = if self.multiply_factor > 0 {
            n1 * self.multiply_factor
        } else {
            n1 + self.add_factor
        };
        [n1, n2.clamp(1, channels[1])]
    }
}

/// Slot layout of the encrypted evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeLayout {
    /// Images across slots: best throughput for many images.
    Batch,
    /// Output positions across slots: a single image costs one call (low latency).
    Spatial,
}

/// Who holds the BFV keys of the encrypted block (see README "Threat model").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeMode {
    /// The paper's protocol: the owner holds the secret key, ships encrypted weights and
    /// decrypts the user's blinded outputs (a decryption oracle for a malicious user).
    #[default]
    OwnerKeyed,
    /// The user holds its own keys; the owner evaluates the selected filters with plaintext
    /// weights on the user's ciphertexts and never decrypts (no encrypted weights shipped).
    UserKeyed,
}

impl HeMode {
    /// Name as written in configs and reports.
    pub fn name(self) -> &'static str {
        match self {
            HeMode::OwnerKeyed => "owner-keyed",
            HeMode::UserKeyed => "user-keyed",
        }
    }

    fn is_owner_keyed(&self) -> bool {
        *self == HeMode::OwnerKeyed
    }
}

/// Default user-side memory budget of the HE evaluation (MiB).
pub const DEFAULT_MEMORY_BUDGET_MB: usize = 1536;

fn is_default_budget(mb: &usize) -> bool {
    *mb == DEFAULT_MEMORY_BUDGET_MB
}

/// Settings of the encrypt and infer stages (BFV parameters, quantisation, layout, workload).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeConfig {
    /// Protocol mode. Left out of the serialised config when owner-keyed (the default), so that
    /// stage hashes of older runs still match.
    #[serde(skip_serializing_if = "HeMode::is_owner_keyed")]
    pub mode: HeMode,
    /// Ring degree N.
    pub degree: usize,
    /// Bit sizes of the ciphertext primes (their sum must respect 128-bit security for N).
    pub moduli_bits: Vec<usize>,
    /// Bits of each plaintext prime.
    pub plaintext_bits: usize,
    /// Number of CRT plaintext primes (their product must hold every layer-2 value).
    pub crt_moduli: usize,
    /// Widest signed weight quantisation tried (narrowed until the no-wrap bound holds).
    pub max_weight_bits: u32,
    /// Layout of the main (throughput) run.
    pub layout: HeLayout,
    /// Most weights per packed ciphertext. 256 (512 before 2026-12-03): a user holding the
    /// weights packed expands two such chunks side by side on two cores in the memory of one
    /// 512-weight chunk (CIFAR-10 quick, 50 %, 16 images: 1.66 s instead of 2.53 s per image).
    /// 1: every weight its own fresh ciphertext, no expansion and none of its key-switching
    /// noise, so that one wide plaintext prime can replace two CRT residues (MNIST).
    pub max_chunk: usize,
    /// Bits of modulus kept above t when results are switched down before sending.
    pub headroom_bits: f64,
    /// Test images evaluated under HE (0 = the whole test split).
    pub images: usize,
    /// Test images of the 100 %-encrypted-block baseline (0 = skip it).
    pub full_block_images: usize,
    /// Measure single-image latency with the spatial layout.
    pub latency: bool,
    /// User-side memory budget (MiB) the HE evaluation keeps its weights and working set within
    /// (fastest fitting residency; see `privdnn_he::engine::weights`). Left out of the serialised
    /// config at its default, so that stage hashes of older runs still match.
    #[serde(skip_serializing_if = "is_default_budget")]
    pub memory_budget_mb: usize,
    /// Selection to encrypt instead of the select stage's default, e.g. `{ "1" = [0], "2" = [0] }`.
    pub selection: Option<std::collections::BTreeMap<String, Vec<usize>>>,
    /// Parameters of the 100 %-block baseline (`full_block_images`) when they differ from the
    /// selection's (`[he.full_block]`): a small selection can ship fresh weights under one
    /// plaintext residue, the whole block cannot. Left out of the serialised config when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_block: Option<FullBlockParams>,
}

/// Most weights per packed ciphertext of the 100 %-block baseline: a packed chunk is expanded
/// whole (chunk × one ciphertext) while the filters stream, so it stays small.
pub const FULL_BLOCK_CHUNK: usize = 128;

/// BFV parameters and packing of the 100 %-block baseline (`[he.full_block]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FullBlockParams {
    /// Bit sizes of the ciphertext primes.
    pub moduli_bits: Vec<usize>,
    /// Bits of each plaintext prime.
    pub plaintext_bits: usize,
    /// Number of CRT plaintext primes.
    pub crt_moduli: usize,
    /// Most weights per packed ciphertext (capped at [`FULL_BLOCK_CHUNK`]).
    pub max_chunk: usize,
}

impl HeConfig {
    /// The settings of the 100 %-block baseline: `[he.full_block]`'s parameters when given, and
    /// chunks of at most [`FULL_BLOCK_CHUNK`] weights.
    pub fn full_block_config(&self) -> HeConfig {
        let mut fb = self.clone();
        if let Some(p) = &self.full_block {
            fb.moduli_bits = p.moduli_bits.clone();
            fb.plaintext_bits = p.plaintext_bits;
            fb.crt_moduli = p.crt_moduli;
            fb.max_chunk = p.max_chunk;
        }
        fb.max_chunk = fb.max_chunk.min(FULL_BLOCK_CHUNK);
        fb.full_block = None;
        fb
    }

    /// The checks of [`PipelineConfig::validate`] on one parameter set.
    fn check_params(&self, table: &str) -> Result<(), String> {
        if !self.degree.is_power_of_two() || self.moduli_bits.len() < 2 || self.crt_moduli == 0 {
            return Err(format!(
                "`{table}`: degree {} must be a power of two, moduli_bits needs at least 2 primes \
                 (got {}), crt_moduli at least 1",
                self.degree,
                self.moduli_bits.len()
            ));
        }
        if !(3..=16).contains(&self.max_weight_bits) || self.max_chunk == 0 {
            return Err(format!(
                "`{table}.max_weight_bits` must be in 3..=16 and `{table}.max_chunk` positive"
            ));
        }
        Ok(())
    }
}

impl Default for HeConfig {
    fn default() -> Self {
        Self {
            mode: HeMode::OwnerKeyed,
            degree: 8192,
            moduli_bits: vec![54, 54, 54, 54],
            plaintext_bits: 24,
            crt_moduli: 2,
            max_weight_bits: 8,
            layout: HeLayout::Batch,
            max_chunk: 256,
            headroom_bits: 20.0,
            images: 0,
            full_block_images: 0,
            memory_budget_mb: DEFAULT_MEMORY_BUDGET_MB,
            latency: true,
            selection: None,
            full_block: None,
        }
    }
}

/// Settings of the attack stage (spec §4): model recovery (freeze / unfreeze) and training from
/// scratch on the attacker's labelled validation samples, the selection-percent and sample-count
/// sweeps, weight extraction by the user and input recovery by the owner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttackConfig {
    /// Experiments to run, in order: `recover`, `samples`, `sweep`, `extract`, `invert`.
    pub experiments: Vec<String>,
    /// Labelled validation samples of the attacker (the reference: 1,000, seed 0).
    pub samples: usize,
    /// Sample counts of the sample-count curve (at the default selection).
    pub sample_counts: Vec<usize>,
    /// Selection percents of the sweep (empty = `select.sweep_percents`; LeNet5 pipelines use
    /// them too).
    pub percents: Vec<f64>,
    /// Algorithm choosing a sweep point's selection when `select/sweep.json` lacks it.
    pub sweep_algorithm: SelectAlgorithm,
    /// Fine-tuning epochs of the recovery (reference: 64).
    pub epochs: usize,
    /// Mini-batch size of recovery and training from scratch (reference: 128).
    pub batch_size: usize,
    /// Learning rate of the re-initialised filters (0 = `train.learning_rate` / 10, the
    /// reference's per-dataset values).
    pub learning_rate: f64,
    /// Ratio between the re-initialised filters' rate and the other weights' rate (unfreeze).
    pub lr_ratio: f64,
    /// Epochs of training from scratch (reference: 512).
    pub scratch_epochs: usize,
    /// Test images used to measure every accuracy (0 = the whole test split).
    pub eval_images: usize,
    /// Query counts tried by the weight-extraction attack.
    pub extract_queries: Vec<usize>,
    /// Levenberg–Marquardt iterations of the extraction solver (per start).
    pub extract_iterations: usize,
    /// Extra random starts of the extraction solver when a start stalls.
    pub extract_restarts: usize,
    /// Selection percent of the extraction on percent pipelines (0 = the default selection).
    pub extract_percent: f64,
    /// Test images inverted by the input-recovery attack.
    pub invert_images: usize,
    /// Optimisation steps of the input recovery (reference: 1,000).
    pub invert_steps: usize,
    /// Adam learning rate of the input recovery (reference: 1e-3; pixels in [0, 1]).
    pub invert_learning_rate: f64,
    /// Selection percent of the input recovery on percent pipelines (0 = default selection;
    /// the reference used 50 %).
    pub invert_percent: f64,
}

impl Default for AttackConfig {
    fn default() -> Self {
        Self {
            experiments: ["recover", "samples", "sweep", "extract", "invert"]
                .map(String::from)
                .to_vec(),
            samples: 1000,
            sample_counts: vec![100, 250, 500, 1000, 5000],
            percents: Vec::new(),
            sweep_algorithm: SelectAlgorithm::Greedy,
            epochs: 64,
            batch_size: 128,
            learning_rate: 0.0,
            lr_ratio: 10.0,
            scratch_epochs: 512,
            eval_images: 0,
            extract_queries: vec![1, 2, 4, 8, 12, 16, 24, 32, 64],
            extract_iterations: 100,
            extract_restarts: 8,
            extract_percent: 50.0,
            invert_images: 8,
            invert_steps: 1000,
            invert_learning_rate: 0.01,
            invert_percent: 50.0,
        }
    }
}
