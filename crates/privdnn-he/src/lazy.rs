//! Lazy ct×ct products: lift each operand once into the extended RNS basis, accumulate the
//! tensor products of a whole dot product there, then scale down by t/q and relinearise once.
//!
//! fhe 0.1.1's `Multiplicator` lifts both operands, tensors, scales down (and relinearises) per
//! product; in conv2 the same operands recur in many products, so lifting once and scaling down
//! once per output removes almost all NTTs. Built from fhe-math's public `Scaler`, `Context`
//! and `Poly`, with the same extended basis rule as fhe's default multiplicator, widened so the
//! sum of many products cannot overflow it.

use std::sync::Arc;

use fhe::bfv::{BfvParameters, Ciphertext, RelinearizationKey};
use fhe_math::rns::ScalingFactor;
use fhe_math::rq::scaler::Scaler;
use fhe_math::rq::traits::TryConvertFrom;
use fhe_math::rq::{Context, Poly, Representation};
use fhe_math::zq::Modulus;
use fhe_math::zq::primes::generate_prime;
use ndarray::{Array2, Axis};
use num_bigint::BigUint;

use crate::{HeError, Result};

/// Most products one accumulation may sum (sets the size of the extended basis).
pub const MAX_TERMS: usize = 1 << 16;

/// A ciphertext lifted into the extended basis (NTT form), ready for many products.
#[derive(Debug, Clone)]
pub struct Lifted {
    c0: Poly,
    c1: Poly,
}

/// Number of moduli of the extended basis for `par` and dot products of at most `max_terms`
/// terms: the base primes give log q; room for Σ of `max_terms` tensor products of centred
/// operands needs 2·log q + log N + log terms + 2 bits, the extra 62-bit primes give the rest.
/// A block sized for its own dot products (conv2: selected channels × taps) needs one prime
/// fewer than [`MAX_TERMS`] at the pipelines' parameters: 11 % less memory and time per lift.
pub fn extended_moduli(par: &BfvParameters, max_terms: usize) -> usize {
    let log_q: usize = par.moduli_sizes().iter().sum();
    let log_terms = max_terms.clamp(1, MAX_TERMS).next_power_of_two().ilog2() as usize;
    let need = log_q + (par.degree().ilog2() as usize) + log_terms + 4;
    par.moduli().len() + need.div_ceil(61)
}

/// Lifts, accumulates and scales down ct×ct products at one level of a parameter set.
#[derive(Debug)]
pub struct LazyMultiplier {
    par: Arc<BfvParameters>,
    max_terms: usize,
    ext: Arc<Context>,
    up: Scaler,
    down: Scaler,
}

impl LazyMultiplier {
    /// Multiplier for fresh (level-0) ciphertexts of `par`, for dot products of up to
    /// [`MAX_TERMS`] terms.
    pub fn new(par: &Arc<BfvParameters>) -> Result<Self> {
        Self::for_terms(par, MAX_TERMS)
    }

    /// Multiplier for dot products of at most `max_terms` terms (at most [`MAX_TERMS`]).
    pub fn for_terms(par: &Arc<BfvParameters>, max_terms: usize) -> Result<Self> {
        let max_terms = max_terms.clamp(1, MAX_TERMS).next_power_of_two();
        let base = par.context_at_level(0)?.clone();
        let mut moduli = base.moduli().to_vec();
        let mut upper = 1u64 << 62;
        while moduli.len() < extended_moduli(par, max_terms) {
            upper = generate_prime(62, 2 * par.degree() as u64, upper)
                .ok_or_else(|| HeError::Parameters("no 62-bit NTT prime left".into()))?;
            if !moduli.contains(&upper) {
                moduli.push(upper);
            }
        }
        let ext = Arc::new(Context::new(&moduli, par.degree())?);
        let up = Scaler::new(&base, &ext, ScalingFactor::one())?;
        let down = Scaler::new(
            &ext,
            &base,
            ScalingFactor::new(&BigUint::from(par.plaintext()), base.modulus()),
        )?;
        Ok(Self {
            par: par.clone(),
            max_terms,
            ext,
            up,
            down,
        })
    }

    /// Lifts a 2-part level-0 ciphertext.
    pub fn lift(&self, ct: &Ciphertext) -> Result<Lifted> {
        if ct.len() != 2 || ct[0].ctx().moduli() != &self.ext.moduli()[..self.par.moduli().len()] {
            return Err(HeError::shape(
                "only 2-part level-0 ciphertexts can be lifted",
            ));
        }
        Ok(Lifted {
            c0: ct[0].scale(&self.up)?,
            c1: ct[1].scale(&self.up)?,
        })
    }

    /// Σ aᵢ·bᵢ over `terms`, scaled down once and relinearised once.
    pub fn dot(&self, terms: &[(&Lifted, &Lifted)], rk: &RelinearizationKey) -> Result<Ciphertext> {
        if terms.is_empty() || terms.len() > self.max_terms {
            return Err(HeError::shape(format!(
                "lazy dot product of {} terms",
                terms.len()
            )));
        }
        let n = self.par.degree();
        let moduli = self.ext.moduli();
        let mut out: [Array2<u64>; 3] = std::array::from_fn(|_| Array2::zeros((moduli.len(), n)));
        for (i, m) in self.ext.moduli_operators().iter().enumerate() {
            let rows = terms
                .iter()
                .map(|(a, b)| {
                    Ok([
                        row(&a.c0, i)?,
                        row(&a.c1, i)?,
                        row(&b.c0, i)?,
                        row(&b.c1, i)?,
                    ])
                })
                .collect::<Result<Vec<_>>>()?;
            let [o0, o1, o2] = &mut out;
            accumulate_row(
                &rows,
                m,
                [row_mut(o0, i)?, row_mut(o1, i)?, row_mut(o2, i)?],
            );
        }
        let mut polys = Vec::with_capacity(3);
        for part in out {
            let mut poly = Poly::try_convert_from(part, &self.ext, false, Representation::Ntt)?;
            poly.change_representation(Representation::PowerBasis);
            let mut down = poly.scale(&self.down)?;
            down.change_representation(Representation::Ntt);
            polys.push(down);
        }
        let mut ct = Ciphertext::new(polys, &self.par)?;
        rk.relinearizes(&mut ct)?;
        Ok(ct)
    }
}

fn not_contiguous() -> HeError {
    HeError::shape("polynomial rows are not contiguous")
}

/// Row `i` (modulus `i`) of a polynomial (also [`crate::rotation`]'s digits and keys).
pub(crate) fn row(p: &Poly, i: usize) -> Result<&[u64]> {
    p.coefficients()
        .index_axis_move(Axis(0), i)
        .to_slice()
        .ok_or_else(not_contiguous)
}

/// Row `i` of an output part.
fn row_mut(o: &mut Array2<u64>, i: usize) -> Result<&mut [u64]> {
    o.row_mut(i).into_slice().ok_or_else(not_contiguous)
}

/// Coefficients accumulated at once: three 128-bit accumulators of this many coefficients stay
/// in the L1 cache while every term streams through them (the unblocked loop re-read 384 KB of
/// accumulators per term from L2/L3).
const BLOCK: usize = 512;

/// One modulus of a lazy dot: `dst = (Σ x0·y0, Σ x0·y1 + x1·y0, Σ x1·y1) mod p` over the terms'
/// rows `[x0, x1, y0, y1]`.
fn accumulate_row(rows: &[[&[u64]; 4]], m: &Modulus, dst: [&mut [u64]; 3]) {
    let p128 = u128::from(**m);
    let sq = (p128 - 1) * (p128 - 1);
    // The middle accumulator takes two products per term and starts below p.
    let chunk = (((u128::MAX - p128) / sq) / 2).max(1) as usize;
    let n = dst[0].len();
    let mut acc = [[0u128; BLOCK]; 3];
    let [d0, d1, d2] = dst;
    for start in (0..n).step_by(BLOCK) {
        let len = BLOCK.min(n - start);
        let [a0, a1, a2] = &mut acc;
        let (a0, a1, a2) = (&mut a0[..len], &mut a1[..len], &mut a2[..len]);
        a0.fill(0);
        a1.fill(0);
        a2.fill(0);
        for group in rows.chunks(chunk) {
            for [x0, x1, y0, y1] in group {
                let r = start..start + len;
                fma3(
                    a0,
                    a1,
                    a2,
                    &x0[r.clone()],
                    &x1[r.clone()],
                    &y0[r.clone()],
                    &y1[r],
                );
            }
            for v in a0.iter_mut().chain(a1.iter_mut()).chain(a2.iter_mut()) {
                // Barrett reduction (fhe-math) instead of a 128-bit division per coefficient
                *v = u128::from(m.reduce_u128(*v));
            }
        }
        for (d, a) in [&mut *d0, &mut *d1, &mut *d2]
            .into_iter()
            .zip([&*a0, &*a1, &*a2])
        {
            for (o, &v) in d[start..start + len].iter_mut().zip(a) {
                *o = v as u64;
            }
        }
    }
}

/// acc0 += x0·y0, acc1 += x0·y1 + x1·y0, acc2 += x1·y1 (element-wise, 128-bit).
fn fma3(
    acc0: &mut [u128],
    acc1: &mut [u128],
    acc2: &mut [u128],
    x0: &[u64],
    x1: &[u64],
    y0: &[u64],
    y1: &[u64],
) {
    let n = acc0.len();
    let (acc1, acc2, x0, x1, y0, y1) = (
        &mut acc1[..n],
        &mut acc2[..n],
        &x0[..n],
        &x1[..n],
        &y0[..n],
        &y1[..n],
    );
    for k in 0..n {
        let (a0, a1, b0, b1) = (x0[k] as u128, x1[k] as u128, y0[k] as u128, y1[k] as u128);
        acc0[k] += a0 * b0;
        acc1[k] += a0 * b1 + a1 * b0;
        acc2[k] += a1 * b1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::HeParams;
    use fhe::bfv::{Encoding, Plaintext, SecretKey};
    use fhe_traits::{FheDecoder, FheDecrypter, FheEncoder, FheEncrypter};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn lazy_dot_equals_the_integer_sum_of_products() {
        let hp = HeParams::generate(2048, &[50], 16).expect("toy params");
        // Depth 1 needs more than one 50-bit prime at t=16 bits: use 4096.
        let hp = if hp.moduli.len() < 2 {
            HeParams::generate(4096, &[36, 36, 37], 20).expect("params")
        } else {
            hp
        };
        let par = hp.build().expect("build");
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let sk = SecretKey::random(&par, &mut rng);
        let rk = RelinearizationKey::new(&sk, &mut rng).expect("rk");
        let lazy = LazyMultiplier::new(&par).expect("lazy");
        let t = hp.plaintext as i64;
        let n = hp.degree;
        let vals: Vec<Vec<i64>> = (0..6)
            .map(|_| (0..n).map(|_| rng.random_range(-300..300)).collect())
            .collect();
        let cts: Vec<Ciphertext> = vals
            .iter()
            .map(|v| {
                let pt = Plaintext::try_encode(v, Encoding::simd(), &par).expect("encode");
                sk.try_encrypt(&pt, &mut rng).expect("encrypt")
            })
            .collect();
        let lifted: Vec<Lifted> = cts.iter().map(|c| lazy.lift(c).expect("lift")).collect();
        let terms = [
            (&lifted[0], &lifted[1]),
            (&lifted[2], &lifted[3]),
            (&lifted[4], &lifted[4]),
            (&lifted[5], &lifted[0]),
        ];
        let ct = lazy.dot(&terms, &rk).expect("dot");
        let dec = Vec::<u64>::try_decode(&sk.try_decrypt(&ct).expect("decrypt"), Encoding::simd())
            .expect("decode");
        for k in 0..n {
            let want = vals[0][k] * vals[1][k]
                + vals[2][k] * vals[3][k]
                + vals[4][k] * vals[4][k]
                + vals[5][k] * vals[0][k];
            assert_eq!(
                hp.decode_signed(dec[k]),
                want.rem_euclid(t) - if want.rem_euclid(t) > t / 2 { t } else { 0 }
            );
        }
    }
}
