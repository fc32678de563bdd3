//! Selection stage: chooses the "core" filters of conv1 and conv2 that the owner encrypts.
//!
//! The two transforms of spec §3.1 (separate → A_s, remove → A_r) are in [`transform`] (the
//! straightforward whole-network way) and [`evaluator`] (the fast cached way the algorithms
//! use; tests check that both agree). Algorithms: greedy (§3.5, with pools and nested starts),
//! L2 / FPGM / HRank rankings (§3.6), pruning + greedy (§3.7), timed random search (§3.4) and
//! the exhaustive ground truth with ranks (§3.8, [`exhaustive`]). Selections are made on the
//! validation split and reported on the test split. This crate never encrypts anything.

pub mod choose;
pub mod cli;
mod error;
pub mod evaluator;
pub mod exhaustive;
pub mod greedy;
pub mod pruning;
pub mod random;
pub mod score;
pub mod transform;

pub use error::SelectError;
