//! Both parties in one process: the message flow of the protocol (dealer ROTs → evaluator flips →
//! garbled chunks → evaluation) without a network, for tests, benchmarks and byte accounting.

use crate::bits::pack_bits;
use crate::chunk::{GarbledChunk, GcConfig};
use crate::circuit::Circuit;
use crate::error::GcError;
use crate::eval::Evaluator;
use crate::garble::Garbler;
use crate::ot::{Dealer, EvaluatorRots, GarblerRots};

/// Result of an in-process run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LocalRun {
    /// Output bits, instance-major.
    pub outputs: Vec<bool>,
    /// Garbler → evaluator payload bytes (sum over chunks).
    pub garbler_to_evaluator: u64,
    /// Evaluator → garbler bytes (packed flip bits, one message).
    pub evaluator_to_garbler: u64,
    /// Seconds spent garbling (including label and OT-answer generation).
    pub garble_s: f64,
    /// Seconds spent evaluating.
    pub evaluate_s: f64,
}

/// Runs `instances` instances of `circuit` (inputs instance-major) in chunks of `chunk` instances,
/// seeds fixed by `seed` (tests and benchmarks only: a protocol must draw fresh seeds).
pub fn run_local(
    circuit: &Circuit,
    garbler_bits: &[bool],
    evaluator_bits: &[bool],
    instances: usize,
    chunk: usize,
    cfg: GcConfig,
    seed: u8,
) -> Result<LocalRun, GcError> {
    if chunk == 0 {
        return Err(GcError::param("chunk of 0 instances"));
    }
    let (g, e) = (circuit.garbler_inputs(), circuit.evaluator_inputs());
    if evaluator_bits.len() != instances * e || garbler_bits.len() != instances * g {
        return Err(GcError::length(
            "run_local: input bits do not match the instance count",
        ));
    }
    let (gs, es) = Dealer::new([seed; 32]).deal_rots((instances * e) as u64);
    let mut grots = GarblerRots::new(&gs);
    let mut erots = EvaluatorRots::new(es)?;
    let flips = erots.flips(evaluator_bits)?;
    let mut run = LocalRun {
        evaluator_to_garbler: pack_bits(&flips).len() as u64,
        ..LocalRun::default()
    };
    let mut garbler = Garbler::new([seed.wrapping_add(1); 16], cfg)?;
    let mut evaluator = Evaluator::new(cfg)?;
    let (mut msg, mut outs) = (GarbledChunk::default(), Vec::new());
    for start in (0..instances).step_by(chunk) {
        let n = chunk.min(instances - start);
        let t0 = std::time::Instant::now();
        garbler.garble_chunk(
            circuit,
            n,
            &garbler_bits[start * g..(start + n) * g],
            &flips[start * e..(start + n) * e],
            &mut grots,
            &mut msg,
        )?;
        let t1 = std::time::Instant::now();
        evaluator.evaluate_chunk(
            circuit,
            &msg,
            &evaluator_bits[start * e..(start + n) * e],
            &mut erots,
            &mut outs,
        )?;
        run.garble_s += (t1 - t0).as_secs_f64();
        run.evaluate_s += t1.elapsed().as_secs_f64();
        run.garbler_to_evaluator += msg.payload_bytes() as u64;
        run.outputs.extend_from_slice(&outs);
    }
    Ok(run)
}
