//! Infer stage: the user's side ([`user`]: encrypted model + public keys only), the owner's side
//! ([`owner`]: the secret key), and the measurement harness ([`harness`]) that runs both roles in
//! one process through serialised byte messages and writes the cost report.

pub mod bench;
pub mod cli;
pub mod error;
pub mod harness;
pub mod owner;
pub mod user;

pub use error::InferError;
