//! The device's offline phase [ours, an improvement on the reconstruction]: EdgeB's message
//! `S_in − r` does not depend on the query, so the device can send it — and receive
//! `L(S_in − r)` — before any query exists. Each prepared *pad* of linear layer `l` is the pair
//! `(r, d = L(S_in − r) − S_out)`; online, an item `x` travels to EdgeA alone as `x + r` and
//! comes back as `L(x + r) + d = L(x)` (exact in Z_2^64). Every pad is used for exactly one item
//! and then dropped, so both edges' views stay one-time pads; EdgeB's view is the same as in the
//! reconstructed protocol, only earlier. The online device work is one add per input and one per
//! output element, and one link instead of two.

use std::collections::VecDeque;

use privdnn_mpc::MaskKey;
use rand::RngCore;

use crate::device::EdgeLink;
use crate::frames::{FrameWriter, ReplyReader, words};
use crate::messages::KeyPair;
use crate::{EdgeError, Result};

/// One item's pad for one linear layer.
pub struct Pad {
    /// The mask `r` (added to the item online).
    pub(crate) r: Vec<u64>,
    /// `L(S_in − r) − S_out` (added to EdgeA's answer online).
    pub(crate) d: Vec<u64>,
}

/// Prepared pads per linear layer, used in order, each once.
#[derive(Default)]
pub struct Pads {
    layers: Vec<VecDeque<Pad>>,
}

impl Pads {
    /// Pads left for linear layer `l`.
    pub fn available(&self, l: usize) -> usize {
        self.layers.get(l).map_or(0, VecDeque::len)
    }

    /// True when at least `needs[l]` pads are left for every layer `l`.
    pub fn covers(&self, needs: &[usize]) -> bool {
        needs
            .iter()
            .enumerate()
            .all(|(l, &n)| self.available(l) >= n)
    }

    /// What is missing for `needs` (per layer).
    pub fn shortfall(&self, needs: &[usize]) -> Vec<usize> {
        needs
            .iter()
            .enumerate()
            .map(|(l, &n)| n.saturating_sub(self.available(l)))
            .collect()
    }

    /// Appends `other`'s pads after this pool's.
    pub fn extend(&mut self, other: Pads) {
        if self.layers.len() < other.layers.len() {
            self.layers.resize_with(other.layers.len(), VecDeque::new);
        }
        for (mine, theirs) in self.layers.iter_mut().zip(other.layers) {
            mine.extend(theirs);
        }
    }

    /// Removes and returns the next `n` pads of layer `l` (never handed out again).
    pub(crate) fn take(&mut self, l: usize, n: usize) -> Result<Vec<Pad>> {
        if self.available(l) < n {
            return Err(EdgeError::protocol(format!(
                "layer {l}: {n} pads needed, {} prepared",
                self.available(l)
            )));
        }
        Ok(self.layers[l].drain(..n).collect())
    }
}

/// Makes pads: the device's key pairs and a PRF key of its own (derived from the device's).
pub struct Preparer {
    keys: Vec<KeyPair>,
    key: MaskKey,
}

impl Preparer {
    /// A preparer for the key pairs `keys`, masks drawn from `key`.
    pub fn new(keys: Vec<KeyPair>, key: MaskKey) -> Self {
        Self { keys, key }
    }

    /// Prepares `counts[l]` pads of every linear layer `l` through EdgeB (one round trip per
    /// layer with a non-zero count).
    pub fn prepare(&self, counts: &[usize], link: &mut dyn EdgeLink) -> Result<Pads> {
        let mut rng = rand::rng();
        let nonce = [rng.next_u64(), rng.next_u64()];
        let mut frame = FrameWriter::default();
        let mut pads = Pads::default();
        for (l, &count) in counts.iter().enumerate() {
            let key = self
                .keys
                .get(l)
                .ok_or_else(|| EdgeError::protocol(format!("no key pair for layer {l}")))?;
            let mut layer = VecDeque::with_capacity(count);
            if count > 0 {
                let mut prg = self.key.stream("pad", &[nonce[0], nonce[1], l as u64]);
                frame.begin(nonce[0], l as u32, count);
                let mut masks = Vec::with_capacity(count);
                for _ in 0..count {
                    let r = prg.ring(key.s_in.len());
                    frame.item_zip(&key.s_in.0, &r, false);
                    masks.push(r);
                }
                let reply = link.round_trip(frame.finish()?)?;
                let mut rd = ReplyReader::new(reply);
                check_header(rd.header()?, (nonce[0], l, count))?;
                let s_out = &key.s_out.0;
                for r in masks {
                    let d = words(rd.item(s_out.len())?)
                        .zip(s_out)
                        .map(|(y, s)| y.wrapping_sub(*s))
                        .collect();
                    layer.push_back(Pad { r, d });
                }
                rd.finish()?;
            }
            pads.layers.push(layer);
        }
        Ok(pads)
    }
}

/// Checks a reply's `(batch, layer, items)` against what was asked.
pub(crate) fn check_header(got: (u64, u64, u64), (batch, l, n): (u64, usize, usize)) -> Result<()> {
    if got == (batch, l as u64, n as u64) {
        Ok(())
    } else {
        Err(EdgeError::protocol(format!(
            "reply for batch {} layer {} with {} items, expected batch {batch} layer {l} with {n}",
            got.0, got.1, got.2
        )))
    }
}
