//! Payload encoding and the bounded decode, both through `privdnn_artifacts::codec` (the
//! project's one bincode configuration): every payload is decoded once, and what the decoder may
//! allocate is bounded by the payload's own length (`codec::decode_limit`), so a small frame can
//! never make the receiver allocate more than a small multiple of what it sent. Trailing bytes
//! are an error.

use privdnn_artifacts::{ArtifactError, codec};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::NetError;

/// Encodes a payload.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, NetError> {
    codec::encode(value).map_err(|e| NetError::Encode(e.to_string()))
}

/// Decodes `bytes` as `T` exactly once, its allocations bounded by `bytes.len()`; `what` names
/// the message in errors.
pub fn decode_bounded<T: DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
) -> Result<T, NetError> {
    codec::decode(bytes, what).map_err(|e| NetError::Malformed {
        kind: what,
        reason: match e {
            ArtifactError::Codec { reason, .. } => reason,
            other => other.to_string(),
        },
    })
}

/// Checks that a message without payload has none.
pub fn decode_empty(payload: &[u8], what: &'static str) -> Result<(), NetError> {
    if payload.is_empty() {
        Ok(())
    } else {
        Err(NetError::Malformed {
            kind: what,
            reason: format!("{} payload bytes where none are expected", payload.len()),
        })
    }
}
