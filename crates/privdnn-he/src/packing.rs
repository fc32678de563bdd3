//! Dense weight packing: the owner puts up to `chunk` signed weights into the coefficients of one
//! secret-key-encrypted (seeded, half-size) ciphertext; the user expands each ciphertext once with
//! fhe's oblivious expansion into replicated-scalar ciphertexts (a constant polynomial is the same
//! value in every SIMD slot). Expansion multiplies by `chunk`, so the owner pre-multiplies by
//! `chunk⁻¹ mod t`. One ciphertext per scalar weight is never shipped.

use std::sync::Arc;

use fhe::bfv::{BfvParameters, Ciphertext, Encoding, EvaluationKey, Plaintext, SecretKey};
use fhe_traits::{FheEncoder, FheEncrypter};
use rand::{CryptoRng, RngCore};
use rayon::prelude::*;

use crate::ops::OpCounter;
use crate::{HeError, Result};

/// Number of coefficients per packed ciphertext for `count` weights (power of two ≤ N, at most
/// `max_chunk`).
pub fn chunk_size(count: usize, max_chunk: usize, degree: usize) -> usize {
    count
        .max(1)
        .next_power_of_two()
        .min(max_chunk.next_power_of_two())
        .min(degree)
}

/// Owner: packs `weights` into ⌈len/chunk⌉ seeded ciphertexts.
pub fn pack_weights<R: RngCore + CryptoRng>(
    weights: &[i64],
    chunk: usize,
    par: &Arc<BfvParameters>,
    sk: &SecretKey,
    rng: &mut R,
) -> Result<Vec<Ciphertext>> {
    if !chunk.is_power_of_two() || chunk > par.degree() {
        return Err(HeError::Parameters(format!(
            "packing chunk {chunk} is not a power of two ≤ N"
        )));
    }
    let t = par.plaintext();
    let inv = inverse_mod(chunk as u64 % t, t)
        .ok_or_else(|| HeError::Parameters("chunk size not invertible mod t".into()))?;
    weights
        .chunks(chunk)
        .map(|ws| {
            let coeffs: Vec<u64> = ws
                .iter()
                .map(|&w| mul_mod(w.rem_euclid(t as i64) as u64, inv, t))
                .collect();
            let pt = Plaintext::try_encode(&coeffs, Encoding::poly(), par)?;
            Ok(sk.try_encrypt(&pt, rng)?)
        })
        .collect()
}

/// User: expands packed ciphertexts back into `count` replicated-scalar ciphertexts.
pub fn expand_weights(
    packed: Vec<Ciphertext>,
    count: usize,
    chunk: usize,
    ek: &EvaluationKey,
    ops: &OpCounter,
) -> Result<Vec<Ciphertext>> {
    if packed.len() != count.div_ceil(chunk) {
        return Err(HeError::shape(format!(
            "{} packed ciphertexts cannot hold {count} weights in chunks of {chunk}",
            packed.len()
        )));
    }
    if chunk == 1 {
        // fresh weights: already one ciphertext per weight (not copied: 725 MB for CIFAR-10)
        return Ok(packed);
    }
    let parts: Vec<Vec<Ciphertext>> = packed
        .par_iter()
        .enumerate()
        .map(|(i, ct)| expand_one(ct, i, count, chunk, ek, ops))
        .collect::<Result<_>>()?;
    Ok(parts.into_iter().flatten().collect())
}

/// User: expands packed ciphertext number `i` (of `count` weights in chunks of `chunk`) into its
/// replicated-scalar ciphertexts.
pub fn expand_one(
    ct: &Ciphertext,
    i: usize,
    count: usize,
    chunk: usize,
    ek: &EvaluationKey,
    ops: &OpCounter,
) -> Result<Vec<Ciphertext>> {
    let size = chunk.min(count.saturating_sub(i * chunk));
    if size == 0 {
        return Err(HeError::shape(format!(
            "packed ciphertext {i} lies past the {count} weights"
        )));
    }
    // fhe expands the whole tree of `chunk` coefficients, however few of them are weights
    OpCounter::add(
        &ops.expansion_key_switches,
        (chunk.next_power_of_two() - 1) as u64,
    );
    let mut out = ek.expands(ct, chunk)?;
    out.truncate(size);
    Ok(out)
}

/// `a·b mod m`.
pub(crate) fn mul_mod(a: u64, b: u64, m: u64) -> u64 {
    ((a as u128 * b as u128) % m as u128) as u64
}

fn inverse_mod(a: u64, m: u64) -> Option<u64> {
    // Extended Euclid on i128.
    let (mut r0, mut r1) = (m as i128, a as i128);
    let (mut s0, mut s1) = (0i128, 1i128);
    while r1 != 0 {
        let q = r0 / r1;
        (r0, r1) = (r1, r0 - q * r1);
        (s0, s1) = (s1, s0 - q * s1);
    }
    (r0 == 1).then(|| s0.rem_euclid(m as i128) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::HeParams;
    use fhe::bfv::EvaluationKeyBuilder;
    use fhe_traits::{FheDecoder, FheDecrypter};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn packed_weights_expand_to_replicated_scalars() {
        let hp = HeParams::generate(4096, &[36, 36, 37], 20).expect("params");
        let par = hp.build().expect("build");
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let sk = SecretKey::random(&par, &mut rng);
        let weights: Vec<i64> = (0..37).map(|i| (i * 7919 % 255) - 127).collect();
        let chunk = chunk_size(weights.len(), 16, par.degree());
        assert_eq!(chunk, 16);
        let packed = pack_weights(&weights, chunk, &par, &sk, &mut rng).expect("pack");
        assert_eq!(packed.len(), 3);
        let ek = EvaluationKeyBuilder::new(&sk)
            .expect("builder")
            .enable_expansion(chunk.ilog2() as usize)
            .expect("expansion")
            .build(&mut rng)
            .expect("ek");
        let ops = OpCounter::default();
        let cts = expand_weights(packed, weights.len(), chunk, &ek, &ops).expect("expand");
        assert_eq!(cts.len(), weights.len());
        for (w, ct) in weights.iter().zip(&cts) {
            let slots = Vec::<u64>::try_decode(&sk.try_decrypt(ct).expect("dec"), Encoding::simd())
                .expect("decode");
            assert!(
                slots.iter().all(|&s| hp.decode_signed(s) == *w),
                "weight {w}"
            );
        }
        assert_eq!(inverse_mod(3, 7), Some(5));
    }
}
