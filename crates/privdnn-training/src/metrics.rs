//! The `metrics.json` of the training stage.

use privdnn_artifacts::EpochRecord;
use serde::{Deserialize, Serialize};

/// What the training stage measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainMetrics {
    /// Pipeline name.
    pub pipeline: String,
    /// Config profile.
    pub profile: String,
    /// Dataset.
    pub dataset: String,
    /// Architecture name.
    pub architecture: String,
    /// Width multiplier.
    pub width: f64,
    /// Trainable parameters + buffers (scalar count).
    pub parameters: usize,
    /// burn backend used.
    pub backend: String,
    /// Images in the train / validation / test splits.
    pub split_sizes: [usize; 3],
    /// Epochs configured.
    pub epochs_configured: usize,
    /// Epochs run (less than configured after early stopping).
    pub epochs_run: usize,
    /// Epoch whose weights were kept (best validation accuracy).
    pub best_epoch: usize,
    /// Top-1 test accuracy of the kept weights, percent (= A_o).
    pub test_accuracy: f64,
    /// Top-5 test accuracy, percent.
    pub test_top5_accuracy: f64,
    /// Top-1 validation accuracy of the kept weights, percent.
    pub validation_accuracy: f64,
    /// Top-5 validation accuracy, percent.
    pub validation_top5_accuracy: f64,
    /// Per-class top-1 test accuracy, percent.
    pub test_per_class_accuracy: Vec<f64>,
    /// Wall seconds of this invocation (training + evaluation).
    pub seconds: f64,
    /// Wall seconds spent in training steps over all epochs (including resumed ones).
    pub train_seconds: f64,
    /// Training throughput, images per second of training steps.
    pub train_images_per_second: f64,
    /// Epoch the run resumed from (0 = fresh start).
    pub resumed_from_epoch: usize,
    /// Per-epoch history.
    pub history: Vec<EpochRecord>,
}
