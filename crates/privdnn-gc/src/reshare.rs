//! The fused gadget of the outsourced-CNN protocol: reconstruct (add the two servers' shares) →
//! requantise (arithmetic shift) → max-pool of 4 (optional) → ReLU (optional) → re-share (add the
//! garbler's mask). The evaluator learns `g(x) + r mod 2^ℓ` as its new share; the garbler keeps `−r`.
//!
//! Input layout: garbler bits = `s1_0 … s1_{k−1}`, `r` (ℓ bits each); evaluator bits = `s2_0 …
//! s2_{k−1}`; output = ℓ bits; `k` = 1, or 4 with pooling.
//!
//! Order inside the circuit: the shift comes first because floor shifting commutes with max and ReLU
//! (both monotone, ReLU fixes 0), and it leaves `w = ℓ − f` significant bits, so compare, mux and
//! ReLU run on `w`-bit words. Rounding (`round`: `⌊(x + 2^{f−1}) / 2^f⌋`) costs nothing: the garbler
//! adds `2^{f−1}` to each of its shares before input ([`ReshareSpec::push_garbler_bits`]); this also
//! commutes with max and ReLU (for `x < 0`, `⌊(0 + 2^{f−1})/2^f⌋ = 0`).
//!
//! AND count (`k` inputs, shift `f`, `w = ℓ − f`), see [`ReshareSpec::and_count_formula`]:
//! `k(ℓ−1)` reconstruct + `6w` if pooled + `(w−1)` if ReLU + `(ℓ−1)` re-share (0 when ReLU and
//! `w = 1`: the result is the constant 0).
//! ReLU only: `3ℓ − 3 − f` (189 at ℓ = 64, f = 0); pool+ReLU: `5ℓ − 5 + 6w + (w − 1)` (762 at ℓ = 64, f = 0).

use crate::bits::{push_word, ring_mask, sign_extend};
use crate::circuit::{Builder, Circuit};
use crate::error::GcError;
use crate::gadgets;

/// The fused reshare gadget's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReshareSpec {
    /// Ring width ℓ in bits (1..=64); words live in Z_2^ℓ.
    pub ell: u32,
    /// Max-pool over 4 reconstructed values (else one value).
    pub pool4: bool,
    /// Apply ReLU.
    pub relu: bool,
    /// Requantisation: arithmetic right shift by `shift` (< ℓ).
    pub shift: u32,
    /// Round to nearest (ties up) instead of floor; needs `shift > 0`.
    pub round: bool,
}

impl ReshareSpec {
    /// ReLU → shift by `shift` (floor) → re-share, at ring width `ell`.
    pub fn relu(ell: u32, shift: u32) -> Self {
        ReshareSpec {
            ell,
            pool4: false,
            relu: true,
            shift,
            round: false,
        }
    }

    /// Max-pool of 4 → ReLU → shift (floor) → re-share.
    pub fn pool_relu(ell: u32, shift: u32) -> Self {
        ReshareSpec {
            ell,
            pool4: true,
            relu: true,
            shift,
            round: false,
        }
    }

    /// Checks ℓ, the shift and the rounding flag.
    pub fn validate(&self) -> Result<(), GcError> {
        if !(1..=64).contains(&self.ell) {
            return Err(GcError::param(format!(
                "ring width ℓ = {} not in 1..=64",
                self.ell
            )));
        }
        if self.shift >= self.ell {
            return Err(GcError::param(format!(
                "shift {} ≥ ℓ = {}",
                self.shift, self.ell
            )));
        }
        if self.round && self.shift == 0 {
            return Err(GcError::param("rounding needs a shift > 0"));
        }
        Ok(())
    }

    /// Number of shared values reconstructed per instance (1 or 4).
    pub fn arity(&self) -> usize {
        if self.pool4 { 4 } else { 1 }
    }

    /// Garbler input bits per instance: `(k + 1) ℓ`.
    pub fn garbler_bits(&self) -> usize {
        (self.arity() + 1) * self.ell as usize
    }

    /// Evaluator input bits per instance: `k ℓ`.
    pub fn evaluator_bits(&self) -> usize {
        self.arity() * self.ell as usize
    }

    /// The AND count the builder must produce (see the module doc).
    pub fn and_count_formula(&self) -> usize {
        let (l, w) = (self.ell as usize, (self.ell - self.shift) as usize);
        let pool = if self.pool4 { 6 * w } else { 0 };
        let relu = if self.relu { w - 1 } else { 0 };
        // ReLU of a 1-bit word is the constant 0: the re-share adder folds to `r` (no AND).
        let reshare = if self.relu && w == 1 { 0 } else { l - 1 };
        self.arity() * (l - 1) + pool + relu + reshare
    }

    /// Builds the circuit.
    pub fn build(&self) -> Result<Circuit, GcError> {
        self.validate()?;
        let (l, f, k) = (self.ell as usize, self.shift as usize, self.arity());
        let w = l - f;
        let mut b = Builder::new(self.garbler_bits(), self.evaluator_bits());
        let (g, e) = (b.garbler_inputs(), b.evaluator_inputs());
        let mut vals = Vec::with_capacity(k);
        for j in 0..k {
            let x = gadgets::add(&mut b, &g[j * l..(j + 1) * l], &e[j * l..(j + 1) * l])?;
            vals.push(gadgets::narrow(&gadgets::ashr(&x, f)?, w)?);
        }
        let mut m = match vals.as_slice() {
            [a, b0, c, d] => gadgets::max4_signed(&mut b, [a, b0, c, d])?,
            [a] => a.clone(),
            _ => return Err(GcError::param("reshare arity must be 1 or 4")),
        };
        if self.relu {
            m = gadgets::relu(&mut b, &m)?;
        }
        let m = gadgets::sign_extend(&m, l)?;
        let out = gadgets::add(&mut b, &m, &g[k * l..(k + 1) * l])?;
        Ok(b.finish(out))
    }

    fn offset(&self) -> u64 {
        if self.round {
            1u64 << (self.shift - 1)
        } else {
            0
        }
    }

    /// Appends the garbler's input bits for one instance: its `k` shares (plus the rounding offset)
    /// and its mask `r`.
    pub fn push_garbler_bits(
        &self,
        s1: &[u64],
        r: u64,
        out: &mut Vec<bool>,
    ) -> Result<(), GcError> {
        self.check_arity(s1)?;
        for &s in s1 {
            push_word(out, s.wrapping_add(self.offset()), self.ell);
        }
        push_word(out, r, self.ell);
        Ok(())
    }

    /// Appends the evaluator's input bits for one instance: its `k` shares.
    pub fn push_evaluator_bits(&self, s2: &[u64], out: &mut Vec<bool>) -> Result<(), GcError> {
        self.check_arity(s2)?;
        for &s in s2 {
            push_word(out, s, self.ell);
        }
        Ok(())
    }

    fn check_arity(&self, s: &[u64]) -> Result<(), GcError> {
        if s.len() != self.arity() {
            return Err(GcError::length(format!(
                "{} shares for arity {}",
                s.len(),
                self.arity()
            )));
        }
        Ok(())
    }

    /// The i64 reference: `x_j = signed((s1_j + s2_j) mod 2^ℓ)`, `m = max_j x_j`, ReLU, then
    /// `⌊(m + offset) / 2^f⌋ + r mod 2^ℓ` (the offset is `2^{f−1}` when rounding, added mod 2^ℓ).
    pub fn reference(&self, s1: &[u64], s2: &[u64], r: u64) -> Result<u64, GcError> {
        self.validate()?;
        self.check_arity(s1)?;
        self.check_arity(s2)?;
        let mask = ring_mask(self.ell);
        let x = |j: usize| {
            sign_extend(
                s1[j].wrapping_add(self.offset()).wrapping_add(s2[j]) & mask,
                self.ell,
            )
        };
        let mut m = (0..self.arity()).map(x).max().unwrap_or(0);
        if self.relu {
            m = m.max(0);
        }
        Ok(((m >> self.shift) as u64).wrapping_add(r) & mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_matches_builder_for_many_shapes() {
        for ell in [1u32, 2, 8, 13, 40, 48, 64] {
            for shift in [0u32, 1, 7, 12, 16, 63] {
                for (pool4, relu) in [(false, true), (true, true), (false, false), (true, false)] {
                    for round in [false, true] {
                        let s = ReshareSpec {
                            ell,
                            pool4,
                            relu,
                            shift,
                            round,
                        };
                        if s.validate().is_err() {
                            continue;
                        }
                        let c = s.build().expect("valid spec builds");
                        assert_eq!(c.and_count(), s.and_count_formula(), "{s:?}");
                    }
                }
            }
        }
        assert_eq!(
            ReshareSpec::relu(64, 0).build().map(|c| c.and_count()),
            Ok(189)
        );
        assert_eq!(
            ReshareSpec::pool_relu(64, 0).build().map(|c| c.and_count()),
            Ok(762)
        );
        assert!(ReshareSpec::relu(64, 64).validate().is_err());
        assert!(ReshareSpec::relu(65, 0).validate().is_err());
    }
}
