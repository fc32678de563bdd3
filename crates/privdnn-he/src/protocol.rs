//! The two roles and the typed byte messages between them.
//!
//! Owner: generates keys, quantises and encrypts the selected filters ([`owner_setup`]), answers
//! decryption requests ([`OwnerSession::answer`]). User: loads the encrypted block with the public
//! evaluation keys only ([`user_load`]), evaluates, blinds every ciphertext with an encryption of
//! a uniform mask under the public key (which also re-randomises it), switches it to the lowest
//! level that still decrypts ([`blind`]), and removes the masks from the owner's reply
//! ([`unblind`]). The secret key exists only inside [`OwnerSecret`] / [`OwnerSession`].

use std::sync::Arc;

use fhe::bfv::{
    BfvParameters, Ciphertext, Encoding, EvaluationKey, EvaluationKeyBuilder, Plaintext, PublicKey,
    RelinearizationKey, SecretKey,
};
use fhe_traits::{
    DeserializeParametrized, FheDecoder, FheDecrypter, FheEncoder, FheEncrypter,
    Serialize as FheSerialize,
};
use rand::{CryptoRng, Rng, RngCore};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::block::IntBlock;
use crate::compact::{CompactCiphertext, PackedSlots, compress, decompress, slot_width};
use crate::engine::weights::{Selection, Sizes, plan_residency, planned_bytes};
use crate::engine::{
    BlockOutput, BlockWeights, DEFAULT_MEMORY_BUDGET, Layout, PackedWeights, Residency, SlotPlan,
    UserBlock,
};
use crate::ops::OpCounter;
use crate::packing::{chunk_size, expand_weights, pack_weights};
use crate::params::HeParams;
use crate::rotation::RotationKeys;
use crate::{HeError, Result};

/// The owner's secret: per CRT residue, the parameters and the BFV secret key. Never sent. The
/// key bytes are zeroised when it is dropped (every clone too).
#[derive(Clone, Serialize, Deserialize)]
pub struct OwnerSecret {
    /// Parameter sets (one per CRT residue).
    pub params: Vec<HeParams>,
    /// Serialised secret keys, one per set.
    pub secret_keys: Vec<serde_bytes::ByteBuf>,
}

impl Drop for OwnerSecret {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for key in &mut self.secret_keys {
            let bytes: &mut Vec<u8> = key;
            bytes.zeroize();
        }
    }
}

/// Public keys of one residue: encryption (for masks), relinearisation, expansion.
#[derive(Clone, Serialize, Deserialize)]
pub struct KeySet {
    /// Serialised public key.
    #[serde(with = "serde_bytes")]
    pub public_key: Vec<u8>,
    /// Serialised relinearisation key.
    #[serde(with = "serde_bytes")]
    pub relin_key: Vec<u8>,
    /// Serialised Galois keys of the oblivious expansion.
    #[serde(with = "serde_bytes")]
    pub expansion_key: Vec<u8>,
    /// Serialised Galois keys of the rotated spatial layout (conv2's tap shifts), when the block
    /// supports that layout.
    pub rotation_key: Option<serde_bytes::ByteBuf>,
}

/// Public evaluation keys the user receives (one [`KeySet`] per residue).
#[derive(Clone, Serialize, Deserialize)]
pub struct PublicKeys {
    /// Parameter sets.
    pub params: Vec<HeParams>,
    /// Key sets.
    pub sets: Vec<KeySet>,
}

impl PublicKeys {
    /// Total serialised size.
    pub fn bytes(&self) -> usize {
        self.sets
            .iter()
            .map(|k| {
                k.public_key.len()
                    + k.relin_key.len()
                    + k.expansion_key.len()
                    + k.rotation_key.as_ref().map_or(0, |r| r.len())
            })
            .sum()
    }
}

/// The encrypted block as shipped to the user.
#[derive(Clone, Serialize, Deserialize)]
pub struct EncryptedBlock {
    /// Parameter sets (one per CRT residue).
    pub params: Vec<HeParams>,
    /// The plaintext remainder of the quantised block (selected weights zeroed).
    pub plain: IntBlock,
    /// Selected layer-1 channels.
    pub s1: Vec<usize>,
    /// Selected layer-2 filters.
    pub s2: Vec<usize>,
    /// Weights per packed ciphertext.
    pub chunk: usize,
    /// Per residue, the packed weights: selected channels' conv1 weights and bias, then selected
    /// filters' conv2 weights and bias, in that order.
    pub packed: Vec<Vec<serde_bytes::ByteBuf>>,
}

impl EncryptedBlock {
    /// Serialised ciphertext bytes.
    pub fn bytes(&self) -> usize {
        self.packed.iter().flatten().map(|b| b.len()).sum()
    }

    /// Number of packed scalar weights.
    pub fn weight_count(&self) -> usize {
        let s = &self.plain.shape;
        self.s1.len() * (s.w1_len() + 1) + self.s2.len() * (s.w2_len() + 1)
    }
}

/// The selected weights in packing order.
fn selected_weights(block: &IntBlock, s1: &[usize], s2: &[usize]) -> Vec<i64> {
    let s = &block.shape;
    let mut out = Vec::new();
    for &c in s1 {
        out.extend_from_slice(&block.w1[c * s.w1_len()..(c + 1) * s.w1_len()]);
        out.push(block.b1[c]);
    }
    for &j in s2 {
        out.extend_from_slice(&block.w2[j * s.w2_len()..(j + 1) * s.w2_len()]);
        out.push(block.b2[j]);
    }
    out
}

/// The block with every selected weight zeroed: what the user may see in clear.
pub(crate) fn remainder(block: &IntBlock, s1: &[usize], s2: &[usize]) -> IntBlock {
    let s = &block.shape;
    let mut plain = block.clone();
    for &c in s1 {
        plain.w1[c * s.w1_len()..(c + 1) * s.w1_len()].fill(0);
        plain.b1[c] = 0;
    }
    for &j in s2 {
        plain.w2[j * s.w2_len()..(j + 1) * s.w2_len()].fill(0);
        plain.b2[j] = 0;
    }
    plain
}

/// Owner: keys and the encrypted block for every CRT residue. `max_chunk` bounds the weights
/// per packed ciphertext (smaller chunks expand in parallel, larger ones make the model smaller).
pub fn owner_setup<R: RngCore + CryptoRng>(
    params: &[HeParams],
    block: &IntBlock,
    (s1, s2): (&[usize], &[usize]),
    max_chunk: usize,
    layer1: bool,
    rng: &mut R,
) -> Result<(OwnerSecret, PublicKeys, EncryptedBlock)> {
    let s = &block.shape;
    if s1.iter().any(|&c| c >= s.c1) || s2.iter().any(|&j| j >= s.c2) {
        return Err(HeError::shape(format!(
            "selection {s1:?}/{s2:?} outside {}/{} filters",
            s.c1, s.c2
        )));
    }
    if params.is_empty() {
        return Err(HeError::Parameters("no parameter set".into()));
    }
    block.check_no_wrap(HeParams::crt_modulus(params), s2, layer1)?;
    let weights = selected_weights(block, s1, s2);
    let chunk = chunk_size(weights.len(), max_chunk, params[0].degree);
    let chain = crate::noise_margin::ChainShape {
        layer1_terms: s.w1_len(),
        conv2_terms: crate::engine::max_terms(s, s1.len()),
    };
    let (mut secret_keys, mut sets, mut packed) = (Vec::new(), Vec::new(), Vec::new());
    for hp in params {
        let par = hp.build()?;
        let sk = SecretKey::random(&par, rng);
        let pk = PublicKey::new(&sk, rng);
        let rk = RelinearizationKey::new(&sk, rng)?;
        let mut builder = EvaluationKeyBuilder::new(&sk)?;
        builder.enable_expansion(chunk.ilog2() as usize)?;
        let ek = builder.build(rng)?;
        let keys = crate::noise_margin::OwnerKeys {
            sk: &sk,
            rk: &rk,
            ek: &ek,
        };
        crate::noise_margin::check(&par, &keys, chunk, chain)?;
        let steps = crate::engine::rotation_steps(block, hp.degree);
        let rotation_key = if steps.is_empty() {
            None
        } else {
            let mut rot = EvaluationKeyBuilder::new(&sk)?;
            for &k in &steps {
                rot.enable_column_rotation(k)?;
            }
            Some(serde_bytes::ByteBuf::from(rot.build(rng)?.to_bytes()))
        };
        packed.push(
            pack_weights(&weights, chunk, &par, &sk, rng)?
                .iter()
                .map(|ct| serde_bytes::ByteBuf::from(ct.to_bytes()))
                .collect(),
        );
        secret_keys.push(serde_bytes::ByteBuf::from(sk.to_bytes()));
        sets.push(KeySet {
            public_key: pk.to_bytes(),
            relin_key: rk.to_bytes(),
            expansion_key: ek.to_bytes(),
            rotation_key,
        });
    }
    Ok((
        OwnerSecret {
            params: params.to_vec(),
            secret_keys,
        },
        PublicKeys {
            params: params.to_vec(),
            sets,
        },
        EncryptedBlock {
            params: params.to_vec(),
            plain: remainder(block, s1, s2),
            s1: s1.to_vec(),
            s2: s2.to_vec(),
            chunk,
            packed,
        },
    ))
}

fn decode_err(what: &'static str) -> impl Fn(fhe::Error) -> HeError {
    move |e| HeError::Decode {
        what,
        detail: e.to_string(),
    }
}

/// One residue of the user's live state.
pub struct UserResidue {
    /// Parameters (one shared instance: fhe requires pointer-equal parameters).
    pub par: Arc<BfvParameters>,
    /// Parameter set.
    pub params: HeParams,
    /// The evaluation block.
    pub block: UserBlock,
    public_key: PublicKey,
    /// Level results are switched to before they are sent.
    pub out_level: usize,
}

/// The user's live state: one [`UserResidue`] per CRT plaintext modulus.
pub struct UserSession {
    /// Residues.
    pub residues: Vec<UserResidue>,
    /// The memory plan's estimate of the chosen residency (weights plus one call's working set,
    /// bytes); above the budget when even packed weights do not fit it.
    pub planned_bytes: u64,
    /// Serialised bytes of the encrypted weights as shipped (all residues).
    pub shipped_bytes: usize,
}

impl UserSession {
    /// The plaintext remainder of the block.
    pub fn plain(&self) -> &IntBlock {
        &self.residues[0].block.block
    }

    /// Parameter sets.
    pub fn params(&self) -> Vec<HeParams> {
        self.residues.iter().map(|r| r.params.clone()).collect()
    }
}

/// User: loads the encrypted block with the public keys and expands the packed weights, within
/// [`DEFAULT_MEMORY_BUDGET`] for either layout ([`user_load_within`]).
pub fn user_load(
    enc: &EncryptedBlock,
    keys: &PublicKeys,
    headroom_bits: f64,
    ops: &OpCounter,
) -> Result<UserSession> {
    user_load_within(enc, keys, headroom_bits, (DEFAULT_MEMORY_BUDGET, None), ops)
}

/// User: loads the encrypted block with the public keys, keeping its weights in the fastest
/// [`Residency`] whose estimated bytes, with the working set of `layout` (either when None), fit
/// `budget` bytes ([`crate::engine::weights::plan_residency`]); expands them now unless packed.
pub fn user_load_within(
    enc: &EncryptedBlock,
    keys: &PublicKeys,
    headroom_bits: f64,
    budget: (u64, Option<Layout>),
    ops: &OpCounter,
) -> Result<UserSession> {
    let bytes: Vec<Vec<&[u8]>> = enc
        .packed
        .iter()
        .map(|r| r.iter().map(|b| b.as_slice()).collect())
        .collect();
    load_session(enc, bytes, keys, headroom_bits, budget, ops)
}

/// [`user_load_within`], moving the ciphertext bytes out of `enc` (left without them): each is
/// freed as soon as it is decoded, so a model of fresh weights (one ciphertext per weight, 309 MB
/// for CIFAR-10 quick) is never held as bytes and ciphertexts at once.
pub fn user_load_taking(
    enc: &mut EncryptedBlock,
    keys: &PublicKeys,
    headroom_bits: f64,
    budget: (u64, Option<Layout>),
    ops: &OpCounter,
) -> Result<UserSession> {
    let bytes = std::mem::take(&mut enc.packed);
    load_session(enc, bytes, keys, headroom_bits, budget, ops)
}

/// [`user_load_within`] with the ciphertext bytes of every residue given apart from `enc`.
fn load_session<B: AsRef<[u8]>>(
    enc: &EncryptedBlock,
    packed: Vec<Vec<B>>,
    keys: &PublicKeys,
    headroom_bits: f64,
    (budget, layout): (u64, Option<Layout>),
    ops: &OpCounter,
) -> Result<UserSession> {
    if enc.params != keys.params
        || packed.len() != enc.params.len()
        || keys.sets.len() != keys.params.len()
    {
        return Err(HeError::Parameters(
            "encrypted model and keys come from different key generations".into(),
        ));
    }
    check_block(enc)?;
    let shipped_bytes = packed.iter().flatten().map(|b| b.as_ref().len()).sum();
    let s = &enc.plain.shape;
    let (residency, planned_bytes) = match enc.params.first() {
        Some(hp) => {
            let par = hp.build()?;
            let terms = crate::engine::max_terms(s, enc.s1.len());
            let sizes = Sizes::new(&par, crate::lazy::extended_moduli(&par, terms));
            let sel = Selection {
                shape: s,
                s1: enc.s1.len(),
                s2: enc.s2.len(),
                chunk: enc.chunk,
            };
            let residues = enc.params.len() as u64;
            let r = plan_residency(&sel, &sizes, residues, budget, layout);
            (r, planned_bytes(&sel, &sizes, residues, r, layout))
        }
        None => (Residency::Lifted, 0),
    };
    let residues = enc
        .params
        .iter()
        .zip(packed)
        .zip(&keys.sets)
        .map(|((hp, packed), ks)| {
            let par = hp.build()?;
            let public_key = PublicKey::from_bytes(&ks.public_key, &par).map_err(decode_err("public key"))?;
            let rk = RelinearizationKey::from_bytes(&ks.relin_key, &par).map_err(decode_err("relinearisation key"))?;
            let ek = EvaluationKey::from_bytes(&ks.expansion_key, &par).map_err(decode_err("expansion key"))?;
            // each buffer is dropped once decoded (owned bytes: freed at once)
            let packed: Vec<Ciphertext> = packed
                .into_iter()
                .map(|b| Ciphertext::from_bytes(b.as_ref(), &par).map_err(decode_err("packed weights")))
                .collect::<Result<_>>()?;
            let weights = if residency == Residency::Packed {
                BlockWeights::Packed(PackedWeights { packed, ek, chunk: enc.chunk, count: enc.weight_count() })
            } else {
                let mut all = expand_weights(packed, enc.weight_count(), enc.chunk, &ek, ops)?.into_iter();
                let w1 = enc.s1.iter().map(|_| all.by_ref().take(s.w1_len() + 1).collect()).collect();
                let w2 = enc.s2.iter().map(|_| all.by_ref().take(s.w2_len() + 1).collect()).collect();
                BlockWeights::Expanded { w1, w2, residency }
            };
            let rotations = ks
                .rotation_key
                .as_ref()
                .map(|b| RotationKeys::from_bytes(b, &par))
                .transpose()?;
            let block = UserBlock::new(
                par.clone(),
                enc.plain.clone(),
                (enc.s1.clone(), enc.s2.clone()),
                weights,
                rk,
                rotations,
            )?;
            let out_level = crate::engine::output_level(&par, headroom_bits);
            if out_level != par.max_level() {
                return Err(HeError::Parameters(format!(
                    "the first ciphertext prime ({:.0} bits) is too small to hold t with {headroom_bits} \
                     bits of headroom, so results cannot be sent at the last level: raise \
                     he.moduli_bits[0] or lower he.plaintext_bits",
                    (par.moduli()[0] as f64).log2()
                )));
            }
            Ok(UserResidue { par, params: hp.clone(), block, public_key, out_level })
        })
        .collect::<Result<_>>()?;
    Ok(UserSession {
        residues,
        planned_bytes,
        shipped_bytes,
    })
}

/// Checks a downloaded encrypted block for meaning before anything is expanded or indexed:
/// every selected filter exists and is listed once, the packing chunk is a power of two no
/// larger than the ring degree, and every residue shares one ring degree.
fn check_block(enc: &EncryptedBlock) -> Result<()> {
    let s = &enc.plain.shape;
    for (layer, list, c) in [(1, &enc.s1, s.c1), (2, &enc.s2, s.c2)] {
        let mut seen = vec![false; c];
        for &f in list {
            match seen.get_mut(f) {
                Some(x) if !*x => *x = true,
                Some(_) => {
                    return Err(HeError::shape(format!(
                        "the encrypted model selects layer-{layer} filter {f} twice"
                    )));
                }
                None => {
                    return Err(HeError::shape(format!(
                        "the encrypted model selects layer-{layer} filter {f}, but the block has {c}"
                    )));
                }
            }
        }
    }
    let degree = enc.params.first().map_or(0, |p| p.degree);
    if enc.params.iter().any(|p| p.degree != degree) {
        return Err(HeError::Parameters(
            "residues with different ring degrees".into(),
        ));
    }
    if !enc.chunk.is_power_of_two() || enc.chunk > degree {
        return Err(HeError::shape(format!(
            "packing chunk {} is not a power of two ≤ N = {degree}",
            enc.chunk
        )));
    }
    Ok(())
}

/// A decryption request (user → owner): per residue, blinded ciphertexts at the output level.
#[derive(Clone, Serialize, Deserialize)]
pub struct Request {
    /// Compact ciphertexts per residue.
    pub cts: Vec<Vec<CompactCiphertext>>,
}

impl Request {
    /// Serialised size.
    pub fn bytes(&self) -> usize {
        self.cts.iter().flatten().map(|c| c.len()).sum()
    }
}

/// The owner's reply: per residue, the blinded plaintext slots (mod t) of every ciphertext,
/// bit-packed at ⌈log2 t⌉ bits per slot.
#[derive(Clone, Serialize, Deserialize)]
pub struct Reply {
    /// Packed slot values, per residue and ciphertext.
    pub values: Vec<Vec<PackedSlots>>,
}

impl Reply {
    /// Size of the packed values.
    pub fn bytes(&self) -> usize {
        self.values.iter().flatten().map(|v| v.data.len()).sum()
    }

    /// The (still masked) slot values, checked against what the user asked for: one entry per
    /// parameter set, `count` ciphertexts in each, every one exactly N values of ⌈log2 t⌉ bits
    /// below t (the owner's packing), before anything is unpacked
    /// ([`crate::compact::unpack_checked`]).
    pub fn slots_checked(&self, params: &[HeParams], count: usize) -> Result<Vec<Vec<Vec<u64>>>> {
        crate::compact::unpack_checked(&self.values, params, count)
    }

    /// The (still masked) slot values, per residue and ciphertext, as announced by the reply
    /// (at most `compact::MAX_SLOTS` each); receivers that know the parameters use
    /// [`Reply::slots_checked`].
    pub fn slots(&self) -> Result<Vec<Vec<Vec<u64>>>> {
        self.values
            .iter()
            .map(|per| {
                per.iter()
                    .map(|p| {
                        p.unpack().ok_or_else(|| HeError::Decode {
                            what: "reply",
                            detail: "truncated slots".into(),
                        })
                    })
                    .collect()
            })
            .collect()
    }
}

/// Serialises a message (request or reply) to the bytes that cross the wire
/// (`privdnn_artifacts::codec`, the project's one bincode configuration).
pub fn to_wire<T: Serialize>(msg: &T) -> Result<Vec<u8>> {
    privdnn_artifacts::codec::encode(msg).map_err(|e| HeError::Decode {
        what: "message",
        detail: e.to_string(),
    })
}

/// Parses a message received from the other role, exactly once: the decoder's allocations are
/// bounded by the message's own length and trailing bytes are an error
/// (`privdnn_artifacts::codec::decode`), so a hostile length prefix is a decode error, never an
/// allocation that aborts the process.
pub fn from_wire<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T> {
    privdnn_artifacts::codec::decode(bytes, what).map_err(|e| HeError::Decode {
        what,
        detail: e.to_string(),
    })
}

/// The user's masks, kept to unblind the reply: per residue and ciphertext the 32-byte seed its
/// mask (and the randomness of the mask's encryption) is drawn from ([`mask_from`]), so that a
/// request of thousands of ciphertexts keeps kilobytes, not N slots each.
pub struct Masks(Vec<Vec<[u8; 32]>>);

/// User: adds Enc_pk(r) (r uniform mod t per slot) to each output of each residue, switches it to
/// the output level and serialises it. `outputs[i]` is the evaluation under residue `i`.
pub fn blind<R: RngCore + CryptoRng>(
    session: &UserSession,
    outputs: Vec<BlockOutput>,
    rng: &mut R,
    ops: &OpCounter,
) -> Result<(Request, Masks)> {
    if outputs.len() != session.residues.len() {
        return Err(HeError::shape("one evaluation per residue is needed"));
    }
    let (mut cts, mut masks) = (Vec::new(), Vec::new());
    for (res, output) in session.residues.iter().zip(outputs) {
        let outs: Vec<Ciphertext> = output.z.into_iter().chain(output.a1).collect();
        let seeds = draw_seeds(outs.len(), rng);
        let c = outs
            .into_par_iter()
            .zip(seeds.par_iter())
            .map(|(ct, seed)| blind_one(res, ct, *seed, ops))
            .collect::<Result<Vec<_>>>()?;
        cts.push(c);
        masks.push(seeds);
    }
    Ok((Request { cts }, Masks(masks)))
}

/// User: evaluates the block under every residue and blinds each output ([`blind`]) as soon as
/// it exists, so that only its small level-switched form is kept: the memory-bounded form of
/// `evaluate` per residue followed by [`blind`], with the same result.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_blinded<R: RngCore + CryptoRng>(
    session: &UserSession,
    plan: &SlotPlan,
    x: &[Vec<i64>],
    plain_a: &[Vec<Vec<i64>>],
    want_layer1: bool,
    rng: &mut R,
    ops: &OpCounter,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(Request, Masks)> {
    let (mut cts, mut masks) = (Vec::new(), Vec::new());
    for res in &session.residues {
        let b = &res.block;
        let count = plan.groups() * (b.s2.len() + if want_layer1 { b.s1.len() } else { 0 });
        let seeds = draw_seeds(count, rng);
        let c = b.evaluate_into(plan, x, plain_a, want_layer1, ops, progress, &|k, ct| {
            let seed = seeds
                .get(k)
                .ok_or_else(|| HeError::shape("more outputs than the plan announces"))?;
            blind_one(res, ct, *seed, ops)
        })?;
        if c.len() != count {
            return Err(HeError::shape("fewer outputs than the plan announces"));
        }
        cts.push(c);
        masks.push(seeds);
        // The residue's squares and lifted weights are gone: hand their pages back before the
        // next residue allocates its own (bounded user memory, issue 19).
        privdnn_artifacts::release_free_heap();
    }
    Ok((Request { cts }, Masks(masks)))
}

/// One 32-byte seed per output.
fn draw_seeds<R: RngCore + CryptoRng>(count: usize, rng: &mut R) -> Vec<[u8; 32]> {
    (0..count)
        .map(|_| {
            let mut seed = [0u8; 32];
            rng.fill_bytes(&mut seed);
            seed
        })
        .collect()
}

/// The mask of one output (uniform mod `t` per slot, `n` slots) drawn from its seed, and the
/// generator, which then supplies the randomness of the mask's encryption.
fn mask_from(seed: [u8; 32], t: u64, n: usize) -> (Vec<u64>, rand_chacha::ChaCha20Rng) {
    let mut local = <rand_chacha::ChaCha20Rng as rand::SeedableRng>::from_seed(seed);
    let mask = (0..n).map(|_| local.random_range(0..t)).collect();
    (mask, local)
}

/// One output blinded: `ct + Enc_pk(mask)` (mask and randomness from `seed`), switched to the
/// output level and compacted.
fn blind_one(
    res: &UserResidue,
    mut ct: Ciphertext,
    seed: [u8; 32],
    ops: &OpCounter,
) -> Result<CompactCiphertext> {
    let (mask, mut local) = mask_from(seed, res.params.plaintext, res.params.degree);
    let pt = Plaintext::try_encode(&mask, Encoding::simd(), &res.par)?;
    let enc_mask: Ciphertext = res.public_key.try_encrypt(&pt, &mut local)?;
    ct += &enc_mask;
    OpCounter::add(&ops.ct_add, 1);
    OpCounter::add(&ops.encodes, 1);
    OpCounter::add(&ops.mod_switches, res.out_level as u64);
    ct.switch_to_level(res.out_level)?;
    compress(&ct, &res.par)
}

/// User: removes the masks and recombines the residues: one signed vector per ciphertext.
/// The reply is checked against the request's shape first ([`Reply::slots_checked`]).
pub fn unblind(reply: &Reply, masks: &Masks, params: &[HeParams]) -> Result<Vec<Vec<i64>>> {
    let count = masks.0.first().map_or(0, Vec::len);
    let masks_ok = !masks.0.is_empty()
        && masks.0.len() == params.len()
        && params.iter().all(|hp| hp.degree == params[0].degree)
        && masks.0.iter().all(|m| m.len() == count);
    if !masks_ok {
        return Err(HeError::shape("the masks do not match the parameter sets"));
    }
    let values = reply.slots_checked(params, count)?;
    let out = (0..count)
        .into_par_iter()
        .map(|k| {
            let unmasked: Vec<Vec<i64>> = params
                .iter()
                .enumerate()
                .map(|(i, hp)| {
                    let t = hp.plaintext;
                    let (mask, _) = mask_from(masks.0[i][k], t, hp.degree);
                    values[i][k]
                        .iter()
                        .zip(mask)
                        .map(|(&v, r)| hp.decode_signed((v + t - r) % t))
                        .collect()
                })
                .collect();
            (0..params[0].degree)
                .map(|slot| {
                    let residues: Vec<i64> = unmasked.iter().map(|u| u[slot]).collect();
                    HeParams::crt_combine(params, &residues) as i64
                })
                .collect()
        })
        .collect();
    Ok(out)
}

/// The owner's live state for answering requests.
pub struct OwnerSession {
    keys: Vec<(Arc<BfvParameters>, SecretKey)>,
}

impl OwnerSession {
    /// Opens the owner's secret.
    pub fn new(secret: &OwnerSecret) -> Result<Self> {
        let keys = secret
            .params
            .iter()
            .zip(&secret.secret_keys)
            .map(|(hp, bytes)| {
                let par = hp.build()?;
                let sk = SecretKey::from_bytes(bytes, &par).map_err(decode_err("secret key"))?;
                Ok((par, sk))
            })
            .collect::<Result<_>>()?;
        Ok(Self { keys })
    }

    /// Decrypts every ciphertext of a request (the values are still masked).
    pub fn answer(&self, request: &Request) -> Result<Reply> {
        if request.cts.len() != self.keys.len() {
            return Err(HeError::shape(
                "request does not match the owner's CRT residues",
            ));
        }
        let values = request
            .cts
            .iter()
            .zip(&self.keys)
            .map(|(cts, (par, sk))| {
                cts.par_iter()
                    .map(|b| {
                        let ct = decompress(b, par)?;
                        let pt = sk.try_decrypt(&ct)?;
                        let width = slot_width(par.plaintext());
                        Ok(PackedSlots::pack(
                            &Vec::<u64>::try_decode(&pt, Encoding::simd())?,
                            width,
                        ))
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<_>>()?;
        Ok(Reply { values })
    }
}
