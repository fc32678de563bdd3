//! The garbler: free-XOR, half-gates AND (Zahur–Rosulek–Evans 2015), point-and-permute, labels of
//! 128 bits with a global offset Δ (lsb 1), AND tables hashed in batches of instances.
//!
//! Half-gates for `c = a ∧ b` with zero labels `A0, B0`, `pa = lsb A0`, `pb = lsb B0`, tweaks
//! `j, j'`: `T_G = H(A0,j) ⊕ H(A1,j) ⊕ pb·Δ`, `W_G = H(A0,j) ⊕ pa·T_G`, `T_E = H(B0,j') ⊕ H(B1,j')
//! ⊕ A0`, `W_E = H(B0,j') ⊕ pb·(T_E ⊕ A0)`, `C0 = W_G ⊕ W_E`; the table is `(T_G, T_E)`.

use crate::bits::pack_bits;
use crate::chunk::{
    GarbledChunk, GcConfig, expected_sizes, lsb_mask, run_gates, select_mask, split_lens, tweak,
    write_label,
};
use crate::circuit::{Bit, Circuit};
use crate::error::GcError;
use crate::hash::{LabelPrg, TccrHash};
use crate::ot::GarblerRots;

/// Garbles chunks of circuit instances under one secret Δ.
pub struct Garbler {
    delta: u128,
    prg: LabelPrg,
    cfg: GcConfig,
    next_gate: u64,
    /// Zero labels of the chunk's input wires, batch after batch (wire-major inside a batch).
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
    decode_bits: Vec<bool>,
}

impl Worker {
    fn new(cfg: &GcConfig) -> Self {
        Worker {
            hash: TccrHash::new(cfg.aes),
            labels: Vec::new(),
            hx: Vec::new(),
            tw: Vec::new(),
            decode_bits: Vec::new(),
        }
    }
}

/// One chunk's inputs, borrowed.
struct ChunkIn<'a> {
    circuit: &'a Circuit,
    garbler_bits: &'a [bool],
    flips: &'a [bool],
}

/// What every worker of a chunk shares.
struct GateJob<'a> {
    circuit: &'a Circuit,
    inputs: &'a [u128],
    first: u64,
    delta: u128,
    batch: usize,
    instances: usize,
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
            cfg,
            next_gate: 0,
            inputs: Vec::new(),
            workers: (0..cfg.threads).map(|_| Worker::new(&cfg)).collect(),
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
        &self.workers[0].labels
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
        let input = ChunkIn {
            circuit,
            garbler_bits,
            flips,
        };
        self.input_labels(&input, instances, rots, out)?;
        let job = GateJob {
            circuit,
            inputs: &self.inputs,
            first: out.first_gate,
            delta: self.delta,
            batch: self.cfg.batch,
            instances,
        };
        let decode = garble_gates(&job, &self.cfg, &mut self.workers, &mut out.tables);
        out.decode = pack_bits(&decode);
        self.next_gate = next;
        Ok(())
    }

    /// Draws the zero labels of every input wire of the chunk (in batch order, as one thread
    /// would), writes the garbler's labels and the random-OT answers for the evaluator's.
    fn input_labels(
        &mut self,
        input: &ChunkIn<'_>,
        instances: usize,
        rots: &mut GarblerRots,
        out: &mut GarbledChunk,
    ) -> Result<(), GcError> {
        let c = input.circuit;
        let (g, e, d) = (c.garbler_inputs(), c.evaluator_inputs(), self.delta);
        self.inputs.clear();
        self.inputs.resize((g + e) * instances, 0);
        self.prg.fill(&mut self.inputs);
        for start in (0..instances).step_by(self.cfg.batch) {
            let nb = self.cfg.batch.min(instances - start);
            let seg = &self.inputs[(g + e) * start..(g + e) * (start + nb)];
            for k in 0..nb {
                for i in 0..g {
                    let idx = (start + k) * g + i;
                    let l0 = seg[i * nb + k];
                    write_label(
                        &mut out.garbler_labels,
                        idx,
                        l0 ^ (select_mask(input.garbler_bits[idx]) & d),
                    );
                }
                for i in 0..e {
                    let idx = (start + k) * e + i;
                    let (y0, y1) = rots.answer(input.flips[idx], seg[(g + i) * nb + k], d)?;
                    write_label(&mut out.ot_replies, 2 * idx, y0);
                    write_label(&mut out.ot_replies, 2 * idx + 1, y1);
                }
            }
        }
        Ok(())
    }
}

/// Garbles the gates of every instance of `job`, the instance ranges of [`GcConfig::ranges`] on
/// one thread each; returns the decode bits, instance-major.
fn garble_gates(
    job: &GateJob<'_>,
    cfg: &GcConfig,
    workers: &mut [Worker],
    tables: &mut [u8],
) -> Vec<bool> {
    let ranges = cfg.ranges(job.instances);
    let per = 32 * job.circuit.and_count();
    let lens: Vec<usize> = ranges.iter().map(|(a, b)| (b - a) * per).collect();
    let mut parts = split_lens(tables, &lens);
    if let ([range], [part]) = (ranges.as_slice(), parts.as_mut_slice()) {
        garble_range(job, *range, &mut workers[0], part);
    } else {
        std::thread::scope(|s| {
            for ((range, part), w) in ranges.iter().zip(parts).zip(workers.iter_mut()) {
                s.spawn(move || garble_range(job, *range, w, part));
            }
        });
    }
    let mut decode = Vec::with_capacity(job.instances * job.circuit.outputs().len());
    for w in workers.iter().take(ranges.len()) {
        decode.extend_from_slice(&w.decode_bits);
    }
    decode
}

/// Garbles instances `a..b` (batch-aligned) into `tables` (their part of the chunk's tables).
fn garble_range(job: &GateJob<'_>, (a, b): (usize, usize), w: &mut Worker, tables: &mut [u8]) {
    let c = job.circuit;
    let (ge, ands, d, first) = (
        c.garbler_inputs() + c.evaluator_inputs(),
        c.and_count(),
        job.delta,
        job.first,
    );
    w.decode_bits.clear();
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
            d,
            |lo, dst, x, y, and_idx| {
                hx.clear();
                tw.clear();
                for k in 0..nb {
                    let (a0, b0) = (lo[x + k], lo[y + k]);
                    let j = tweak(first, start + k, ands, and_idx);
                    hx.extend_from_slice(&[a0, a0 ^ d, b0, b0 ^ d]);
                    tw.extend_from_slice(&[j, j, j | 1, j | 1]);
                }
                hash.hash_batch(hx, tw);
                for (k, (h, o)) in hx.chunks_exact(4).zip(dst.iter_mut()).enumerate() {
                    let (a0, b0) = (lo[x + k], lo[y + k]);
                    let tg = h[0] ^ h[1] ^ (lsb_mask(b0) & d);
                    let wg = h[0] ^ (lsb_mask(a0) & tg);
                    let te = h[2] ^ h[3] ^ a0;
                    let we = h[2] ^ (lsb_mask(b0) & (te ^ a0));
                    *o = wg ^ we;
                    let t = 2 * ((start - a + k) * ands + and_idx);
                    write_label(tables, t, tg);
                    write_label(tables, t + 1, te);
                }
            },
        );
        for k in 0..nb {
            for o in c.outputs() {
                w.decode_bits.push(match *o {
                    Bit::Wire(wire) => w.labels[wire as usize * nb + k] & 1 == 1,
                    Bit::Const(_) => false,
                });
            }
        }
    }
}
