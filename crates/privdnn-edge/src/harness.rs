//! All roles in one process with only serialised bytes passing between them: the device's
//! requests are encoded, decoded by each edge, answered, encoded again and decoded by the device.
//! Counts bytes per link and direction.

use serde::{Deserialize, Serialize};

use crate::Result;
use crate::device::EdgeLink;
use crate::edge::EdgeServer;
use crate::messages::{LayerReply, LayerRequest, from_bytes, to_bytes};

/// Bytes moved on each link.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkBytes {
    /// Device → EdgeA.
    pub to_a: u64,
    /// EdgeA → device.
    pub from_a: u64,
    /// Device → EdgeB.
    pub to_b: u64,
    /// EdgeB → device.
    pub from_b: u64,
}

/// Both edges in this process behind a byte boundary.
pub struct InProcessLink {
    /// EdgeA.
    pub a: EdgeServer,
    /// EdgeB.
    pub b: EdgeServer,
    /// Bytes so far.
    pub bytes: LinkBytes,
    /// Every request EdgeA received, as bytes (its whole view), when recording.
    pub view_a: Option<Vec<Vec<u8>>>,
    /// Every request EdgeB received, when recording.
    pub view_b: Option<Vec<Vec<u8>>>,
}

impl InProcessLink {
    /// A link to two edges.
    pub fn new(a: EdgeServer, b: EdgeServer) -> Self {
        Self {
            a,
            b,
            bytes: LinkBytes::default(),
            view_a: None,
            view_b: None,
        }
    }

    /// Records every byte the edges receive from now on.
    pub fn record_views(&mut self) {
        self.view_a = Some(Vec::new());
        self.view_b = Some(Vec::new());
    }
}

fn serve(edge: &mut EdgeServer, req: &[u8]) -> Result<Vec<u8>> {
    let req: LayerRequest = from_bytes(req)?;
    to_bytes(&edge.answer(&req)?)
}

impl EdgeLink for InProcessLink {
    fn exchange(&mut self, a: LayerRequest, b: LayerRequest) -> Result<(LayerReply, LayerReply)> {
        let (qa, qb) = (to_bytes(&a)?, to_bytes(&b)?);
        let (ra, rb) = (serve(&mut self.a, &qa)?, serve(&mut self.b, &qb)?);
        self.bytes.to_a += qa.len() as u64;
        self.bytes.to_b += qb.len() as u64;
        self.bytes.from_a += ra.len() as u64;
        self.bytes.from_b += rb.len() as u64;
        if let (Some(va), Some(vb)) = (self.view_a.as_mut(), self.view_b.as_mut()) {
            va.push(qa);
            vb.push(qb);
        }
        Ok((from_bytes(&ra)?, from_bytes(&rb)?))
    }
}
