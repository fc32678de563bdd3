//! The typed messages of one training step (serde; ring vectors as raw little-endian bytes).
//!
//! Per step with n images: holder ↔ holder one [`Opening`] each way (Beaver openings E = W − A
//! once per batch, F = X − B per image); dealer → holder B one [`Correction`] (C₁ = conv(A, B) −
//! C₀; holder A derives its whole triple and holder B its A₁, B₁ from their dealer seeds);
//! holder → server one [`Activations`] each (z1 shares; holder B adds the labels); server →
//! holders one [`Gradient`] (δ, public to both holders).

use privdnn_mpc::RingVec;
use serde::{Deserialize, Serialize};

/// A holder's shares of the Beaver openings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Opening {
    /// Global step.
    pub step: u64,
    /// Share of W − A (weights).
    pub e: RingVec,
    /// Shares of X − B (every image of the batch).
    pub f: RingVec,
}

/// The dealer's correction for holder B: its share of C = conv(A, B) per image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Correction {
    /// Global step.
    pub step: u64,
    /// C₁ for every image of the batch.
    pub c: RingVec,
}

/// A holder's share of z1 for the batch; holder B also sends the labels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Activations {
    /// Global step.
    pub step: u64,
    /// Share of z1 (`n × [c1, h1, w1]`).
    pub z: RingVec,
    /// Labels (holder B only).
    pub labels: Vec<u16>,
}

/// The server's gradient ∂(summed loss)/∂z1 in fixed point (public to both holders).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gradient {
    /// Global step.
    pub step: u64,
    /// δ (`n × [c1, h1, w1]`) at the encoding's `grad_bits`.
    pub delta: RingVec,
}
