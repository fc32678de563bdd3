//! PrivDNN partial model encryption (the paper's protocol) as a library: the owner's setup
//! ([`setup`]: float block → quantised block → keys → packed encryption of the selected filters,
//! the three files apart), the owner's role ([`owner`]: opens the secret, answers blinded
//! decryption requests), the user's role ([`user`]: opens only the encrypted model and the public
//! keys, evaluates the block homomorphically, blinds, unblinds) and the typed messages between
//! them ([`messages`]). The roles exchange bytes (or typed messages, decoded once) in process
//! (the infer stage's harness) or over TCP (`privdnn-party`, whose frames and message set are
//! defined here in [`wire`]: `PDNP` version 1, both modes).
//!
//! [`keyed`] is the user-keyed mode (`[he] mode = "user-keyed"`): the user holds the keys, the
//! owner evaluates with plaintext weights and never decrypts.
//!
//! No burn here: the user's clear remainder network is `privdnn_model::RemainderNet`, fed with
//! [`user::UserSide::injection`]; the stage crates that evaluate accuracy put the two together.

pub mod error;
pub mod keyed;
pub mod owner;
pub mod setup;
pub mod user;
pub mod wire;

pub use error::PartialError;
pub use privdnn_quant::{SelectedOutputs, shadow_outputs};

/// The messages between the roles and their one codec (`privdnn_artifacts::codec`).
pub mod messages {
    pub use privdnn_he::protocol::{Reply, Request, from_wire, to_wire};
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, PartialError>;
