//! The tiny synthetic task every SPNN test file trains on (48 training and 20 test images of
//! 16 × 16 pixels, 3 classes, LeNet5 2/4), its settings, and the lock that keeps this process
//! to one training at a time (burn's generator and pool are shared).

use privdnn_artifacts::{Architecture, DatasetSplit, ModelSpec, Normalization};
use privdnn_spnn::{Settings, Task};

/// One training at a time in this process.
pub static ONE_TRAINING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The task with its training and test splits.
pub fn task() -> (Task, DatasetSplit, DatasetSplit) {
    let (train, test) = privdnn_data::synthetic(48, 20, 16, 1, 3);
    let spec = ModelSpec {
        architecture: Architecture::Lenet5,
        in_channels: 1,
        image_size: 16,
        num_classes: train.num_classes(),
        lenet_filters: [2, 4],
        width: 1.0,
    };
    let task = Task {
        spec,
        normalization: Normalization {
            mean: vec![0.5],
            std: vec![0.25],
        },
        dataset: "tiny".to_string(),
    };
    (task, train, test)
}

/// Settings of `epochs` epochs of 16-image batches.
pub fn settings(epochs: usize) -> Settings {
    Settings {
        epochs,
        batch_size: 16,
        learning_rate: 0.01,
        seed: 7,
        ..Settings::default()
    }
}
