//! Where the user keeps a residue's selected weights between calls, chosen from a memory budget.
//!
//! Three residencies, fastest first:
//! * [`Residency::Lifted`]: expanded at load, the conv2 weights on encrypted channels lifted once
//!   per session (the fastest when a session makes many calls; the largest).
//! * [`Residency::Expanded`]: expanded at load, conv2 weights lifted per call, a few filters at a
//!   time.
//! * [`Residency::Packed`]: kept as shipped (a few seeded ciphertexts); every call expands them in
//!   packing order — one chunk at a time, or chunks of up to 512 weights together side by side
//!   ([`parallel_chunks`]) — and lifts a few filters at a time. A call then holds at most 512
//!   expanded weights and the filters in flight instead of every weight — what lets the
//!   100 %-encrypted MNIST block run in well under 2 GiB. With one call per session (the batch
//!   layout) it costs nothing extra; with many calls it repeats the expansion per call.
//!
//! [`plan_residency`] picks the fastest residency whose estimated bytes, plus the per-call
//! working set of the layout, fit the budget.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::ops::Range;

use fhe::bfv::{BfvParameters, Ciphertext, EvaluationKey};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::Layout;
use crate::block::BlockShape;
use crate::ops::OpCounter;
use crate::packing::expand_one;
use crate::{HeError, Result};

/// Default user-side memory budget (bytes): 1.5 GiB, leaving room for the process's other data
/// below a 2 GiB machine.
pub const DEFAULT_MEMORY_BUDGET: u64 = 1536 << 20;

/// How the user holds a residue's selected weights between calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Residency {
    /// Expanded; conv2 weights on encrypted channels lifted once per session.
    Lifted,
    /// Expanded; conv2 weights lifted per call.
    Expanded,
    /// Packed as shipped; expanded and lifted per call, one chunk and a few filters at a time.
    Packed,
}

/// The packed weights of one residue with what expands them.
pub struct PackedWeights {
    /// Packed ciphertexts (selected conv1 channels with biases, then conv2 filters with biases).
    pub(crate) packed: Vec<Ciphertext>,
    /// Expansion keys.
    pub(crate) ek: EvaluationKey,
    /// Weights per packed ciphertext.
    pub(crate) chunk: usize,
    /// Weights in all.
    pub(crate) count: usize,
}

/// The sizes the residency estimate is made of, for one residue.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Bytes of one level-0 ciphertext.
    pub ciphertext: u64,
    /// Bytes of one lifted ciphertext.
    pub lifted: u64,
    /// Bytes of one encoded plaintext.
    pub plaintext: u64,
}

impl Sizes {
    /// Sizes at parameters `par` with `extended` moduli in the lifted basis.
    pub fn new(par: &BfvParameters, extended: usize) -> Self {
        let n = par.degree() as u64;
        let l = par.moduli().len() as u64;
        Self {
            ciphertext: 2 * l * n * 8,
            lifted: 2 * extended as u64 * n * 8,
            plaintext: (l + 1) * n * 8,
        }
    }
}

/// Selection and shape a residency is estimated for.
pub struct Selection<'a> {
    /// The block's shape.
    pub shape: &'a BlockShape,
    /// Selected layer-1 channels.
    pub s1: usize,
    /// Selected layer-2 filters.
    pub s2: usize,
    /// Weights per packed ciphertext.
    pub chunk: usize,
}

/// Weights a packed stream expands at once: small chunks are expanded side by side, up to
/// this many weights (one 512-weight chunk's memory) and one chunk per thread.
pub const EXPANSION_WEIGHTS: usize = 512;

/// Chunks of `chunk` weights a packed stream expands side by side.
pub fn parallel_chunks(chunk: usize) -> usize {
    (EXPANSION_WEIGHTS / chunk.max(1)).clamp(1, rayon::current_num_threads().max(1))
}

/// Bytes of expanded conv1 weights a packed stream holds at once: the selected channels are
/// squared in groups of at most this many weights' worth (the 100 % block of AlexNet quick
/// expanded all 2,616 of its conv1 weights, 1.3 GB, before squaring any).
pub const LAYER1_BYTES: u64 = 256 << 20;

/// Selected conv1 channels whose `per` weights (bias included) a packed stream expands at once:
/// enough for one channel per thread, at most [`LAYER1_BYTES`], never more than `s1`.
pub fn layer1_group(s1: usize, per: usize, ciphertext: u64) -> usize {
    let fit = (LAYER1_BYTES / (per as u64 * ciphertext).max(1)) as usize;
    fit.max(rayon::current_num_threads()).clamp(1, s1.max(1))
}

/// Filters lifted at once when weights are lifted per call (keeps both cores busy when a filter
/// has a single output group).
pub(crate) const FILTERS_IN_FLIGHT: u64 = 2;

/// Estimated bytes of one call's working set in `layout` (encrypted squares and their lifts,
/// plaintext squares, input plaintexts).
pub fn working_set(sel: &Selection<'_>, sizes: &Sizes, layout: Layout) -> u64 {
    let s = sel.shape;
    let maps = match layout {
        Layout::Batch => (s.h1 * s.w1) as u64,
        Layout::Spatial => (s.k2 * s.k2) as u64,
    };
    let squares = maps * sel.s1 as u64 * (sizes.lifted + sizes.ciphertext);
    let plain = maps * (s.c1 - sel.s1) as u64 * sizes.plaintext;
    let inputs = (s.cin * s.height * s.width + 1) as u64 * sizes.plaintext;
    squares + plain + inputs.min(maps * (s.w1_len() as u64 + 1) * sizes.plaintext)
}

/// Estimated bytes of the weights of `residues` residues held in `residency`.
pub fn weight_bytes(sel: &Selection<'_>, sizes: &Sizes, residues: u64, r: Residency) -> u64 {
    let s = sel.shape;
    let taps = (s.k2 * s.k2) as u64;
    let count = (sel.s1 * (s.w1_len() + 1) + sel.s2 * (s.w2_len() + 1)) as u64;
    let filter_lifts = FILTERS_IN_FLIGHT * sel.s1 as u64 * taps * sizes.lifted;
    match r {
        Residency::Lifted => {
            residues
                * (count * sizes.ciphertext + sel.s2 as u64 * sel.s1 as u64 * taps * sizes.lifted)
        }
        Residency::Expanded => residues * count * sizes.ciphertext + filter_lifts,
        Residency::Packed => {
            let expanding = sel.chunk * parallel_chunks(sel.chunk);
            let per1 = s.w1_len() + 1;
            let layer1 = layer1_group(sel.s1, per1, sizes.ciphertext) * per1;
            let conv2 = FILTERS_IN_FLIGHT as usize * (s.w2_len() + 1);
            let in_flight = (expanding + layer1.max(conv2)) as u64;
            residues * count.div_ceil(sel.chunk as u64) * sizes.ciphertext
                + in_flight * sizes.ciphertext
                + filter_lifts
        }
    }
}

/// Estimated bytes of weights held in `residency` plus one call's working set in `layout`
/// (the smallest over both layouts when None).
pub fn planned_bytes(
    sel: &Selection<'_>,
    sizes: &Sizes,
    residues: u64,
    residency: Residency,
    layout: Option<Layout>,
) -> u64 {
    weight_bytes(sel, sizes, residues, residency) + call_working_set(sel, sizes, layout)
}

/// One call's working set in `layout`, or the smaller of both layouts' when None.
fn call_working_set(sel: &Selection<'_>, sizes: &Sizes, layout: Option<Layout>) -> u64 {
    match layout {
        Some(l) => working_set(sel, sizes, l),
        None => {
            working_set(sel, sizes, Layout::Batch).min(working_set(sel, sizes, Layout::Spatial))
        }
    }
}

/// The fastest residency whose weights plus the working set of `layout` (the smallest over both
/// layouts when None) fit `budget` bytes; [`Residency::Packed`] when none does.
pub fn plan_residency(
    sel: &Selection<'_>,
    sizes: &Sizes,
    residues: u64,
    budget: u64,
    layout: Option<Layout>,
) -> Residency {
    let work = call_working_set(sel, sizes, layout);
    [Residency::Lifted, Residency::Expanded]
        .into_iter()
        .find(|&r| weight_bytes(sel, sizes, residues, r) + work <= budget)
        .unwrap_or(Residency::Packed)
}

/// The weights of one call in packing order: borrowed when resident, expanded chunk by chunk
/// when packed (conv1 channels first, then the filters in order).
pub(crate) enum WeightStream<'a> {
    /// Expanded weights held by the block.
    Resident {
        w1: &'a [Vec<Ciphertext>],
        w2: &'a [Vec<Ciphertext>],
    },
    /// Packed weights expanded on demand.
    Packed {
        src: &'a PackedWeights,
        next: usize,
        buffer: VecDeque<Ciphertext>,
        /// Weights handed out so far.
        taken: usize,
        ops: &'a OpCounter,
    },
}

impl<'a> WeightStream<'a> {
    /// Stream over packed weights.
    pub(crate) fn packed(src: &'a PackedWeights, ops: &'a OpCounter) -> Self {
        Self::Packed {
            src,
            next: 0,
            buffer: VecDeque::new(),
            taken: 0,
            ops,
        }
    }

    /// The next `n` weights of a packed stream. With `ahead`, chunks are expanded
    /// [`parallel_chunks`] at a time, side by side (expansion is sequential inside fhe, and most
    /// of a packed call's time).
    fn take(&mut self, n: usize, ahead: bool) -> Result<Vec<Ciphertext>> {
        let Self::Packed {
            src,
            next,
            buffer,
            taken,
            ops,
        } = self
        else {
            return Err(HeError::shape("resident weights are not taken in order"));
        };
        while buffer.len() < n {
            let needed = (n - buffer.len()).div_ceil(src.chunk);
            let wide = if ahead { parallel_chunks(src.chunk) } else { 1 };
            let first = *next;
            let last = (first + needed.max(wide)).min(src.packed.len());
            if first >= last {
                return Err(HeError::shape(
                    "the packed weights end before the selection does",
                ));
            }
            let fresh = (first..last)
                .into_par_iter()
                .map(|i| expand_one(&src.packed[i], i, src.count, src.chunk, &src.ek, ops))
                .collect::<Result<Vec<_>>>()?;
            for (i, weights) in (first..).zip(fresh) {
                // After a release, the chunk is expanded again and its handed-out start skipped.
                let skip = (*taken + buffer.len()).saturating_sub(i * src.chunk);
                buffer.extend(weights.into_iter().skip(skip));
            }
            *next = last;
        }
        *taken += n;
        Ok(buffer.drain(..n).collect())
    }

    /// Packed streams: frees the expanded weights not handed out yet (they are expanded again
    /// when asked for), so that they do not sit in memory through layer 1.
    fn release(&mut self) {
        if let Self::Packed {
            src,
            next,
            buffer,
            taken,
            ..
        } = self
            && !buffer.is_empty()
        {
            buffer.clear();
            *next = *taken / src.chunk;
        }
    }

    /// The conv1 weights (and bias) of the selected channels `channels`, `per` each. Packed
    /// streams must be asked for the channels in order, first, then [`WeightStream::end_layer1`].
    pub(crate) fn layer1(
        &mut self,
        channels: Range<usize>,
        per: usize,
    ) -> Result<Cow<'a, [Vec<Ciphertext>]>> {
        if let Self::Resident { w1, .. } = self {
            return w1
                .get(channels)
                .map(Cow::Borrowed)
                .ok_or_else(|| HeError::shape("channel outside the selection"));
        }
        channels
            .map(|_| self.take(per, false))
            .collect::<Result<Vec<_>>>()
            .map(Cow::Owned)
    }

    /// After the last conv1 channel: a packed stream frees what it expanded ahead.
    pub(crate) fn end_layer1(&mut self) {
        self.release();
    }

    /// The conv2 weights (and bias) of selected filter `jj`, `per` of them. Packed streams must
    /// be asked for the filters in order, after [`WeightStream::layer1`].
    pub(crate) fn filter(&mut self, jj: usize, per: usize) -> Result<Cow<'a, [Ciphertext]>> {
        if let Self::Resident { w2, .. } = self {
            return w2
                .get(jj)
                .map(|row| Cow::Borrowed(row.as_slice()))
                .ok_or_else(|| HeError::shape("filter outside the selection"));
        }
        self.take(per, true).map(Cow::Owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer1_groups_bound_the_expanded_conv1_weights() {
        let ct = 2 * 4 * 8192 * 8; // a level-0 ciphertext at the pipelines' parameters
        // AlexNet quick, 100 %: 24 channels of 109 weights (57 MB each) → 4 at a time
        assert_eq!(layer1_group(24, 109, ct), 4);
        assert!(4 * 109 * ct <= LAYER1_BYTES);
        // LeNet5, 100 %: all 6 channels of 37 weights fit at once
        assert_eq!(layer1_group(6, 37, ct), 6);
        // never fewer than one channel per thread, never more than selected
        assert!(layer1_group(24, 100_000, ct) >= rayon::current_num_threads().min(24));
        assert_eq!(layer1_group(1, 109, ct), 1);
    }
}
