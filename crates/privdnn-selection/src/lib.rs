//! PrivDNN filter selection as a library: chooses the "core" filters of conv1 and conv2 that the
//! owner encrypts. Used by the select stage and by the attack stage (selections for sweep
//! points that `select/sweep.json` lacks), so neither stage depends on the other.
//!
//! Candidates are scored with `privdnn_model::partition` (the separate/remove transforms of
//! spec §3.1, the fast cached evaluator and the §3.2 point). Algorithms: greedy (§3.5, with pools
//! and nested starts, [`greedy`]), L2 / FPGM / HRank rankings (§3.6, [`pruning`]), pruning +
//! greedy (§3.7), timed random search (§3.4, [`random`]) and the exhaustive ground truth with
//! ranks (§3.8, [`exhaustive`]); [`choose`] dispatches on the configured algorithm.

pub mod choose;
mod error;
pub mod exhaustive;
pub mod greedy;
pub mod pruning;
pub mod random;

pub use error::SelectError;
