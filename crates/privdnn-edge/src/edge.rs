//! An edge server: applies its plaintext linear layer to every item of a request. It never holds
//! a key pair, and what it receives is uniform (a one-time pad per query).
//!
//! [`Cheat`] makes an edge corrupt results on purpose, to measure the device's random-sampling
//! integrity check.

use privdnn_mpc::{Prg, RingVec, linear};
use serde::{Deserialize, Serialize};

use crate::messages::{EdgeBundle, LayerReply, LayerRequest};
use crate::{EdgeError, Result};

/// How a dishonest edge corrupts its replies.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum CheatMode {
    /// Adds 1 to one element of every item of a corrupted request.
    AllItems,
    /// Adds 1 to one element of one item (chosen uniformly) of a corrupted request.
    OneItem,
}

/// A corruption strategy: each request is corrupted with probability `rate`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cheat {
    /// Probability that a request is corrupted.
    pub rate: f64,
    /// What is corrupted.
    pub mode: CheatMode,
}

/// An edge server's state.
pub struct EdgeServer {
    bundle: EdgeBundle,
    cheat: Option<(Cheat, Prg)>,
    corrupted: u64,
}

impl EdgeServer {
    /// An honest edge.
    pub fn new(bundle: EdgeBundle) -> Self {
        Self {
            bundle,
            cheat: None,
            corrupted: 0,
        }
    }

    /// A dishonest edge (tests and the integrity measurement), its choices drawn from `prg`.
    pub fn cheating(bundle: EdgeBundle, cheat: Cheat, prg: Prg) -> Self {
        Self {
            bundle,
            cheat: Some((cheat, prg)),
            corrupted: 0,
        }
    }

    /// Requests corrupted so far.
    pub fn corrupted(&self) -> u64 {
        self.corrupted
    }

    /// Number of linear layers held.
    pub fn layers(&self) -> usize {
        self.bundle.layers.len()
    }

    /// Answers one request.
    pub fn answer(&mut self, req: &LayerRequest) -> Result<LayerReply> {
        let op = self
            .bundle
            .layers
            .get(req.layer as usize)
            .ok_or_else(|| EdgeError::protocol(format!("no linear layer {}", req.layer)))?;
        let mut items = req
            .items
            .iter()
            .map(|x| linear::apply(op, &x.0).map(RingVec))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        if let Some((cheat, prg)) = self.cheat.as_mut()
            && prg.unit() < cheat.rate
            && !items.is_empty()
        {
            self.corrupted += 1;
            let chosen = match cheat.mode {
                CheatMode::AllItems => None,
                CheatMode::OneItem => Some(prg.below(items.len())),
            };
            for (i, item) in items.iter_mut().enumerate() {
                if chosen.is_none_or(|c| c == i) && !item.is_empty() {
                    let at = prg.below(item.len());
                    item.0[at] = item.0[at].wrapping_add(1);
                }
            }
        }
        Ok(LayerReply {
            batch: req.batch,
            layer: req.layer,
            items,
        })
    }
}
