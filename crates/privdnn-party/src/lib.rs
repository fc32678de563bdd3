//! PrivDNN's two parties as two processes over TCP.
//!
//! * [`server`]: the owner service — holds the secret key, serves the encrypted model and the
//!   public evaluation keys, decrypts blinded layer-2 outputs; thread per connection with a cap,
//!   limits and timeouts per connection.
//! * [`client`]: the user — downloads the two user files once (cached and verified), classifies
//!   local images (a dataset split, a split file or an image folder) and measures bytes, round
//!   trips and latency.
//! * [`load`]: the load benchmark (concurrent users, every answer checked against its request).
//! * [`wire`]: the versioned, length-prefixed frames (serde + bincode through the artifacts crate).
//! * [`cli`]: the `privdnn-party serve | client` command line (`cargo xtask serve | client`).
//!
//! The roles are the ones of `privdnn_infer::{owner, user}`; this crate only moves their byte
//! messages over a socket.

pub mod cli;
pub mod client;
pub mod error;
pub mod load;
pub mod server;
pub mod wire;

pub use error::PartyError;
