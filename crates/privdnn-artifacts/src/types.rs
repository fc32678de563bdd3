//! Plain-data types that cross stage boundaries: datasets, model specifications, trained weights
//! and training checkpoints. No behaviour beyond small accessors lives here.

use serde::{Deserialize, Serialize};

use crate::envelope::{Artifact, ArtifactKind};

/// One split of an image-classification dataset, as raw bytes (values 0–255, NCHW order).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetSplit {
    /// Dataset name, e.g. `mnist`.
    pub dataset: String,
    /// Split name, e.g. `train` or `test`.
    pub split: String,
    /// Channels per image.
    pub channels: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Class names in label order.
    pub class_names: Vec<String>,
    /// One label per image.
    pub labels: Vec<u16>,
    /// `len × channels × height × width` bytes.
    #[serde(with = "serde_bytes")]
    pub images: Vec<u8>,
}

impl DatasetSplit {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the split holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The bytes of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.images[i * n..(i + 1) * n]
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// A new split holding the images at `indices`, in that order.
    pub fn subset(&self, indices: &[usize], split: &str) -> DatasetSplit {
        let mut images = Vec::with_capacity(indices.len() * self.image_len());
        for &i in indices {
            images.extend_from_slice(self.image(i));
        }
        DatasetSplit {
            dataset: self.dataset.clone(),
            split: split.to_string(),
            channels: self.channels,
            height: self.height,
            width: self.width,
            class_names: self.class_names.clone(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            images,
        }
    }
}

impl Artifact for DatasetSplit {
    const KIND: ArtifactKind = ArtifactKind::Dataset;

    /// Non-empty image dimensions, exactly `labels × c·h·w` image bytes, every label below the
    /// number of classes (so [`DatasetSplit::image`] and per-class lookups cannot go out of
    /// range on a decoded file).
    fn check(&self) -> Result<(), String> {
        let (c, h, w) = (self.channels, self.height, self.width);
        let per_image = c
            .checked_mul(h)
            .and_then(|x| x.checked_mul(w))
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("images of {c}×{h}×{w} bytes"))?;
        let expected =
            self.labels.len().checked_mul(per_image).ok_or_else(|| {
                format!("{} labels of {per_image} bytes overflow", self.labels.len())
            })?;
        if self.images.len() != expected {
            return Err(format!(
                "{} image bytes for {} labels of {c}×{h}×{w} (expected {expected})",
                self.images.len(),
                self.labels.len()
            ));
        }
        if let Some(bad) = self
            .labels
            .iter()
            .find(|&&l| usize::from(l) >= self.num_classes())
        {
            return Err(format!(
                "label {bad} but only {} classes are named",
                self.num_classes()
            ));
        }
        Ok(())
    }
}

/// The model families of the paper.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Architecture {
    /// LeNet5 with average pooling and a square after conv1 (MNIST / EMNIST).
    Lenet5,
    /// The AlexNet variant of the GTSRB task.
    Alexnet,
    /// VGG16 with the per-channel 3×3 conv after conv2 (CIFAR-10).
    Vgg16,
    /// The ResNet18 variant of the Tiny ImageNet task.
    Resnet18,
}

impl Architecture {
    /// Lower-case name used in configs and file names.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Lenet5 => "lenet5",
            Architecture::Alexnet => "alexnet",
            Architecture::Vgg16 => "vgg16",
            Architecture::Resnet18 => "resnet18",
        }
    }
}

/// Everything needed to rebuild a model's shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// Model family.
    pub architecture: Architecture,
    /// Input channels.
    pub in_channels: usize,
    /// Input height and width (square images).
    pub image_size: usize,
    /// Output classes.
    pub num_classes: usize,
    /// Filters of conv1 and conv2 before the width multiplier (LeNet5: 6/16 or 10/20; the
    /// other families have fixed widths and ignore this).
    pub lenet_filters: [usize; 2],
    /// Width multiplier applied to every conv and hidden layer (1.0 = the paper's width).
    pub width: f64,
}

impl ModelSpec {
    /// Channels after applying the width multiplier to a base count (at least 1).
    pub fn scaled(&self, base: usize) -> usize {
        ((base as f64 * self.width).round() as usize).max(1)
    }
}

/// Per-channel input normalisation: `x = (byte / 255 − mean[c]) / std[c]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Per-channel mean on the [0, 1] scale.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation on the [0, 1] scale.
    pub std: Vec<f32>,
}

/// One named parameter or buffer tensor, row-major.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NamedTensor {
    /// Dotted path, e.g. `conv1.weight`.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub values: Vec<f32>,
}

/// Trained weights of one model, independent of the deep-learning library.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainedModel {
    /// Dataset the model was trained on.
    pub dataset: String,
    /// Shape of the model.
    pub spec: ModelSpec,
    /// Input normalisation the model expects.
    pub normalization: Normalization,
    /// Every parameter and buffer (batch-norm running statistics included).
    pub tensors: Vec<NamedTensor>,
}

impl TrainedModel {
    /// Looks a tensor up by name.
    pub fn tensor(&self, name: &str) -> Option<&NamedTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

impl Artifact for TrainedModel {
    const KIND: ArtifactKind = ArtifactKind::TrainedModel;

    /// Every tensor holds as many values as its shape says; the normalisation has one mean and
    /// one deviation per input channel.
    fn check(&self) -> Result<(), String> {
        let channels = self.spec.in_channels;
        let norm = &self.normalization;
        if norm.mean.len() != channels || norm.std.len() != channels {
            return Err(format!(
                "normalisation for {}/{} channels, the model has {channels}",
                norm.mean.len(),
                norm.std.len()
            ));
        }
        for t in &self.tensors {
            let count = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            if count != Some(t.values.len()) {
                return Err(format!(
                    "tensor {} of shape {:?} holds {} values",
                    t.name,
                    t.shape,
                    t.values.len()
                ));
            }
        }
        Ok(())
    }
}

/// What one training epoch achieved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Training accuracy in percent (augmented batches, train mode).
    pub train_accuracy: f64,
    /// Validation accuracy in percent (top-1).
    pub val_accuracy: f64,
    /// Learning rate used.
    pub learning_rate: f64,
    /// Seconds the epoch took (training and validation).
    pub seconds: f64,
}

/// A resumable training state, written after every epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainCheckpoint {
    /// Hash of the resolved config the run started with; resuming with another config restarts.
    pub config_hash: String,
    /// Weights after the last completed epoch.
    pub current: TrainedModel,
    /// Weights of the epoch with the best validation accuracy so far.
    pub best: TrainedModel,
    /// Epoch (1-based) of `best`.
    pub best_epoch: usize,
    /// Per-epoch history so far.
    pub history: Vec<EpochRecord>,
    /// Parameter ids of `current` by tensor name (the optimiser state is keyed by them).
    pub param_ids: Vec<(String, u64)>,
    /// Optimiser state (burn record bytes), empty when not saved.
    #[serde(with = "serde_bytes")]
    pub optimizer_state: Vec<u8>,
}

impl TrainCheckpoint {
    /// Number of completed epochs.
    pub fn epochs_done(&self) -> usize {
        self.history.len()
    }
}

impl Artifact for TrainCheckpoint {
    const KIND: ArtifactKind = ArtifactKind::TrainCheckpoint;

    /// Both models pass [`TrainedModel`]'s check.
    fn check(&self) -> Result<(), String> {
        self.current.check()?;
        self.best.check()
    }
}

/// The selected ("core") filters of conv1 and conv2: the output of the select stage and the
/// input of the encrypt stage. Lists keep the order of selection (as the reference's JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeuronSelection {
    /// Selected conv1 filters.
    pub layer1: Vec<usize>,
    /// Selected conv2 filters.
    pub layer2: Vec<usize>,
    /// Filters of conv1 and conv2 in the model the selection was made for.
    pub channels: [usize; 2],
    /// Algorithm that chose it.
    pub algorithm: String,
}

impl NeuronSelection {
    /// Checks the selection against a model with `channels` filters in conv1 and conv2: no empty
    /// layer, no index out of range, no duplicate. The message says what is wrong.
    pub fn validate(&self, channels: [usize; 2]) -> Result<(), String> {
        if self.channels != channels {
            return Err(format!(
                "selection was made for a model with {}/{} filters in conv1/conv2, this model has {}/{}",
                self.channels[0], self.channels[1], channels[0], channels[1]
            ));
        }
        for (layer, list, c) in [
            (1, &self.layer1, channels[0]),
            (2, &self.layer2, channels[1]),
        ] {
            if list.is_empty() {
                return Err(format!(
                    "layer {layer} selects no filter; select at least one"
                ));
            }
            if let Some(bad) = list.iter().find(|&&i| i >= c) {
                return Err(format!(
                    "layer {layer} selects filter {bad}, but the layer has filters 0..={}",
                    c - 1
                ));
            }
            let mut sorted = list.clone();
            sorted.sort_unstable();
            sorted.dedup();
            if sorted.len() != list.len() {
                return Err(format!("layer {layer} lists a filter twice: {list:?}"));
            }
        }
        Ok(())
    }

    /// The reference's JSON form: `{"1": [..], "2": [..]}`.
    pub fn to_reference_json(&self) -> serde_json::Value {
        serde_json::json!({ "1": self.layer1, "2": self.layer2 })
    }

    /// Parses the reference's JSON form (channels must be given: the JSON does not hold them).
    pub fn from_reference_json(
        text: &str,
        channels: [usize; 2],
        algorithm: &str,
    ) -> Result<Self, String> {
        let value: std::collections::BTreeMap<String, Vec<usize>> = serde_json::from_str(text)
            .map_err(|e| format!("expected {{\"1\": [..], \"2\": [..]}}: {e}"))?;
        let layer = |k: &str| {
            value.get(k).cloned().ok_or_else(|| {
                format!("missing key \"{k}\" (expected {{\"1\": [..], \"2\": [..]}})")
            })
        };
        if let Some(extra) = value.keys().find(|k| *k != "1" && *k != "2") {
            return Err(format!(
                "unexpected key \"{extra}\": only layers \"1\" and \"2\" can be encrypted"
            ));
        }
        let selection = NeuronSelection {
            layer1: layer("1")?,
            layer2: layer("2")?,
            channels,
            algorithm: algorithm.to_string(),
        };
        selection.validate(channels)?;
        Ok(selection)
    }
}

impl Artifact for NeuronSelection {
    const KIND: ArtifactKind = ArtifactKind::Selection;

    /// Every index below its layer's filter count, none twice (an empty layer is left to the
    /// stage that uses the selection).
    fn check(&self) -> Result<(), String> {
        for (layer, list, c) in [
            (1, &self.layer1, self.channels[0]),
            (2, &self.layer2, self.channels[1]),
        ] {
            if let Some(bad) = list.iter().find(|&&i| i >= c) {
                return Err(format!(
                    "layer {layer} selects filter {bad} of a layer with {c} filters"
                ));
            }
            let mut sorted = list.clone();
            sorted.sort_unstable();
            sorted.dedup();
            if sorted.len() != list.len() {
                return Err(format!("layer {layer} lists a filter twice: {list:?}"));
            }
        }
        Ok(())
    }
}
