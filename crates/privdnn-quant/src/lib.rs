//! PrivDNN's encrypted block (conv1 → [BN] → [avg-pool] → square → conv2) in integers, with no
//! cryptography and no burn: both the HE engine (`privdnn-he`) and the stages that only need the
//! integer description build on it.
//!
//! * [`block`]: geometry ([`BlockShape`]), float and quantised blocks ([`FloatBlock`],
//!   [`IntBlock`]), the exact integer shadow and the no-wrap bound.
//! * [`from_model`]: the float block of a trained model's named tensors (BN1 folded, the pool's
//!   geometry per architecture).
//! * [`selected`]: the selected outputs in integers (decrypted or shadow) and the plan that
//!   injects them into the clear remainder network.

pub mod block;
pub mod error;
pub mod from_model;
pub mod selected;

pub use block::{BlockShape, FloatBlock, IntBlock};
pub use error::QuantError;
pub use from_model::{block_geometry, float_block, needs_layer1_outputs};
pub use selected::{Injection, SelectedOutputs, shadow_outputs};

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, QuantError>;
