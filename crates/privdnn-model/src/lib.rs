//! The four PrivDNN architectures in burn, split at the points the protocol needs.
//!
//! Every network is evaluated as four stages (spec §2.2, §5):
//! `conv1` (raw output z1) → `layer1` (pool / BN / **square**: a1) → `conv2` (raw output z2) →
//! `tail` (everything after conv2, in clear). Layers 1–2 are the encryptable block; the split lets
//! the selection stage mask channels (remove) and cache intermediate maps, and lets the HE stages
//! replace the block. [`partition`] holds the separate/remove transforms of spec §3.1 and the
//! fast cached evaluator (select and attack use them); [`RemainderNet`] is the user's clear
//! remainder network of the partial-encryption protocol. [`UpperNet`] and [`TopNet`] are the
//! server's and the label holder's parts of SPNN split training (`features` / `head` split the
//! tail before its final linear layer). Weights travel as
//! [`privdnn_artifacts::TrainedModel`] (named tensors), so no other crate needs burn. This crate never reads files and never touches HE.

mod alexnet;
mod convert;
mod device;
mod error;
mod eval;
mod fpenv;
mod layers;
mod lenet;
mod network;
pub mod partition;
mod remainder;
mod resnet;
mod split;
mod top;
mod vgg;
mod weights;

pub use convert::{data_values, tensor_values};
pub use device::{available_backends, backend_device};
pub use error::ModelError;
pub use eval::{Evaluation, batch_tensor, correct_count, evaluate, label_tensor};
pub use fpenv::{flushed_thread_pool, with_flushed_denormals};
pub use network::{ChannelMasks, Network};
pub use remainder::RemainderNet;
pub use split::{UpperNet, UpperOptimizer, UpperState, UpperStep};
pub use top::{TopNet, TopState, TopStep};
pub use weights::{ExportedTensors, export_tensors, import_tensors};

/// Re-export of the burn items that stage crates need alongside this crate's types.
pub mod burn {
    pub use ::burn::*;
}

#[cfg(test)]
mod tests;
