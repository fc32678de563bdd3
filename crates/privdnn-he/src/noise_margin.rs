//! The owner's measured noise check: before a parameter set is shipped, the owner runs the
//! user's chain once on random data with its own keys (weights packed in the real chunk and
//! expanded, ct×pt on full-range plaintexts, a square, a conv2 sum of the block's widest
//! length) and decrypts the result multiplied by 2^[`MARGIN_BITS`]. If that still decrypts,
//! the noise left at least that many bits of room; otherwise the set is refused with the fix,
//! instead of a run whose every value is garbage (0 % exact).

use std::sync::Arc;

use fhe::bfv::{
    BfvParameters, Ciphertext, Encoding, EvaluationKey, Plaintext, RelinearizationKey, SecretKey,
    dot_product_scalar,
};
use fhe_traits::{FheDecoder, FheDecrypter, FheEncoder};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::lazy::LazyMultiplier;
use crate::ops::OpCounter;
use crate::packing::{expand_weights, mul_mod, pack_weights};
use crate::{HeError, Result};

/// Bits of noise budget the check demands beyond correct decryption (the default parameter
/// sets keep about 10 on MNIST's block; a packed block under one 40-bit t has none).
pub const MARGIN_BITS: u32 = 4;

/// Lengths of the chain the check runs: terms of a layer-1 sum (ct×pt) and of a conv2 sum
/// (ct×ct).
#[derive(Debug, Clone, Copy)]
pub struct ChainShape {
    /// Layer-1 weights per output (`w1_len`).
    pub layer1_terms: usize,
    /// Encrypted products per conv2 output (selected channels × taps).
    pub conv2_terms: usize,
}

/// The owner's keys of one residue the check runs with.
pub struct OwnerKeys<'a> {
    /// Secret key.
    pub sk: &'a SecretKey,
    /// Relinearisation key.
    pub rk: &'a RelinearizationKey,
    /// Expansion key of the packing chunk.
    pub ek: &'a EvaluationKey,
}

/// Runs the chain of `shape` with weights packed `chunk` to a ciphertext and refuses the
/// parameter set unless `2^MARGIN_BITS ×` the result still decrypts exactly.
pub fn check(
    par: &Arc<BfvParameters>,
    keys: &OwnerKeys<'_>,
    chunk: usize,
    shape: ChainShape,
) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(0x6e6f_6973);
    let (n, t) = (par.degree(), par.plaintext());
    let (k1, k2) = (shape.layer1_terms.max(1), shape.conv2_terms.max(1));
    let weights: Vec<i64> = (0..k1 + k2).map(|_| rng.random_range(-127..128)).collect();
    let packed = pack_weights(&weights, chunk, par, keys.sk, &mut rng)?;
    let cts = expand_weights(packed, weights.len(), chunk, keys.ek, &OpCounter::default())?;
    let xs: Vec<Vec<u64>> = (0..k1)
        .map(|_| (0..n).map(|_| rng.random_range(0..t)).collect())
        .collect();
    let pts = xs
        .iter()
        .map(|x| Plaintext::try_encode(x, Encoding::simd(), par))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let lazy = LazyMultiplier::for_terms(par, k2)?;
    let u = dot_product_scalar(cts[..k1].iter(), pts.iter())?;
    let lu = lazy.lift(&u)?;
    let la = lazy.lift(&lazy.dot(&[(&lu, &lu)], keys.rk)?)?;
    let lw = cts[k1..]
        .iter()
        .map(|c| lazy.lift(c))
        .collect::<Result<Vec<_>>>()?;
    let terms: Vec<_> = lw.iter().map(|w| (w, &la)).collect();
    let z: Ciphertext = lazy.dot(&terms, keys.rk)?;
    let amplified = &z * &Plaintext::try_encode(&[1u64 << MARGIN_BITS], Encoding::poly(), par)?;
    let got = Vec::<u64>::try_decode(&keys.sk.try_decrypt(&amplified)?, Encoding::simd())?;
    let want = expected(&weights[..k1], &weights[k1..], &xs, t);
    if got
        .iter()
        .zip(&want)
        .all(|(&g, &w)| g == mul_mod(w, 1 << MARGIN_BITS, t))
    {
        return Ok(());
    }
    Err(HeError::Parameters(format!(
        "the parameter set (t = {t}, log q = {:.0}, {chunk} weights per packed ciphertext) \
         leaves less than {MARGIN_BITS} bits of noise budget for a {k1}-term layer 1 and a \
         {k2}-term conv2: raise he.moduli_bits, lower he.plaintext_bits (with more \
         he.crt_moduli), or ship fresh weights with he.max_chunk = 1",
        par.moduli().iter().map(|&q| (q as f64).log2()).sum::<f64>()
    )))
}

/// Per slot: `Σ w2 · (Σ w1·x)²` mod t.
fn expected(w1: &[i64], w2: &[i64], xs: &[Vec<u64>], t: u64) -> Vec<u64> {
    let signed = |w: i64| w.rem_euclid(t as i64) as u64;
    let w2_sum = w2.iter().fold(0, |acc, &w| (acc + signed(w)) % t);
    (0..xs[0].len())
        .map(|slot| {
            let u = w1
                .iter()
                .zip(xs)
                .fold(0, |acc, (&w, x)| (acc + mul_mod(signed(w), x[slot], t)) % t);
            mul_mod(w2_sum, mul_mod(u, u, t), t)
        })
        .collect()
}
