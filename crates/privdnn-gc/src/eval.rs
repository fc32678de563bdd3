//! The evaluator: consumes [`GarbledChunk`]s in order, obtains its input labels through the dealer's
//! random OTs, evaluates with 2 hashes per AND (batched over instances), decodes the outputs.

use crate::bits::unpack_bits;
use crate::chunk::{
    GarbledChunk, GcConfig, expected_sizes, lsb_mask, read_label, run_gates, tweak,
};
use crate::circuit::{Bit, Circuit};
use crate::error::GcError;
use crate::hash::TccrHash;
use crate::ot::EvaluatorRots;

/// Evaluates chunks of garbled circuit instances.
pub struct Evaluator {
    hash: TccrHash,
    cfg: GcConfig,
    next_gate: u64,
    labels: Vec<u128>,
    hx: Vec<u128>,
    tw: Vec<u128>,
}

impl Evaluator {
    /// An evaluator expecting chunks from a fresh garbler.
    pub fn new(cfg: GcConfig) -> Result<Self, GcError> {
        cfg.validate()?;
        Ok(Evaluator {
            hash: TccrHash::new(cfg.aes),
            cfg,
            next_gate: 0,
            labels: Vec::new(),
            hx: Vec::new(),
            tw: Vec::new(),
        })
    }

    /// Global index of the next AND gate expected.
    pub fn next_gate(&self) -> u64 {
        self.next_gate
    }

    #[cfg(test)]
    pub(crate) fn labels(&self) -> &[u128] {
        &self.labels
    }

    fn check(&self, c: &Circuit, chunk: &GarbledChunk, bits: usize) -> Result<usize, GcError> {
        if chunk.first_gate != self.next_gate {
            return Err(GcError::Order(format!(
                "chunk starts at AND {} but {} was expected",
                chunk.first_gate, self.next_gate
            )));
        }
        let n = chunk.instances as usize;
        let sizes = expected_sizes(
            c.and_count(),
            c.garbler_inputs(),
            c.evaluator_inputs(),
            c.outputs().len(),
            n,
        );
        let got = [
            chunk.tables.len(),
            chunk.garbler_labels.len(),
            chunk.ot_replies.len(),
            chunk.decode.len(),
        ];
        if got != sizes || bits != n * c.evaluator_inputs() {
            return Err(GcError::length(format!(
                "chunk of {n} instances: buffers {got:?} (expected {sizes:?}), {bits} evaluator bits (expected {})",
                n * c.evaluator_inputs()
            )));
        }
        Ok(n)
    }

    /// Evaluates `chunk` (instances of `circuit`); `evaluator_bits` are this party's input bits for
    /// those instances (instance-major, the same bits whose flips were sent). Appends nothing else:
    /// `outputs` is overwritten with `instances × outputs` bits, instance-major.
    pub fn evaluate_chunk(
        &mut self,
        circuit: &Circuit,
        chunk: &GarbledChunk,
        evaluator_bits: &[bool],
        rots: &mut EvaluatorRots,
        outputs: &mut Vec<bool>,
    ) -> Result<(), GcError> {
        let n = self.check(circuit, chunk, evaluator_bits.len())?;
        let decode = unpack_bits(&chunk.decode, n * circuit.outputs().len())?;
        outputs.clear();
        for start in (0..n).step_by(self.cfg.batch) {
            let nb = self.cfg.batch.min(n - start);
            self.eval_batch(circuit, chunk, evaluator_bits, start, nb, rots)?;
            for k in 0..nb {
                for (oi, o) in circuit.outputs().iter().enumerate() {
                    outputs.push(match *o {
                        Bit::Wire(w) => {
                            (self.labels[w as usize * nb + k] & 1 == 1)
                                ^ decode[(start + k) * circuit.outputs().len() + oi]
                        }
                        Bit::Const(v) => v,
                    });
                }
            }
        }
        self.next_gate += (n * circuit.and_count()) as u64;
        Ok(())
    }

    fn eval_batch(
        &mut self,
        c: &Circuit,
        chunk: &GarbledChunk,
        bits: &[bool],
        start: usize,
        nb: usize,
        rots: &mut EvaluatorRots,
    ) -> Result<(), GcError> {
        let (g, e) = (c.garbler_inputs(), c.evaluator_inputs());
        self.labels.resize(c.wire_count() * nb, 0);
        for k in 0..nb {
            for i in 0..g {
                self.labels[i * nb + k] = read_label(&chunk.garbler_labels, (start + k) * g + i);
            }
            for i in 0..e {
                let idx = (start + k) * e + i;
                let (y0, y1) = (
                    read_label(&chunk.ot_replies, 2 * idx),
                    read_label(&chunk.ot_replies, 2 * idx + 1),
                );
                self.labels[(g + i) * nb + k] = rots.receive(bits[idx], y0, y1)?;
            }
        }
        let (first, ands) = (chunk.first_gate, c.and_count());
        let (hash, hx, tw, tables) = (&mut self.hash, &mut self.hx, &mut self.tw, &chunk.tables);
        run_gates(
            c.gates(),
            &mut self.labels,
            g + e,
            nb,
            0,
            |lo, dst, a, b, and_idx| {
                hx.clear();
                tw.clear();
                for k in 0..nb {
                    let j = tweak(first, start + k, ands, and_idx);
                    hx.extend_from_slice(&[lo[a + k], lo[b + k]]);
                    tw.extend_from_slice(&[j, j | 1]);
                }
                hash.hash_batch(hx, tw);
                for (k, (h, o)) in hx.chunks_exact(2).zip(dst.iter_mut()).enumerate() {
                    let (la, lb) = (lo[a + k], lo[b + k]);
                    let t = 2 * ((start + k) * ands + and_idx);
                    let (tg, te) = (read_label(tables, t), read_label(tables, t + 1));
                    *o = (h[0] ^ (lsb_mask(la) & tg)) ^ (h[1] ^ (lsb_mask(lb) & (te ^ la)));
                }
            },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::garble::Garbler;
    use crate::ot::{Dealer, GarblerRots};
    use crate::reshare::ReshareSpec;

    /// One batch of the pool+ReLU gadget: every evaluator label on every wire is the zero label or
    /// the zero label ⊕ Δ, and the evaluator never holds two labels that differ by Δ (nor Δ itself).
    #[test]
    fn evaluator_labels_never_reveal_delta() {
        let spec = ReshareSpec::pool_relu(64, 8);
        let c = spec.build().expect("builds");
        let cfg = GcConfig {
            batch: 8,
            ..GcConfig::default()
        };
        let n = 8;
        let (mut gb, mut eb) = (Vec::new(), Vec::new());
        for k in 0..n as u64 {
            let s = [k, k.wrapping_mul(77), u64::MAX - k, 1 << 63];
            spec.push_garbler_bits(&s, k * 3, &mut gb).expect("arity");
            spec.push_evaluator_bits(&s.map(|v| v ^ 0x55), &mut eb)
                .expect("arity");
        }
        let (gs, es) = Dealer::new([3; 32]).deal_rots((n * c.evaluator_inputs()) as u64);
        let (mut grots, mut erots) = (
            GarblerRots::new(&gs),
            EvaluatorRots::new(es).expect("setup"),
        );
        let flips = erots.flips(&eb).expect("enough OTs");
        let mut garbler = Garbler::new([9; 16], cfg).expect("cfg");
        let mut ev = Evaluator::new(cfg).expect("cfg");
        let mut chunk = GarbledChunk::default();
        garbler
            .garble_chunk(&c, n, &gb, &flips, &mut grots, &mut chunk)
            .expect("garbles");
        let mut out = Vec::new();
        ev.evaluate_chunk(&c, &chunk, &eb, &mut erots, &mut out)
            .expect("evaluates");
        let d = garbler.delta();
        assert_eq!(d & 1, 1);
        let held: HashSet<u128> = ev.labels().iter().copied().collect();
        // Equal labels on different wires are expected (the same XOR combination computed twice).
        assert!(held.len() > c.garbler_inputs() * n);
        assert!(!held.contains(&d));
        for (&l, &z) in ev.labels().iter().zip(garbler.labels()) {
            assert!(
                l == z || l == z ^ d,
                "evaluator label is not a label of its wire"
            );
            assert!(
                !held.contains(&(l ^ d)),
                "evaluator holds both labels of a wire"
            );
        }
        let expect: Vec<bool> = (0..n)
            .flat_map(|k| {
                let (gk, ek) = (
                    &gb[k * c.garbler_inputs()..][..c.garbler_inputs()],
                    &eb[k * c.evaluator_inputs()..][..c.evaluator_inputs()],
                );
                c.eval_plain(gk, ek).expect("plain")
            })
            .collect();
        assert_eq!(out, expect);
    }
}
