//! The wire format between the owner service and the user client: small, versioned,
//! length-prefixed frames around a bincode payload (serde, encoded by the artifacts crate).
//!
//! Frame layout (integers little-endian):
//!
//! ```text
//! MAGIC b"PDNP" (4) | protocol version u16 | message kind u16 | payload length u32 | payload
//! ```
//!
//! A reader checks, in this order: magic, version, kind, length against its limit (before a
//! single payload byte is read or allocated), then reads the payload under a deadline in bounded
//! chunks (memory grows only as bytes actually arrive) and decodes it for that kind with a size
//! limit on every length prefix ([`decode_bounded`]); trailing bytes are an error. Every failure is its own [`PartyError`] variant, and a server answers it
//! with an [`Message::Error`] frame carrying an [`ErrorCode`] before closing the connection.
//!
//! Client → owner: [`Message::GetInfo`], [`Message::GetFile`], [`Message::Decrypt`],
//! [`Message::GetStats`]. Owner → client: [`Message::Info`], [`Message::File`],
//! [`Message::Decrypted`], [`Message::Stats`], [`Message::Error`]. One request, one answer.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::PartyError;

/// First bytes of every frame.
pub const MAGIC: [u8; 4] = *b"PDNP";
/// Protocol version this build speaks (and accepts).
pub const VERSION: u16 = 1;
/// Bytes of the fixed frame header.
pub const HEADER_LEN: usize = 4 + 2 + 2 + 4;
/// Default largest payload accepted (256 MiB: a full-block MNIST batch request is 147 MB).
pub const DEFAULT_MAX_FRAME: u32 = 256 << 20;
/// The payload is read in chunks of at most this many bytes.
const READ_CHUNK: usize = 1 << 20;

/// Size and time limits of one side of a connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest payload accepted; a header announcing more is rejected before reading it.
    pub max_frame: u32,
    /// Longest wait for the first byte of the next frame (idle connection, or the owner's answer).
    pub idle_timeout: Duration,
    /// Longest time for the rest of a frame once its first byte arrived (slow senders).
    pub frame_timeout: Duration,
    /// Longest a single blocking write may wait (a peer that stops reading).
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame: DEFAULT_MAX_FRAME,
            idle_timeout: Duration::from_secs(300),
            frame_timeout: Duration::from_secs(120),
            write_timeout: Duration::from_secs(60),
        }
    }
}

/// Why the owner refused a frame or a request (the code of an [`Message::Error`] frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum ErrorCode {
    /// The frame does not start with [`MAGIC`].
    BadMagic = 1,
    /// Another protocol version.
    WrongVersion = 2,
    /// Unknown message kind.
    UnknownKind = 3,
    /// Payload length above the limit.
    Oversized = 4,
    /// The connection closed inside a frame.
    Truncated = 5,
    /// A frame (or the next one) did not arrive in time.
    Timeout = 6,
    /// The payload does not decode for its kind.
    Malformed = 7,
    /// A valid message that the receiver does not accept (e.g. an owner message sent to the owner).
    Unexpected = 8,
    /// The decryption request does not match the owner's keys.
    BadRequest = 9,
    /// Too many connections; retry later.
    Busy = 10,
    /// Anything else (a bug; the message says what).
    Internal = 11,
}

impl ErrorCode {
    const ALL: [ErrorCode; 11] = [
        ErrorCode::BadMagic,
        ErrorCode::WrongVersion,
        ErrorCode::UnknownKind,
        ErrorCode::Oversized,
        ErrorCode::Truncated,
        ErrorCode::Timeout,
        ErrorCode::Malformed,
        ErrorCode::Unexpected,
        ErrorCode::BadRequest,
        ErrorCode::Busy,
        ErrorCode::Internal,
    ];

    /// The number on the wire.
    pub fn code(self) -> u16 {
        self as u16
    }

    /// Inverse of [`ErrorCode::code`].
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::BadMagic => "bad-magic",
            ErrorCode::WrongVersion => "wrong-version",
            ErrorCode::UnknownKind => "unknown-kind",
            ErrorCode::Oversized => "oversized",
            ErrorCode::Truncated => "truncated",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Malformed => "malformed",
            ErrorCode::Unexpected => "unexpected",
            ErrorCode::BadRequest => "bad-request",
            ErrorCode::Busy => "busy",
            ErrorCode::Internal => "internal",
        }
    }
}

/// The two files a user downloads. The owner's secret is not a file the protocol can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileId {
    /// `encrypt/encrypted_model.bin`.
    EncryptedModel,
    /// `encrypt/evaluation_keys.bin`.
    EvaluationKeys,
}

impl FileId {
    /// Both files, in download order.
    pub const ALL: [FileId; 2] = [FileId::EncryptedModel, FileId::EvaluationKeys];

    /// File name in the user's cache folder (fixed: never taken from the network).
    pub fn file_name(self) -> &'static str {
        match self {
            FileId::EncryptedModel => "encrypted_model.bin",
            FileId::EvaluationKeys => "evaluation_keys.bin",
        }
    }

    /// Artifact kind code the file must carry in its header (see `privdnn_artifacts`).
    pub fn artifact_kind(self) -> privdnn_artifacts::ArtifactKind {
        match self {
            FileId::EncryptedModel => privdnn_artifacts::ArtifactKind::EncryptedModel,
            FileId::EvaluationKeys => privdnn_artifacts::ArtifactKind::EvaluationKeys,
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

/// An error reported to the peer just before the connection is closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireError {
    /// [`ErrorCode`] number.
    pub code: u16,
    /// Human explanation.
    pub message: String,
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
    /// Owner → client.
    Info(ServiceInfo),
    /// Owner → client.
    File(FileData),
    /// Owner → client.
    Decrypted(DecryptReply),
    /// Owner → client.
    Stats(ServerStats),
    /// Either way: the connection is about to close because of this error.
    Error(WireError),
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
    /// [`super::Message::Info`].
    pub const INFO: u16 = 101;
    /// [`super::Message::File`].
    pub const FILE: u16 = 102;
    /// [`super::Message::Decrypted`].
    pub const DECRYPTED: u16 = 103;
    /// [`super::Message::Stats`].
    pub const STATS: u16 = 104;
    /// [`super::Message::Error`].
    pub const ERROR: u16 = 255;
}

/// Name of a kind code (for messages).
pub fn kind_name(code: u16) -> &'static str {
    match code {
        kind::GET_INFO => "get-info",
        kind::GET_FILE => "get-file",
        kind::DECRYPT => "decrypt",
        kind::GET_STATS => "get-stats",
        kind::INFO => "info",
        kind::FILE => "file",
        kind::DECRYPTED => "decrypted",
        kind::STATS => "stats",
        kind::ERROR => "error",
        _ => "unknown",
    }
}

const WIRE_PATH: &str = "<network frame>";

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, PartyError> {
    privdnn_artifacts::encode_payload(value, Path::new(WIRE_PATH))
        .map_err(|e| PartyError::Internal(format!("cannot encode a message: {e}")))
}

/// Most bytes a decoded value may claim (allocations included). Every length prefix is checked
/// against it before anything is allocated; frames are limited to this size too.
pub const DECODE_LIMIT: usize = 1 << 30;

/// Decodes bincode bytes (the project's configuration) with a [`DECODE_LIMIT`] and no trailing
/// bytes. The artifacts crate's `decode_payload` (and privdnn-he's `from_wire`) trust length
/// prefixes: a 14-byte message announcing a 1 TB byte string makes them allocate it and the
/// process aborts. Everything that arrives from the network goes through this function first.
pub fn decode_bounded<T: DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
) -> Result<T, PartyError> {
    let config = bincode::config::standard().with_limit::<DECODE_LIMIT>();
    let (value, used): (T, usize) =
        bincode::serde::decode_from_slice(bytes, config).map_err(|e| PartyError::Malformed {
            kind: what,
            reason: e.to_string(),
        })?;
    if used != bytes.len() {
        return Err(PartyError::Malformed {
            kind: what,
            reason: format!("{} trailing bytes", bytes.len() - used),
        });
    }
    Ok(value)
}

fn decode<T: DeserializeOwned>(code: u16, payload: &[u8]) -> Result<T, PartyError> {
    decode_bounded(payload, kind_name(code))
}

impl Message {
    /// The kind code of this message.
    pub fn kind(&self) -> u16 {
        match self {
            Message::GetInfo => kind::GET_INFO,
            Message::GetFile(_) => kind::GET_FILE,
            Message::Decrypt(_) => kind::DECRYPT,
            Message::GetStats => kind::GET_STATS,
            Message::Info(_) => kind::INFO,
            Message::File(_) => kind::FILE,
            Message::Decrypted(_) => kind::DECRYPTED,
            Message::Stats(_) => kind::STATS,
            Message::Error(_) => kind::ERROR,
        }
    }

    /// Name of this message's kind.
    pub fn name(&self) -> &'static str {
        kind_name(self.kind())
    }

    /// The payload bytes.
    pub fn payload(&self) -> Result<Vec<u8>, PartyError> {
        match self {
            Message::GetInfo | Message::GetStats => Ok(Vec::new()),
            Message::GetFile(id) => encode(id),
            Message::Decrypt(r) => encode(r),
            Message::Info(i) => encode(i),
            Message::File(f) => encode(f),
            Message::Decrypted(r) => encode(r),
            Message::Stats(s) => encode(s),
            Message::Error(e) => encode(e),
        }
    }

    /// The whole frame (header + payload).
    pub fn to_frame(&self) -> Result<Vec<u8>, PartyError> {
        let payload = self.payload()?;
        let len = u32::try_from(payload.len()).map_err(|_| PartyError::Oversized {
            len: payload.len() as u64,
            max: u32::MAX as u64,
        })?;
        let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
        frame.extend_from_slice(&header(self.kind(), len));
        frame.extend_from_slice(&payload);
        Ok(frame)
    }

    /// Decodes the payload of a frame of kind `code`.
    pub fn decode(code: u16, payload: &[u8]) -> Result<Self, PartyError> {
        let empty = |m: Message| {
            if payload.is_empty() {
                Ok(m)
            } else {
                Err(PartyError::Malformed {
                    kind: kind_name(code),
                    reason: format!("{} payload bytes where none are expected", payload.len()),
                })
            }
        };
        match code {
            kind::GET_INFO => empty(Message::GetInfo),
            kind::GET_STATS => empty(Message::GetStats),
            kind::GET_FILE => Ok(Message::GetFile(decode(code, payload)?)),
            kind::DECRYPT => Ok(Message::Decrypt(decode(code, payload)?)),
            kind::INFO => Ok(Message::Info(decode(code, payload)?)),
            kind::FILE => Ok(Message::File(decode(code, payload)?)),
            kind::DECRYPTED => Ok(Message::Decrypted(decode(code, payload)?)),
            kind::STATS => Ok(Message::Stats(decode(code, payload)?)),
            kind::ERROR => Ok(Message::Error(decode(code, payload)?)),
            other => Err(PartyError::UnknownKind(other)),
        }
    }
}

/// The 12 header bytes of a frame.
pub fn header(kind: u16, len: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(&MAGIC);
    h[4..6].copy_from_slice(&VERSION.to_le_bytes());
    h[6..8].copy_from_slice(&kind.to_le_bytes());
    h[8..12].copy_from_slice(&len.to_le_bytes());
    h
}

/// A frame as read from the wire, before its payload is decoded.
#[derive(Debug, Clone)]
pub struct RawFrame {
    /// Kind code.
    pub kind: u16,
    /// Payload.
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// Bytes the frame occupied on the wire.
    pub fn wire_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Decodes the payload.
    pub fn message(&self) -> Result<Message, PartyError> {
        Message::decode(self.kind, &self.payload)
    }
}

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

/// Fills `buf` from `stream` before `deadline`; returns the bytes read (short only at end of stream).
fn read_until(
    stream: &mut TcpStream,
    buf: &mut [u8],
    deadline: Instant,
    what: &'static str,
    budget: Duration,
) -> Result<usize, PartyError> {
    let mut got = 0;
    while got < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(PartyError::Timeout {
                what,
                seconds: budget.as_secs_f64(),
            });
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| PartyError::io("setting the read timeout", e))?;
        match stream.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(PartyError::Timeout {
                    what,
                    seconds: budget.as_secs_f64(),
                });
            }
            Err(e) => return Err(PartyError::io(format!("reading {what}"), e)),
        }
    }
    Ok(got)
}

/// Reads one frame. `Ok(None)` when the peer closed the connection cleanly between frames.
/// Waits at most `limits.idle_timeout` for the first byte, then `limits.frame_timeout` for the
/// rest; checks magic, version, kind and length before reading the payload.
pub fn read_frame(stream: &mut TcpStream, limits: &Limits) -> Result<Option<RawFrame>, PartyError> {
    let mut h = [0u8; HEADER_LEN];
    let idle_deadline = Instant::now() + limits.idle_timeout;
    if read_until(
        stream,
        &mut h[..1],
        idle_deadline,
        "the next frame",
        limits.idle_timeout,
    )? == 0
    {
        return Ok(None);
    }
    let deadline = Instant::now() + limits.frame_timeout;
    // Garbage is named as such at once: the magic is checked byte by byte as it arrives, so a
    // short non-protocol message is not left waiting for a header that will never come.
    let bad_magic = |h: &[u8; HEADER_LEN], got: usize| {
        let mut found = [0u8; 4];
        found[..got.min(4)].copy_from_slice(&h[..got.min(4)]);
        PartyError::BadMagic { found }
    };
    if h[0] != MAGIC[0] {
        return Err(bad_magic(&h, 1));
    }
    let mut got = 1;
    while got < 4 {
        let n = read_until(
            stream,
            &mut h[got..got + 1],
            deadline,
            "a frame header",
            limits.frame_timeout,
        )?;
        if n == 0 {
            return Err(PartyError::Truncated {
                what: "frame header",
                expected: HEADER_LEN,
                got,
            });
        }
        got += 1;
        if h[got - 1] != MAGIC[got - 1] {
            return Err(bad_magic(&h, got));
        }
    }
    got += read_until(
        stream,
        &mut h[4..],
        deadline,
        "a frame header",
        limits.frame_timeout,
    )?;
    if got < HEADER_LEN {
        return Err(PartyError::Truncated {
            what: "frame header",
            expected: HEADER_LEN,
            got,
        });
    }
    let version = u16::from_le_bytes([h[4], h[5]]);
    if version != VERSION {
        return Err(PartyError::WrongVersion { found: version });
    }
    let code = u16::from_le_bytes([h[6], h[7]]);
    if kind_name(code) == "unknown" {
        return Err(PartyError::UnknownKind(code));
    }
    let len = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if len > limits.max_frame {
        return Err(PartyError::Oversized {
            len: len as u64,
            max: limits.max_frame as u64,
        });
    }
    let len = len as usize;
    let mut payload = Vec::with_capacity(len.min(READ_CHUNK));
    while payload.len() < len {
        let start = payload.len();
        let n = (len - start).min(READ_CHUNK);
        payload.resize(start + n, 0);
        let got = read_until(
            stream,
            &mut payload[start..],
            deadline,
            "a frame payload",
            limits.frame_timeout,
        )?;
        if got < n {
            return Err(PartyError::Truncated {
                what: "frame payload",
                expected: len,
                got: start + got,
            });
        }
    }
    Ok(Some(RawFrame {
        kind: code,
        payload,
    }))
}

/// Writes raw frame bytes (the socket's write timeout applies to every blocking write).
pub fn write_bytes(stream: &mut TcpStream, frame: &[u8]) -> Result<(), PartyError> {
    stream.write_all(frame).map_err(|e| {
        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
            let seconds = stream
                .write_timeout()
                .ok()
                .flatten()
                .map_or(0.0, |d| d.as_secs_f64());
            PartyError::Timeout {
                what: "the peer to read a frame",
                seconds,
            }
        } else {
            PartyError::io("writing a frame", e)
        }
    })?;
    stream
        .flush()
        .map_err(|e| PartyError::io("flushing a frame", e))
}

/// Encodes and writes one message; returns the bytes written.
pub fn write_message(stream: &mut TcpStream, msg: &Message) -> Result<usize, PartyError> {
    let frame = msg.to_frame()?;
    write_bytes(stream, &frame)?;
    Ok(frame.len())
}
