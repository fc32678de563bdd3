//! A real-shaped model for the protocol tests without training or burn: the `tiny` pipeline's
//! LeNet5 shape (half width: 3/8 filters, fc 128→60→42→10, 28×28) with seeded uniform weights of
//! PyTorch's default scale (±1/√fan_in), and the `tiny` pipeline's synthetic images.
//! Trained-model checks (accuracy, float vs integer) live in the workspace's `tests/` crate.
//! [`vgg`] is the larger model of the cost profiles, [`uniform`] the statistics of the view tests;
//! privdnn-twoserver's tests include this module too (`#[path]`), one copy for both protocols.

#![allow(dead_code)]

pub mod uniform;
pub mod vgg;

use std::sync::OnceLock;

use privdnn_artifacts::{
    Architecture, DatasetSplit, ModelSpec, NamedTensor, Normalization, TrainedModel,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A model and images for it.
pub struct Fixture {
    /// Weights.
    pub model: TrainedModel,
    /// Synthetic test images.
    pub test: DatasetSplit,
}

fn tensor(rng: &mut ChaCha8Rng, name: &str, shape: Vec<usize>, fan_in: usize) -> NamedTensor {
    let bound = 1.0 / (fan_in as f32).sqrt();
    let n = shape.iter().product();
    NamedTensor {
        name: name.into(),
        shape,
        values: (0..n).map(|_| rng.random_range(-bound..bound)).collect(),
    }
}

/// The fixture, built once per test binary.
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let r = &mut rng;
        let tensors = vec![
            tensor(r, "conv1.weight", vec![3, 1, 5, 5], 25),
            tensor(r, "conv1.bias", vec![3], 25),
            tensor(r, "conv2.weight", vec![8, 3, 5, 5], 75),
            tensor(r, "conv2.bias", vec![8], 75),
            tensor(r, "fc1.weight", vec![128, 60], 128),
            tensor(r, "fc1.bias", vec![60], 128),
            tensor(r, "fc2.weight", vec![60, 42], 60),
            tensor(r, "fc2.bias", vec![42], 60),
            tensor(r, "fc3.weight", vec![42, 10], 42),
            tensor(r, "fc3.bias", vec![10], 42),
        ];
        let (_, test) = privdnn_data::synthetic(10, 200, 28, 1, 0);
        Fixture {
            model: TrainedModel {
                dataset: "synthetic".into(),
                spec: ModelSpec {
                    architecture: Architecture::Lenet5,
                    in_channels: 1,
                    image_size: 28,
                    num_classes: 10,
                    lenet_filters: [6, 16],
                    width: 0.5,
                },
                normalization: Normalization {
                    mean: vec![0.5],
                    std: vec![0.25],
                },
                tensors,
            },
            test,
        }
    })
}
