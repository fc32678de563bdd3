//! The streamed unit: a [`GarbledChunk`] carries everything the garbler sends for a run of circuit
//! instances, so a layer of any size streams in fixed-size chunks and memory stays flat.
//!
//! Layout (all little-endian, instance-major, independent of the batch size either side uses):
//! - `tables`: per instance, per AND gate in circuit order, `T_G ‖ T_E` (32 B);
//! - `garbler_labels`: per instance, per garbler input bit, the label of the garbler's bit (16 B);
//! - `ot_replies`: per instance, per evaluator input bit, `y0 ‖ y1` (32 B, see [`crate::ot`]);
//! - `decode`: per instance, per output bit, the lsb of the output's zero label, packed 8 per byte
//!   over the whole chunk (constant outputs carry a 0 bit and decode to their constant).
//!
//! The AND gate `a` of instance `i` of the chunk has global index `first_gate + i·ands + a` and uses
//! the hash tweaks `2·index` (garbler half) and `2·index + 1` (evaluator half); the garbler's
//! counter never repeats within one Δ.

use serde::{Deserialize, Serialize};

use crate::error::GcError;
use crate::hash::AesMode;

/// Everything the garbler sends for `instances` consecutive instances of one circuit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GarbledChunk {
    /// Global index of the first AND gate of the chunk (the evaluator checks the order).
    pub first_gate: u64,
    /// Number of circuit instances.
    pub instances: u32,
    /// Half-gates tables, 32 B per AND.
    #[serde(with = "serde_bytes")]
    pub tables: Vec<u8>,
    /// Labels of the garbler's input bits, 16 B each.
    #[serde(with = "serde_bytes")]
    pub garbler_labels: Vec<u8>,
    /// Derandomised OT answers for the evaluator's input bits, 32 B each.
    #[serde(with = "serde_bytes")]
    pub ot_replies: Vec<u8>,
    /// Output decoding bits, packed.
    #[serde(with = "serde_bytes")]
    pub decode: Vec<u8>,
}

impl GarbledChunk {
    /// Payload bytes (the four buffers; framing and the two header fields excluded).
    pub fn payload_bytes(&self) -> usize {
        self.tables.len() + self.garbler_labels.len() + self.ot_replies.len() + self.decode.len()
    }
}

/// Engine knobs shared by garbler and evaluator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GcConfig {
    /// Instances garbled side by side: each AND gate hashes `4 × batch` (garbler) or `2 × batch`
    /// (evaluator) blocks per AES call pair. 16 by default.
    pub batch: usize,
    /// AES driving mode ([`AesMode::Batched`] by default; `PerBlock` is the naive baseline).
    pub aes: AesMode,
    /// Threads that garble / evaluate the gates of one chunk (1..=64; 1 by default). The batches
    /// of a chunk are split into this many contiguous runs; the input labels, random-OT answers
    /// and the bytes produced do not depend on it.
    pub threads: usize,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            batch: 16,
            aes: AesMode::Batched,
            threads: 1,
        }
    }
}

impl GcConfig {
    pub(crate) fn validate(&self) -> Result<(), GcError> {
        if self.batch == 0 || self.batch > 4096 {
            return Err(GcError::param(format!(
                "batch {} not in 1..=4096",
                self.batch
            )));
        }
        if self.threads == 0 || self.threads > 64 {
            return Err(GcError::param(format!(
                "threads {} not in 1..=64",
                self.threads
            )));
        }
        Ok(())
    }

    /// Splits `n` instances into at most `threads` contiguous instance ranges whose bounds are
    /// multiples of the batch size (so every worker sees the same batches as one thread would).
    pub(crate) fn ranges(&self, n: usize) -> Vec<(usize, usize)> {
        let batches = n.div_ceil(self.batch);
        let parts = self.threads.min(batches).max(1);
        (0..parts)
            .map(|j| {
                let (a, b) = (batches * j / parts, batches * (j + 1) / parts);
                (a * self.batch, (b * self.batch).min(n))
            })
            .collect()
    }
}

/// Splits `buf` into consecutive pieces of `lens` bytes each (the sum must not exceed its length).
pub(crate) fn split_lens<'a, T>(mut buf: &'a mut [T], lens: &[usize]) -> Vec<&'a mut [T]> {
    let mut out = Vec::with_capacity(lens.len());
    for &l in lens {
        let (head, tail) = buf.split_at_mut(l);
        out.push(head);
        buf = tail;
    }
    out
}

/// Reads the `i`-th 16-byte little-endian label of `buf` (caller guarantees the range).
pub(crate) fn read_label(buf: &[u8], i: usize) -> u128 {
    let mut b = [0u8; 16];
    b.copy_from_slice(&buf[i * 16..i * 16 + 16]);
    u128::from_le_bytes(b)
}

/// Writes the `i`-th 16-byte little-endian label of `buf`.
pub(crate) fn write_label(buf: &mut [u8], i: usize, v: u128) {
    buf[i * 16..i * 16 + 16].copy_from_slice(&v.to_le_bytes());
}

/// All-ones when `bit` is set, else zero.
#[inline]
pub(crate) fn select_mask(bit: bool) -> u128 {
    0u128.wrapping_sub(u128::from(bit))
}

/// The lsb of a label as a mask (point-and-permute bit).
#[inline]
pub(crate) fn lsb_mask(label: u128) -> u128 {
    0u128.wrapping_sub(label & 1)
}

/// Global AND index → the hash tweak of its garbler half (`+1` for the evaluator half).
#[inline]
pub(crate) fn tweak(first_gate: u64, instance: usize, ands: usize, and_idx: usize) -> u128 {
    (u128::from(first_gate) + (instance * ands + and_idx) as u128) << 1
}

/// Checks the lengths of a chunk's buffers against a circuit.
pub(crate) fn expected_sizes(ands: usize, g: usize, e: usize, outs: usize, n: usize) -> [usize; 4] {
    [
        n * ands * 32,
        n * g * 16,
        n * e * 32,
        (n * outs).div_ceil(8),
    ]
}

/// Runs the gates of `gates` over `nb` side-by-side instances: label of wire `w`, instance `k` at
/// `labels[w·nb + k]`. XOR is free; NOT XORs `not_offset` (Δ for the garbler, 0 for the evaluator);
/// `and(inputs_below, out, a_off, b_off, and_idx)` fills the `nb` output labels of an AND gate.
pub(crate) fn run_gates<F>(
    gates: &[crate::circuit::Gate],
    labels: &mut [u128],
    base: usize,
    nb: usize,
    not_offset: u128,
    mut and: F,
) where
    F: FnMut(&[u128], &mut [u128], usize, usize, usize),
{
    use crate::circuit::Gate;
    let mut and_idx = 0;
    for (gi, gate) in gates.iter().enumerate() {
        let (lo, hi) = labels.split_at_mut((base + gi) * nb);
        let out = &mut hi[..nb];
        match *gate {
            Gate::Xor(a, b) => {
                let (a, b) = (&lo[a as usize * nb..][..nb], &lo[b as usize * nb..][..nb]);
                for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
                    *o = x ^ y;
                }
            }
            Gate::Not(a) => {
                for (o, x) in out.iter_mut().zip(&lo[a as usize * nb..][..nb]) {
                    *o = x ^ not_offset;
                }
            }
            Gate::And(a, b) => {
                and(lo, out, a as usize * nb, b as usize * nb, and_idx);
                and_idx += 1;
            }
        }
    }
}
