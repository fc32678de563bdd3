//! Framing for every networked protocol of the workspace (PrivDNN's owner/user today; the
//! two-edge, two-server and split-training protocols next).
//!
//! A frame is (integers little-endian):
//!
//! ```text
//! magic (4) | protocol version u16 | message kind u16 | payload length u32 | payload
//! ```
//!
//! The magic and the version belong to a [`Protocol`], so every protocol gets its own and a peer
//! of another protocol is named at once. A protocol's message enum implements [`WireMessage`]
//! (kind codes, payload encoding, the shared [`ErrorFrame`] of kind [`ERROR_KIND`]).
//!
//! * [`frame`]: the header, [`Protocol`], [`RawFrame`], [`WireMessage`], [`ErrorFrame`].
//! * [`channel`]: [`Channel`] over any [`Transport`] (a `Read + Write` stream with timeouts:
//!   `TcpStream` here, a TLS stream later): limits checked before any payload byte is read or
//!   allocated, a deadline per frame, byte and frame counters, error frame + clean close.
//! * [`codec`]: payload encoding and the bounded decode (one decode per payload, its allocation
//!   bounded by the payload's own length).
//! * [`error`]: [`NetError`] and the [`ErrorCode`] numbers sent in error frames.
//! * [`tls`]: TLS 1.3 with required client certificates ([`NetStream`], [`TlsServer`],
//!   [`TlsClient`]); [`pki`]: a development CA and certificates (rcgen), keys written 0600.

pub mod channel;
pub mod codec;
pub mod error;
pub mod frame;
pub mod pki;
pub mod tls;

pub use channel::{Channel, DEFAULT_MAX_FRAME, Limits, MAX_FRAME_CEILING, Traffic, Transport};
pub use codec::{decode_bounded, decode_empty, encode};
pub use error::{ErrorCode, NetError};
pub use frame::{ERROR_KIND, ErrorFrame, HEADER_LEN, Protocol, RawFrame, WireMessage};
pub use tls::{NetStream, PeerIdentity, TlsClient, TlsServer};
