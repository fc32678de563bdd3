//! Random OTs from a dealer and their online derandomisation (Beaver's trick), so the evaluator's
//! input labels need no OT protocol at all.
//!
//! Offline, the dealer `T` gives the garbler a seed for pairs `(m0_i, m1_i)` and the evaluator a
//! seed for bits `c_i` and pads `v_i` plus one correction `δ_i = m_{c_i} ⊕ v_i` (16 B) per OT, so
//! the evaluator holds `m_{c_i} = v_i ⊕ δ_i`. Online, for choice bit `b`: the evaluator sends
//! `e = b ⊕ c` (1 bit); the garbler answers `y0 = K0 ⊕ m_e`, `y1 = K1 ⊕ m_{1⊕e}` (2 labels); the
//! evaluator takes `K_b = y_b ⊕ m_c`. Dealer traffic: 16 B seed + 8 B count to the garbler, 16 B seed +
//! 16 B per OT to the evaluator. The dealer is an extra non-colluding party (it knows every `m`, not the
//! labels or the choices).
//!
//! PRG streams (AES-128-CTR keyed by the 16-byte seed, [`CtrStream`]): garbler seed, stream 0 →
//! `m0_i, m1_i` (one block each, in order); evaluator seed, stream 1 → choice blocks (128 `c` bits
//! per block); stream 2 → `v_i`. The dealer's own randomness is ChaCha12.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha12Rng;
use serde::{Deserialize, Serialize};

use crate::error::GcError;
use crate::hash::CtrStream;

fn next_u128(rng: &mut CtrStream) -> u128 {
    rng.next_u128()
}

fn stream(seed: [u8; 16], id: u64) -> CtrStream {
    CtrStream::new(seed, id)
}

/// Choice-bit stream: 128 bits per PRG block.
struct BitStream {
    rng: CtrStream,
    word: u128,
    left: u32,
}

impl BitStream {
    fn new(rng: CtrStream) -> Self {
        BitStream {
            rng,
            word: 0,
            left: 0,
        }
    }
    fn next(&mut self) -> bool {
        if self.left == 0 {
            self.word = self.rng.next_u128();
            self.left = 128;
        }
        let b = self.word & 1 == 1;
        self.word >>= 1;
        self.left -= 1;
        b
    }
}

/// What the dealer sends the garbler for a batch of random OTs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GarblerRotSetup {
    /// PRG seed of the pairs.
    pub seed: [u8; 16],
    /// Number of OTs.
    pub count: u64,
}

/// What the dealer sends the evaluator for the same batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluatorRotSetup {
    /// PRG seed of the choice bits and pads.
    pub seed: [u8; 16],
    /// `δ_i = m_{c_i} ⊕ v_i`, 16 bytes little-endian each.
    #[serde(with = "serde_bytes")]
    pub corrections: Vec<u8>,
}

impl EvaluatorRotSetup {
    /// Number of OTs.
    pub fn count(&self) -> u64 {
        (self.corrections.len() / 16) as u64
    }
}

/// The dealer of random OTs (seeded, deterministic for a given seed).
pub struct Dealer {
    rng: ChaCha12Rng,
}

impl Dealer {
    /// A dealer whose seeds all derive from `seed`.
    pub fn new(seed: [u8; 32]) -> Self {
        Dealer {
            rng: ChaCha12Rng::from_seed(seed),
        }
    }

    /// Deals `count` random OTs.
    pub fn deal_rots(&mut self, count: u64) -> (GarblerRotSetup, EvaluatorRotSetup) {
        let mut gseed = [0u8; 16];
        let mut eseed = [0u8; 16];
        self.rng.fill_bytes(&mut gseed);
        self.rng.fill_bytes(&mut eseed);
        let mut pairs = stream(gseed, 0);
        let mut bits = BitStream::new(stream(eseed, 1));
        let mut pads = stream(eseed, 2);
        let mut corrections = Vec::with_capacity(count as usize * 16);
        for _ in 0..count {
            let (m0, m1) = (next_u128(&mut pairs), next_u128(&mut pairs));
            let mc = if bits.next() { m1 } else { m0 };
            corrections.extend_from_slice(&(mc ^ next_u128(&mut pads)).to_le_bytes());
        }
        (
            GarblerRotSetup { seed: gseed, count },
            EvaluatorRotSetup {
                seed: eseed,
                corrections,
            },
        )
    }
}

/// The garbler's side: the pairs `(m0, m1)` in order.
pub struct GarblerRots {
    pairs: CtrStream,
    left: u64,
}

impl GarblerRots {
    /// Expands the dealer's setup.
    pub fn new(setup: &GarblerRotSetup) -> Self {
        GarblerRots {
            pairs: stream(setup.seed, 0),
            left: setup.count,
        }
    }

    /// OTs not yet used.
    pub fn remaining(&self) -> u64 {
        self.left
    }

    /// The next pair `(m0, m1)`.
    pub fn next_pair(&mut self) -> Result<(u128, u128), GcError> {
        if self.left == 0 {
            return Err(GcError::Exhausted("garbler ran out of random OTs".into()));
        }
        self.left -= 1;
        Ok((next_u128(&mut self.pairs), next_u128(&mut self.pairs)))
    }

    /// Online answer for the evaluator's flip bit `e` and the zero label `k0`: `(y0, y1)`.
    pub fn answer(&mut self, e: bool, k0: u128, delta: u128) -> Result<(u128, u128), GcError> {
        let (m0, m1) = self.next_pair()?;
        let (me, mne) = if e { (m1, m0) } else { (m0, m1) };
        Ok((k0 ^ me, k0 ^ delta ^ mne))
    }
}

/// The evaluator's side: choice bits `c` (consumed by [`EvaluatorRots::flips`]) and messages
/// `m_c` (consumed when labels arrive), each in order.
pub struct EvaluatorRots {
    bits: BitStream,
    pads: CtrStream,
    corrections: Vec<u8>,
    flipped: u64,
    received: u64,
}

impl EvaluatorRots {
    /// Expands the dealer's setup.
    pub fn new(setup: EvaluatorRotSetup) -> Result<Self, GcError> {
        if !setup.corrections.len().is_multiple_of(16) {
            return Err(GcError::length(
                "ROT corrections are not a multiple of 16 bytes",
            ));
        }
        Ok(EvaluatorRots {
            bits: BitStream::new(stream(setup.seed, 1)),
            pads: stream(setup.seed, 2),
            corrections: setup.corrections,
            flipped: 0,
            received: 0,
        })
    }

    fn count(&self) -> u64 {
        (self.corrections.len() / 16) as u64
    }

    /// Online message for the evaluator's input bits: `e_i = b_i ⊕ c_i`.
    pub fn flips(&mut self, choices: &[bool]) -> Result<Vec<bool>, GcError> {
        if self.flipped + choices.len() as u64 > self.count() {
            return Err(GcError::Exhausted(format!(
                "{} choices, {} random OTs left",
                choices.len(),
                self.count() - self.flipped
            )));
        }
        self.flipped += choices.len() as u64;
        Ok(choices.iter().map(|&b| b ^ self.bits.next()).collect())
    }

    /// The label for choice `b` from the garbler's answer `(y0, y1)`: `y_b ⊕ m_c`.
    pub fn receive(&mut self, b: bool, y0: u128, y1: u128) -> Result<u128, GcError> {
        if self.received >= self.flipped {
            return Err(GcError::Exhausted(
                "label received before its flip bit was sent".into(),
            ));
        }
        let i = self.received as usize * 16;
        let mut d = [0u8; 16];
        d.copy_from_slice(&self.corrections[i..i + 16]);
        self.received += 1;
        let mc = next_u128(&mut self.pads) ^ u128::from_le_bytes(d);
        Ok(if b { y1 } else { y0 } ^ mc)
    }
}
