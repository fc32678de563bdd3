//! The two-server protocol's messages on `privdnn-net` frames (magic `PDTS`, version 1). Every
//! payload is the same codec encoding as [`crate::messages::to_bytes`], so a frame is the
//! in-process harness's message plus the 12-byte frame header.
//!
//! Connections (each server listens on one port and tells them apart by the first message):
//! owner → S_i ([`Msg::ModelShare`], answered by [`Msg::Ack`]); dealer → S_i ([`Msg::DealerSeed`],
//! then one [`Msg::DealerToS1`] / [`Msg::DealerToS2`] per query); S1 → S2 (S1 dials; first
//! [`Msg::WeightOpening`] both ways, then the online messages); client → S_i ([`Msg::Hello`],
//! then inputs; [`Msg::StatsRequest`] and [`Msg::Shutdown`] at the end).

use privdnn_net::{
    ERROR_KIND, ErrorFrame, NetError, Protocol, WireMessage, decode_bounded, decode_empty, encode,
};
use serde::{Deserialize, Serialize};

use crate::messages::{
    DealerSeed, DealerToS1, DealerToS2, Flips, Garbled, InputSeed, InputShare, LogitShare,
    ModelShare, Opening, WeightOpening,
};

/// Bytes and frames one side counted on one connection (`privdnn_net::Traffic`, deserialisable).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkTraffic {
    /// Bytes written (frames, headers included).
    pub bytes_sent: u64,
    /// Bytes read.
    pub bytes_received: u64,
    /// Frames written.
    pub frames_sent: u64,
    /// Frames read.
    pub frames_received: u64,
}

impl LinkTraffic {
    /// Payload bytes written (frame headers taken off): what the harness counts.
    pub fn payload_sent(&self) -> u64 {
        self.bytes_sent - self.frames_sent * privdnn_net::HEADER_LEN as u64
    }

    /// Payload bytes read.
    pub fn payload_received(&self) -> u64 {
        self.bytes_received - self.frames_received * privdnn_net::HEADER_LEN as u64
    }

    /// Traffic since `earlier` (a snapshot of the same connection).
    pub fn since(&self, earlier: &LinkTraffic) -> LinkTraffic {
        LinkTraffic {
            bytes_sent: self.bytes_sent.saturating_sub(earlier.bytes_sent),
            bytes_received: self.bytes_received.saturating_sub(earlier.bytes_received),
            frames_sent: self.frames_sent.saturating_sub(earlier.frames_sent),
            frames_received: self.frames_received.saturating_sub(earlier.frames_received),
        }
    }
}

impl From<privdnn_net::Traffic> for LinkTraffic {
    fn from(t: privdnn_net::Traffic) -> Self {
        LinkTraffic {
            bytes_sent: t.bytes_sent,
            bytes_received: t.bytes_received,
            frames_sent: t.frames_sent,
            frames_received: t.frames_received,
        }
    }
}

/// What a server measured about itself (cumulative since it started).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerStats {
    /// 1 or 2.
    pub server: u8,
    /// Queries answered.
    pub queries: u64,
    /// Seconds inside the role's calls during queries (no waiting, no I/O).
    pub compute_seconds: f64,
    /// Seconds of the one-time setup (building the role, the weight opening).
    pub setup_seconds: f64,
    /// Process CPU seconds (user + system) so far.
    pub cpu_seconds: f64,
    /// Peak resident memory in bytes.
    pub peak_rss_bytes: u64,
    /// The owner's connection.
    pub owner: LinkTraffic,
    /// The dealer's connection (read so far).
    pub dealer: LinkTraffic,
    /// The other server's connection, during setup (the weight opening).
    pub peer_setup: LinkTraffic,
    /// The other server's connection, setup included.
    pub peer: LinkTraffic,
    /// The client's connection.
    pub client: LinkTraffic,
}

macro_rules! wire_messages {
    ($(($kind:literal, $variant:ident, $name:literal)),* $(,)?) => {
        /// One message of the two-server protocol.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Msg {
            $(
                #[doc = concat!("Kind ", stringify!($kind), ": ", $name, ".")]
                $variant($variant),
            )*
            /// Server → owner: shares stored.
            Ack,
            /// Client → server, first on its connection.
            Hello,
            /// Client → server: send your counters.
            StatsRequest,
            /// Client → server: done; the server exits after this connection.
            Shutdown,
            /// Either way: error, then close.
            Error(ErrorFrame),
        }

        $(
            impl From<$variant> for Msg {
                fn from(m: $variant) -> Self {
                    Msg::$variant(m)
                }
            }

            impl Expect for $variant {
                const WHAT: &'static str = $name;

                fn pick(m: Msg) -> std::result::Result<Self, Box<Msg>> {
                    match m {
                        Msg::$variant(v) => Ok(v),
                        other => Err(Box::new(other)),
                    }
                }
            }
        )*

        impl WireMessage for Msg {
            const PROTOCOL: Protocol = Protocol {
                name: "privdnn-twoserver",
                magic: *b"PDTS",
                version: 1,
            };

            fn kind(&self) -> u16 {
                match self {
                    $(Msg::$variant(_) => $kind,)*
                    Msg::Ack => ACK,
                    Msg::Hello => HELLO,
                    Msg::StatsRequest => STATS_REQUEST,
                    Msg::Shutdown => SHUTDOWN,
                    Msg::Error(_) => ERROR_KIND,
                }
            }

            fn kind_name(kind: u16) -> Option<&'static str> {
                Some(match kind {
                    $($kind => $name,)*
                    ACK => "ack",
                    HELLO => "hello",
                    STATS_REQUEST => "stats request",
                    SHUTDOWN => "shutdown",
                    ERROR_KIND => "error",
                    _ => return None,
                })
            }

            fn payload(&self) -> Result<Vec<u8>, NetError> {
                match self {
                    $(Msg::$variant(m) => encode(m),)*
                    Msg::Error(e) => encode(e),
                    Msg::Ack | Msg::Hello | Msg::StatsRequest | Msg::Shutdown => Ok(Vec::new()),
                }
            }

            fn decode(kind: u16, payload: &[u8]) -> Result<Self, NetError> {
                Ok(match kind {
                    $($kind => Msg::$variant(decode_bounded(payload, $name)?),)*
                    ACK => empty(payload, "ack", Msg::Ack)?,
                    HELLO => empty(payload, "hello", Msg::Hello)?,
                    STATS_REQUEST => empty(payload, "stats request", Msg::StatsRequest)?,
                    SHUTDOWN => empty(payload, "shutdown", Msg::Shutdown)?,
                    ERROR_KIND => Msg::Error(decode_bounded(payload, "error")?),
                    other => {
                        return Err(NetError::UnknownKind {
                            protocol: "privdnn-twoserver",
                            kind: other,
                        });
                    }
                })
            }

            fn error(frame: ErrorFrame) -> Self {
                Msg::Error(frame)
            }

            fn as_error(&self) -> Option<&ErrorFrame> {
                match self {
                    Msg::Error(e) => Some(e),
                    _ => None,
                }
            }
        }
    };
}

const ACK: u16 = 100;
const HELLO: u16 = 101;
const STATS_REQUEST: u16 = 102;
const SHUTDOWN: u16 = 103;

fn empty(payload: &[u8], what: &'static str, m: Msg) -> Result<Msg, NetError> {
    decode_empty(payload, what)?;
    Ok(m)
}

/// A message type that travels as one [`Msg`] variant.
pub trait Expect: Sized {
    /// Name of the message (errors).
    const WHAT: &'static str;
    /// The payload when `m` is this variant, else `m` back (boxed: the error path is rare and
    /// a [`Msg`] is large).
    fn pick(m: Msg) -> std::result::Result<Self, Box<Msg>>;
}

wire_messages! {
    (1, ModelShare, "model share"),
    (2, DealerSeed, "dealer seed"),
    (3, DealerToS1, "dealer material for server 1"),
    (4, DealerToS2, "dealer material for server 2"),
    (5, WeightOpening, "weight opening"),
    (6, InputSeed, "input seed"),
    (7, InputShare, "input share"),
    (8, Opening, "opening"),
    (9, Flips, "flip bits"),
    (10, Garbled, "garbled chunk"),
    (11, LogitShare, "logit share"),
    (12, ServerStats, "server stats"),
}
