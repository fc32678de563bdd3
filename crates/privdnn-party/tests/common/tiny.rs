//! The tiny LeNet5 of the networked-protocol tests (4/5 filters, 28×28, 10 classes, burn's
//! seeded initial weights) and its owner-keyed files written by the real setup (N = 8192, two
//! CRT residues). One copy for `privdnn-party`'s tests (`common/mod.rs`) and the workspace's
//! `tests/tests/key_recovery_tcp.rs` (`#[path]`), so it names only library crates.

#![allow(dead_code)]

use std::path::Path;

use privdnn_artifacts::{
    Architecture, ModelSpec, NeuronSelection, Normalization, RunLayout, TrainedModel,
    write_artifact,
};
use privdnn_config::{Backend, HeConfig};
use privdnn_model::{Network, export_tensors};
use privdnn_partial::setup::EncryptOutputs;

/// The model, with freshly initialised weights.
pub fn tiny_model() -> TrainedModel {
    let device = privdnn_model::backend_device(Backend::Flex, false).expect("device");
    let spec = ModelSpec {
        architecture: Architecture::Lenet5,
        in_channels: 1,
        image_size: 28,
        num_classes: 10,
        lenet_filters: [4, 5],
        width: 1.0,
    };
    let (tensors, _) =
        export_tensors(&Network::new(&spec, &device).expect("network")).expect("export");
    TrainedModel {
        dataset: "synthetic".into(),
        spec,
        normalization: Normalization {
            mean: vec![0.4],
            std: vec![0.25],
        },
        tensors,
    }
}

/// Conv1 channel 1 and the conv2 filters `layer2` selected.
pub fn tiny_selection(layer2: &[usize]) -> NeuronSelection {
    NeuronSelection {
        layer1: vec![1],
        layer2: layer2.to_vec(),
        channels: [4, 5],
        algorithm: "test".into(),
    }
}

/// The owner-keyed setup of `model` (chunks of 64 slots) with its three files written where
/// `RunLayout::new(run_dir)` puts them.
pub fn encrypt_run(
    model: &TrainedModel,
    selection: &NeuronSelection,
    run_dir: &Path,
) -> EncryptOutputs {
    let he = HeConfig {
        max_chunk: 64,
        ..HeConfig::default()
    };
    let out = privdnn_partial::setup::encrypt(model, selection, &he).expect("encrypt");
    let layout = RunLayout::new(run_dir);
    write_artifact(&layout.encrypted_model(), &out.model).expect("write model");
    write_artifact(&layout.evaluation_keys(), &out.keys).expect("write keys");
    write_artifact(&layout.owner_secret(), &out.secret).expect("write secret");
    out
}
