//! PrivDNN's wire protocol between the owner service and the user (magic `PDNP`, version 1):
//! the [`Message`] set, the downloadable [`FileId`]s, and the payload structs of both modes
//! (owner-keyed: [`DecryptRequest`] / [`DecryptReply`]; user-keyed: [`KeyedPart`] /
//! [`KeyedAck`] / [`KeyedReplyFrame`]). This is the protocol's definition, shared by the
//! deployment (`privdnn-party`: server and client) and by the attack stage's malicious client;
//! the framing (header, limits, deadlines, counters, error frames, bounded decoding) is
//! `privdnn-net`'s.
//!
//! Frame layout (integers little-endian; unchanged since version 1):
//!
//! ```text
//! MAGIC b"PDNP" (4) | protocol version u16 | message kind u16 | payload length u32 | payload
//! ```
//!
//! Every payload is decoded once, with an allocation bound derived from its own length
//! (`privdnn_net::decode_bounded`). Client → owner: [`Message::GetInfo`], [`Message::GetFile`],
//! [`Message::Decrypt`], [`Message::GetStats`]. Owner → client: [`Message::Info`],
//! [`Message::File`], [`Message::Decrypted`], [`Message::Stats`], [`Message::Error`]. One
//! request, one answer. User-keyed mode: [`Message::KeyedPart`] → [`Message::KeyedAck`] /
//! [`Message::KeyedReply`]; no decryption exists there.

use privdnn_net::{
    ErrorFrame, HEADER_LEN, NetError, Protocol, WireMessage, decode_bounded, decode_empty, encode,
};
use serde::{Deserialize, Serialize};

/// PrivDNN's owner/user protocol on the wire.
pub const PROTOCOL: Protocol = Protocol {
    name: "privdnn-party",
    magic: *b"PDNP",
    version: 1,
};
/// First bytes of every frame.
pub const MAGIC: [u8; 4] = PROTOCOL.magic;
/// Protocol version this build speaks (and accepts).
pub const VERSION: u16 = PROTOCOL.version;

/// The 12 header bytes of a frame.
pub fn header(kind: u16, len: u32) -> [u8; HEADER_LEN] {
    PROTOCOL.header(kind, len)
}

/// The two files a user downloads. The owner's secret is not a file the protocol can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileId {
    /// `encrypt/encrypted_model.bin`.
    EncryptedModel,
    /// `encrypt/evaluation_keys.bin`.
    EvaluationKeys,
    /// `encrypt/keyed_model.bin` (user-keyed mode: the only file, no selected weight in it).
    KeyedModel,
}

impl FileId {
    /// Both files, in download order.
    pub const ALL: [FileId; 2] = [FileId::EncryptedModel, FileId::EvaluationKeys];
    /// The user-keyed mode's file.
    pub const KEYED: [FileId; 1] = [FileId::KeyedModel];

    /// File name in the user's cache folder (fixed: never taken from the network).
    pub fn file_name(self) -> &'static str {
        match self {
            FileId::EncryptedModel => "encrypted_model.bin",
            FileId::EvaluationKeys => "evaluation_keys.bin",
            FileId::KeyedModel => "keyed_model.bin",
        }
    }

    /// Artifact kind code the file must carry in its header (see `privdnn_artifacts`).
    pub fn artifact_kind(self) -> privdnn_artifacts::ArtifactKind {
        match self {
            FileId::EncryptedModel => privdnn_artifacts::ArtifactKind::EncryptedModel,
            FileId::EvaluationKeys => privdnn_artifacts::ArtifactKind::EvaluationKeys,
            FileId::KeyedModel => privdnn_artifacts::ArtifactKind::KeyedModel,
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
    /// SHA-256 (hex) of the content.
    pub sha256: String,
}

/// The owner's answer to [`Message::GetInfo`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceInfo {
    /// Name and version of the server software.
    pub server: String,
    /// Label of the model served (pipeline run or file name).
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
    /// Its content.
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

/// A blinded decryption request (the bytes of `UserSide::request`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecryptRequest {
    /// Chosen by the client, echoed in the answer.
    pub id: u64,
    /// Serialised request.
    #[serde(with = "serde_bytes")]
    pub request: Vec<u8>,
}

/// The owner's answer: masked slot values (the bytes `UserSide::finish` reads).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecryptReply {
    /// The request's id.
    pub id: u64,
    /// Seconds the owner spent decrypting.
    pub owner_seconds: f64,
    /// Serialised reply.
    #[serde(with = "serde_bytes")]
    pub reply: Vec<u8>,
}

/// One part of a user-keyed request (client → owner). A request (`UserKeyedRequest`,
/// serialised) is larger than a frame; the client sends it in parts, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyedPart {
    /// Chosen by the client, the same in every part, echoed in the answers.
    pub id: u64,
    /// Bytes of the whole serialised request.
    pub total: u64,
    /// Where this part starts (parts come in order).
    pub offset: u64,
    /// The part's bytes.
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

/// The owner's answer to a part that is not the last one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyedAck {
    /// The request's id.
    pub id: u64,
    /// Bytes received so far.
    pub received: u64,
}

/// The owner's answer to the last part: the sanitised reply (`UserKeyedReply`, serialised).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyedReplyFrame {
    /// The request's id.
    pub id: u64,
    /// Seconds the owner spent decoding and answering.
    pub owner_seconds: f64,
    /// Serialised reply.
    #[serde(with = "serde_bytes")]
    pub reply: Vec<u8>,
}

/// Counters of the owner service since it started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerStats {
    /// Connections accepted (served or refused as busy).
    pub connections: u64,
    /// Connections open now.
    pub active: u64,
    /// Connections refused because `max_connections` were open.
    pub busy: u64,
    /// Complete frames read.
    pub frames_in: u64,
    /// Frames written.
    pub frames_out: u64,
    /// Bytes of the complete frames read.
    pub bytes_in: u64,
    /// Bytes of the frames written.
    pub bytes_out: u64,
    /// Decryption requests answered.
    pub decrypts: u64,
    /// Files served.
    pub files: u64,
    /// Connections closed because of an error (bad frame, timeout, bad request).
    pub errors: u64,
    /// Seconds spent decrypting (summed over requests).
    pub decrypt_seconds: f64,
    /// Seconds since the service started.
    pub uptime_s: f64,
}

/// Every message of the protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// Client → owner: describe the service and its files.
    GetInfo,
    /// Client → owner: send one file.
    GetFile(FileId),
    /// Client → owner: decrypt a blinded request.
    Decrypt(DecryptRequest),
    /// Client → owner: the service counters.
    GetStats,
    /// Client → owner (user-keyed mode): one part of a request.
    KeyedPart(KeyedPart),
    /// Owner → client: a part arrived, send the next.
    KeyedAck(KeyedAck),
    /// Owner → client: the answer to a complete keyed request.
    KeyedReply(KeyedReplyFrame),
    /// Owner → client.
    Info(ServiceInfo),
    /// Owner → client.
    File(FileData),
    /// Owner → client.
    Decrypted(DecryptReply),
    /// Owner → client.
    Stats(ServerStats),
    /// Either way: the connection is about to close because of this error.
    Error(ErrorFrame),
}

/// Kind codes on the wire.
pub mod kind {
    /// [`super::Message::GetInfo`].
    pub const GET_INFO: u16 = 1;
    /// [`super::Message::GetFile`].
    pub const GET_FILE: u16 = 2;
    /// [`super::Message::Decrypt`].
    pub const DECRYPT: u16 = 3;
    /// [`super::Message::GetStats`].
    pub const GET_STATS: u16 = 4;
    /// [`super::Message::KeyedPart`].
    pub const KEYED_REQUEST: u16 = 6;
    /// [`super::Message::Info`].
    pub const INFO: u16 = 101;
    /// [`super::Message::File`].
    pub const FILE: u16 = 102;
    /// [`super::Message::Decrypted`].
    pub const DECRYPTED: u16 = 103;
    /// [`super::Message::Stats`].
    pub const STATS: u16 = 104;
    /// [`super::Message::KeyedAck`].
    pub const KEYED_ACK: u16 = 105;
    /// [`super::Message::KeyedReply`].
    pub const KEYED_REPLY: u16 = 106;
    /// [`super::Message::Error`].
    pub const ERROR: u16 = privdnn_net::ERROR_KIND;
}

/// Name of a kind code, `None` for a code this protocol does not have.
pub fn kind_name(code: u16) -> Option<&'static str> {
    Some(match code {
        kind::GET_INFO => "get-info",
        kind::GET_FILE => "get-file",
        kind::DECRYPT => "decrypt",
        kind::GET_STATS => "get-stats",
        kind::KEYED_REQUEST => "keyed-request",
        kind::KEYED_ACK => "keyed-ack",
        kind::KEYED_REPLY => "keyed-reply",
        kind::INFO => "info",
        kind::FILE => "file",
        kind::DECRYPTED => "decrypted",
        kind::STATS => "stats",
        kind::ERROR => "error",
        _ => return None,
    })
}

fn decode<T: serde::de::DeserializeOwned>(code: u16, payload: &[u8]) -> Result<T, NetError> {
    decode_bounded(payload, kind_name(code).unwrap_or("unknown"))
}

impl WireMessage for Message {
    const PROTOCOL: Protocol = PROTOCOL;

    fn kind(&self) -> u16 {
        match self {
            Message::GetInfo => kind::GET_INFO,
            Message::GetFile(_) => kind::GET_FILE,
            Message::Decrypt(_) => kind::DECRYPT,
            Message::GetStats => kind::GET_STATS,
            Message::KeyedPart(_) => kind::KEYED_REQUEST,
            Message::KeyedAck(_) => kind::KEYED_ACK,
            Message::KeyedReply(_) => kind::KEYED_REPLY,
            Message::Info(_) => kind::INFO,
            Message::File(_) => kind::FILE,
            Message::Decrypted(_) => kind::DECRYPTED,
            Message::Stats(_) => kind::STATS,
            Message::Error(_) => kind::ERROR,
        }
    }

    fn kind_name(code: u16) -> Option<&'static str> {
        kind_name(code)
    }

    fn payload(&self) -> Result<Vec<u8>, NetError> {
        match self {
            Message::GetInfo | Message::GetStats => Ok(Vec::new()),
            Message::GetFile(id) => encode(id),
            Message::Decrypt(r) => encode(r),
            Message::KeyedPart(p) => encode(p),
            Message::KeyedAck(a) => encode(a),
            Message::KeyedReply(r) => encode(r),
            Message::Info(i) => encode(i),
            Message::File(f) => encode(f),
            Message::Decrypted(r) => encode(r),
            Message::Stats(s) => encode(s),
            Message::Error(e) => encode(e),
        }
    }

    fn decode(code: u16, payload: &[u8]) -> Result<Self, NetError> {
        let name = kind_name(code).unwrap_or("unknown");
        match code {
            kind::GET_INFO => decode_empty(payload, name).map(|()| Message::GetInfo),
            kind::GET_STATS => decode_empty(payload, name).map(|()| Message::GetStats),
            kind::GET_FILE => Ok(Message::GetFile(decode(code, payload)?)),
            kind::DECRYPT => Ok(Message::Decrypt(decode(code, payload)?)),
            kind::KEYED_REQUEST => Ok(Message::KeyedPart(decode(code, payload)?)),
            kind::KEYED_ACK => Ok(Message::KeyedAck(decode(code, payload)?)),
            kind::KEYED_REPLY => Ok(Message::KeyedReply(decode(code, payload)?)),
            kind::INFO => Ok(Message::Info(decode(code, payload)?)),
            kind::FILE => Ok(Message::File(decode(code, payload)?)),
            kind::DECRYPTED => Ok(Message::Decrypted(decode(code, payload)?)),
            kind::STATS => Ok(Message::Stats(decode(code, payload)?)),
            kind::ERROR => Ok(Message::Error(decode(code, payload)?)),
            other => Err(NetError::UnknownKind {
                protocol: PROTOCOL.name,
                kind: other,
            }),
        }
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
        let ack = Message::KeyedAck(KeyedAck { id: 2, received: 5 })
            .to_frame()
            .expect("frame");
        assert_eq!(
            ack,
            b"PDNP\x01\x00\x69\x00\x02\x00\x00\x00\x02\x05".to_vec()
        );
        for msg in [
            Message::Decrypted(DecryptReply {
                id: 3,
                owner_seconds: 0.5,
                reply: vec![9, 8],
            }),
            Message::KeyedPart(KeyedPart {
                id: 1,
                total: 10,
                offset: 4,
                bytes: vec![1, 2, 3],
            }),
            Message::GetStats,
        ] {
            let back =
                Message::decode(msg.kind(), &msg.payload().expect("payload")).expect("decode");
            assert_eq!(back, msg);
            assert!(kind_name(msg.kind()).is_some());
        }
        assert!(Message::decode(7, &[]).is_err());
        assert_eq!(header(kind::INFO, 3)[..4], MAGIC);
    }
}
