//! SPNN split training (Zhou et al., as reconstructed; issue 18): two data holders split every
//! image by columns (holder A the left part, holder B the right part and the labels), conv1's
//! weights are additively shared between them over Z_2^64, and the first layer's forward runs as
//! a Beaver product with triples from a dealer. The holders send their shares of z1 to a server,
//! which reconstructs z1, trains the rest of the network in the clear with burn
//! ([`privdnn_model::UpperNet`]) and returns δ = ∂L/∂z1; the holders update their weight shares
//! locally (δ is public to them), optionally with SGLD noise.
//!
//! * [`fixed`]: fixed-point encoding, the first layer's geometry and the vertical split.
//! * [`holder`], [`dealer`], [`server`]: the roles; [`messages`]: what they exchange.
//! * [`session`]: settings, keys, schedule, checkpoint; [`harness`]: all roles in one process
//!   with the shadow audit of every forward.
//!
//! What each party learns: the server learns z1 of every training image, the labels and all of
//! its own gradients (inputs are recoverable from z1: that is the design's leak); each holder
//! learns δ and nothing of the other's pixels or of the weights (uniform openings); the dealer
//! learns nothing. Semi-honest, no collusion of the server with a holder.

pub mod dealer;
pub mod error;
pub mod fixed;
pub mod harness;
pub mod holder;
pub mod messages;
pub mod server;
pub mod session;

pub use error::SpnnError;
pub use harness::{Harness, LinkBytes, Outcome};
pub use session::{Checkpoint, EpochRecord, Settings, Task};

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, SpnnError>;
