//! The user's role. It is built from exactly two files — the encrypted model and the public
//! evaluation keys — and has no way to name, open or receive the owner's secret key.
//!
//! Per call: centre the raw pixels, compute the plaintext channels' squares in the integer
//! remainder, evaluate the selected filters homomorphically, blind and serialise the request;
//! after the owner's reply, unblind into the selected outputs. The clear rest of the network is
//! `privdnn_model::RemainderNet` over [`UserSide::remainder`], fed with [`UserSide::injection`].

use std::path::Path;

use privdnn_artifacts::{TrainedModel, read_artifact};
use privdnn_he::engine::{Layout, SlotPlan};
use privdnn_he::files::{EncryptedModelFile, EvaluationKeysFile};
use privdnn_he::ops::OpCounter;
use privdnn_he::protocol::{
    Masks, Reply, UserSession, evaluate_blinded, from_wire, to_wire, unblind, user_load_taking,
};
use privdnn_quant::{Injection, SelectedOutputs};
use rand::{CryptoRng, RngCore};
use rayon::prelude::*;

use crate::{PartialError, Result};

/// State kept between a request and its reply.
pub struct Pending {
    plan: SlotPlan,
    masks: Masks,
}

/// A loaded user.
pub struct UserSide {
    /// HE session (expanded weights, public keys).
    pub session: UserSession,
    /// The encrypted-model file (remainder model, selection; its ciphertext bytes are freed
    /// once decoded when loaded from a file: [`UserSession::shipped_bytes`] counts them).
    pub file: EncryptedModelFile,
}

impl UserSide {
    /// Loads the encrypted model and the evaluation keys and expands the packed weights (within
    /// privdnn-he's default memory budget).
    pub fn load(
        model_path: &Path,
        keys_path: &Path,
        headroom_bits: f64,
        ops: &OpCounter,
    ) -> Result<Self> {
        let budget = (privdnn_he::engine::DEFAULT_MEMORY_BUDGET, None);
        Self::load_within(model_path, keys_path, headroom_bits, budget, ops)
    }

    /// [`UserSide::load`] within a memory budget (bytes) for a layout (either when None):
    /// `privdnn_he::protocol::user_load_taking` (each ciphertext's bytes freed once decoded).
    pub fn load_within(
        model_path: &Path,
        keys_path: &Path,
        headroom_bits: f64,
        budget: (u64, Option<Layout>),
        ops: &OpCounter,
    ) -> Result<Self> {
        let mut file: EncryptedModelFile = read_artifact(model_path)?;
        let keys: EvaluationKeysFile = read_artifact(keys_path)?;
        let session = user_load_taking(&mut file.block, &keys.keys, headroom_bits, budget, ops)?;
        Ok(Self { session, file })
    }

    /// The float remainder model (every secret weight zeroed) the user finishes the network with.
    pub fn remainder(&self) -> &TrainedModel {
        &self.file.remainder
    }

    /// Images one call of `layout` holds.
    pub fn capacity(&self, layout: Layout) -> Result<usize> {
        Ok(SlotPlan::capacity(
            layout,
            self.session.plain(),
            self.session.residues[0].params.degree,
        )?)
    }

    /// Evaluates the encrypted block on raw images (`[c·h·w]` bytes each) and returns the
    /// serialised, blinded decryption request.
    pub fn request<R: RngCore + CryptoRng>(
        &self,
        layout: Layout,
        raw: &[&[u8]],
        ops: &OpCounter,
        progress: &(dyn Fn(u64) + Sync),
        rng: &mut R,
    ) -> Result<(Vec<u8>, Pending)> {
        let plain = self.session.plain();
        let plan = SlotPlan::new(
            layout,
            plain,
            self.session.residues[0].params.degree,
            raw.len(),
        )?;
        let x: Vec<Vec<i64>> = raw.par_iter().map(|r| plain.center(r)).collect();
        let plain_a: Vec<Vec<Vec<i64>>> = x.par_iter().map(|xi| plain.layer1(xi)).collect();
        let want_layer1 = self.file.layer1_outputs;
        let (request, masks) = evaluate_blinded(
            &self.session,
            &plan,
            &x,
            &plain_a,
            want_layer1,
            rng,
            ops,
            progress,
        )?;
        Ok((to_wire(&request)?, Pending { plan, masks }))
    }

    /// Unblinds the owner's serialised reply into per-image selected outputs.
    pub fn finish(&self, reply: &[u8], pending: Pending) -> Result<SelectedOutputs> {
        let reply: Reply = from_wire(reply, "decryption reply")?;
        self.finish_reply(&reply, pending)
    }

    /// Unblinds an already decoded reply (callers that decoded it once, e.g. from a frame).
    pub fn finish_reply(&self, reply: &Reply, pending: Pending) -> Result<SelectedOutputs> {
        let values = unblind(reply, &pending.masks, &self.session.params())?;
        let s = &self.session.plain().shape;
        let plan = &pending.plan;
        let groups = plan.groups();
        let (n, s1, s2) = (
            plan.images,
            self.file.block.s1.len(),
            self.file.block.s2.len(),
        );
        let expected = groups * (s2 + if self.file.layer1_outputs { s1 } else { 0 });
        if values.len() != expected {
            return Err(PartialError::Reply(format!(
                "{} ciphertexts, expected {expected}",
                values.len()
            )));
        }
        let collect = |first: usize, count: usize, per: usize| -> Vec<Vec<Vec<i64>>> {
            let mut out = vec![vec![vec![0i64; per]; count]; n];
            for k in 0..count {
                let mut maps = vec![vec![0i64; per]; n];
                for g in 0..groups {
                    plan.scatter(g, &values[first + k * groups + g], &mut maps);
                }
                for (img, m) in maps.into_iter().enumerate() {
                    out[img][k] = m;
                }
            }
            out
        };
        let z = collect(0, s2, s.h2 * s.w2);
        let a1 = if self.file.layer1_outputs {
            collect(s2 * groups, s1, s.h1 * s.w1)
        } else {
            Vec::new()
        };
        Ok(SelectedOutputs { z, a1 })
    }

    /// Where `outputs` (decrypted, or the auditor's shadow) enter the clear remainder network.
    pub fn injection<'a>(&'a self, outputs: &'a SelectedOutputs) -> Injection<'a> {
        Injection::new(
            self.session.plain(),
            &self.file.block.s1,
            &self.file.block.s2,
            self.file.layer1_outputs,
            outputs,
        )
    }
}
