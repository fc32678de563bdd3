//! The model owner's role: opens the secret key and answers blinded decryption requests. It sees
//! only masked values; it never sees the user's images or features.

use std::path::Path;

use privdnn_artifacts::read_artifact;
use privdnn_he::files::OwnerSecretFile;
use privdnn_he::protocol::{OwnerSession, Reply, Request, from_wire, to_wire};

use crate::Result;

/// A loaded owner.
pub struct OwnerSide {
    session: OwnerSession,
}

impl OwnerSide {
    /// Opens the owner's secret file (`RunLayout::owner_secret`).
    pub fn load(secret_path: &Path) -> Result<Self> {
        let file: OwnerSecretFile = read_artifact(secret_path)?;
        Ok(Self {
            session: OwnerSession::new(&file.secret)?,
        })
    }

    /// Answers one decoded request (callers that decoded it already, e.g. from a frame).
    pub fn answer_request(&self, request: &Request) -> Result<Reply> {
        Ok(self.session.answer(request)?)
    }

    /// Answers one request (bytes in, bytes out).
    pub fn answer(&self, request: &[u8]) -> Result<Vec<u8>> {
        let req: Request = from_wire(request, "decryption request")?;
        Ok(to_wire(&self.answer_request(&req)?)?)
    }
}
