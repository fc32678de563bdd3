//! The garbler: free-XOR, half-gates AND (Zahur–Rosulek–Evans 2015), point-and-permute, labels of
//! 128 bits with a global offset Δ (lsb 1), AND tables hashed in batches of instances.
//!
//! Half-gates for `c = a ∧ b` with zero labels `A0, B0`, `pa = lsb A0`, `pb = lsb B0`, tweaks
//! `j, j'`: `T_G = H(A0,j) ⊕ H(A1,j) ⊕ pb·Δ`, `W_G = H(A0,j) ⊕ pa·T_G`, `T_E = H(B0,j') ⊕ H(B1,j')
//! ⊕ A0`, `W_E = H(B0,j') ⊕ pb·(T_E ⊕ A0)`, `C0 = W_G ⊕ W_E`; the table is `(T_G, T_E)`.

use crate::bits::pack_bits;
use crate::chunk::{
    GarbledChunk, GcConfig, expected_sizes, lsb_mask, run_gates, select_mask, tweak, write_label,
};
use crate::circuit::{Bit, Circuit};
use crate::error::GcError;
use crate::hash::{LabelPrg, TccrHash};
use crate::ot::GarblerRots;

/// Garbles chunks of circuit instances under one secret Δ.
pub struct Garbler {
    delta: u128,
    prg: LabelPrg,
    hash: TccrHash,
    cfg: GcConfig,
    next_gate: u64,
    labels: Vec<u128>,
    hx: Vec<u128>,
    tw: Vec<u128>,
    decode_bits: Vec<bool>,
}

/// One chunk's inputs, borrowed.
struct ChunkIn<'a> {
    circuit: &'a Circuit,
    garbler_bits: &'a [bool],
    flips: &'a [bool],
}

impl Garbler {
    /// A garbler whose labels and Δ come from AES-CTR under the secret `seed` (use a fresh random
    /// seed per session).
    pub fn new(seed: [u8; 16], cfg: GcConfig) -> Result<Self, GcError> {
        cfg.validate()?;
        let mut prg = LabelPrg::new(seed);
        let delta = prg.next_label() | 1;
        Ok(Garbler {
            delta,
            prg,
            hash: TccrHash::new(cfg.aes),
            cfg,
            next_gate: 0,
            labels: Vec::new(),
            hx: Vec::new(),
            tw: Vec::new(),
            decode_bits: Vec::new(),
        })
    }

    /// Global index of the next AND gate to garble (= ANDs garbled so far).
    pub fn next_gate(&self) -> u64 {
        self.next_gate
    }

    #[cfg(test)]
    pub(crate) fn delta(&self) -> u128 {
        self.delta
    }

    #[cfg(test)]
    pub(crate) fn labels(&self) -> &[u128] {
        &self.labels
    }

    /// Garbles `instances` instances of `circuit` into `out` (buffers reused).
    /// `garbler_bits`: `instances × garbler_inputs` bits, instance-major; `flips`: the evaluator's
    /// derandomisation bits for its `instances × evaluator_inputs` input bits, in the same order.
    pub fn garble_chunk(
        &mut self,
        circuit: &Circuit,
        instances: usize,
        garbler_bits: &[bool],
        flips: &[bool],
        rots: &mut GarblerRots,
        out: &mut GarbledChunk,
    ) -> Result<(), GcError> {
        let (g, e, ands) = (
            circuit.garbler_inputs(),
            circuit.evaluator_inputs(),
            circuit.and_count(),
        );
        if garbler_bits.len() != instances * g || flips.len() != instances * e {
            return Err(GcError::length(format!(
                "{instances} instances need {}+{} input bits, got {}+{}",
                instances * g,
                instances * e,
                garbler_bits.len(),
                flips.len()
            )));
        }
        if rots.remaining() < (instances * e) as u64 {
            return Err(GcError::Exhausted(format!(
                "{} OTs needed, {} left",
                instances * e,
                rots.remaining()
            )));
        }
        let n32 = u32::try_from(instances)
            .map_err(|_| GcError::param("chunk over u32::MAX instances"))?;
        let next = (instances as u64)
            .checked_mul(ands as u64)
            .and_then(|x| x.checked_add(self.next_gate))
            .ok_or_else(|| GcError::param("gate index overflow"))?;
        let sizes = expected_sizes(ands, g, e, circuit.outputs().len(), instances);
        out.first_gate = self.next_gate;
        out.instances = n32;
        for (buf, len) in [
            &mut out.tables,
            &mut out.garbler_labels,
            &mut out.ot_replies,
        ]
        .into_iter()
        .zip(sizes)
        {
            buf.clear();
            buf.resize(len, 0);
        }
        self.decode_bits.clear();
        let input = ChunkIn {
            circuit,
            garbler_bits,
            flips,
        };
        for start in (0..instances).step_by(self.cfg.batch) {
            let nb = self.cfg.batch.min(instances - start);
            self.garble_batch(&input, start, nb, rots, out)?;
        }
        out.decode = pack_bits(&self.decode_bits);
        self.next_gate = next;
        Ok(())
    }

    fn garble_batch(
        &mut self,
        input: &ChunkIn<'_>,
        start: usize,
        nb: usize,
        rots: &mut GarblerRots,
        out: &mut GarbledChunk,
    ) -> Result<(), GcError> {
        let c = input.circuit;
        let (g, e, d) = (c.garbler_inputs(), c.evaluator_inputs(), self.delta);
        self.labels.resize(c.wire_count() * nb, 0);
        self.prg.fill(&mut self.labels[..(g + e) * nb]);
        for k in 0..nb {
            for i in 0..g {
                let idx = (start + k) * g + i;
                let l0 = self.labels[i * nb + k];
                write_label(
                    &mut out.garbler_labels,
                    idx,
                    l0 ^ (select_mask(input.garbler_bits[idx]) & d),
                );
            }
            for i in 0..e {
                let idx = (start + k) * e + i;
                let (y0, y1) = rots.answer(input.flips[idx], self.labels[(g + i) * nb + k], d)?;
                write_label(&mut out.ot_replies, 2 * idx, y0);
                write_label(&mut out.ot_replies, 2 * idx + 1, y1);
            }
        }
        let (first, ands) = (out.first_gate, c.and_count());
        let (hash, hx, tw, tables) = (&mut self.hash, &mut self.hx, &mut self.tw, &mut out.tables);
        run_gates(
            c.gates(),
            &mut self.labels,
            g + e,
            nb,
            d,
            |lo, dst, a, b, and_idx| {
                hx.clear();
                tw.clear();
                for k in 0..nb {
                    let (a0, b0) = (lo[a + k], lo[b + k]);
                    let j = tweak(first, start + k, ands, and_idx);
                    hx.extend_from_slice(&[a0, a0 ^ d, b0, b0 ^ d]);
                    tw.extend_from_slice(&[j, j, j | 1, j | 1]);
                }
                hash.hash_batch(hx, tw);
                for (k, (h, o)) in hx.chunks_exact(4).zip(dst.iter_mut()).enumerate() {
                    let (a0, b0) = (lo[a + k], lo[b + k]);
                    let tg = h[0] ^ h[1] ^ (lsb_mask(b0) & d);
                    let wg = h[0] ^ (lsb_mask(a0) & tg);
                    let te = h[2] ^ h[3] ^ a0;
                    let we = h[2] ^ (lsb_mask(b0) & (te ^ a0));
                    *o = wg ^ we;
                    let t = 2 * ((start + k) * ands + and_idx);
                    write_label(tables, t, tg);
                    write_label(tables, t + 1, te);
                }
            },
        );
        for k in 0..nb {
            for o in c.outputs() {
                self.decode_bits.push(match *o {
                    Bit::Wire(w) => self.labels[w as usize * nb + k] & 1 == 1,
                    Bit::Const(_) => false,
                });
            }
        }
        Ok(())
    }
}
