//! The edge protocol's messages on `privdnn-net` frames (magic `PDEG`, version 1): the device
//! sends one [`LayerRequest`] per linear layer to each edge and reads a [`LayerReply`]; at the end
//! it asks each edge for its counters ([`EdgeStats`]) and says goodbye.

use privdnn_net::{
    ErrorFrame, NetError, Protocol, WireMessage, decode_bounded, decode_empty, encode,
};
use serde::{Deserialize, Serialize};

use crate::messages::{LayerReply, LayerRequest};

/// What an edge measured about itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EdgeStats {
    /// Requests answered.
    pub requests: u64,
    /// Items answered.
    pub items: u64,
    /// Seconds spent computing answers (decode, layer, encode).
    pub compute_seconds: f64,
    /// Process CPU seconds (user + system) so far.
    pub cpu_seconds: f64,
    /// Peak resident memory in bytes.
    pub peak_rss_bytes: u64,
    /// Requests corrupted on purpose (a cheating edge).
    pub corrupted: u64,
}

/// One message of the edge protocol.
#[derive(Clone, Debug, PartialEq)]
pub enum EdgeMessage {
    /// Device → edge: a layer's masked inputs.
    Request(LayerRequest),
    /// Edge → device: the layer's outputs.
    Reply(LayerReply),
    /// Device → edge: send your counters.
    StatsRequest,
    /// Edge → device: counters.
    Stats(EdgeStats),
    /// Device → edge: done; the edge process exits after this connection.
    Shutdown,
    /// Either way: error, then close.
    Error(ErrorFrame),
}

const REQUEST: u16 = 1;
const REPLY: u16 = 2;
/// Kind code of a layer request frame.
pub const REQUEST_KIND: u16 = REQUEST;
/// Kind code of a layer reply frame.
pub const REPLY_KIND: u16 = REPLY;
const STATS_REQUEST: u16 = 3;
const STATS: u16 = 4;
const SHUTDOWN: u16 = 5;

impl WireMessage for EdgeMessage {
    const PROTOCOL: Protocol = Protocol {
        name: "privdnn-edge",
        magic: *b"PDEG",
        version: 1,
    };

    fn kind(&self) -> u16 {
        match self {
            EdgeMessage::Request(_) => REQUEST,
            EdgeMessage::Reply(_) => REPLY,
            EdgeMessage::StatsRequest => STATS_REQUEST,
            EdgeMessage::Stats(_) => STATS,
            EdgeMessage::Shutdown => SHUTDOWN,
            EdgeMessage::Error(_) => privdnn_net::ERROR_KIND,
        }
    }

    fn kind_name(kind: u16) -> Option<&'static str> {
        Some(match kind {
            REQUEST => "layer request",
            REPLY => "layer reply",
            STATS_REQUEST => "stats request",
            STATS => "stats",
            SHUTDOWN => "shutdown",
            privdnn_net::ERROR_KIND => "error",
            _ => return None,
        })
    }

    fn payload(&self) -> Result<Vec<u8>, NetError> {
        match self {
            EdgeMessage::Request(r) => encode(r),
            EdgeMessage::Reply(r) => encode(r),
            EdgeMessage::Stats(s) => encode(s),
            EdgeMessage::Error(e) => encode(e),
            EdgeMessage::StatsRequest | EdgeMessage::Shutdown => Ok(Vec::new()),
        }
    }

    fn decode(kind: u16, payload: &[u8]) -> Result<Self, NetError> {
        Ok(match kind {
            REQUEST => EdgeMessage::Request(decode_bounded(payload, "layer request")?),
            REPLY => EdgeMessage::Reply(decode_bounded(payload, "layer reply")?),
            STATS => EdgeMessage::Stats(decode_bounded(payload, "stats")?),
            STATS_REQUEST => {
                decode_empty(payload, "stats request")?;
                EdgeMessage::StatsRequest
            }
            SHUTDOWN => {
                decode_empty(payload, "shutdown")?;
                EdgeMessage::Shutdown
            }
            privdnn_net::ERROR_KIND => EdgeMessage::Error(decode_bounded(payload, "error")?),
            other => {
                return Err(NetError::UnknownKind {
                    protocol: "privdnn-edge",
                    kind: other,
                });
            }
        })
    }

    fn error(frame: ErrorFrame) -> Self {
        EdgeMessage::Error(frame)
    }

    fn as_error(&self) -> Option<&ErrorFrame> {
        match self {
            EdgeMessage::Error(e) => Some(e),
            _ => None,
        }
    }
}
