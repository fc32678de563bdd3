//! Garbled-circuit engine of the outsourced-CNN baseline (Li et al., as reconstructed in
//! `shared/spec/seed-systems.md` §2): semi-honest Yao with free-XOR, half-gates AND
//! (Zahur–Rosulek–Evans), point-and-permute, 128-bit labels, and the fixed-key-AES TCCR hash of
//! Guo–Katz–Wang–Yu ([`hash`]).
//!
//! - [`circuit`]: circuits, a constant-folding [`Builder`], the plaintext evaluator (oracle).
//! - [`gadgets`]: add/sub (ℓ−1 ANDs), compare (ℓ), mux (ℓ), max (2ℓ), max of 4 (6ℓ), ReLU (ℓ−1),
//!   arithmetic shift (free).
//! - [`reshare`]: the fused "reconstruct → requantise → max-pool → ReLU → re-share" gadget.
//! - [`garble`], [`eval`], [`chunk`]: streamed garbling/evaluation in [`GarbledChunk`]s.
//! - [`ot`]: dealer random OTs and their derandomisation (no OT protocol needed).
//! - [`cost`]: analytic online/offline bytes; [`local`]: both parties in one process.
//!
//! No burn, no fhe, no network: the protocol crate frames chunks and flip bits.

pub mod bits;
pub mod chunk;
pub mod circuit;
pub mod cost;
mod error;
pub mod eval;
pub mod gadgets;
pub mod garble;
pub mod hash;
pub mod local;
pub mod ot;
pub mod reshare;

pub use chunk::{GarbledChunk, GcConfig};
pub use circuit::{Bit, Builder, Circuit, Gate};
pub use error::GcError;
pub use eval::Evaluator;
pub use garble::Garbler;
pub use hash::AesMode;
pub use local::{LocalRun, run_local};
pub use ot::{Dealer, EvaluatorRotSetup, EvaluatorRots, GarblerRotSetup, GarblerRots};
pub use reshare::ReshareSpec;
