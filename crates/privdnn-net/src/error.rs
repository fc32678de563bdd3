//! The one error type of `privdnn-net`, and the [`ErrorCode`] numbers an error frame carries.

use thiserror::Error;

/// Why a frame could not be read, written or decoded.
#[derive(Debug, Error)]
pub enum NetError {
    /// A socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The bytes received are not a frame of this protocol.
    #[error(
        "not a {protocol} frame (first bytes {found:02x?}, expected {expected:?}): is the peer a {protocol} peer?"
    )]
    BadMagic {
        /// Protocol expected.
        protocol: &'static str,
        /// Its magic, as text.
        expected: String,
        /// The first bytes received (zero-padded).
        found: [u8; 4],
    },
    /// The frame is of another protocol version.
    #[error(
        "{protocol} protocol version {found} is not supported (this build speaks version {supported}): update the older side"
    )]
    WrongVersion {
        /// Protocol.
        protocol: &'static str,
        /// Version in the frame.
        found: u16,
        /// Version this build speaks.
        supported: u16,
    },
    /// The frame's kind code is not a message of this protocol.
    #[error("unknown {protocol} message kind {kind}")]
    UnknownKind {
        /// Protocol.
        protocol: &'static str,
        /// Kind code received.
        kind: u16,
    },
    /// The frame announces more payload than the limit.
    #[error(
        "frame of {len} payload bytes exceeds the limit of {max} bytes (raise --max-frame-mib on both sides if this is real traffic)"
    )]
    Oversized {
        /// Announced payload bytes.
        len: u64,
        /// Limit.
        max: u64,
    },
    /// The connection closed inside a frame.
    #[error("truncated {what}: the connection closed after {got} of {expected} bytes")]
    Truncated {
        /// Header or payload.
        what: &'static str,
        /// Bytes expected.
        expected: usize,
        /// Bytes received.
        got: usize,
    },
    /// Something did not arrive (or was not read) in time.
    #[error("timed out after {seconds:.1} s waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: &'static str,
        /// The limit.
        seconds: f64,
    },
    /// The payload does not decode as its kind.
    #[error("malformed {kind} message: {reason}")]
    Malformed {
        /// Message kind.
        kind: &'static str,
        /// Decoder message.
        reason: String,
    },
    /// A well-formed message that is not acceptable here.
    #[error("unexpected {got} message (expected {expected})")]
    Unexpected {
        /// Kind received.
        got: &'static str,
        /// What was expected.
        expected: &'static str,
    },
    /// The peer answered with an error frame.
    #[error("the peer closed the connection with error {code} ({}): {message}", ErrorCode::from_code(*code).map_or("?", ErrorCode::name))]
    Remote {
        /// [`ErrorCode`] number.
        code: u16,
        /// Peer's explanation.
        message: String,
    },
    /// The peer closed the connection where an answer was expected.
    #[error("the peer closed the connection while {0}")]
    Closed(&'static str),
    /// A message could not be encoded (a bug, or a payload over 4 GiB).
    #[error("cannot encode a message: {0}")]
    Encode(String),
    /// TLS set-up, handshake or certificate failure ([`crate::tls`]).
    #[error("TLS: {context}: {reason}")]
    Tls {
        /// What was being done.
        context: String,
        /// Why it failed.
        reason: String,
    },
}

impl NetError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        NetError::Io {
            context: context.into(),
            source,
        }
    }

    /// A TLS error: what was being done and why it failed.
    pub fn tls(context: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        NetError::Tls {
            context: context.into(),
            reason: reason.to_string(),
        }
    }

    /// The code an error frame reports for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            NetError::BadMagic { .. } => ErrorCode::BadMagic,
            NetError::WrongVersion { .. } => ErrorCode::WrongVersion,
            NetError::UnknownKind { .. } => ErrorCode::UnknownKind,
            NetError::Oversized { .. } => ErrorCode::Oversized,
            NetError::Truncated { .. } => ErrorCode::Truncated,
            NetError::Timeout { .. } => ErrorCode::Timeout,
            NetError::Malformed { .. } => ErrorCode::Malformed,
            NetError::Unexpected { .. } => ErrorCode::Unexpected,
            NetError::Tls { .. } => ErrorCode::Unauthorized,
            NetError::Io { .. }
            | NetError::Remote { .. }
            | NetError::Closed(_)
            | NetError::Encode(_) => ErrorCode::Internal,
        }
    }
}

/// Why a peer refused a frame or a request (the code of an [`crate::ErrorFrame`]). The numbers
/// are part of every protocol's wire format; new codes get new numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum ErrorCode {
    /// The frame does not start with the protocol's magic.
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
    /// A valid message that the receiver does not accept (e.g. a server message sent to the server).
    Unexpected = 8,
    /// The request does not match the server's state (e.g. another key).
    BadRequest = 9,
    /// Too many connections; retry later.
    Busy = 10,
    /// Anything else (a bug; the message says what).
    Internal = 11,
    /// The peer is not (or no longer) allowed to use the service (missing, foreign or revoked
    /// certificate, unknown user).
    Unauthorized = 12,
    /// The user's quota (requests or ciphertexts per time window) is spent; retry later.
    Quota = 13,
}

impl ErrorCode {
    const ALL: [ErrorCode; 13] = [
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
        ErrorCode::Unauthorized,
        ErrorCode::Quota,
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
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Quota => "quota",
        }
    }
}
