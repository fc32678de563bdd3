//! The device's offline phase [ours, an improvement on the reconstruction]: EdgeB's message
//! `S_in − r` does not depend on the query, so the device can send it — and receive
//! `L(S_in − r)` — before any query exists. Each prepared *pad* of linear layer `l` is the pair
//! `(r, d = L(S_in − r) − S_out)`; online, an item `x` travels to EdgeA alone as `x + r` and
//! comes back as `L(x + r) + d = L(x)` (exact in Z_2^64). Every pad is used for exactly one item
//! and then dropped (its vectors are overwritten by a fresh pad), so both edges' views stay
//! one-time pads; EdgeB's view is the same as in the
//! reconstructed protocol, only earlier. The online device work is one add per input and one per
//! output element, and one link instead of two.
//!
//! EdgeB's words `u = S_in − r` are drawn from the PRG straight into the request frame and
//! `r = S_in − u` is kept (the same distribution as drawing `r`: `u` uniform ⇔ `r` uniform);
//! frames leave in parts of [`crate::frames::PART_BYTES`], and the vectors of used pads go
//! back to the preparer to be overwritten, so a steady stream of pads allocates nothing.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use privdnn_mpc::MaskKey;
use rand::RngCore;

use crate::device::EdgeLink;
use crate::frames::{FrameWriter, PART_BYTES, ReplyReader, words};
use crate::messages::KeyPair;
use crate::{EdgeError, Result};

/// One item's pad for one linear layer.
pub struct Pad {
    /// The mask `r` (added to the item online).
    pub(crate) r: Vec<u64>,
    /// `L(S_in − r) − S_out` (added to EdgeA's answer online).
    pub(crate) d: Vec<u64>,
}

/// Vectors of used pads, by length, for the preparer to overwrite (no allocation, page fault or
/// heap trim per pad once the pool runs in a steady state). At most [`Bin::KEEP`] per length.
#[derive(Default)]
struct Bin {
    free: BTreeMap<usize, Vec<Vec<u64>>>,
}

impl Bin {
    /// Vectors kept per length (about two offline chunks of a batch of 64).
    const KEEP: usize = 256;

    /// An empty vector with room for `len` values (a used one when there is one).
    fn take(&mut self, len: usize) -> Vec<u64> {
        match self.free.get_mut(&len).and_then(Vec::pop) {
            Some(mut v) => {
                v.clear();
                v
            }
            None => Vec::with_capacity(len),
        }
    }

    fn put(&mut self, v: Vec<u64>) {
        let list = self.free.entry(v.len()).or_default();
        if list.len() < Self::KEEP {
            list.push(v);
        }
    }
}

/// A shared bin (the preparer fills from it, the device's pool returns used pads to it).
type SharedBin = Arc<Mutex<Bin>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Prepared pads per linear layer, used in order, each once.
#[derive(Default)]
pub struct Pads {
    layers: Vec<VecDeque<Pad>>,
    bin: Option<SharedBin>,
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
        if self.bin.is_none() {
            self.bin = other.bin;
        }
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

    /// Hands used pads back to their preparer's bin (their vectors are overwritten, never
    /// sent again: a pad stays used once).
    pub(crate) fn recycle(&mut self, used: Vec<Pad>) {
        if let Some(bin) = &self.bin {
            let mut bin = lock(bin);
            for pad in used {
                bin.put(pad.r);
                bin.put(pad.d);
            }
        }
    }
}

/// Makes pads: the device's key pairs and a PRF key of its own (derived from the device's).
/// Its request frame and the vectors of used pads are reused from call to call.
pub struct Preparer {
    keys: Vec<KeyPair>,
    key: MaskKey,
    frame: Mutex<FrameWriter>,
    bin: SharedBin,
}

impl Preparer {
    /// A preparer for the key pairs `keys`, masks drawn from `key`.
    pub fn new(keys: Vec<KeyPair>, key: MaskKey) -> Self {
        Self {
            keys,
            key,
            frame: Mutex::default(),
            bin: SharedBin::default(),
        }
    }

    /// Prepares `counts[l]` pads of every linear layer `l` through EdgeB (one round trip per
    /// layer with a non-zero count).
    pub fn prepare(&self, counts: &[usize], link: &mut dyn EdgeLink) -> Result<Pads> {
        let mut rng = rand::rng();
        let nonce = [rng.next_u64(), rng.next_u64()];
        let mut frame = lock(&self.frame);
        let mut pads = Pads {
            layers: Vec::with_capacity(counts.len()),
            bin: Some(self.bin.clone()),
        };
        for (l, &count) in counts.iter().enumerate() {
            let key = self
                .keys
                .get(l)
                .ok_or_else(|| EdgeError::protocol(format!("no key pair for layer {l}")))?;
            let mut layer = VecDeque::with_capacity(count);
            if count > 0 {
                let mut prg = self.key.stream("pad", &[nonce[0], nonce[1], l as u64]);
                frame.begin_sized(nonce[0], l as u32, count, key.s_in.len())?;
                let (s_in, s_out) = (&key.s_in.0, &key.s_out.0);
                let mut masks = Vec::with_capacity(count);
                let mut outs = Vec::with_capacity(count);
                {
                    let mut bin = lock(&self.bin);
                    for _ in 0..count {
                        masks.push(bin.take(s_in.len()));
                        outs.push(bin.take(s_out.len()));
                    }
                }
                for r in masks.iter_mut() {
                    // EdgeB's word u = S_in − r straight from the PRG into the frame, r = S_in − u
                    let u = frame.item_bytes(s_in.len());
                    prg.fill_bytes(u);
                    r.extend(s_in.iter().zip(words(u)).map(|(s, u)| s.wrapping_sub(u)));
                    if frame.part().len() >= PART_BYTES {
                        link.send_part(frame.part())?;
                        frame.part_sent();
                    }
                }
                let reply = link.round_trip(frame.finish()?)?;
                let mut rd = ReplyReader::new(reply);
                check_header(rd.header()?, (nonce[0], l, count))?;
                for (r, mut d) in masks.into_iter().zip(outs) {
                    let y = words(rd.item(s_out.len())?);
                    d.extend(y.zip(s_out).map(|(y, s)| y.wrapping_sub(*s)));
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
