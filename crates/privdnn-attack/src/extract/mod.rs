//! Weight extraction by the user (not in the reference; spec §8.2 names the risk).
//!
//! The user sends inputs of its choice and receives the decrypted selected layer-2 outputs
//! `Z_j` (exact: the HE evaluation is bit-exact with the integer block). For every architecture
//! `Z_j[p] = B2_j + Σ_{c∉S1,τ} W2[j,c,τ]·A_c[p+τ−pad2] + Σ_{c∈S1,τ} W2[j,c,τ]·U_c[p+τ−pad2]²`,
//! where the plaintext squares `A_c` are known to the user and `U_c[q] = b_c + w_c·x_q` is the
//! encrypted conv1 filter on the input patch `x_q` (the 2×2 average pool folded into a
//! (k+1)×(k+1) stride-2 kernel, ResNet18's BN1 folded into `w_c`, `b_c`). So
//! `U_c[q]²` is a quadratic form of the input patch: the block is a low-degree polynomial whose
//! unknowns are the encrypted conv1 filters `(w_c, b_c)` and the selected conv2 filters (weights
//! on every layer-1 square, bias). [`solve`] fits exactly that model to the decrypted outputs by
//! Levenberg–Marquardt (Gauss–Newton with damping), starting from random conv1 filters with the
//! conv2 part solved linearly (variable projection), restarting if a start stalls. The model is
//! exact, so enough equations give the block up to its symmetries (`(w, b)·s` with the conv2
//! weights on that channel `/s²`, and the sign of `(w, b)`), which change no output: the
//! recovered block is functionally the owner's. (A generic lifted least squares over all
//! quadratic monomials, `[b², 2b·w, w_i w_k]`, would need `1 + d + d(d+1)/2` unknowns per channel;
//! reported for comparison.)
//!
//! [`protocol`] runs the same solver on answers obtained through either mode's real roles
//! (owner-keyed and user-keyed), on the integer block the protocol evaluates
//! ([`Block::from_int`]), and counts the selected integer weights recovered exactly.
//!
//! The oracle of [`run_experiment`] is the float block in f64 on normalised inputs (the user's pixels are
//! normalised by the public per-channel statistics); the integer block the protocol decrypts is
//! the same function with quantised weights, so the numbers of queries carry over.
//!
//! "Polymorphic obfuscation" (spec §4.4): the owner adds a secret per-channel 3×3 conv after
//! conv2 and re-draws it per model variant. Were that conv inside the encrypted part, the user
//! would receive `O_j ∗ Z_j`: still bilinear, with a 5×5 composed kernel (interior positions);
//! [`solve`] with `k2 + 2` recovers it the same way. (In the reference, and in our protocol, the
//! obscure conv runs in clear after decryption, so the user sees `Z_j` itself.)

mod block;
mod experiment;
pub mod protocol;
mod solver;

pub use block::{Block, Geometry, IntUnits};
pub use experiment::run_experiment;
pub use protocol::run_protocol_experiment;
pub use solver::{
    Recovered, SolveSettings, random_queries, relative_error, solve, solve_normal, solve_observed,
};
