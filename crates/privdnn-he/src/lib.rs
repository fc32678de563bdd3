//! BFV building blocks for PrivDNN's encrypted block (conv1 → [BN] → [avg-pool] → square → conv2).
//!
//! * [`params`]: parameter sets (≥128-bit security checked) and the plaintext modulus rules of fhe 0.1.1.
//! * [`block`]: the quantised integer description of the block and its exact integer "shadow"
//!   (re-export of `privdnn-quant`, which has no fhe dependency).
//! * [`lazy`]: ct×ct products accumulated in the extended basis, scaled down and relinearised once.
//! * [`packing`]: weights packed as coefficients of few ciphertexts and expanded obliviously by the user.
//! * [`noise_margin`]: the owner's measured check that a parameter set leaves noise budget.
//! * [`rotation`]: hoisted column rotations (one decomposition shared by a ciphertext's rotations).
//! * [`engine`]: the user's homomorphic evaluation of the block (images-across-slots and spatial layouts).
//! * [`compact`]: the bit-dropping wire format of results sent for decryption.
//! * [`protocol`]: keys, typed byte messages between owner and user, blinding.
//! * [`user_keyed`]: the user-keyed mode (the user holds the keys, the owner never decrypts).
//!
//! * [`bench_kernels`]: the kernels against fhe's own operations (`cargo xtask bench he`).
//! * [`files`]: the artifact types the encrypt stage writes (owner secret kept apart).
//! * [`key_recovery`]: the malicious user's key-recovery attack on the owner-keyed protocol.
//!
//! This crate never reads or writes files itself and never touches burn: the stage crates do.

pub mod bench_kernels;
pub mod compact;
pub mod engine;
pub mod error;
pub mod files;
pub mod key_recovery;
pub mod lazy;
pub mod noise_margin;
pub mod ops;
pub mod packing;
pub mod params;
pub mod protocol;
pub mod rotation;
pub mod user_keyed;

pub use error::HeError;
/// The integer block (`privdnn_he::block::IntBlock` …), defined in `privdnn-quant`.
pub use privdnn_quant as block;

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, HeError>;
