//! Hoisted column rotations for the rotated spatial layout: the key-switching decomposition of
//! a ciphertext (its c1 split into one digit per ciphertext prime, each transformed to NTT form
//! over every prime) is computed once and shared by all of its rotations; each rotation is then
//! a permutation of those digits and two inner products with its Galois key — no NTT.
//!
//! fhe 0.1.1's `rotates_columns_by` decomposes σ(c1) anew for every rotation and allocates per
//! digit, and it exposes neither hoisting nor its keys' polynomials, so [`RotationKeys`] rebuilds
//! the Galois keys from their serialised form (fhe's public protobuf messages, each c1 regrown
//! from its seed exactly as fhe regrows it). σ applied to a digit in NTT form is the signed
//! permutation of its coefficients: a digit in (−qᵢ, qᵢ) instead of [0, qᵢ), the same bound,
//! hence the same noise as fhe's own rotation.

use std::collections::HashMap;
use std::sync::Arc;

use fhe::bfv::{BfvParameters, Ciphertext};
use fhe::proto::bfv::{EvaluationKey as EvaluationKeyProto, KeySwitchingKey};
use fhe_math::rq::traits::TryConvertFrom;
use fhe_math::rq::{Context, Poly, Representation, SubstitutionExponent};
use fhe_math::zq::Modulus;
use fhe_traits::DeserializeWithContext;
use ndarray::{Array2, Axis};
use prost::Message;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::lazy::row;
use crate::{HeError, Result};

/// Most ciphertext primes (digits) whose products below 2^124 a 128-bit sum holds.
const MAX_DIGITS: usize = 15;

/// One Galois key: its substitution and, per digit, the key's two polynomials (NTT form).
struct GaloisParts {
    element: SubstitutionExponent,
    c0: Vec<Poly>,
    c1: Vec<Poly>,
}

/// The column-rotation keys of an fhe `EvaluationKey`, usable for hoisted rotations.
pub struct RotationKeys {
    par: Arc<BfvParameters>,
    ctx: Arc<Context>,
    /// By column-rotation step.
    keys: HashMap<usize, GaloisParts>,
}

/// A ciphertext's shared decomposition: its c1's digits in NTT form over every prime.
pub struct Decomposed {
    digits: Vec<Poly>,
}

fn key_err(what: &str) -> HeError {
    HeError::Parameters(format!("rotation key: {what}"))
}

impl RotationKeys {
    /// Rebuilds the column-rotation keys of fhe's serialised `EvaluationKey` (level 0).
    pub fn from_bytes(bytes: &[u8], par: &Arc<BfvParameters>) -> Result<Self> {
        let proto = EvaluationKeyProto::decode(bytes).map_err(|e| key_err(&e.to_string()))?;
        if proto.ciphertext_level != 0 || proto.evaluation_key_level != 0 {
            return Err(key_err("not at level 0"));
        }
        let ctx = par.context_at_level(0)?.clone();
        if ctx.moduli().len() > MAX_DIGITS {
            return Err(key_err(
                "more ciphertext primes than a 128-bit inner product holds",
            ));
        }
        let two_n = Modulus::new(2 * par.degree() as u64).map_err(|e| key_err(&e.to_string()))?;
        let step_of: HashMap<u64, usize> = (1..par.degree() / 2)
            .map(|i| (two_n.pow(3, i as u64), i))
            .collect();
        let mut keys = HashMap::new();
        for gk in &proto.gk {
            let Some(&step) = step_of.get(&u64::from(gk.exponent)) else {
                continue; // not a column rotation (row swap, expansion)
            };
            let ksk = gk.ksk.as_ref().ok_or_else(|| key_err("missing key"))?;
            let parts = GaloisParts {
                element: SubstitutionExponent::new(&ctx, gk.exponent as usize)?,
                c0: ksk
                    .c0
                    .iter()
                    .map(|b| Poly::from_bytes(b, &ctx))
                    .collect::<std::result::Result<_, _>>()?,
                c1: key_c1(ksk, &ctx)?,
            };
            if ksk.log_base != 0
                || ksk.ciphertext_level != 0
                || ksk.ksk_level != 0
                || parts.c0.len() != ctx.moduli().len()
                || parts.c1.len() != parts.c0.len()
            {
                return Err(key_err("not an RNS-decomposed key at level 0"));
            }
            keys.insert(step, parts);
        }
        Ok(Self {
            par: par.clone(),
            ctx,
            keys,
        })
    }

    /// The decomposition of a level-0 ciphertext's c1, shared by all its rotations.
    pub fn decompose(&self, ct: &Ciphertext) -> Result<Decomposed> {
        if ct.len() != 2 || ct[1].ctx() != &self.ctx {
            return Err(HeError::shape(
                "only 2-part level-0 ciphertexts can be rotated",
            ));
        }
        let mut c1 = ct[1].clone();
        c1.change_representation(Representation::PowerBasis);
        let moduli = self.ctx.moduli_operators();
        let digits = c1
            .coefficients()
            .axis_iter(Axis(0))
            .map(|digit| {
                let mut all = Vec::with_capacity(moduli.len() * digit.len());
                for m in moduli {
                    all.extend(digit.iter().map(|&d| m.reduce(d)));
                }
                let mut p =
                    Poly::try_convert_from(all, &self.ctx, false, Representation::PowerBasis)?;
                p.change_representation(Representation::Ntt);
                Ok(p)
            })
            .collect::<Result<_>>()?;
        Ok(Decomposed { digits })
    }

    /// `ct` rotated left by `steps` slots per row, from its decomposition `dec`.
    pub fn rotate(&self, ct: &Ciphertext, dec: &Decomposed, steps: usize) -> Result<Ciphertext> {
        let key = self
            .keys
            .get(&steps)
            .ok_or_else(|| key_err(&format!("no key for a rotation by {steps}")))?;
        let shifted: Vec<Poly> = dec
            .digits
            .iter()
            .map(|d| d.substitute(&key.element))
            .collect::<std::result::Result<_, _>>()?;
        let c0 = ct[0].substitute(&key.element)?;
        let mut out0 = c0.coefficients().to_owned();
        let mut out1 = Array2::zeros(out0.dim());
        for (i, m) in self.ctx.moduli_operators().iter().enumerate() {
            let (digits, k0, k1) = (rows(&shifted, i)?, rows(&key.c0, i)?, rows(&key.c1, i)?);
            let mut o0 = out0.row_mut(i);
            let mut o1 = out1.row_mut(i);
            // one product per digit, each below 2^124: a 128-bit sum holds MAX_DIGITS of them
            for x in 0..self.par.degree() {
                let (mut a0, mut a1) = (0u128, 0u128);
                for ((d, k0), k1) in digits.iter().zip(&k0).zip(&k1) {
                    a0 += u128::from(d[x]) * u128::from(k0[x]);
                    a1 += u128::from(d[x]) * u128::from(k1[x]);
                }
                o0[x] = m.add(o0[x], m.reduce_u128(a0));
                o1[x] = m.reduce_u128(a1);
            }
        }
        let part = |a| Poly::try_convert_from(a, &self.ctx, false, Representation::Ntt);
        Ok(Ciphertext::new(vec![part(out0)?, part(out1)?], &self.par)?)
    }
}

/// Row `i` (modulus `i`) of each polynomial.
fn rows(ps: &[Poly], i: usize) -> Result<Vec<&[u64]>> {
    ps.iter().map(|p| row(p, i)).collect()
}

/// A key's c1 polynomials: regrown from the seed as fhe does, or read when stored.
fn key_c1(ksk: &KeySwitchingKey, ctx: &Arc<Context>) -> Result<Vec<Poly>> {
    if ksk.seed.is_empty() {
        return ksk
            .c1
            .iter()
            .map(|b| Poly::from_bytes(b, ctx).map_err(HeError::from))
            .collect();
    }
    let seed = <ChaCha8Rng as SeedableRng>::Seed::try_from(ksk.seed.as_slice())
        .map_err(|_| key_err("bad seed"))?;
    let mut rng = ChaCha8Rng::from_seed(seed);
    Ok((0..ksk.c0.len())
        .map(|_| {
            let mut seed_i = <ChaCha8Rng as SeedableRng>::Seed::default();
            rng.fill(&mut seed_i);
            Poly::random_from_seed(ctx, Representation::NttShoup, seed_i)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::HeParams;
    use fhe::bfv::{Encoding, EvaluationKeyBuilder, Plaintext, SecretKey};
    use fhe_traits::{FheDecoder, FheDecrypter, FheEncoder, FheEncrypter, Serialize};

    /// Hoisted rotations decrypt to fhe's own rotations of the same ciphertext, every step from
    /// one decomposition.
    #[test]
    fn hoisted_rotations_equal_fhe_rotations() {
        let hp = HeParams::generate(8192, &[62, 52, 52, 52], 40).expect("params");
        let par = hp.build().expect("build");
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let sk = SecretKey::random(&par, &mut rng);
        let steps = [1, 31, 33, 4095];
        let mut builder = EvaluationKeyBuilder::new(&sk).expect("builder");
        for s in steps {
            builder.enable_column_rotation(s).expect("rotation");
        }
        let ek = builder.build(&mut rng).expect("keys");
        let keys = RotationKeys::from_bytes(&ek.to_bytes(), &par).expect("rebuilt keys");
        let values: Vec<u64> = (0..8192)
            .map(|_| rng.random_range(0..par.plaintext()))
            .collect();
        let pt = Plaintext::try_encode(&values, Encoding::simd(), &par).expect("encode");
        let ct: Ciphertext = sk.try_encrypt(&pt, &mut rng).expect("encrypt");
        let dec = keys.decompose(&ct).expect("decompose");
        assert!(
            keys.rotate(&ct, &dec, 2).is_err(),
            "no key for a rotation by 2"
        );
        let slots = |c: &Ciphertext| {
            Vec::<u64>::try_decode(&sk.try_decrypt(c).expect("decrypt"), Encoding::simd())
                .expect("decode")
        };
        for s in steps {
            let ours = keys.rotate(&ct, &dec, s).expect("rotate");
            let theirs = ek.rotates_columns_by(&ct, s).expect("fhe rotate");
            assert_eq!(slots(&ours), slots(&theirs), "rotation by {s}");
            let half = 4096;
            assert_eq!(
                slots(&ours)[0],
                values[s % half],
                "slot 0 after a rotation by {s}"
            );
        }
    }
}
