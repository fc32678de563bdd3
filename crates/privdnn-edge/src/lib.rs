//! Tian et al.'s two-edge-server outsourcing of CNN inference (IEEE IoTJ 2021, ePrint 2020/155),
//! **as reconstructed** in `../shared/spec/seed-systems.md` §3 (the paper's algorithms were not
//! readable): an IoT device outsources every linear layer (conv, FC) to two non-colluding edge
//! servers that hold the layers in plaintext, hiding each layer's input with additive masks whose
//! layer outputs the owner precomputed once for the device's life; the device runs the non-linear
//! layers itself. Over Z_2^64 on `privdnn-mpc`'s integer model, so decryption is exact and the
//! protocol's logits equal the integer shadow's on every image.
//!
//! Roles: [`owner::setup`], [`edge::EdgeServer`] (A and B), [`device::Device`] with its offline
//! phase in [`pads`] (EdgeB's query-independent half done ahead) and its in-place encoding in
//! [`frames`]; typed messages in [`messages`]; [`harness::InProcessLink`] runs the edges
//! in-process behind a byte boundary.
//!
//! Deviations from the paper: uniform ring masks instead of λ-bit real masks (so the paper's
//! "70 %+ compression" of ciphertexts cannot carry over: uniform words are incompressible), and
//! the integrity check is realised as hidden known-answer test items (`IntegrityConfig`).

pub mod clear;
pub mod device;
pub mod edge;
pub mod error;
pub mod frames;
pub mod harness;
pub mod messages;
pub mod net;
pub mod owner;
pub mod pads;
pub mod wire;

pub use error::EdgeError;

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, EdgeError>;
