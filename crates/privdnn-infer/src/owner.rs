//! The model owner's side of inference: opens the secret key and answers blinded decryption
//! requests. It sees only masked values; it never sees the user's images or features.

use std::path::Path;

use privdnn_artifacts::read_artifact;
use privdnn_he::files::OwnerSecretFile;
use privdnn_he::protocol::{OwnerSession, Reply, Request, from_wire, to_wire};

use crate::InferError;

/// A loaded owner.
pub struct OwnerSide {
    session: OwnerSession,
}

impl OwnerSide {
    /// Opens `results/<run>/owner/secret_key.bin`.
    pub fn load(secret_path: &Path) -> Result<Self, InferError> {
        let file: OwnerSecretFile = read_artifact(secret_path)?;
        Ok(Self {
            session: OwnerSession::new(&file.secret)?,
        })
    }

    /// Answers one request (bytes in, bytes out).
    pub fn answer(&self, request: &[u8]) -> Result<Vec<u8>, InferError> {
        let req: Request = from_wire(request, "decryption request")?;
        let reply: Reply = self.session.answer(&req)?;
        Ok(to_wire(&reply)?)
    }
}
