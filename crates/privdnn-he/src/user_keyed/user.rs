//! The user's side of the user-keyed mode: its own keys, the request and the decryption of the
//! reply. [`KeyedUser`] holds the only secret key of the mode.

use std::sync::Arc;

use fhe::bfv::{
    BfvParameters, Encoding, EvaluationKeyBuilder, PublicKey, RelinearizationKey, SecretKey,
};
use fhe_traits::{FheDecoder, FheDecrypter, FheEncrypter, Serialize as FheSerialize};
use rand::{CryptoRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use serde_bytes::ByteBuf;

use super::plan::KeyedPlan;
use super::{KeyedModel, ResidueKeys, ResidueRequest, UserKeyedReply, UserKeyedRequest};
use crate::compact::decompress;
use crate::engine::Layout;
use crate::ops::encode_simd;
use crate::params::HeParams;
use crate::{HeError, Result};

struct Residue {
    par: Arc<BfvParameters>,
    sk: SecretKey,
    keys: ResidueKeys,
}

/// The user: the public model, a layout and its own keys (one set per CRT residue).
pub struct KeyedUser {
    model: KeyedModel,
    layout: Layout,
    residues: Vec<Residue>,
}

/// What [`KeyedUser::finish`] needs to know about the request a reply answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    /// Images of the request.
    pub images: usize,
    /// Its layout.
    pub layout: Layout,
}

/// Decrypted results of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedOutput {
    /// `z2[image][jj][h2·w2]`: the selected layer-2 outputs (filter `s2[jj]`).
    pub z2: Vec<Vec<Vec<i64>>>,
    /// `layer1[image][cc][h1·w1]`: the selected layer-1 squares (empty unless the model's
    /// `layer1`).
    pub layer1: Vec<Vec<Vec<i64>>>,
}

impl KeyedUser {
    /// Generates the user's secret, public, relinearisation and (spatial layout) rotation keys.
    pub fn new<R: RngCore + CryptoRng>(
        model: KeyedModel,
        layout: Layout,
        rng: &mut R,
    ) -> Result<Self> {
        if model.params.is_empty() {
            return Err(HeError::Parameters("no parameter set".into()));
        }
        let mut residues = Vec::with_capacity(model.params.len());
        for hp in &model.params {
            let par = hp.build()?;
            let sk = SecretKey::random(&par, rng);
            let pk = PublicKey::new(&sk, rng);
            let rk = RelinearizationKey::new(&sk, rng)?;
            let steps = KeyedPlan::rotation_steps(layout, &model.plain.shape, hp.degree)?;
            let rotation_key = if steps.is_empty() {
                None
            } else {
                let mut b = EvaluationKeyBuilder::new(&sk)?;
                for &k in &steps {
                    b.enable_column_rotation(k)?;
                }
                Some(ByteBuf::from(b.build(rng)?.to_bytes()))
            };
            residues.push(Residue {
                keys: ResidueKeys {
                    public_key: ByteBuf::from(pk.to_bytes()),
                    relin_key: ByteBuf::from(rk.to_bytes()),
                    rotation_key,
                },
                par,
                sk,
            });
        }
        Ok(Self {
            model,
            layout,
            residues,
        })
    }

    /// Most images one request may hold.
    pub fn capacity(&self) -> Result<usize> {
        KeyedPlan::capacity(
            self.layout,
            &self.model.plain.shape,
            self.model.params[0].degree,
        )
    }

    /// The public model this user was made for.
    pub fn model(&self) -> &KeyedModel {
        &self.model
    }

    /// The user's own secret key and parameters of residue `i` (audits and tests).
    pub fn secret_key(&self, i: usize) -> Option<(&SecretKey, &Arc<BfvParameters>)> {
        self.residues.get(i).map(|r| (&r.sk, &r.par))
    }

    /// Encrypts centred images (`[cin·h·w]` each, from `IntBlock::center`) and the user's clear
    /// squares of the non-selected channels, with its keys.
    pub fn request<R: RngCore + CryptoRng>(
        &self,
        x: &[Vec<i64>],
        rng: &mut R,
    ) -> Result<(UserKeyedRequest, Pending)> {
        let plain = &self.model.plain;
        let s = &plain.shape;
        if x.iter().any(|xi| xi.len() != s.input_len()) {
            return Err(HeError::shape(format!(
                "images must have {} centred values",
                s.input_len()
            )));
        }
        let plan = KeyedPlan::new(
            self.layout,
            s,
            &self.model.s1,
            self.model.params[0].degree,
            x.len(),
        )?;
        let a: Vec<Vec<Vec<i64>>> = x
            .par_iter()
            .map(|xi| {
                (0..s.c1)
                    .map(|c| {
                        if plan.plain_channels.contains(&c) {
                            plain.layer1_u(xi, c).into_iter().map(|u| u * u).collect()
                        } else {
                            Vec::new()
                        }
                    })
                    .collect()
            })
            .collect();
        let inputs = plan.input_slots(x);
        let a1 = plan.a1_slots(&a);
        drop(a);
        let residues = self
            .residues
            .iter()
            .map(|r| {
                Ok(ResidueRequest {
                    keys: r.keys.clone(),
                    inputs: encrypt_all(&inputs, r, rng)?,
                    a1: encrypt_all(&a1, r, rng)?,
                })
            })
            .collect::<Result<_>>()?;
        let pending = Pending {
            images: x.len(),
            layout: self.layout,
        };
        let request = UserKeyedRequest {
            layout: self.layout,
            images: x.len() as u32,
            residues,
        };
        Ok((request, pending))
    }

    /// Decrypts a reply and recombines the residues.
    pub fn finish(&self, pending: &Pending, reply: &UserKeyedReply) -> Result<KeyedOutput> {
        let m = &self.model;
        let s = &m.plain.shape;
        let plan = KeyedPlan::new(pending.layout, s, &m.s1, m.params[0].degree, pending.images)?;
        let z_count = m.s2.len() * plan.outputs();
        let want = z_count
            + if m.layer1 {
                m.s1.len() * plan.maps()
            } else {
                0
            };
        if reply.residues.len() != self.residues.len()
            || reply.residues.iter().any(|r| r.len() != want)
        {
            return Err(HeError::shape("the reply does not match the request"));
        }
        let decrypted: Vec<Vec<Vec<u64>>> = self
            .residues
            .iter()
            .zip(&reply.residues)
            .map(|(r, cts)| {
                cts.par_iter()
                    .map(|c| {
                        let ct = decompress(c, &r.par)?;
                        let pt = r.sk.try_decrypt(&ct)?;
                        Ok(Vec::<u64>::try_decode(&pt, Encoding::simd())?)
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<_>>()?;
        let combined = |k: usize| -> Vec<i64> {
            (0..s_degree(&m.params))
                .map(|slot| {
                    let res: Vec<i64> = m
                        .params
                        .iter()
                        .zip(&decrypted)
                        .map(|(hp, d)| hp.decode_signed(d[k][slot] % hp.plaintext))
                        .collect();
                    HeParams::crt_combine(&m.params, &res) as i64
                })
                .collect()
        };
        let images = pending.images;
        let mut z2 = vec![Vec::with_capacity(m.s2.len()); images];
        for jj in 0..m.s2.len() {
            let mut per = vec![vec![0i64; s.h2 * s.w2]; images];
            for o in 0..plan.outputs() {
                plan.scatter_output(o, &combined(jj * plan.outputs() + o), &mut per);
            }
            for (n, v) in per.into_iter().enumerate() {
                z2[n].push(v);
            }
        }
        let mut layer1 = vec![Vec::new(); images];
        if m.layer1 {
            for cc in 0..m.s1.len() {
                let mut per = vec![vec![0i64; s.h1 * s.w1]; images];
                for mm in 0..plan.maps() {
                    plan.scatter_layer1(mm, &combined(z_count + cc * plan.maps() + mm), &mut per);
                }
                for (n, v) in per.into_iter().enumerate() {
                    layer1[n].push(v);
                }
            }
        }
        Ok(KeyedOutput { z2, layer1 })
    }
}

fn s_degree(params: &[HeParams]) -> usize {
    params.first().map_or(0, |p| p.degree)
}

/// Seeded secret-key encryptions of slot vectors, serialised (fhe's format, half size).
fn encrypt_all<R: RngCore + CryptoRng>(
    slots: &[Vec<i64>],
    r: &Residue,
    rng: &mut R,
) -> Result<Vec<ByteBuf>> {
    let seeds: Vec<[u8; 32]> = slots
        .iter()
        .map(|_| {
            let mut s = [0u8; 32];
            rng.fill_bytes(&mut s);
            s
        })
        .collect();
    slots
        .par_iter()
        .zip(seeds)
        .map(|(v, seed)| {
            let pt = encode_simd(v, &r.par)?;
            let ct: fhe::bfv::Ciphertext =
                r.sk.try_encrypt(&pt, &mut ChaCha20Rng::from_seed(seed))?;
            Ok(ByteBuf::from(ct.to_bytes()))
        })
        .collect()
}
