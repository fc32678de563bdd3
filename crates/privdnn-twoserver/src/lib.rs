//! Li et al.'s two non-colluding servers for outsourced CNN inference (IEEE TDSC 2022, arXiv
//! 2002.10944), **as reconstructed** in `../shared/spec/seed-systems.md` §2 (only the abstracts
//! were readable; every protocol detail below is the standard SecureML/ABY/Delphi construction).
//!
//! Five roles, plain structs with typed serde messages ([`messages`]):
//! * [`owner::share_model`] — the model owner splits every conv/FC weight and bias of the integer
//!   model into additive shares in Z_2^64 for the two servers, once, and goes offline;
//! * [`client::Client`] — shares its centred image (a seed to S1, the rest to S2) and
//!   reconstructs only the logits;
//! * [`ServerOne`] (garbler) and [`ServerTwo`] (evaluator) — linear layers (conv/FC incl. folded BN
//!   and average pooling) on shares with Beaver triples (per model `F = W − B` opened once, per
//!   query only `E = x − A`), squares with square pairs, and requantisation / ReLU / 2×2 max
//!   pooling in privdnn-gc's fused reshare gadget (S1 garbles, S2 evaluates, S2's output is the
//!   re-masked value, S1 keeps `−r`);
//! * [`dealer::Dealer`] — **an extra non-colluding party** (our choice; Li et al.'s own offline
//!   phase was not readable): seeded triples and square pairs (both servers expand their shares
//!   of `A`, `B` from seeds; only `[C]_2` travels, to S2) and random OTs for the garbled gadgets.
//!
//! Threat model: semi-honest, S1, S2 and the dealer pairwise non-colluding. S1 and S2 learn shapes,
//! op counts, timing and the public requantisation constants (see [`owner`]); not the weights, the
//! input, intermediate values or the logits. Every value is exact (the shift is inside the
//! circuit), so the client's logits equal `privdnn_mpc::shadow::logits` bit for bit.
//!
//! [`harness::Harness`] runs all five in one process with only serialised bytes between them;
//! [`cost::analytic`] gives the expected online bytes per image; [`metrics::run`] the per-run
//! metrics (bytes per link, flights, seconds per party, exact-match rate).
//!
//! Over TCP ([`wire`] frames on `privdnn-net`, magic `PDTS`): [`serve::serve_one`] and
//! [`serve::serve_two`] run the servers, [`net::send_shares`] the owner, [`net::run_dealer`] the
//! dealer and [`net::TcpClient`] the client, each in its own process (`privdnn-baseline
//! twoserver`).

mod arith;
pub mod client;
mod core;
pub mod cost;
pub mod dealer;
mod error;
mod gadget;
pub mod harness;
pub mod messages;
pub mod metrics;
pub mod net;
pub mod owner;
pub mod plan;
pub mod serve;
pub mod server1;
pub mod server2;
pub mod wire;

pub use error::TwoServerError;
pub use server1::ServerOne;
pub use server2::ServerTwo;

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, TwoServerError>;
