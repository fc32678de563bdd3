//! The user's side of inference. It is built from exactly two files — the encrypted model and the
//! public evaluation keys — and has no way to name, open or receive the owner's secret key.
//!
//! Per call: centre the raw pixels, compute the plaintext channels' squares in the integer
//! remainder, evaluate the selected filters homomorphically, blind and serialise the request;
//! after the owner's reply, unblind and finish the network in clear with the float remainder
//! model, the selected layer-2 outputs (and ResNet18's selected layer-1 outputs) injected.

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use privdnn_artifacts::{DatasetSplit, read_artifact};
use privdnn_he::engine::{Layout, SlotPlan};
use privdnn_he::files::{EncryptedModelFile, EvaluationKeysFile};
use privdnn_he::ops::OpCounter;
use privdnn_he::protocol::{
    Masks, Reply, UserSession, blind, from_wire, to_wire, unblind, user_load,
};
use privdnn_model::{Network, batch_tensor, import_tensors};
use rand::{CryptoRng, RngCore};
use rayon::prelude::*;

use crate::InferError;

/// Decrypted selected outputs of a call, per image: `z[img][jj][p]`, `a1[img][cc][q]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectedOutputs {
    /// Layer-2 outputs of the selected filters (integers at the block's output scale).
    pub z: Vec<Vec<Vec<i64>>>,
    /// Layer-1 squares of the selected channels (only when the tail needs them).
    pub a1: Vec<Vec<Vec<i64>>>,
}

/// State kept between a request and its reply.
pub struct Pending {
    plan: SlotPlan,
    masks: Masks,
}

/// A loaded user.
pub struct UserSide {
    /// HE session (expanded weights, public keys).
    pub session: UserSession,
    /// The encrypted-model file (remainder model, selection).
    pub file: EncryptedModelFile,
    net: Network,
    device: Device,
}

impl UserSide {
    /// Loads the encrypted model and the evaluation keys and expands the packed weights.
    pub fn load(
        model_path: &Path,
        keys_path: &Path,
        headroom_bits: f64,
        ops: &OpCounter,
        device: Device,
    ) -> Result<Self, InferError> {
        let file: EncryptedModelFile = read_artifact(model_path)?;
        let keys: EvaluationKeysFile = read_artifact(keys_path)?;
        let session = user_load(&file.block, &keys.keys, headroom_bits, ops)?;
        let net = import_tensors(
            Network::new(&file.remainder.spec, &device)?,
            &file.remainder.tensors,
            None,
        )?;
        Ok(Self {
            session,
            file,
            net,
            device,
        })
    }

    /// Images one call of `layout` holds.
    pub fn capacity(&self, layout: Layout) -> Result<usize, InferError> {
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
    ) -> Result<(Vec<u8>, Pending), InferError> {
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
        let outs = self
            .session
            .residues
            .iter()
            .map(|r| {
                r.block
                    .evaluate(&plan, &x, &plain_a, want_layer1, ops, progress)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (request, masks) = blind(&self.session, outs, rng, ops)?;
        Ok((to_wire(&request)?, Pending { plan, masks }))
    }

    /// Unblinds the owner's reply into per-image selected outputs.
    pub fn finish(&self, reply: &[u8], pending: Pending) -> Result<SelectedOutputs, InferError> {
        let reply: Reply = from_wire(reply, "decryption reply")?;
        let values = unblind(&reply, &pending.masks, &self.session.params())?;
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
            return Err(InferError::Mismatch(format!(
                "reply has {} ciphertexts, expected {expected}",
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

    /// Logits of images `indices` of `split`, finishing the network in clear with `outputs`
    /// injected into the selected channels.
    pub fn logits(
        &self,
        split: &DatasetSplit,
        indices: &[usize],
        outputs: &SelectedOutputs,
    ) -> Vec<f32> {
        let norm = &self.file.remainder.normalization;
        let (values, _) = privdnn_data::make_batch(split, indices, norm, None);
        let x = batch_tensor(values, indices.len(), split, &self.device);
        let plain = self.session.plain();
        let mut a1 = self.net.layer1(self.net.conv1(x));
        if self.file.layer1_outputs {
            let scale = plain.u_scale * plain.u_scale;
            a1 = inject(a1, &self.file.block.s1, &outputs.a1, scale, &self.device);
        }
        let z2 = self.net.conv2(a1.clone());
        let z2 = inject(
            z2,
            &self.file.block.s2,
            &outputs.z,
            plain.out_scale,
            &self.device,
        );
        self.net
            .tail(a1, z2)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap_or_default()
    }
}

/// Replaces channels `chosen` of an NCHW tensor with `values[img][k][pos] / scale`.
fn inject(
    t: Tensor<4>,
    chosen: &[usize],
    values: &[Vec<Vec<i64>>],
    scale: f64,
    device: &Device,
) -> Tensor<4> {
    let dims = t.dims();
    let [n, c, h, w] = dims;
    let mut data = t.into_data().try_into_vec::<f32>().unwrap_or_default();
    for (img, per_img) in values.iter().enumerate().take(n) {
        for (k, &ch) in chosen.iter().enumerate() {
            if ch >= c {
                continue;
            }
            let base = (img * c + ch) * h * w;
            for (pos, &v) in per_img[k].iter().enumerate().take(h * w) {
                data[base + pos] = (v as f64 / scale) as f32;
            }
        }
    }
    Tensor::from_data(TensorData::new(data, dims), device)
}
