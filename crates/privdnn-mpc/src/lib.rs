//! The MPC foundation shared by the baseline protocols (no burn, no fhe).
//!
//! * [`ring`]: arithmetic in Z_2^64 (wrapping `u64`), signed fixed point with power-of-two
//!   scales, and [`ring::RingVec`], a vector of ring elements serialised as raw bytes.
//! * [`share`]: additive two-party shares.
//! * [`prg`]: seeded masks — a ChaCha12 stream keyed by SHA-256(key ‖ label ‖ indices), so every
//!   (query, layer, purpose) gets an independent uniform mask from one 32-byte key.
//! * [`ir`]: the integer model: PrivDNN's quantised block ([`privdnn_quant::IntBlock`], bit for
//!   bit) followed by the integer tail (conv / FC with BN folded, average pooling folded into the
//!   requantisation, max pooling, ReLU, square, exact rounding shifts).
//! * [`linear`]: the convolution and fully connected kernels over Z_2^64 (what the edges run).
//! * [`import`]: the integer model of a trained model artifact (scales chosen per layer).
//! * [`shadow`]: the integer shadow evaluator (`logits` of a raw image) and operation counts.

pub mod error;
pub mod import;
pub mod ir;
pub mod linear;
pub mod prg;
pub mod ring;
pub mod shadow;
pub mod share;

pub use error::MpcError;
pub use import::{QuantConfig, import_model};
pub use ir::{ConvLayer, FcLayer, IntModel, Op, Rescale, TensorShape};
pub use prg::{MaskKey, Prg};
pub use ring::RingVec;

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, MpcError>;

#[cfg(test)]
mod tests;
