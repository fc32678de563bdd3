//! The frame header, a protocol's identity ([`Protocol`]), a frame before decoding
//! ([`RawFrame`]) and the trait a protocol's message enum implements ([`WireMessage`]).

use serde::{Deserialize, Serialize};

use crate::NetError;

/// Bytes of the fixed frame header: magic (4), version (2), kind (2), payload length (4).
pub const HEADER_LEN: usize = 4 + 2 + 2 + 4;

/// Kind code of the [`ErrorFrame`] in every protocol.
pub const ERROR_KIND: u16 = 255;

/// A protocol's identity on the wire: its own magic, and the one version this build speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protocol {
    /// Name used in error messages (e.g. `privdnn-party`).
    pub name: &'static str,
    /// First four bytes of every frame.
    pub magic: [u8; 4],
    /// Version written, and the only one accepted.
    pub version: u16,
}

impl Protocol {
    /// The 12 header bytes of a frame of `kind` with `len` payload bytes.
    pub fn header(&self, kind: u16, len: u32) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[..4].copy_from_slice(&self.magic);
        h[4..6].copy_from_slice(&self.version.to_le_bytes());
        h[6..8].copy_from_slice(&kind.to_le_bytes());
        h[8..12].copy_from_slice(&len.to_le_bytes());
        h
    }

    /// A whole frame: header + payload (an error if the payload does not fit a u32 length).
    pub fn frame(&self, kind: u16, payload: &[u8]) -> Result<Vec<u8>, NetError> {
        let len = u32::try_from(payload.len()).map_err(|_| NetError::Oversized {
            len: payload.len() as u64,
            max: u64::from(u32::MAX),
        })?;
        let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
        frame.extend_from_slice(&self.header(kind, len));
        frame.extend_from_slice(payload);
        Ok(frame)
    }

    /// The magic as text, for error messages.
    pub fn magic_text(&self) -> String {
        String::from_utf8_lossy(&self.magic).into_owned()
    }
}

/// An error reported to the peer just before the connection is closed (kind [`ERROR_KIND`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorFrame {
    /// [`crate::ErrorCode`] number.
    pub code: u16,
    /// Human explanation.
    pub message: String,
}

/// The message set of one protocol. Kind codes are the protocol's own, except [`ERROR_KIND`],
/// which every protocol reserves for its error message.
pub trait WireMessage: Sized {
    /// Magic, version and name of the protocol.
    const PROTOCOL: Protocol;

    /// The kind code of this message.
    fn kind(&self) -> u16;

    /// Name of a kind code, `None` for a code the protocol does not have.
    fn kind_name(kind: u16) -> Option<&'static str>;

    /// The payload bytes (encode with [`crate::encode`]).
    fn payload(&self) -> Result<Vec<u8>, NetError>;

    /// Decodes the payload of a frame of `kind` (decode with [`crate::decode_bounded`]; it is
    /// called once per frame).
    fn decode(kind: u16, payload: &[u8]) -> Result<Self, NetError>;

    /// The protocol's error message.
    fn error(frame: ErrorFrame) -> Self;

    /// The error frame, when this message is the error message.
    fn as_error(&self) -> Option<&ErrorFrame>;

    /// Name of this message's kind.
    fn name(&self) -> &'static str {
        Self::kind_name(self.kind()).unwrap_or("unknown")
    }

    /// The whole frame (header + payload).
    fn to_frame(&self) -> Result<Vec<u8>, NetError> {
        Self::PROTOCOL.frame(self.kind(), &self.payload()?)
    }
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

    /// Decodes the payload (once).
    pub fn decode<M: WireMessage>(&self) -> Result<M, NetError> {
        M::decode(self.kind, &self.payload)
    }

    /// The frame's bytes again (header + payload), e.g. for a transcript.
    pub fn to_bytes(&self, protocol: &Protocol) -> Result<Vec<u8>, NetError> {
        protocol.frame(self.kind, &self.payload)
    }
}
