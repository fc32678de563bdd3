//! The evaluator: consumes [`GarbledChunk`]s in order, obtains its input labels through the dealer's
//! random OTs, evaluates with 2 hashes per AND (batched over instances), decodes the outputs.

use crate::bits::unpack_bits;
use crate::chunk::{
    GarbledChunk, GcConfig, expected_sizes, lsb_mask, read_label, run_gates, split_lens, tweak,
};
use crate::circuit::{Bit, Circuit};
use crate::error::GcError;
use crate::hash::TccrHash;
use crate::ot::EvaluatorRots;

/// Evaluates chunks of garbled circuit instances.
pub struct Evaluator {
    cfg: GcConfig,
    next_gate: u64,
    /// Active labels of the chunk's input wires, batch after batch (wire-major inside a batch).
    inputs: Vec<u128>,
    /// One scratch space per thread.
    workers: Vec<Worker>,
}

/// One thread's scratch space.
struct Worker {
    hash: TccrHash,
    labels: Vec<u128>,
    hx: Vec<u128>,
    tw: Vec<u128>,
}

/// What every worker of a chunk shares.
struct GateJob<'a> {
    circuit: &'a Circuit,
    chunk: &'a GarbledChunk,
    inputs: &'a [u128],
    decode: &'a [bool],
    batch: usize,
}

impl Evaluator {
    /// An evaluator expecting chunks from a fresh garbler.
    pub fn new(cfg: GcConfig) -> Result<Self, GcError> {
        cfg.validate()?;
        Ok(Evaluator {
            cfg,
            next_gate: 0,
            inputs: Vec::new(),
            workers: (0..cfg.threads)
                .map(|_| Worker {
                    hash: TccrHash::new(cfg.aes),
                    labels: Vec::new(),
                    hx: Vec::new(),
                    tw: Vec::new(),
                })
                .collect(),
        })
    }

    /// Global index of the next AND gate expected.
    pub fn next_gate(&self) -> u64 {
        self.next_gate
    }

    #[cfg(test)]
    pub(crate) fn labels(&self) -> &[u128] {
        &self.workers[0].labels
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
        self.input_labels(circuit, chunk, evaluator_bits, rots)?;
        let job = GateJob {
            circuit,
            chunk,
            inputs: &self.inputs,
            decode: &decode,
            batch: self.cfg.batch,
        };
        outputs.clear();
        outputs.resize(n * circuit.outputs().len(), false);
        eval_gates(&job, &self.cfg, &mut self.workers, outputs);
        self.next_gate += (n * circuit.and_count()) as u64;
        Ok(())
    }

    /// The active labels of every input wire of the chunk: the garbler's from the chunk, this
    /// party's through the random OTs (in instance order, as one thread would).
    fn input_labels(
        &mut self,
        c: &Circuit,
        chunk: &GarbledChunk,
        bits: &[bool],
        rots: &mut EvaluatorRots,
    ) -> Result<(), GcError> {
        let (g, e, n) = (
            c.garbler_inputs(),
            c.evaluator_inputs(),
            chunk.instances as usize,
        );
        self.inputs.clear();
        self.inputs.resize((g + e) * n, 0);
        for start in (0..n).step_by(self.cfg.batch) {
            let nb = self.cfg.batch.min(n - start);
            let seg = &mut self.inputs[(g + e) * start..(g + e) * (start + nb)];
            for k in 0..nb {
                for i in 0..g {
                    seg[i * nb + k] = read_label(&chunk.garbler_labels, (start + k) * g + i);
                }
                for i in 0..e {
                    let idx = (start + k) * e + i;
                    let (y0, y1) = (
                        read_label(&chunk.ot_replies, 2 * idx),
                        read_label(&chunk.ot_replies, 2 * idx + 1),
                    );
                    seg[(g + i) * nb + k] = rots.receive(bits[idx], y0, y1)?;
                }
            }
        }
        Ok(())
    }
}

/// Evaluates every instance of `job`, the instance ranges of [`GcConfig::ranges`] on one thread
/// each, into `outputs` (instance-major, already sized).
fn eval_gates(job: &GateJob<'_>, cfg: &GcConfig, workers: &mut [Worker], outputs: &mut [bool]) {
    let ranges = cfg.ranges(job.chunk.instances as usize);
    let per = job.circuit.outputs().len();
    let lens: Vec<usize> = ranges.iter().map(|(a, b)| (b - a) * per).collect();
    let mut parts = split_lens(outputs, &lens);
    if let ([range], [part]) = (ranges.as_slice(), parts.as_mut_slice()) {
        eval_range(job, *range, &mut workers[0], part);
    } else {
        std::thread::scope(|s| {
            for ((range, part), w) in ranges.iter().zip(parts).zip(workers.iter_mut()) {
                s.spawn(move || eval_range(job, *range, w, part));
            }
        });
    }
}

/// Evaluates instances `a..b` (batch-aligned) and decodes their outputs into `out`.
fn eval_range(job: &GateJob<'_>, (a, b): (usize, usize), w: &mut Worker, out: &mut [bool]) {
    let c = job.circuit;
    let (ge, ands, first, tables) = (
        c.garbler_inputs() + c.evaluator_inputs(),
        c.and_count(),
        job.chunk.first_gate,
        &job.chunk.tables,
    );
    let outs = c.outputs().len();
    for start in (a..b).step_by(job.batch) {
        let nb = job.batch.min(b - start);
        w.labels.resize(c.wire_count() * nb, 0);
        w.labels[..ge * nb].copy_from_slice(&job.inputs[ge * start..ge * (start + nb)]);
        let (hash, hx, tw) = (&mut w.hash, &mut w.hx, &mut w.tw);
        run_gates(
            c.gates(),
            &mut w.labels,
            ge,
            nb,
            0,
            |lo, dst, x, y, and_idx| {
                hx.clear();
                tw.clear();
                for k in 0..nb {
                    let j = tweak(first, start + k, ands, and_idx);
                    hx.extend_from_slice(&[lo[x + k], lo[y + k]]);
                    tw.extend_from_slice(&[j, j | 1]);
                }
                hash.hash_batch(hx, tw);
                for (k, (h, o)) in hx.chunks_exact(2).zip(dst.iter_mut()).enumerate() {
                    let (la, lb) = (lo[x + k], lo[y + k]);
                    let t = 2 * ((start + k) * ands + and_idx);
                    let (tg, te) = (read_label(tables, t), read_label(tables, t + 1));
                    *o = (h[0] ^ (lsb_mask(la) & tg)) ^ (h[1] ^ (lsb_mask(lb) & (te ^ la)));
                }
            },
        );
        for k in 0..nb {
            for (oi, o) in c.outputs().iter().enumerate() {
                let at = (start + k) * outs + oi;
                out[at - a * outs] = match *o {
                    Bit::Wire(wire) => (w.labels[wire as usize * nb + k] & 1 == 1) ^ job.decode[at],
                    Bit::Const(v) => v,
                };
            }
        }
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
