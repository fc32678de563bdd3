//! Setup shared by the harness and the processes: the training settings, the first layer's
//! geometry from the model spec, the keys, the learning-rate schedule and the checkpoint.

use std::path::Path;

use privdnn_artifacts::{Architecture, ModelSpec, Normalization};
use privdnn_model::{TopNet, TopState, UpperNet, UpperOptimizer, UpperState};
use privdnn_mpc::ir::TensorShape;
use privdnn_mpc::{MaskKey, ring};
use serde::{Deserialize, Serialize};

use crate::error::SpnnError;
use crate::fixed::{Encoding, Geometry};
use crate::holder::{HolderKeys, HolderState};

/// Training settings (the plaintext run's where they exist).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Upper network: optimiser and base learning rate.
    pub optimizer: UpperOptimizer,
    /// Base learning rate of the upper network.
    pub learning_rate: f64,
    /// Weight decay of the upper network.
    pub weight_decay: f64,
    /// Base learning rate of the shared first layer (plain SGD on shares).
    pub conv1_learning_rate: f64,
    /// Cosine schedule over the epochs (else constant).
    pub cosine: bool,
    /// Seed: initial weights, epoch order, keys of the harness.
    pub seed: u64,
    /// SGLD noise σ on the first layer's updates (weight units); 0 = none.
    pub noise_sigma: f64,
    /// Fixed-point encoding.
    pub encoding: Encoding,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            epochs: 1,
            batch_size: 128,
            optimizer: UpperOptimizer::Adam,
            learning_rate: 1e-3,
            weight_decay: 0.0,
            conv1_learning_rate: 0.05,
            cosine: true,
            seed: 0,
            noise_sigma: 0.0,
            encoding: Encoding::default(),
        }
    }
}

impl Settings {
    /// Learning rates (upper, conv1) of epoch `epoch` (1-based), as the train stage's schedule.
    pub fn rates(&self, epoch: usize) -> (f64, f64) {
        let f = if self.cosine {
            let progress = (epoch - 1) as f64 / self.epochs.max(1) as f64;
            0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
        } else {
            1.0
        };
        (self.learning_rate * f, self.conv1_learning_rate * f)
    }
}

/// conv1's geometry for `spec`, split after `cut` columns (default: half the width).
pub fn geometry(spec: &ModelSpec, cout: usize, cut: Option<usize>) -> Result<Geometry, SpnnError> {
    let (k, pad) = match spec.architecture {
        Architecture::Lenet5 => (5, 0),
        Architecture::Alexnet => (5, 1),
        Architecture::Vgg16 => (3, 1),
        Architecture::Resnet18 => {
            return Err(SpnnError::config(
                "ResNet18's conv1 has no bias; not supported",
            ));
        }
    };
    let s = spec.image_size;
    Geometry::new(
        TensorShape::new(spec.in_channels, s, s),
        cout,
        k,
        1,
        pad,
        cut.unwrap_or(s / 2),
    )
}

/// 32 bytes of a key derived from `root` for `label`.
pub fn derive_key(root: &MaskKey, label: &str) -> MaskKey {
    let words = root.stream(label, &[]).ring(4);
    let mut k = [0u8; 32];
    for (chunk, w) in k.chunks_mut(8).zip(words) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    MaskKey(k)
}

/// The keys of both holders and the dealer's two seeds, all from one root (the harness and
/// the processes of one run; a deployment draws them at random and exchanges them at setup).
pub fn keys(root: &MaskKey) -> [HolderKeys; 2] {
    let pair = derive_key(root, "pair");
    [0, 1].map(|p| HolderKeys {
        pair: pair.clone(),
        dealer: derive_key(root, if p == 0 { "dealer-a" } else { "dealer-b" }),
        own: derive_key(root, if p == 0 { "own-a" } else { "own-b" }),
    })
}

/// The root key of a run from its seed.
pub fn root_key(seed: u64) -> MaskKey {
    let mut k = [0u8; 32];
    k[..8].copy_from_slice(&seed.to_le_bytes());
    k[8..16].copy_from_slice(b"spnn-key");
    MaskKey(k)
}

/// The float conv1 weights and bias of the holders' shares (the model owner's opening at the end).
pub fn open_weights(enc: &Encoding, a: &HolderState, b: &HolderState) -> (Vec<f32>, Vec<f32>) {
    let decode = |x: &[u64], y: &[u64], bits: u32| -> Vec<f32> {
        ring::add(x, y)
            .iter()
            .map(|v| ring::decode_fixed(*v, bits) as f32)
            .collect()
    };
    (
        decode(&a.weights.0, &b.weights.0, enc.weight_bits),
        decode(&a.bias.0, &b.bias.0, enc.output_bits()),
    )
}

/// One epoch's record.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Training accuracy of the steps (percent).
    pub train_accuracy: f64,
    /// Test accuracy of the model opened after the epoch (percent).
    pub test_accuracy: f64,
    /// Wall seconds of the epoch's steps.
    pub seconds: f64,
    /// Holders' and dealer's cryptographic compute (seconds, summed over roles).
    pub crypto_seconds: f64,
    /// Server compute (seconds).
    pub server_seconds: f64,
    /// Transfer and waiting (seconds: wall minus compute on the critical path).
    pub transfer_seconds: f64,
    /// First-layer forwards checked against the shadow / equal to it.
    pub forwards_checked: u64,
    /// Forwards equal to the shadow bit for bit.
    pub forwards_exact: u64,
}

/// Everything needed to continue a run: both holders' shares, the server's network and
/// optimiser, the step counter and the history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Settings of the run (a resume with other settings starts fresh).
    pub settings: Settings,
    /// Epochs finished.
    pub epochs_done: usize,
    /// Global steps finished.
    pub steps_done: u64,
    /// Holder A's and B's shares.
    pub holders: [HolderState; 2],
    /// The server's network and optimiser.
    pub upper: UpperState,
    /// Holder B's top layer and optimiser.
    pub top: TopState,
    /// Records of the finished epochs.
    pub history: Vec<EpochRecord>,
}

impl Checkpoint {
    /// Writes the checkpoint atomically (mode 0600: it holds both holders' shares).
    pub fn write(&self, path: &Path) -> Result<(), SpnnError> {
        crate::process::write_state(path, self)
    }

    /// Reads a checkpoint.
    pub fn read(path: &Path) -> Result<Self, SpnnError> {
        crate::process::read_state(path, "spnn checkpoint")
    }
}

/// Everything a run trains for: model shape, normalisation, dataset name.
#[derive(Clone, Debug)]
pub struct Task {
    /// The model's shape.
    pub spec: ModelSpec,
    /// Input normalisation.
    pub normalization: Normalization,
    /// Dataset name (for the artifact).
    pub dataset: String,
}

/// A fresh server network, holder B's fresh top layer, and the initial conv1 weights / bias,
/// all as the train stage initialises a network with `settings.seed`.
#[allow(clippy::type_complexity)]
pub fn initial(
    task: &Task,
    s: &Settings,
) -> Result<(UpperNet, TopNet, Vec<f32>, Vec<f32>), SpnnError> {
    let upper = UpperNet::new(&task.spec, s.seed, s.optimizer, s.weight_decay)?;
    let top = TopNet::new(&task.spec, s.seed, s.optimizer, s.weight_decay)?;
    let (w, b) = upper.conv1()?;
    Ok((upper, top, w.values, b.values))
}
