//! Typed messages between the five roles, and their byte encoding (privdnn-artifacts' codec; the
//! harness and a later TCP transport move only these bytes).
//!
//! Links: owner → S1/S2 ([`ModelShare`], once per model); dealer → S1/S2 ([`DealerSeed`] once,
//! [`DealerToS1`]/[`DealerToS2`] per query, offline); S1 ↔ S2 ([`WeightOpening`] once, then per
//! query [`Opening`], [`Flips`] S2→S1, [`Garbled`] S1→S2); client → S1 ([`InputSeed`]), client → S2
//! ([`InputShare`]); S1/S2 → client ([`LogitShare`]).

use privdnn_artifacts::codec;
use privdnn_gc::GarbledChunk;
use privdnn_gc::ot::{EvaluatorRotSetup, GarblerRotSetup};
use privdnn_mpc::{IntModel, RingVec};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::Result;

/// Owner → server `i`: the public architecture and this server's additive shares of every linear
/// op's weights and bias (in the order of the model's linear ops).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelShare {
    /// Server index (1 or 2).
    pub server: u8,
    /// The model without linear weights (shapes, non-linear ops, requantisation constants).
    pub public: IntModel,
    /// Weight shares, one per linear op.
    pub weights: Vec<RingVec>,
    /// Bias shares, one per linear op.
    pub bias: Vec<RingVec>,
}

/// Dealer → server `i`, once: the seed of this server's triple streams.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DealerSeed {
    /// Server index (1 or 2).
    pub server: u8,
    /// Seed of `[B]_i`, `[A]_i`, `[a]_i` and (server 1) `[C]_1`, `[a²]_1`.
    pub seed: [u8; 32],
}

/// S_i → S_j, once per model: `[W]_i − [B]_i` for every linear op (so both learn `F = W − B`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeightOpening {
    /// One vector per linear op.
    pub layers: Vec<RingVec>,
}

/// Dealer → S1 per query: the garbler's random-OT pairs (seed + count).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DealerToS1 {
    /// Query number.
    pub query: u64,
    /// Random OTs, garbler side.
    pub rots: GarblerRotSetup,
}

/// Dealer → S2 per query: `[C]_2 = C − [C]_1` for every triple / square pair (in step order) and
/// the evaluator's random OTs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DealerToS2 {
    /// Query number.
    pub query: u64,
    /// One correction vector per Linear / Square step.
    pub corrections: Vec<RingVec>,
    /// Random OTs, evaluator side.
    pub rots: EvaluatorRotSetup,
}

/// Client → S1: the seed of S1's input share (halves the upload).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputSeed {
    /// Query number.
    pub query: u64,
    /// Seed; S1's share is its stream.
    pub seed: [u8; 32],
}

/// Client → S2: `x − [x]_1`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputShare {
    /// Query number.
    pub query: u64,
    /// S2's share of the centred image.
    pub share: RingVec,
}

/// S_i → S_j: this server's share of a masked value (`x − A` of a linear step, `x − a` of a square).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Opening {
    /// Query number.
    pub query: u64,
    /// Step index.
    pub step: u32,
    /// The share of the masked value.
    pub words: RingVec,
}

/// S2 → S1: the OT flip bits of S2's gadget inputs for one step, packed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Flips {
    /// Query number.
    pub query: u64,
    /// Step index.
    pub step: u32,
    /// Number of bits.
    pub count: u64,
    /// Packed bits.
    #[serde(with = "serde_bytes")]
    pub bits: Vec<u8>,
}

/// S1 → S2: one garbled chunk of a gadget step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Garbled {
    /// Query number.
    pub query: u64,
    /// Step index.
    pub step: u32,
    /// The chunk.
    pub chunk: GarbledChunk,
}

/// S_i → client: its share of the logits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogitShare {
    /// Query number.
    pub query: u64,
    /// Server index (1 or 2).
    pub server: u8,
    /// Share of the integer logits.
    pub words: RingVec,
}

/// Encodes a message.
pub fn to_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    Ok(codec::encode(value)?)
}

/// Decodes a message (bounded, trailing bytes refused).
pub fn from_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    Ok(codec::decode(bytes, "two-server message")?)
}
