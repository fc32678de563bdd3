//! Micro-benchmarks of the HE kernels against fhe's own operations, measured in the same run
//! (ratios, not absolute claims), and the unit costs the fully-encrypted projection of
//! `privdnn-infer bench` (`cargo xtask bench he`) uses. Lives here so that no other crate
//! needs fhe.

use std::sync::Arc;
use std::time::Instant;

use fhe::bfv::{
    BfvParameters, Ciphertext, Encoding, Multiplicator, Plaintext, RelinearizationKey, SecretKey,
    dot_product_scalar,
};
use fhe_traits::{FheDecoder, FheDecrypter, FheEncoder, FheEncrypter, Serialize as _};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::Result;
use crate::compact::compress;
use crate::lazy::LazyMultiplier;
use crate::params::HeParams;
use crate::rotation::RotationKeys;

/// One kernel comparison.
#[derive(Debug, Serialize)]
pub struct Comparison {
    /// What is compared.
    pub kernel: String,
    /// fhe's way, ms.
    pub baseline_ms: f64,
    /// Ours, ms.
    pub ours_ms: f64,
    /// baseline / ours.
    pub speedup: f64,
}

fn time<T>(reps: usize, mut f: impl FnMut() -> Result<T>) -> Result<f64> {
    let start = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(f()?);
    }
    Ok(start.elapsed().as_secs_f64() * 1e3 / reps as f64)
}

fn compare(kernel: &str, baseline_ms: f64, ours_ms: f64) -> Comparison {
    Comparison {
        kernel: kernel.into(),
        baseline_ms,
        ours_ms,
        speedup: baseline_ms / ours_ms,
    }
}

/// Measured unit costs (ms, one thread) used by the fully-encrypted projection.
#[derive(Debug, Clone, Serialize)]
pub struct UnitCosts {
    /// Lift of one ciphertext into the extended basis.
    pub lift_ms: f64,
    /// One lazy tensor product (accumulated), with its share of one scale-down per 25 terms.
    pub product_ms: f64,
    /// One square (lift, tensor, scale-down + relinearise, lift of the result).
    pub square_ms: f64,
    /// One key switch of the oblivious expansion.
    pub expansion_key_switch_ms: f64,
    /// Owner-assisted refresh of one ciphertext: blind, switch down, compact, owner decrypts and
    /// re-encrypts, user removes the mask.
    pub refresh_ms: f64,
}

/// What [`kernels`] measures: the comparisons, the ciphertext sizes (label, bytes) and the unit
/// costs.
pub type KernelReport = (Vec<Comparison>, Vec<(String, f64)>, UnitCosts);

/// The pipelines' default parameters (N = 8192, 4 × 54-bit primes, t ≈ 2^24) with a secret and
/// a relinearisation key.
fn keyed_parameters(
    rng: &mut ChaCha8Rng,
) -> Result<(Arc<BfvParameters>, SecretKey, RelinearizationKey)> {
    let par = HeParams::generate(8192, &[54, 54, 54, 54], 24)?.build()?;
    let sk = SecretKey::random(&par, rng);
    let rk = RelinearizationKey::new(&sk, rng)?;
    Ok((par, sk, rk))
}

/// Kernel comparisons at the pipelines' default parameters.
pub fn kernels() -> Result<KernelReport> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (par, sk, rk) = keyed_parameters(&mut rng)?;
    let n = par.degree();
    let enc = |rng: &mut ChaCha8Rng| -> Result<Ciphertext> {
        let v: Vec<i64> = (0..n).map(|_| rng.random_range(-1000..1000)).collect();
        Ok(sk.try_encrypt(&Plaintext::try_encode(&v, Encoding::simd(), &par)?, rng)?)
    };
    let terms = 25;
    let a: Vec<Ciphertext> = (0..terms).map(|_| enc(&mut rng)).collect::<Result<_>>()?;
    let b: Vec<Ciphertext> = (0..terms).map(|_| enc(&mut rng)).collect::<Result<_>>()?;
    let pts: Vec<Plaintext> = (0..36)
        .map(|_| {
            let v: Vec<i64> = (0..n).map(|_| rng.random_range(-255..256)).collect();
            Plaintext::try_encode(&v, Encoding::simd(), &par)
        })
        .collect::<std::result::Result<_, _>>()?;
    let cts36: Vec<Ciphertext> = (0..36).map(|_| enc(&mut rng)).collect::<Result<_>>()?;
    let lazy = LazyMultiplier::for_terms(&par, terms)?;
    let la: Vec<_> = a.iter().map(|c| lazy.lift(c)).collect::<Result<_>>()?;
    let lb: Vec<_> = b.iter().map(|c| lazy.lift(c)).collect::<Result<_>>()?;
    let pairs: Vec<_> = la.iter().zip(&lb).collect();
    let (mut out, lift) = dot_products(&rk, &lazy, (&a, &b), &pairs, (&cts36, &pts))?;
    out.push(rotations(&sk, &par, &a[0], &mut rng)?);
    let square_ms = time(3, || {
        let l = lazy.lift(&a[0])?;
        let sq = lazy.dot(&[(&l, &l)], &rk)?;
        lazy.lift(&sq)
    })?;
    let product_ms = time(3, || lazy.dot(&pairs, &rk))? / terms as f64;
    let ek = fhe::bfv::EvaluationKeyBuilder::new(&sk)?
        .enable_expansion(6)?
        .build(&mut rng)?;
    let expansion_key_switch_ms = time(2, || Ok(ek.expands(&a[0], 64)?))? / 63.0;
    let refresh_ms = time(3, || refresh(&sk, &par, &a[0]))?;
    let units = UnitCosts {
        lift_ms: lift,
        product_ms,
        square_ms,
        expansion_key_switch_ms,
        refresh_ms,
    };
    let mut sizes = Vec::new();
    let mut last = a[0].clone();
    last.switch_to_level(par.max_level())?;
    let full = last.to_bytes().len() as f64;
    let compact = compress(&last, &par)?.len() as f64;
    sizes.push((
        "ciphertext at the last level, fhe to_bytes (bytes)".to_string(),
        full,
    ));
    sizes.push(("same, compact wire format (bytes)".to_string(), compact));
    let single: Ciphertext = sk.try_encrypt(
        &Plaintext::try_encode(&[7u64], Encoding::poly(), &par)?,
        &mut rng,
    )?;
    sizes.push((
        "one seeded weight ciphertext (bytes; 256 weights pack into one)".to_string(),
        single.to_bytes().len() as f64,
    ));
    Ok((out, sizes, units))
}

/// Parallel speed-up of the engine's dominant kernel on this machine: squares (lift, tensor,
/// scale-down + relinearise, lift) of 4 ciphertexts per core one after another against the same
/// with rayon, the better of two tries after one untimed parallel pass (rayon starts its threads
/// on first use). Memory-bound like the engine; an encoding loop over a few milliseconds measured
/// 0.75 to 2.4 on the same idle 2-core machine.
pub fn parallel_speedup() -> Result<f64> {
    use rayon::prelude::*;
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let (par, sk, rk) = keyed_parameters(&mut rng)?;
    let lazy = LazyMultiplier::for_terms(&par, 1)?;
    let ct = sk.try_encrypt(
        &Plaintext::try_encode(&[3u64], Encoding::simd(), &par)?,
        &mut rng,
    )?;
    let square = |_: usize| -> Result<()> {
        let l = lazy.lift(&ct)?;
        let sq = lazy.dot(&[(&l, &l)], &rk)?;
        lazy.lift(&sq).map(|_| ())
    };
    let jobs = 4 * rayon::current_num_threads();
    (0..jobs).into_par_iter().try_for_each(square)?;
    let mut best: f64 = 0.0;
    for _ in 0..2 {
        let serial = time(1, || (0..jobs).try_for_each(square))?;
        let parallel = time(1, || (0..jobs).into_par_iter().try_for_each(square))?;
        best = best.max(serial / parallel.max(1e-9));
    }
    Ok(best.max(0.1))
}

/// fhe's multiply-per-product and ct×pt loops against the lazy and scalar dot products; also
/// returns the time of one lift (ms).
fn dot_products(
    rk: &RelinearizationKey,
    lazy: &LazyMultiplier,
    (a, b): (&[Ciphertext], &[Ciphertext]),
    pairs: &[(&crate::lazy::Lifted, &crate::lazy::Lifted)],
    (cts36, pts): (&[Ciphertext], &[Plaintext]),
) -> Result<(Vec<Comparison>, f64)> {
    let mut out = Vec::new();
    // ct×ct dot product of 25 terms: fhe multiply+relinearise per product vs lazy.
    let mult = Multiplicator::default(rk)?;
    let base = time(2, || {
        let mut acc = mult.multiply(&a[0], &b[0])?;
        for k in 1..a.len() {
            acc += &mult.multiply(&a[k], &b[k])?;
        }
        Ok(acc)
    })?;
    let ours = time(3, || lazy.dot(pairs, rk))?;
    let lift = time(5, || lazy.lift(&a[0]))?;
    out.push(compare(
        "25-term ct×ct dot product, operands lifted once (lift not counted)",
        base,
        ours,
    ));
    out.push(compare(
        "25-term ct×ct dot product, lifting all 50 operands included",
        base,
        ours + 50.0 * lift,
    ));
    // ct×pt dot product of 36 terms: mul + add vs dot_product_scalar.
    let base = time(5, || {
        let mut acc = &cts36[0] * &pts[0];
        for k in 1..cts36.len() {
            acc += &(&cts36[k] * &pts[k]);
        }
        Ok(acc)
    })?;
    let ours = time(5, || Ok(dot_product_scalar(cts36.iter(), pts.iter())?))?;
    out.push(compare(
        "36-term ct×pt dot product (fhe dot_product_scalar)",
        base,
        ours,
    ));
    Ok((out, lift))
}

/// The rotated layout's eight conv2 taps on one square (rows of 32 × 32 images): fhe's
/// `rotates_columns_by` per tap against one shared decomposition and eight hoisted rotations.
fn rotations(
    sk: &SecretKey,
    par: &Arc<BfvParameters>,
    ct: &Ciphertext,
    rng: &mut ChaCha8Rng,
) -> Result<Comparison> {
    let row = par.degree() / 2;
    let steps: Vec<usize> = [1, 31, 32, 33].iter().flat_map(|&s| [s, row - s]).collect();
    let mut builder = fhe::bfv::EvaluationKeyBuilder::new(sk)?;
    for &s in &steps {
        builder.enable_column_rotation(s)?;
    }
    let ek = builder.build(rng)?;
    let hoisted = RotationKeys::from_bytes(&ek.to_bytes(), par)?;
    let base = time(3, || {
        steps
            .iter()
            .map(|&s| Ok(ek.rotates_columns_by(ct, s)?))
            .collect::<Result<Vec<_>>>()
    })?;
    let ours = time(3, || {
        let dec = hoisted.decompose(ct)?;
        steps
            .iter()
            .map(|&s| hoisted.rotate(ct, &dec, s))
            .collect::<Result<Vec<_>>>()
    })?;
    Ok(compare(
        "8 column rotations of one ciphertext (rotated layout's taps), hoisted",
        base,
        ours,
    ))
}

/// One owner-assisted refresh: blind, switch down, compact, decrypt, re-encrypt, unmask.
fn refresh(
    sk: &SecretKey,
    par: &std::sync::Arc<fhe::bfv::BfvParameters>,
    ct: &Ciphertext,
) -> Result<Ciphertext> {
    let n = par.degree();
    let mask = Plaintext::try_encode(&vec![3u64; n], Encoding::simd(), par)?;
    let enc_mask: Ciphertext = sk.try_encrypt(&mask, &mut ChaCha8Rng::seed_from_u64(2))?;
    let mut c = ct + &enc_mask;
    c.switch_to_level(par.max_level())?;
    let wire = compress(&c, par)?;
    let back = crate::compact::decompress(&wire, par)?;
    let v = Vec::<u64>::try_decode(&sk.try_decrypt(&back)?, Encoding::simd())?;
    let fresh: Ciphertext = sk.try_encrypt(
        &Plaintext::try_encode(&v, Encoding::simd(), par)?,
        &mut ChaCha8Rng::seed_from_u64(3),
    )?;
    Ok(&fresh * &mask)
}
