//! The user's side of the PrivDNN owner protocol, as much of it as an attacker needs: the
//! `PDNP` frames of `privdnn-net` around the messages `GetInfo`, `GetFile`, `Decrypt` and their
//! answers. The attack stage may not depend on the deployment crate (`privdnn-party`), so the
//! message types are written here from the protocol's documented layout (same kind codes and
//! serde layouts as `privdnn-party`'s `wire.rs`); the e2e test `key_recovery_tcp` runs this
//! client against the real owner service, so any drift fails there.

use privdnn_net::{ErrorFrame, NetError, Protocol, WireMessage, decode_bounded, decode_empty};
use serde::{Deserialize, Serialize};

/// The owner protocol's identity (magic `PDNP`, version 1).
const PROTOCOL: Protocol = Protocol {
    name: "PrivDNN owner",
    magic: *b"PDNP",
    version: 1,
};

mod kind {
    pub const GET_INFO: u16 = 1;
    pub const GET_FILE: u16 = 2;
    pub const DECRYPT: u16 = 3;
    pub const INFO: u16 = 101;
    pub const FILE: u16 = 102;
    pub const DECRYPTED: u16 = 103;
    pub const ERROR: u16 = privdnn_net::ERROR_KIND;
}

/// The two files a user downloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileId {
    /// The encrypted model.
    EncryptedModel,
    /// The public evaluation keys.
    EvaluationKeys,
}

impl FileId {
    /// File name in the attacker's cache.
    pub fn file_name(self) -> &'static str {
        match self {
            FileId::EncryptedModel => "encrypted_model.bin",
            FileId::EvaluationKeys => "evaluation_keys.bin",
        }
    }
}

/// One downloadable file as announced by the owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Which file.
    pub id: FileId,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 (hex).
    pub sha256: String,
}

/// The owner's description of its service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceInfo {
    /// Server software.
    pub server: String,
    /// Label of the model served.
    pub model: String,
    /// Largest payload the owner accepts.
    pub max_frame: u32,
    /// Downloadable files.
    pub files: Vec<FileEntry>,
}

/// A downloaded file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileData {
    /// Which file.
    pub id: FileId,
    /// Content.
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

/// A decryption request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecryptRequest {
    /// Echoed in the answer.
    pub id: u64,
    /// Serialised `privdnn_he::protocol::Request`.
    #[serde(with = "serde_bytes")]
    pub request: Vec<u8>,
}

/// The owner's answer to a decryption request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecryptReply {
    /// The request's id.
    pub id: u64,
    /// Seconds the owner spent decrypting.
    pub owner_seconds: f64,
    /// Serialised `privdnn_he::protocol::Reply`.
    #[serde(with = "serde_bytes")]
    pub reply: Vec<u8>,
}

/// The messages the attacker sends and receives.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// Describe the service.
    GetInfo,
    /// Send one file.
    GetFile(FileId),
    /// Decrypt a request.
    Decrypt(DecryptRequest),
    /// Service description.
    Info(ServiceInfo),
    /// A file.
    File(FileData),
    /// Decrypted slots.
    Decrypted(DecryptReply),
    /// The owner closes the connection because of this error.
    Error(ErrorFrame),
}

impl WireMessage for Message {
    const PROTOCOL: Protocol = PROTOCOL;

    fn kind(&self) -> u16 {
        match self {
            Message::GetInfo => kind::GET_INFO,
            Message::GetFile(_) => kind::GET_FILE,
            Message::Decrypt(_) => kind::DECRYPT,
            Message::Info(_) => kind::INFO,
            Message::File(_) => kind::FILE,
            Message::Decrypted(_) => kind::DECRYPTED,
            Message::Error(_) => kind::ERROR,
        }
    }

    fn kind_name(code: u16) -> Option<&'static str> {
        Some(match code {
            kind::GET_INFO => "get-info",
            kind::GET_FILE => "get-file",
            kind::DECRYPT => "decrypt",
            kind::INFO => "info",
            kind::FILE => "file",
            kind::DECRYPTED => "decrypted",
            kind::ERROR => "error",
            _ => return None,
        })
    }

    fn payload(&self) -> Result<Vec<u8>, NetError> {
        match self {
            Message::GetInfo => Ok(Vec::new()),
            Message::GetFile(id) => privdnn_net::encode(id),
            Message::Decrypt(r) => privdnn_net::encode(r),
            Message::Info(i) => privdnn_net::encode(i),
            Message::File(f) => privdnn_net::encode(f),
            Message::Decrypted(r) => privdnn_net::encode(r),
            Message::Error(e) => privdnn_net::encode(e),
        }
    }

    fn decode(code: u16, payload: &[u8]) -> Result<Self, NetError> {
        let what = Self::kind_name(code).unwrap_or("unknown");
        Ok(match code {
            kind::GET_INFO => {
                decode_empty(payload, what)?;
                Message::GetInfo
            }
            kind::GET_FILE => Message::GetFile(decode_bounded(payload, what)?),
            kind::DECRYPT => Message::Decrypt(decode_bounded(payload, what)?),
            kind::INFO => Message::Info(decode_bounded(payload, what)?),
            kind::FILE => Message::File(decode_bounded(payload, what)?),
            kind::DECRYPTED => Message::Decrypted(decode_bounded(payload, what)?),
            kind::ERROR => Message::Error(decode_bounded(payload, what)?),
            other => {
                return Err(NetError::UnknownKind {
                    protocol: PROTOCOL.name,
                    kind: other,
                });
            }
        })
    }

    fn error(frame: ErrorFrame) -> Self {
        Message::Error(frame)
    }

    fn as_error(&self) -> Option<&ErrorFrame> {
        match self {
            Message::Error(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_the_documented_layout() {
        let frame = Message::GetFile(FileId::EvaluationKeys)
            .to_frame()
            .expect("frame");
        // magic | version 1 | kind 2 | length 1 | FileId index 1 (bincode varint)
        assert_eq!(frame, b"PDNP\x01\x00\x02\x00\x01\x00\x00\x00\x01".to_vec());
        let reply = Message::Decrypted(DecryptReply {
            id: 3,
            owner_seconds: 0.5,
            reply: vec![9, 8],
        });
        let back =
            Message::decode(reply.kind(), &reply.payload().expect("payload")).expect("decode");
        assert_eq!(back, reply);
        assert!(Message::decode(7, &[]).is_err());
    }
}
