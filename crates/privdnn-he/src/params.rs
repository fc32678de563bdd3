//! BFV parameter sets: generation, the ≥128-bit security check and fhe 0.1.1's modulus rules.
//!
//! fhe 0.1.1 silently decrypts garbage when the plaintext modulus t is not below every
//! ciphertext prime, and SIMD batching needs t prime with t ≡ 1 (mod 2N); both are checked here
//! so that no caller can build such a set.

use std::sync::Arc;

use fhe::bfv::{BfvParameters, BfvParametersBuilder};
use fhe_math::zq::primes::generate_prime;
use serde::{Deserialize, Serialize};

use crate::{HeError, Result};

/// Largest total ciphertext modulus (bits) giving 128-bit classical security for a ring degree,
/// from the HomomorphicEncryption.org standard (ternary/CBD secrets).
pub fn max_log_q_128(degree: usize) -> Option<usize> {
    match degree {
        1024 => Some(27),
        2048 => Some(54),
        4096 => Some(109),
        8192 => Some(218),
        16384 => Some(438),
        32768 => Some(881),
        _ => None,
    }
}

/// A concrete parameter set: ring degree, ciphertext primes and plaintext modulus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeParams {
    /// Ring degree N (= number of SIMD slots).
    pub degree: usize,
    /// Ciphertext primes q_0 … q_L (each ≡ 1 mod 2N).
    pub moduli: Vec<u64>,
    /// Plaintext modulus t (prime, ≡ 1 mod 2N, below every q_i).
    pub plaintext: u64,
}

impl HeParams {
    /// Generates primes of the given sizes (fhe's generator) and the largest admissible t with
    /// at most `plaintext_bits` bits.
    pub fn generate(degree: usize, moduli_bits: &[usize], plaintext_bits: usize) -> Result<Self> {
        if !(10..=62).contains(&plaintext_bits) {
            return Err(HeError::Parameters(format!(
                "plaintext_bits = {plaintext_bits} is outside 10..=62"
            )));
        }
        let probe = BfvParametersBuilder::new()
            .set_degree(degree)
            .set_plaintext_modulus(65537.min((1u64 << plaintext_bits) - 1) | 1)
            .set_moduli_sizes(moduli_bits)
            .build()
            .map_err(|e| {
                HeError::Parameters(format!("degree {degree}, moduli {moduli_bits:?}: {e}"))
            })?;
        let moduli = probe.moduli().to_vec();
        let plaintext = generate_prime(plaintext_bits, 2 * degree as u64, 1u64 << plaintext_bits)
            .ok_or_else(|| {
            HeError::Parameters(format!(
                "no prime t ≡ 1 mod {} with {plaintext_bits} bits",
                2 * degree
            ))
        })?;
        let params = Self {
            degree,
            moduli,
            plaintext,
        };
        params.check()?;
        Ok(params)
    }

    /// `count` parameter sets sharing N and the ciphertext primes, with distinct plaintext primes
    /// (each the largest admissible below the previous): the residues of a CRT plaintext space.
    pub fn generate_crt(
        degree: usize,
        moduli_bits: &[usize],
        plaintext_bits: usize,
        count: usize,
    ) -> Result<Vec<Self>> {
        let first = Self::generate(degree, moduli_bits, plaintext_bits)?;
        let mut sets = vec![first];
        while sets.len() < count {
            let below = sets[sets.len() - 1].plaintext;
            let t = generate_prime(plaintext_bits, 2 * degree as u64, below).ok_or_else(|| {
                HeError::Parameters(format!("not enough {plaintext_bits}-bit CRT primes"))
            })?;
            let next = Self {
                plaintext: t,
                ..sets[0].clone()
            };
            next.check()?;
            sets.push(next);
        }
        Ok(sets)
    }

    /// Product of the plaintext moduli of CRT sets.
    pub fn crt_modulus(sets: &[Self]) -> u128 {
        sets.iter().map(|s| s.plaintext as u128).product()
    }

    /// Combines residues (one per set, centred or not) into the centred value mod Π t.
    pub fn crt_combine(sets: &[Self], residues: &[i64]) -> i128 {
        let m = Self::crt_modulus(sets) as i128;
        let mut x: i128 = 0;
        for (set, &r) in sets.iter().zip(residues) {
            let t = set.plaintext as i128;
            let mi = m / t;
            let inv = mod_inverse(mi % t, t);
            let term = (r as i128).rem_euclid(t) * inv % t;
            x = (x + term * mi) % m;
        }
        if x > m / 2 { x - m } else { x }
    }

    /// log2 of the full ciphertext modulus.
    pub fn log_q(&self) -> f64 {
        self.moduli.iter().map(|&q| (q as f64).log2()).sum()
    }

    /// log2 of t.
    pub fn log_t(&self) -> f64 {
        (self.plaintext as f64).log2()
    }

    /// Checks security and fhe's modulus rules; the error names the rule and the fix.
    pub fn check(&self) -> Result<()> {
        let max = max_log_q_128(self.degree).ok_or_else(|| {
            HeError::Parameters(format!(
                "degree {} is not a supported power of two (1024..=32768)",
                self.degree
            ))
        })?;
        let bits: usize = self
            .moduli
            .iter()
            .map(|&q| 64 - q.leading_zeros() as usize)
            .sum();
        if bits > max {
            return Err(HeError::Parameters(format!(
                "log q = {bits} bits exceeds {max}, the 128-bit-security limit for N = {}: use \
                 fewer or smaller moduli, or a larger degree",
                self.degree
            )));
        }
        let two_n = 2 * self.degree as u64;
        if self.plaintext % two_n != 1 {
            return Err(HeError::Parameters(format!(
                "t = {} is not ≡ 1 mod 2N = {two_n}, so SIMD batching is impossible",
                self.plaintext
            )));
        }
        if let Some(&q) = self.moduli.iter().find(|&&q| q <= self.plaintext) {
            return Err(HeError::Parameters(format!(
                "t = {} is not below the ciphertext prime {q}; fhe 0.1.1 would decrypt garbage. \
                 Lower he.plaintext_bits or raise the moduli sizes",
                self.plaintext
            )));
        }
        Ok(())
    }

    /// Builds fhe's parameter object (after [`HeParams::check`]).
    pub fn build(&self) -> Result<Arc<BfvParameters>> {
        self.check()?;
        Ok(BfvParametersBuilder::new()
            .set_degree(self.degree)
            .set_plaintext_modulus(self.plaintext)
            .set_moduli(&self.moduli)
            .build_arc()?)
    }

    /// Reduces a signed integer mod t.
    pub fn encode_signed(&self, v: i64) -> u64 {
        v.rem_euclid(self.plaintext as i64) as u64
    }

    /// Centre-lifts a residue mod t to (−t/2, t/2].
    pub fn decode_signed(&self, v: u64) -> i64 {
        if v > self.plaintext / 2 {
            v as i64 - self.plaintext as i64
        } else {
            v as i64
        }
    }
}

fn mod_inverse(a: i128, m: i128) -> i128 {
    let (mut r0, mut r1, mut s0, mut s1) = (m, a.rem_euclid(m), 0i128, 1i128);
    while r1 != 0 {
        let q = r0 / r1;
        (r0, r1) = (r1, r0 - q * r1);
        (s0, s1) = (s1, s0 - q * s1);
    }
    s0.rem_euclid(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crt_sets_recombine_signed_values() {
        let sets = HeParams::generate_crt(8192, &[54, 54, 54, 54], 24, 2).expect("crt");
        assert_ne!(sets[0].plaintext, sets[1].plaintext);
        for v in [0i64, 1, -1, 123_456_789_012, -98_765_432_109] {
            let res: Vec<i64> = sets
                .iter()
                .map(|s| s.decode_signed(s.encode_signed(v)))
                .collect();
            assert_eq!(HeParams::crt_combine(&sets, &res), v as i128);
        }
    }

    #[test]
    fn generated_sets_follow_the_rules() {
        let p = HeParams::generate(8192, &[54, 54, 54, 54], 48).expect("valid set");
        assert!(p.plaintext < 1 << 48 && p.plaintext % 16384 == 1);
        assert!(p.log_q() <= 218.0);
        p.build().expect("builds");
    }

    #[test]
    fn unsafe_sets_are_refused_with_the_fix() {
        let too_big = HeParams::generate(8192, &[60, 60, 60, 60], 40).expect_err("too big");
        assert!(too_big.to_string().contains("128-bit"), "{too_big}");
        let mut p = HeParams::generate(4096, &[36, 36, 37], 20).expect("valid");
        p.plaintext = p.moduli[0] + 2 * 4096;
        let wrap = p.check().expect_err("wraps");
        assert!(wrap.to_string().contains("not below"), "{wrap}");
    }
}
