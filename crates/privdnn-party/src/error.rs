//! The one error type of `privdnn-party`, and its mapping to the [`ErrorCode`] the owner sends
//! before it closes a connection (framing errors are `privdnn_net::NetError`s).

use thiserror::Error;

use crate::wire::ErrorCode;

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
    /// A frame could not be read, written or decoded, or the peer sent an error frame.
    #[error(transparent)]
    Net(#[from] privdnn_net::NetError),
    /// The owner could not decrypt the request.
    #[error("decryption request rejected: {0}")]
    BadRequest(String),
    /// The owner does not (or no longer) serve this user: missing, foreign or revoked
    /// certificate, unknown user.
    #[error("not authorised: {0}")]
    Unauthorized(String),
    /// The user's quota for the current window is spent.
    #[error("quota exceeded: {0}")]
    Quota(String),
    /// The owner refused the connection because too many are open.
    #[error("the owner is busy ({0} connections open): retry later")]
    Busy(usize),
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
    Partial(#[from] privdnn_partial::PartialError),
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
    /// The owner serves another mode than the one this client was asked for.
    #[error(
        "the owner at {server} serves the {} mode, this client was asked for the {} mode: start \
         `privdnn-party serve` with PRIVDNN_HE__MODE={} or run the client with --mode auto",
        .served.name(), .expected.name(), .expected.name()
    )]
    Mode {
        /// Owner address.
        server: String,
        /// What the owner serves (from the files it offers).
        served: privdnn_config::HeMode,
        /// What the client was asked for (`--mode`, or `PRIVDNN_HE__MODE=user-keyed`).
        expected: privdnn_config::HeMode,
    },
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
            PartyError::Net(e) => e.code(),
            PartyError::BadRequest(_) | PartyError::Partial(_) => ErrorCode::BadRequest,
            PartyError::Busy(_) => ErrorCode::Busy,
            PartyError::Unauthorized(_) => ErrorCode::Unauthorized,
            PartyError::Quota(_) => ErrorCode::Quota,
            _ => ErrorCode::Internal,
        }
    }
}
