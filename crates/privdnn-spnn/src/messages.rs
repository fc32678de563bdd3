//! The typed messages of one training step (serde; ring vectors as raw little-endian bytes).
//!
//! Per step with n images: holder ↔ holder one [`Opening`] each way (Beaver openings E = W − A
//! once per batch, F = X − B per image); dealer → holder B one [`Correction`] (C₁ = conv(A, B) −
//! C₀; holder A derives its whole triple and holder B its A₁, B₁ from their dealer seeds);
//! holder → server one [`Activations`] each (z1 shares); server → holder B the top [`Features`];
//! holder B (labels and the top layer stay with it) → server one [`FeatureGrad`]; server →
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

/// A holder's share of z1 for the batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Activations {
    /// Global step.
    pub step: u64,
    /// Share of z1 (`n × [c1, h1, w1]`).
    pub z: RingVec,
}

/// The server's top features h (the input of the label holder's top layer), in the clear.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Features {
    /// Global step.
    pub step: u64,
    /// h (`n × d`, row-major).
    pub h: Vec<f32>,
}

/// The label holder's ∂(mean loss)/∂h for the server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureGrad {
    /// Global step.
    pub step: u64,
    /// ∂(mean loss)/∂h (`n × d`).
    pub grad: Vec<f32>,
}

/// The server's gradient ∂(summed loss)/∂z1 in fixed point (public to both holders).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gradient {
    /// Global step.
    pub step: u64,
    /// δ (`n × [c1, h1, w1]`) at the encoding's `grad_bits`.
    pub delta: RingVec,
}
