//! Boolean circuits: gates in topological order, a builder with constant folding, and the plaintext
//! evaluator used as oracle.
//!
//! Wire numbering: garbler inputs `0..g`, evaluator inputs `g..g+e`, then gate `k` writes wire
//! `g + e + k` (single assignment, so a gate needs no output field). XOR and NOT are free under
//! free-XOR; only AND gates cost a garbled table.

use crate::error::GcError;

/// A wire index.
pub type WireId = u32;

/// One gate; its output wire is implied by its position (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// `a ⊕ b` (free).
    Xor(WireId, WireId),
    /// `a ∧ b` (one half-gates table: 2 × 16 bytes).
    And(WireId, WireId),
    /// `¬a` (free: the garbler flips the zero label by Δ).
    Not(WireId),
}

/// A builder-level bit: a public constant (folded away) or a wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bit {
    /// A constant known to both parties.
    Const(bool),
    /// A wire of the circuit.
    Wire(WireId),
}

/// A finished circuit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Circuit {
    garbler_inputs: usize,
    evaluator_inputs: usize,
    gates: Vec<Gate>,
    outputs: Vec<Bit>,
    and_count: usize,
}

impl Circuit {
    /// Number of garbler input bits.
    pub fn garbler_inputs(&self) -> usize {
        self.garbler_inputs
    }
    /// Number of evaluator input bits.
    pub fn evaluator_inputs(&self) -> usize {
        self.evaluator_inputs
    }
    /// Gates in evaluation order.
    pub fn gates(&self) -> &[Gate] {
        &self.gates
    }
    /// Output bits (constants are decoded without any message).
    pub fn outputs(&self) -> &[Bit] {
        &self.outputs
    }
    /// Number of AND gates (= garbled tables).
    pub fn and_count(&self) -> usize {
        self.and_count
    }
    /// Number of XOR gates.
    pub fn xor_count(&self) -> usize {
        self.gates
            .iter()
            .filter(|g| matches!(g, Gate::Xor(..)))
            .count()
    }
    /// Total number of wires (inputs + gate outputs).
    pub fn wire_count(&self) -> usize {
        self.garbler_inputs + self.evaluator_inputs + self.gates.len()
    }

    /// Plaintext evaluation of one instance (the oracle).
    pub fn eval_plain(&self, garbler: &[bool], evaluator: &[bool]) -> Result<Vec<bool>, GcError> {
        let lane = |b: &bool| if *b { u64::MAX } else { 0 };
        let g: Vec<u64> = garbler.iter().map(lane).collect();
        let e: Vec<u64> = evaluator.iter().map(lane).collect();
        Ok(self
            .eval_bitsliced(&g, &e)?
            .iter()
            .map(|&w| w & 1 == 1)
            .collect())
    }

    /// Plaintext evaluation of 64 instances at once: bit `j` of every word belongs to instance `j`.
    pub fn eval_bitsliced(&self, garbler: &[u64], evaluator: &[u64]) -> Result<Vec<u64>, GcError> {
        if garbler.len() != self.garbler_inputs || evaluator.len() != self.evaluator_inputs {
            return Err(GcError::length(format!(
                "plain evaluation got {}+{} input bits, circuit has {}+{}",
                garbler.len(),
                evaluator.len(),
                self.garbler_inputs,
                self.evaluator_inputs
            )));
        }
        let mut w = Vec::with_capacity(self.wire_count());
        w.extend_from_slice(garbler);
        w.extend_from_slice(evaluator);
        for gate in &self.gates {
            let v = match *gate {
                Gate::Xor(a, b) => w[a as usize] ^ w[b as usize],
                Gate::And(a, b) => w[a as usize] & w[b as usize],
                Gate::Not(a) => !w[a as usize],
            };
            w.push(v);
        }
        Ok(self
            .outputs
            .iter()
            .map(|o| match *o {
                Bit::Const(c) => {
                    if c {
                        u64::MAX
                    } else {
                        0
                    }
                }
                Bit::Wire(i) => w[i as usize],
            })
            .collect())
    }
}

/// Builds a [`Circuit`] gate by gate, folding constants (`x ⊕ 0 = x`, `x ∧ 1 = x`, `x ∧ 0 = 0`,
/// `x ⊕ x = 0`, `x ∧ x = x`) so gadgets can mix public constants in for free.
#[derive(Debug)]
pub struct Builder {
    garbler_inputs: usize,
    evaluator_inputs: usize,
    gates: Vec<Gate>,
    and_count: usize,
}

impl Builder {
    /// A builder for a circuit with the given numbers of garbler and evaluator input bits.
    pub fn new(garbler_inputs: usize, evaluator_inputs: usize) -> Self {
        Builder {
            garbler_inputs,
            evaluator_inputs,
            gates: Vec::new(),
            and_count: 0,
        }
    }

    /// The garbler's input bits, in order.
    pub fn garbler_inputs(&self) -> Vec<Bit> {
        (0..self.garbler_inputs)
            .map(|i| Bit::Wire(i as WireId))
            .collect()
    }

    /// The evaluator's input bits, in order.
    pub fn evaluator_inputs(&self) -> Vec<Bit> {
        let g = self.garbler_inputs;
        (g..g + self.evaluator_inputs)
            .map(|i| Bit::Wire(i as WireId))
            .collect()
    }

    /// AND gates emitted so far.
    pub fn and_count(&self) -> usize {
        self.and_count
    }

    fn push(&mut self, gate: Gate) -> Bit {
        let id = self.garbler_inputs + self.evaluator_inputs + self.gates.len();
        self.gates.push(gate);
        Bit::Wire(id as WireId)
    }

    /// `a ⊕ b`.
    pub fn xor(&mut self, a: Bit, b: Bit) -> Bit {
        match (a, b) {
            (Bit::Const(x), Bit::Const(y)) => Bit::Const(x ^ y),
            (Bit::Const(false), w) | (w, Bit::Const(false)) => w,
            (Bit::Const(true), w) | (w, Bit::Const(true)) => self.not(w),
            (Bit::Wire(x), Bit::Wire(y)) if x == y => Bit::Const(false),
            (Bit::Wire(x), Bit::Wire(y)) => self.push(Gate::Xor(x, y)),
        }
    }

    /// `a ∧ b`.
    pub fn and(&mut self, a: Bit, b: Bit) -> Bit {
        match (a, b) {
            (Bit::Const(x), Bit::Const(y)) => Bit::Const(x & y),
            (Bit::Const(false), _) | (_, Bit::Const(false)) => Bit::Const(false),
            (Bit::Const(true), w) | (w, Bit::Const(true)) => w,
            (Bit::Wire(x), Bit::Wire(y)) if x == y => a,
            (Bit::Wire(x), Bit::Wire(y)) => {
                self.and_count += 1;
                self.push(Gate::And(x, y))
            }
        }
    }

    /// `¬a`.
    pub fn not(&mut self, a: Bit) -> Bit {
        match a {
            Bit::Const(x) => Bit::Const(!x),
            Bit::Wire(x) => self.push(Gate::Not(x)),
        }
    }

    /// Finishes the circuit with the given output bits.
    pub fn finish(self, outputs: Vec<Bit>) -> Circuit {
        Circuit {
            garbler_inputs: self.garbler_inputs,
            evaluator_inputs: self.evaluator_inputs,
            gates: self.gates,
            outputs,
            and_count: self.and_count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_and_plain_eval() {
        let mut b = Builder::new(1, 1);
        let (x, y) = (b.garbler_inputs()[0], b.evaluator_inputs()[0]);
        assert_eq!(b.xor(x, x), Bit::Const(false));
        assert_eq!(b.and(x, Bit::Const(true)), x);
        assert_eq!(b.and(x, Bit::Const(false)), Bit::Const(false));
        let a = b.and(x, y);
        let o = b.xor(a, Bit::Const(true));
        assert_eq!(b.and_count(), 1);
        let c = b.finish(vec![o, Bit::Const(true)]);
        assert_eq!(c.and_count(), 1);
        for (xv, yv) in [(false, false), (false, true), (true, false), (true, true)] {
            assert_eq!(c.eval_plain(&[xv], &[yv]), Ok(vec![!(xv & yv), true]));
        }
        assert!(c.eval_plain(&[true], &[]).is_err());
    }
}
