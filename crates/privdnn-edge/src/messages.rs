//! Typed messages and the bundles the owner hands out, with their byte encoding (the project's
//! bincode configuration through `privdnn-artifacts`; ring vectors travel as raw 8-byte words).
//!
//! Nothing a device holds names an edge's layers and nothing an edge holds names a key pair: the
//! three bundle types are disjoint.

use std::path::Path;

use privdnn_artifacts::{decode_payload, encode_payload};
use privdnn_mpc::{IntModel, MaskKey, Op, RingVec};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::Result;

/// Which of the two edge servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EdgeRole {
    /// EdgeA: receives `x + r`.
    A,
    /// EdgeB: receives `S_in − r`.
    B,
}

impl EdgeRole {
    /// `"a"` or `"b"`.
    pub fn name(self) -> &'static str {
        match self {
            EdgeRole::A => "a",
            EdgeRole::B => "b",
        }
    }
}

/// What the owner gives an edge server: the linear layers in plaintext, nothing else.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EdgeBundle {
    /// Which edge this is.
    pub role: EdgeRole,
    /// The model's linear ops (conv / FC with weights and bias), in order.
    pub layers: Vec<Op>,
}

/// The device's key pair of one linear layer: a uniform input mask and its image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyPair {
    /// `S_in`, uniform in Z_2^64.
    pub s_in: RingVec,
    /// `S_out = L(S_in)`.
    pub s_out: RingVec,
}

/// A known-answer test of one linear layer: a uniform input and its image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestPair {
    /// `t`.
    pub input: RingVec,
    /// `L(t)`.
    pub output: RingVec,
}

/// Random-sampling integrity check settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IntegrityConfig {
    /// Probability, per image and linear layer, that the device adds one hidden test item to
    /// the request.
    pub test_probability: f64,
    /// Test pairs the owner prepares per layer.
    pub tests_per_layer: usize,
}

impl Default for IntegrityConfig {
    fn default() -> Self {
        Self {
            test_probability: 0.1,
            tests_per_layer: 4,
        }
    }
}

/// What the owner gives the device: the model without any linear weight (shapes and the
/// non-linear steps), one key pair and a few test pairs per linear layer, and the PRF key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceBundle {
    /// The integer model with every conv / FC weight and bias removed.
    pub model: IntModel,
    /// One key pair per linear layer, for the device's whole life.
    pub keys: Vec<KeyPair>,
    /// Known-answer tests per linear layer.
    pub tests: Vec<Vec<TestPair>>,
    /// PRF key of the per-query masks and sampling decisions.
    pub prf_key: MaskKey,
    /// Integrity settings.
    pub integrity: IntegrityConfig,
}

/// Device → edge: one linear layer's masked inputs (real images and hidden tests, shuffled).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerRequest {
    /// Batch identifier (random, fresh per batch).
    pub batch: u64,
    /// Index of the linear layer.
    pub layer: u32,
    /// Masked inputs.
    pub items: Vec<RingVec>,
}

/// Edge → device: the layer applied to every item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerReply {
    /// Echo of the request's batch.
    pub batch: u64,
    /// Echo of the request's layer.
    pub layer: u32,
    /// `L(item)` per item, same order.
    pub items: Vec<RingVec>,
}

/// Encodes a message or bundle.
pub fn to_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    Ok(encode_payload(value, Path::new("<edge message>"))?)
}

/// Decodes a message or bundle (trailing bytes refused).
pub fn from_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    Ok(decode_payload(
        bytes,
        Path::new("<edge message>"),
        "`privdnn-edge setup`",
    )?)
}
