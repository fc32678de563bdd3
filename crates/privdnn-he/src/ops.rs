//! Small shared helpers: signed SIMD encoding/decoding and thread-safe counters of HE operations.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use fhe::bfv::{BfvParameters, Encoding, Plaintext};
use fhe_traits::FheEncoder;
use serde::{Deserialize, Serialize};

use crate::Result;

/// Encodes signed integers (reduced mod t) into SIMD slots; missing slots are zero.
pub fn encode_simd(values: &[i64], par: &Arc<BfvParameters>) -> Result<Plaintext> {
    Ok(Plaintext::try_encode(values, Encoding::simd(), par)?)
}

/// Counts of the homomorphic operations one evaluation performed.
#[derive(Debug, Default)]
pub struct OpCounter {
    /// Plaintext encodings (SIMD).
    pub encodes: AtomicU64,
    /// ct×pt products (inside dot products).
    pub ct_pt_mul: AtomicU64,
    /// ct×ct products (tensor products, lazy or not).
    pub ct_ct_mul: AtomicU64,
    /// Ciphertexts lifted to the extended basis.
    pub lifts: AtomicU64,
    /// Scale-downs + relinearisations (one per lazy dot product).
    pub relins: AtomicU64,
    /// ct+ct additions outside dot products.
    pub ct_add: AtomicU64,
    /// Key switches spent on the oblivious expansion of packed weights.
    pub expansion_key_switches: AtomicU64,
    /// Modulus switches (one per ciphertext per dropped level).
    pub mod_switches: AtomicU64,
    /// Slot rotations (key switches) of the rotated spatial layout.
    pub rotations: AtomicU64,
}

/// Plain snapshot of an [`OpCounter`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpCounts {
    /// Plaintext encodings (SIMD).
    pub encodes: u64,
    /// ct×pt products.
    pub ct_pt_mul: u64,
    /// ct×ct products.
    pub ct_ct_mul: u64,
    /// Lifts to the extended basis.
    pub lifts: u64,
    /// Scale-downs + relinearisations.
    pub relins: u64,
    /// ct+ct additions.
    pub ct_add: u64,
    /// Key switches of the oblivious expansion.
    pub expansion_key_switches: u64,
    /// Modulus switches.
    pub mod_switches: u64,
    /// Slot rotations.
    pub rotations: u64,
}

impl OpCounter {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Current values.
    pub fn snapshot(&self) -> OpCounts {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        OpCounts {
            encodes: g(&self.encodes),
            ct_pt_mul: g(&self.ct_pt_mul),
            ct_ct_mul: g(&self.ct_ct_mul),
            lifts: g(&self.lifts),
            relins: g(&self.relins),
            ct_add: g(&self.ct_add),
            expansion_key_switches: g(&self.expansion_key_switches),
            mod_switches: g(&self.mod_switches),
            rotations: g(&self.rotations),
        }
    }
}
