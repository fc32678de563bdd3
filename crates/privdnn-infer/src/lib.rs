//! Infer stage: the measurement harness ([`harness`]) runs the user's and the owner's roles of
//! `privdnn_partial` in one process through serialised byte messages, finishes the network in
//! clear with `privdnn_model::RemainderNet`, audits against the integer shadow and writes the
//! cost report ([`cli`]); [`bench`] is `cargo xtask bench he`; [`calibrate`] reports what
//! `cargo xtask estimate` predicts the HE stages from.

pub mod bench;
pub mod calibrate;
pub mod cli;
pub mod error;
pub mod harness;
pub mod keyed;

pub use error::InferError;
