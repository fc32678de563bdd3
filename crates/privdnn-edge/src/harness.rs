//! All roles in one process with only serialised bytes passing between them: the device's
//! request frames are decoded by each edge, answered, and encoded again for the device. Counts
//! bytes per link and direction, and can record every payload an edge receives (its view).

use privdnn_net::HEADER_LEN;

use crate::device::{EdgeLink, EdgePair};
use crate::edge::EdgeServer;
use crate::messages::{LayerRequest, from_bytes, to_bytes};
use crate::{EdgeError, Result};

/// One edge in this process behind a byte boundary.
pub struct InProcessEdge {
    /// The edge.
    pub server: EdgeServer,
    /// Request payload bytes received from the device.
    pub bytes_in: u64,
    /// Reply payload bytes sent to the device.
    pub bytes_out: u64,
    /// Every request payload received, when recording (the edge's whole view).
    pub view: Option<Vec<Vec<u8>>>,
    reply: Vec<u8>,
    /// Parts of a request sent in pieces, joined before decoding.
    parts: Vec<u8>,
}

impl InProcessEdge {
    /// An edge not recording.
    pub fn new(server: EdgeServer) -> Self {
        Self {
            server,
            bytes_in: 0,
            bytes_out: 0,
            view: None,
            reply: Vec::new(),
            parts: Vec::new(),
        }
    }
}

impl EdgeLink for InProcessEdge {
    fn send_part(&mut self, part: &[u8]) -> Result<()> {
        self.parts.extend_from_slice(part);
        Ok(())
    }

    fn round_trip(&mut self, frame: &[u8]) -> Result<&[u8]> {
        let joined;
        let frame = if self.parts.is_empty() {
            frame
        } else {
            self.parts.extend_from_slice(frame);
            joined = std::mem::take(&mut self.parts);
            &joined[..]
        };
        let payload = frame
            .get(HEADER_LEN..)
            .ok_or_else(|| EdgeError::protocol("frame shorter than its header"))?;
        let req: LayerRequest = from_bytes(payload)?;
        self.reply = to_bytes(&self.server.answer(&req)?)?;
        self.bytes_in += payload.len() as u64;
        self.bytes_out += self.reply.len() as u64;
        if let Some(v) = self.view.as_mut() {
            v.push(payload.to_vec());
        }
        Ok(&self.reply)
    }
}

/// Both edges in this process.
pub struct InProcessLink {
    /// EdgeA (online).
    pub a: InProcessEdge,
    /// EdgeB (offline: pads).
    pub b: InProcessEdge,
}

impl InProcessLink {
    /// A link to two edges.
    pub fn new(a: EdgeServer, b: EdgeServer) -> Self {
        Self {
            a: InProcessEdge::new(a),
            b: InProcessEdge::new(b),
        }
    }

    /// Records every byte the edges receive from now on.
    pub fn record_views(&mut self) {
        self.a.view = Some(Vec::new());
        self.b.view = Some(Vec::new());
    }
}

impl EdgePair for InProcessLink {
    fn a(&mut self) -> &mut dyn EdgeLink {
        &mut self.a
    }

    fn b(&mut self) -> &mut dyn EdgeLink {
        &mut self.b
    }
}
