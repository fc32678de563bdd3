//! SPNN split training (Zhou et al., as reconstructed; issue 18): two data holders split every
//! image by columns (holder A the left part, holder B the right part and the labels), conv1's
//! weights are additively shared between them over Z_2^64, and the first layer's forward runs as
//! a Beaver product with triples from a dealer. The holders send their shares of z1 to a server,
//! which reconstructs z1 and runs the network up to the last layer in the clear with burn
//! ([`privdnn_model::UpperNet`]); holder B keeps the last layer and the loss
//! ([`privdnn_model::TopNet`]), so labels never leave it: it returns ∂loss/∂h to the server,
//! which returns δ = ∂L/∂z1 to both holders; they update their weight shares locally (δ is public
//! to them), optionally with SGLD noise.
//!
//! * [`fixed`]: fixed-point encoding, the first layer's geometry and the vertical split.
//! * [`holder`], [`dealer`], [`server`], [`top`]: the roles' computations; [`messages`]: what
//!   they exchange; [`wire`]: the messages on `privdnn-net` frames; [`process`]: each role's
//!   loop over TCP with its checkpoints; [`audit`]: the offline shadow check of every forward.
//! * [`session`]: settings, keys, schedule, checkpoint; [`harness`]: all roles in one process
//!   (sequential) with the shadow audit of every forward; [`view`]: what the server saw.
//!
//! What each party learns: the server learns z1 of every training image, the top features h and
//! ∂loss/∂h, and all of its own gradients (inputs are recoverable from z1: that is the design's
//! leak, measured by `privdnn-attack run --only spnn_leakage`); holder B learns δ, the labels (its
//! own), h and the logits; holder A learns δ; neither holder learns the other's pixels or the
//! weights (uniform openings); the dealer learns nothing. Semi-honest, no collusion of the server
//! with a holder.

pub mod audit;
pub mod dealer;
pub mod error;
pub mod fixed;
pub mod harness;
pub mod holder;
pub mod messages;
pub mod naive;
pub mod process;
pub mod server;
pub mod session;
pub mod top;
pub mod view;
pub mod wire;

pub use error::SpnnError;
pub use harness::{Harness, LinkBytes, Outcome};
pub use session::{Checkpoint, EpochRecord, Settings, Task};
pub use view::{SERVER_VIEW_FILE, ServerView};

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, SpnnError>;
