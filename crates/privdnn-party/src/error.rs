//! The one error type of `privdnn-party`, and its mapping to the [`ErrorCode`] the owner sends
//! before it closes a connection.

use thiserror::Error;

use crate::wire::{ErrorCode, VERSION};

/// Why a connection, a download or a classification failed.
#[derive(Debug, Error)]
pub enum PartyError {
    /// A socket or file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The bytes received are not a privdnn-party frame.
    #[error(
        "not a privdnn-party frame (first bytes {found:02x?}, expected \"PDNP\"): is the peer a privdnn-party owner or client?"
    )]
    BadMagic {
        /// The first bytes received (zero-padded).
        found: [u8; 4],
    },
    /// The frame is of another protocol version.
    #[error(
        "protocol version {found} is not supported (this build speaks version {VERSION}): update the older side"
    )]
    WrongVersion {
        /// Version in the frame.
        found: u16,
    },
    /// The frame's kind code is not a known message.
    #[error("unknown message kind {0}")]
    UnknownKind(u16),
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
    /// The owner could not decrypt the request.
    #[error("decryption request rejected: {0}")]
    BadRequest(String),
    /// The owner refused the connection because too many are open.
    #[error("the owner is busy ({0} connections open): retry later")]
    Busy(usize),
    /// The owner answered with an error frame.
    #[error("the owner closed the connection with error {code} ({}): {message}", ErrorCode::from_code(*code).map_or("?", ErrorCode::name))]
    Remote {
        /// [`ErrorCode`] number.
        code: u16,
        /// Owner's explanation.
        message: String,
    },
    /// The peer closed the connection where an answer was expected.
    #[error("the peer closed the connection while {0}")]
    Closed(&'static str),
    /// A downloaded or cached file does not match what the owner announced.
    #[error("{file}: {reason}")]
    Integrity {
        /// File name.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// Inference failed (user or owner side).
    #[error(transparent)]
    Infer(#[from] privdnn_infer::InferError),
    /// Reading or writing an artifact failed.
    #[error(transparent)]
    Artifact(#[from] privdnn_artifacts::ArtifactError),
    /// The pipeline configuration failed to load.
    #[error(transparent)]
    Config(#[from] privdnn_config::ConfigError),
    /// Images could not be read.
    #[error(transparent)]
    Data(#[from] privdnn_data::DataError),
    /// The burn device could not be created.
    #[error(transparent)]
    Model(#[from] privdnn_model::ModelError),
    /// Bad command-line input.
    #[error("{0}")]
    Usage(String),
    /// A bug or an unexpected internal state.
    #[error("internal error: {0}")]
    Internal(String),
}

impl PartyError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        PartyError::Io {
            context: context.into(),
            source,
        }
    }

    /// The code the owner reports for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            PartyError::BadMagic { .. } => ErrorCode::BadMagic,
            PartyError::WrongVersion { .. } => ErrorCode::WrongVersion,
            PartyError::UnknownKind(_) => ErrorCode::UnknownKind,
            PartyError::Oversized { .. } => ErrorCode::Oversized,
            PartyError::Truncated { .. } => ErrorCode::Truncated,
            PartyError::Timeout { .. } => ErrorCode::Timeout,
            PartyError::Malformed { .. } => ErrorCode::Malformed,
            PartyError::Unexpected { .. } => ErrorCode::Unexpected,
            PartyError::BadRequest(_) | PartyError::Infer(_) => ErrorCode::BadRequest,
            PartyError::Busy(_) => ErrorCode::Busy,
            _ => ErrorCode::Internal,
        }
    }
}
