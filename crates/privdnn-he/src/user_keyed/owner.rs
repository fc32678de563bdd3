//! The owner's side of the user-keyed mode. [`KeyedOwner`] holds the integer block, the
//! selection and the parameters — no secret key of any kind, so it has no decryption path: the
//! only keys it ever parses are the user's public, relinearisation and rotation keys.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use fhe::bfv::{
    BfvParameters, Ciphertext, Encoding, EvaluationKey, Plaintext, PublicKey, RelinearizationKey,
};
use fhe_traits::{DeserializeParametrized, FheEncoder, FheEncrypter};
use rand::{CryptoRng, Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;

use super::arith::weighted_sum;
use super::noise::{self, NoiseBound};
use super::plan::KeyedPlan;
use super::{KeyedModel, ResidueRequest, UserKeyedReply, UserKeyedRequest};
use crate::block::IntBlock;
use crate::compact::compress;
use crate::lazy::LazyMultiplier;
use crate::params::HeParams;
use crate::protocol::remainder;
use crate::{HeError, Result};

/// How far [`KeyedOwner::evaluate`] takes its outputs (tests of the sanitisation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Raw evaluation at the full level: weight-dependent noise. Never send these.
    Raw,
    /// Re-randomised (`+ Enc_pk(r)`) and switched to the last prime, not compacted.
    Sanitised,
}

struct Residue {
    par: Arc<BfvParameters>,
    lazy: LazyMultiplier,
}

/// The owner: plaintext weights, selection, parameters. Holds no secret key.
pub struct KeyedOwner {
    block: IntBlock,
    s1: Vec<usize>,
    s2: Vec<usize>,
    layer1: bool,
    params: Vec<HeParams>,
    residues: Vec<Residue>,
    bounds: Vec<NoiseBound>,
}

/// The user's keys of one residue, parsed.
struct Keys {
    pk: PublicKey,
    rk: RelinearizationKey,
    rot: Option<EvaluationKey>,
}

fn decode_err(what: &'static str) -> impl Fn(fhe::Error) -> HeError {
    move |e| HeError::Decode {
        what,
        detail: e.to_string(),
    }
}

impl KeyedOwner {
    /// Checks the selection, the no-wrap bound of the CRT plaintext space and the circuit-privacy
    /// bound of [`noise`] for every residue; refuses (error) when any fails.
    pub fn new(
        block: IntBlock,
        (s1, s2): (&[usize], &[usize]),
        params: &[HeParams],
        layer1: bool,
    ) -> Result<Self> {
        let s = &block.shape;
        if s1.iter().any(|&c| c >= s.c1) || s2.iter().any(|&j| j >= s.c2) || s2.is_empty() {
            return Err(HeError::shape(format!(
                "selection {s1:?}/{s2:?} outside {}/{} filters (or no layer-2 filter)",
                s.c1, s.c2
            )));
        }
        if params.is_empty() {
            return Err(HeError::Parameters("no parameter set".into()));
        }
        block.check_no_wrap(HeParams::crt_modulus(params), s2, layer1)?;
        let mut residues = Vec::with_capacity(params.len());
        let mut bounds = Vec::with_capacity(params.len());
        for hp in params {
            let par = hp.build()?;
            if crate::engine::output_level(&par, 20.0) != par.max_level() {
                return Err(HeError::Parameters(
                    "the first ciphertext prime is too small to hold t with 20 bits of headroom"
                        .into(),
                ));
            }
            bounds.push(noise::check(hp, &block, (s1, s2), layer1)?);
            residues.push(Residue {
                lazy: LazyMultiplier::new(&par)?,
                par,
            });
        }
        Ok(Self {
            s1: s1.to_vec(),
            s2: s2.to_vec(),
            layer1,
            params: params.to_vec(),
            residues,
            bounds,
            block,
        })
    }

    /// What the user receives: parameters, the plaintext remainder, the selection.
    pub fn model(&self) -> KeyedModel {
        KeyedModel {
            params: self.params.clone(),
            plain: remainder(&self.block, &self.s1, &self.s2),
            s1: self.s1.clone(),
            s2: self.s2.clone(),
            layer1: self.layer1,
        }
    }

    /// The circuit-privacy bound per residue (checked in [`KeyedOwner::new`]).
    pub fn noise_bounds(&self) -> &[NoiseBound] {
        &self.bounds
    }

    /// Validates and answers a request. Errors (never panics) on malformed requests.
    pub fn answer<R: RngCore + CryptoRng>(
        &self,
        request: &UserKeyedRequest,
        rng: &mut R,
    ) -> Result<UserKeyedReply> {
        let residues = self
            .evaluate(request, rng, Stage::Sanitised)?
            .into_iter()
            .zip(&self.residues)
            .map(|(cts, r)| cts.iter().map(|ct| compress(ct, &r.par)).collect())
            .collect::<Result<_>>()?;
        Ok(UserKeyedReply { residues })
    }

    /// Evaluates a request up to `stage`; [`KeyedOwner::answer`] is `Stage::Sanitised` plus
    /// compaction. `Stage::Raw` exists for the tests that show what sanitisation removes.
    #[doc(hidden)]
    pub fn evaluate<R: RngCore + CryptoRng>(
        &self,
        request: &UserKeyedRequest,
        rng: &mut R,
        stage: Stage,
    ) -> Result<Vec<Vec<Ciphertext>>> {
        let plan = self.validate_shape(request)?;
        let mut out = Vec::with_capacity(self.residues.len());
        for (res, req) in self.residues.iter().zip(&request.residues) {
            let mut seed = [0u8; 32];
            rng.fill_bytes(&mut seed);
            let run = || self.residue(res, &plan, req, seed, stage);
            let cts = catch_unwind(AssertUnwindSafe(run)).map_err(|_| HeError::Decode {
                what: "user-keyed request",
                detail: "the evaluation panicked on this request's keys or ciphertexts".into(),
            })??;
            out.push(cts);
        }
        Ok(out)
    }

    fn validate_shape(&self, request: &UserKeyedRequest) -> Result<KeyedPlan> {
        if request.residues.len() != self.residues.len() {
            return Err(HeError::shape(format!(
                "request has {} residues, the model {}",
                request.residues.len(),
                self.residues.len()
            )));
        }
        let degree = self.params[0].degree;
        let plan = KeyedPlan::new(
            request.layout,
            &self.block.shape,
            &self.s1,
            degree,
            request.images as usize,
        )?;
        for (i, r) in request.residues.iter().enumerate() {
            if r.inputs.len() != plan.input_count() || r.a1.len() != plan.a1_count() {
                return Err(HeError::shape(format!(
                    "residue {i}: {} input and {} a1 ciphertexts, the plan needs {} and {}",
                    r.inputs.len(),
                    r.a1.len(),
                    plan.input_count(),
                    plan.a1_count()
                )));
            }
        }
        Ok(plan)
    }

    fn parse(&self, res: &Residue, req: &ResidueRequest, plan: &KeyedPlan) -> Result<Keys> {
        let par = &res.par;
        let pk =
            PublicKey::from_bytes(&req.keys.public_key, par).map_err(decode_err("public key"))?;
        let rk = RelinearizationKey::from_bytes(&req.keys.relin_key, par)
            .map_err(decode_err("relinearisation key"))?;
        let steps = KeyedPlan::rotation_steps(plan.layout, &self.block.shape, par.degree())?;
        let rot = match (&req.keys.rotation_key, steps.is_empty()) {
            (_, true) => None,
            (None, false) => return Err(HeError::shape("the spatial layout needs rotation keys")),
            (Some(b), false) => {
                let ek = EvaluationKey::from_bytes(b, par).map_err(decode_err("rotation key"))?;
                if let Some(k) = steps.iter().find(|&&k| !ek.supports_column_rotation_by(k)) {
                    return Err(HeError::shape(format!("rotation key lacks step {k}")));
                }
                Some(ek)
            }
        };
        Ok(Keys { pk, rk, rot })
    }

    fn residue(
        &self,
        res: &Residue,
        plan: &KeyedPlan,
        req: &ResidueRequest,
        seed: [u8; 32],
        stage: Stage,
    ) -> Result<Vec<Ciphertext>> {
        let par = &res.par;
        let keys = self.parse(res, req, plan)?;
        let parse_cts = |blobs: &[serde_bytes::ByteBuf]| -> Result<Vec<Ciphertext>> {
            blobs
                .par_iter()
                .map(|b| {
                    let ct = Ciphertext::from_bytes(b, par).map_err(decode_err("ciphertext"))?;
                    if ct.len() != 2 || ct[0].ctx().moduli().len() != par.moduli().len() {
                        return Err(HeError::shape(
                            "request ciphertexts must be fresh 2-part ciphertexts at level 0",
                        ));
                    }
                    Ok(ct)
                })
                .collect()
        };
        let inputs = parse_cts(&req.inputs)?;
        let a1 = parse_cts(&req.a1)?;
        let squares = self.squares(res, plan, &inputs, &keys)?;
        drop(inputs);
        let outputs: Vec<(usize, usize)> = (0..self.s2.len())
            .flat_map(|jj| (0..plan.outputs()).map(move |o| (jj, o)))
            .collect();
        let mut jobs: Vec<(Ciphertext, Option<Vec<bool>>)> = outputs
            .par_iter()
            .map(|&(jj, o)| {
                Ok((
                    self.conv2(par, plan, (jj, o), &squares, &a1, &keys)?,
                    plan.output_slots(o),
                ))
            })
            .collect::<Result<_>>()?;
        if self.layer1 {
            for per in squares {
                for (m, a) in per.into_iter().enumerate() {
                    jobs.push((a, plan.layer1_slots(m)));
                }
            }
        }
        if stage == Stage::Raw {
            return Ok(jobs.into_iter().map(|(ct, _)| ct).collect());
        }
        let mut rng = ChaCha20Rng::from_seed(seed);
        let seeded: Vec<_> = jobs
            .into_iter()
            .map(|(ct, legit)| {
                let mut s = [0u8; 32];
                rng.fill_bytes(&mut s);
                (ct, legit, s)
            })
            .collect();
        seeded
            .into_par_iter()
            .map(|(ct, legit, s)| sanitise(ct, legit.as_deref(), &keys.pk, par, s))
            .collect()
    }

    /// `A[cc][m] = (B1 + Σ W1·X)²` for every selected channel and layer-1 map.
    fn squares(
        &self,
        res: &Residue,
        plan: &KeyedPlan,
        inputs: &[Ciphertext],
        keys: &Keys,
    ) -> Result<Vec<Vec<Ciphertext>>> {
        let s = &self.block.shape;
        let par = &res.par;
        let cells: Vec<(usize, usize)> = (0..self.s1.len())
            .flat_map(|cc| (0..plan.maps()).map(move |m| (cc, m)))
            .collect();
        let flat: Vec<Ciphertext> = cells
            .par_iter()
            .map(|&(cc, m)| {
                let c = self.s1[cc];
                let w = &self.block.w1[c * s.w1_len()..(c + 1) * s.w1_len()];
                let mut terms: Vec<(&Ciphertext, i64)> = plan
                    .conv1_sources(m)
                    .into_iter()
                    .map(|(kappa, idx)| (&inputs[idx], w[kappa]))
                    .collect();
                if terms.is_empty() {
                    terms.push((&inputs[0], 0));
                }
                let mut u = weighted_sum(&terms, par)?;
                u += &constant(self.block.b1[c], plan.layer1_slots(m).as_deref(), par)?;
                let lu = res.lazy.lift(&u)?;
                res.lazy.dot(&[(&lu, &lu)], &keys.rk)
            })
            .collect::<Result<_>>()?;
        let mut it = flat.into_iter();
        Ok((0..self.s1.len())
            .map(|_| it.by_ref().take(plan.maps()).collect())
            .collect())
    }

    /// `Z = B2_j + Σ_τ rot_τ(Σ_c W2[j,c,τ]·A_c)` for selected filter `jj` and output `o`.
    fn conv2(
        &self,
        par: &Arc<BfvParameters>,
        plan: &KeyedPlan,
        (jj, o): (usize, usize),
        squares: &[Vec<Ciphertext>],
        a1: &[Ciphertext],
        keys: &Keys,
    ) -> Result<Ciphertext> {
        let s = &self.block.shape;
        let taps = s.k2 * s.k2;
        let j = self.s2[jj];
        let w = &self.block.w2[j * s.w2_len()..(j + 1) * s.w2_len()];
        let mut by_rotation: Vec<(usize, Vec<(&Ciphertext, i64)>)> = Vec::new();
        for (tau, m, steps) in plan.conv2_terms(o) {
            let pos = match by_rotation.iter().position(|(k, _)| *k == steps) {
                Some(p) => p,
                None => {
                    by_rotation.push((steps, Vec::new()));
                    by_rotation.len() - 1
                }
            };
            let terms = &mut by_rotation[pos].1;
            for (cc, &c) in self.s1.iter().enumerate() {
                terms.push((&squares[cc][m], w[c * taps + tau]));
            }
            for (pc, &c) in plan.plain_channels.iter().enumerate() {
                terms.push((&a1[plan.a1_index(pc, m)], w[c * taps + tau]));
            }
        }
        let mut acc: Option<Ciphertext> = None;
        for (steps, terms) in &by_rotation {
            let v = weighted_sum(terms, par)?;
            let v = if *steps == 0 {
                v
            } else {
                let key = keys
                    .rot
                    .as_ref()
                    .ok_or_else(|| HeError::shape("rotation keys missing"))?;
                key.rotates_columns_by(&v, *steps)?
            };
            acc = Some(match acc {
                None => v,
                Some(a) => &a + &v,
            });
        }
        let mut z = acc.ok_or_else(|| HeError::shape("a conv2 output reads no layer-1 value"))?;
        z += &constant(self.block.b2[j], None, par)?;
        Ok(z)
    }
}

/// A plaintext holding `value` on the given slots (all slots when `None`).
fn constant(value: i64, slots: Option<&[bool]>, par: &Arc<BfvParameters>) -> Result<Plaintext> {
    let v: Vec<i64> = match slots {
        None => vec![value; par.degree()],
        Some(s) => s.iter().map(|&on| if on { value } else { 0 }).collect(),
    };
    crate::ops::encode_simd(&v, par)
}

/// `ct + Enc_pk(r)` (r = 0 on the user's slots, uniform mod t elsewhere), switched to the last
/// prime. The re-randomisation makes c1 a fresh RLWE sample; the switch scales the evaluation
/// noise below 2^-40 of the rounding noise ([`noise`]).
fn sanitise(
    mut ct: Ciphertext,
    legit: Option<&[bool]>,
    pk: &PublicKey,
    par: &Arc<BfvParameters>,
    seed: [u8; 32],
) -> Result<Ciphertext> {
    let mut rng = ChaCha20Rng::from_seed(seed);
    let t = par.plaintext();
    let r: Vec<u64> = match legit {
        None => vec![0; par.degree()],
        Some(l) => l
            .iter()
            .map(|&ok| if ok { 0 } else { rng.random_range(0..t) })
            .collect(),
    };
    let pt = Plaintext::try_encode(&r, Encoding::simd(), par)?;
    let zero: Ciphertext = pk.try_encrypt(&pt, &mut rng)?;
    ct += &zero;
    ct.switch_to_level(par.max_level())?;
    Ok(ct)
}
