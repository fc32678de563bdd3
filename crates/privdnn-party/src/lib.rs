//! PrivDNN's two parties as two processes over TCP.
//!
//! * [`server`]: the owner service — holds the secret key, serves the encrypted model and the
//!   public evaluation keys, decrypts blinded layer-2 outputs; thread per connection with a cap,
//!   limits and timeouts per connection.
//! * [`client`]: the user's connection to the owner, and the download of the two user files
//!   (cached and verified).
//! * [`classify`]: the user classifies local images (a dataset split, a split file or an image
//!   folder) through the owner and measures bytes, round trips and latency; in the mode the
//!   owner serves ([`classify_keyed`] for the user-keyed one, [`shadow_check`]: its
//!   measurement-only shadow check;
//!   [`report`]: what a run reports).
//! * [`load`]: the load benchmark (concurrent users, every answer checked against its request).
//! * [`keyed`]: the user-keyed mode (no decryption on the owner; requests in parts).
//! * [`wire`]: PrivDNN's message set (defined in `privdnn_partial::wire`) on `privdnn-net`'s
//!   versioned, length-prefixed frames.
//! * [`gate`]: what every owner connection and request passes (TLS client certificates, the
//!   allow-list and quotas of [`policy`], the per-peer cap, the per-request ciphertext cap, the
//!   JSON-lines [`audit_log`]).
//! * [`cli`]: the `privdnn-party serve | client` command line (`cargo xtask serve | client`).
//!
//! The roles are the ones of `privdnn_partial::{owner, user}`; this crate only moves their byte
//! messages over a socket.

pub mod audit_log;
pub mod classify;
pub mod classify_keyed;
pub mod cli;
pub mod client;
pub mod error;
pub mod gate;
pub mod keyed;
pub mod load;
pub mod policy;
pub mod report;
pub mod server;
pub mod service_cli;
pub mod shadow_check;
pub mod wire;

pub use error::PartyError;
