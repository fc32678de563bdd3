//! Seeded masks: a [`MaskKey`] (32 bytes) derives one independent ChaCha12 stream per label and
//! index tuple — seed = SHA-256(domain ‖ key ‖ label ‖ indices) — so a device holding one key can
//! draw a fresh uniform mask for every (query, layer) without storing any, and the owner can hand
//! out keys without per-query material.

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha12Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const DOMAIN: &[u8] = b"privdnn-mpc/prg/v1";

/// A 32-byte PRF key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskKey(pub [u8; 32]);

impl std::fmt::Debug for MaskKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MaskKey(..)")
    }
}

impl MaskKey {
    /// A fresh key from the operating system's generator.
    pub fn random() -> Self {
        let mut k = [0u8; 32];
        rand::rng().fill_bytes(&mut k);
        MaskKey(k)
    }

    /// A key drawn from `rng` (tests, reproducible setups).
    pub fn from_rng<R: Rng + ?Sized>(rng: &mut R) -> Self {
        let mut k = [0u8; 32];
        rng.fill_bytes(&mut k);
        MaskKey(k)
    }

    /// The stream for `label` and `indices` (e.g. `("mask", [query, layer])`).
    pub fn stream(&self, label: &str, indices: &[u64]) -> Prg {
        let mut h = Sha256::new();
        h.update(DOMAIN);
        h.update(self.0);
        h.update((label.len() as u64).to_le_bytes());
        h.update(label.as_bytes());
        for i in indices {
            h.update(i.to_le_bytes());
        }
        let seed: [u8; 32] = h.finalize().into();
        Prg(ChaCha12Rng::from_seed(seed))
    }
}

/// A pseudo-random generator of ring elements.
pub struct Prg(ChaCha12Rng);

impl Prg {
    /// A generator from a 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Prg(ChaCha12Rng::from_seed(seed))
    }

    /// `n` uniform ring elements.
    pub fn ring(&mut self, n: usize) -> Vec<u64> {
        let mut out = vec![0u64; n];
        self.fill(&mut out);
        out
    }

    /// Fills `out` with uniform ring elements.
    pub fn fill(&mut self, out: &mut [u64]) {
        for v in out.iter_mut() {
            *v = self.0.next_u64();
        }
    }

    /// Fills `out` with uniform bytes: the same stream as [`Prg::fill`], as little-endian words
    /// (`fill_bytes` of the block generator, no per-word call).
    pub fn fill_bytes(&mut self, out: &mut [u8]) {
        self.0.fill_bytes(out);
    }

    /// One uniform ring element.
    #[inline]
    pub fn next_ring(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A uniform float in [0, 1) (sampling decisions).
    pub fn unit(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform index below `n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        self.0.random_range(0..n.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_deterministic_and_separated() {
        let k = MaskKey([7; 32]);
        let a = k.stream("mask", &[1, 2]).ring(4);
        assert_eq!(a, k.stream("mask", &[1, 2]).ring(4));
        assert_ne!(a, k.stream("mask", &[2, 1]).ring(4));
        assert_ne!(a, k.stream("test", &[1, 2]).ring(4));
        assert_ne!(a, MaskKey([8; 32]).stream("mask", &[1, 2]).ring(4));
        // top bits of uniform ring elements: about half set over many draws.
        let bits: u32 = k
            .stream("mask", &[9])
            .ring(4096)
            .iter()
            .map(|v| (v >> 63) as u32)
            .sum();
        assert!((1900..2200).contains(&bits), "{bits}");
        // the byte stream is the word stream, little endian
        let mut bytes = vec![0u8; 8 * 37];
        k.stream("mask", &[3]).fill_bytes(&mut bytes);
        let words: Vec<u64> = bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        assert_eq!(words, k.stream("mask", &[3]).ring(37));
    }
}
