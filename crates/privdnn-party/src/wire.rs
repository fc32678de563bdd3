//! PrivDNN's message set as this deployment uses it. The protocol's definition (the
//! [`Message`] enum, [`FileId`], the payload structs, the kind codes, [`PROTOCOL`] `PDNP` v1) is
//! `privdnn_partial::wire`, re-exported here so that `privdnn_party::wire::*` paths stay; the
//! framing (header, limits, deadlines, counters, error frames, bounded decoding) is
//! `privdnn-net`'s. This module adds what only the deployment needs: the TCP channel type and
//! the checks on downloaded files.

use privdnn_net::{Channel, NetStream};

pub use privdnn_net::{
    DEFAULT_MAX_FRAME, ErrorCode, ErrorFrame as WireError, HEADER_LEN, Limits, MAX_FRAME_CEILING,
    Traffic, WireMessage,
};
pub use privdnn_partial::wire::*;

/// One connection of this protocol over TCP or TLS ([`NetStream`]).
pub type PartyChannel = Channel<NetStream, Message>;

/// Hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// True when `bytes` start with the artifact header of `kind`.
pub fn has_artifact_kind(bytes: &[u8], kind: privdnn_artifacts::ArtifactKind) -> bool {
    bytes.len() >= privdnn_artifacts::MAGIC.len() + 2
        && bytes[..privdnn_artifacts::MAGIC.len()] == privdnn_artifacts::MAGIC
        && u16::from_le_bytes([bytes[8], bytes[9]]) == kind.code()
}
