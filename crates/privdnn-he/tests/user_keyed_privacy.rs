//! Evidence that a user-keyed reply hides the weights beyond its decrypted values: the user (who
//! holds the secret key) measures the noise `c0 + c1·s − round(q·m/t)` of replies computed by two
//! owners with very different weights on the same request. After sanitisation (re-randomisation
//! and the switch to the last prime) the two noise samples are indistinguishable by a two-sample
//! Kolmogorov–Smirnov test and c1 is uniform; without it (`Stage::Raw`) the same test tells the
//! weight sets apart at once — so the test can fail.

mod common;

use fhe::bfv::{BfvParameters, Ciphertext, Encoding, SecretKey};
use fhe_math::rq::traits::TryConvertFrom;
use fhe_math::rq::{Poly, Representation};
use fhe_traits::{DeserializeParametrized, FheDecoder, FheDecrypter, Serialize};
use num_bigint::BigUint;
use privdnn_he::block::{BlockShape, FloatBlock, IntBlock};
use privdnn_he::engine::Layout;
use privdnn_he::user_keyed::{KeyedOwner, KeyedUser, Stage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

use common::params;

/// Weights and biases all uniform in ±0.4.
fn float_block(shape: &BlockShape, seed: u64) -> FloatBlock {
    common::float_block_scaled(shape, seed, [0.4; 4])
}

/// The secret coefficients from fhe's serialisation (protobuf: field 1, packed zigzag varints).
fn secret_coefficients(sk: &SecretKey) -> Vec<i64> {
    let bytes = sk.to_bytes();
    assert_eq!(bytes[0], 0x0A, "field 1, length-delimited");
    let mut pos = 1;
    let varint = |pos: &mut usize| {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let b = bytes[*pos];
            *pos += 1;
            v |= ((b & 0x7F) as u64) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                return v;
            }
        }
    };
    let len = varint(&mut pos) as usize;
    let end = pos + len;
    let mut out = Vec::new();
    while pos < end {
        let z = varint(&mut pos);
        out.push((z >> 1) as i64 ^ -((z & 1) as i64));
    }
    out
}

/// Noise coefficients (centred, as f64) of a ciphertext the user can decrypt.
fn noise(ct: &Ciphertext, sk: &SecretKey, s: &[i64], par: &Arc<BfvParameters>) -> Vec<f64> {
    let ctx = ct[0].ctx();
    let mut sp = Poly::try_convert_from(s, ctx, false, Representation::PowerBasis).expect("s");
    sp.change_representation(Representation::Ntt);
    let mut x = &ct[1] * &sp;
    x += &ct[0];
    x.change_representation(Representation::PowerBasis);
    let m = Vec::<u64>::try_decode(&sk.try_decrypt(ct).expect("decrypt"), Encoding::poly())
        .expect("decode");
    let q: BigUint = ctx.modulus().clone();
    let t = BigUint::from(par.plaintext());
    let half = &q >> 1;
    Vec::<BigUint>::from(&x)
        .into_iter()
        .zip(m)
        .map(|(xi, mi)| {
            let target = (BigUint::from(mi) * &q + (&t >> 1)) / &t;
            let d = (xi + &q - target % &q) % &q;
            if d > half {
                -f64::from_str_radix_big(&(&q - d))
            } else {
                f64::from_str_radix_big(&d)
            }
        })
        .collect()
}

trait Big {
    fn from_str_radix_big(v: &BigUint) -> f64;
}

impl Big for f64 {
    fn from_str_radix_big(v: &BigUint) -> f64 {
        v.to_u64_digits()
            .iter()
            .rev()
            .fold(0.0, |acc, &d| acc * 18446744073709551616.0 + d as f64)
    }
}

/// Two-sample Kolmogorov–Smirnov statistic.
fn ks(a: &mut [f64], b: &mut [f64]) -> f64 {
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (mut i, mut j, mut d) = (0, 0, 0f64);
    while i < a.len() && j < b.len() {
        if a[i] <= b[j] {
            i += 1;
        } else {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

/// χ² statistic of c1's top 4 bits (16 buckets) against uniform.
fn c1_chi2(ct: &Ciphertext) -> f64 {
    let mut c1 = ct[1].clone();
    c1.change_representation(Representation::PowerBasis);
    let q = ct[1].ctx().moduli()[0] as f64;
    let mut counts = [0f64; 16];
    for &c in c1.coefficients().row(0).iter() {
        counts[((c as f64 / q) * 16.0) as usize % 16] += 1.0;
    }
    let e = c1.coefficients().ncols() as f64 / 16.0;
    counts.iter().map(|&o| (o - e) * (o - e) / e).sum()
}

#[test]
fn sanitised_replies_hide_the_weights_and_raw_ones_do_not() {
    let params = params();
    let shape = BlockShape::new(1, 10, 10, 3, 0, 2, 2, 2, 0, 2).expect("shape");
    // Two weight sets: small 3-bit weights and 8-bit weights of another model.
    let w_small = IntBlock::quantize(&float_block(&shape, 1), 3, 3).expect("w");
    let w_large = IntBlock::quantize(&float_block(&shape, 2), 8, 8).expect("w'");
    let sel: (&[usize], &[usize]) = (&[1], &[0]);
    let owners = [
        KeyedOwner::new(w_small.clone(), sel, &params, false).expect("owner W"),
        KeyedOwner::new(w_large, sel, &params, false).expect("owner W'"),
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let user = KeyedUser::new(owners[0].model(), Layout::Batch, &mut rng).expect("user");
    let x: Vec<Vec<i64>> = (0..64)
        .map(|_| {
            let raw: Vec<u8> = (0..shape.input_len()).map(|_| rng.random()).collect();
            w_small.center(&raw)
        })
        .collect();
    let (request, _) = user.request(&x, &mut rng).expect("request");
    let (sk, par) = user.secret_key(0).expect("residue 0");
    let s = secret_coefficients(sk);
    assert_eq!(s.len(), 8192);
    // Noise of the first two outputs of residue 0, per owner and stage.
    let sample = |owner: &KeyedOwner, stage: Stage, rng: &mut ChaCha8Rng| {
        let cts = owner.evaluate(&request, rng, stage).expect("evaluate");
        let mine: Vec<Ciphertext> = cts[0][..2]
            .iter()
            .map(|c| Ciphertext::from_bytes(&c.to_bytes(), par).expect("reparse"))
            .collect();
        let v: Vec<f64> = mine.iter().flat_map(|c| noise(c, sk, &s, par)).collect();
        (v, mine)
    };
    let n = 2.0f64 * 8192.0;
    // Critical value of the two-sample KS test at α = 10⁻¹²: far below the usual levels because
    // the coefficients of one ciphertext are weakly correlated (they share s), which inflates D.
    let critical = (-(0.5e-12f64).ln() / 2.0).sqrt() * (2.0 / n).sqrt();
    let (mut a, cts_a) = sample(&owners[0], Stage::Sanitised, &mut rng);
    let (mut b, cts_b) = sample(&owners[1], Stage::Sanitised, &mut rng);
    let sd = |v: &[f64]| (v.iter().map(|e| e * e).sum::<f64>() / v.len() as f64).sqrt();
    let (sd_a, sd_b) = (sd(&a), sd(&b));
    let d_on = ks(&mut a, &mut b);
    for ct in cts_a.iter().chain(&cts_b) {
        let chi2 = c1_chi2(ct);
        assert!(
            chi2 < 49.0,
            "c1 not uniform: χ² = {chi2:.1} (15 dof, 10⁻⁶ critical 49)"
        );
    }
    let (mut a, _) = sample(&owners[0], Stage::Raw, &mut rng);
    let (mut b, _) = sample(&owners[1], Stage::Raw, &mut rng);
    let (raw_a, raw_b) = (sd(&a), sd(&b));
    let d_off = ks(&mut a, &mut b);
    eprintln!(
        "sanitised: KS D = {d_on:.4}, noise sd {sd_a:.1} vs {sd_b:.1}; raw: KS D = {d_off:.4}, \
         noise sd 2^{:.1} vs 2^{:.1}; critical {critical:.4}",
        raw_a.log2(),
        raw_b.log2()
    );
    assert!(
        d_on < critical,
        "sanitised replies differ: D = {d_on} ≥ {critical}"
    );
    assert!(
        d_off > critical,
        "raw replies should differ: D = {d_off} ≤ {critical}"
    );
}
