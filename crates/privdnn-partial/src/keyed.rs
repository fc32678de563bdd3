//! The user-keyed mode (`[he] mode = "user-keyed"`) as files and roles over
//! `privdnn_he::user_keyed`: the owner never holds a secret key and never decrypts; the user
//! generates its own BFV keys, sends encryptions of its input, and decrypts the owner's
//! sanitised reply (the selected layer-2 outputs, and for ResNet the selected layer-1 squares).
//!
//! * [`setup`]: quantises the block like the owner-keyed setup and writes two files, no key:
//!   [`KeyedModelFile`] for the user (`RunLayout::keyed_model`: parameters, the plaintext block
//!   with every selected weight zeroed, the selection and the float remainder model) and
//!   [`KeyedOwnerFile`] for the owner (`RunLayout::keyed_owner_block`: the full quantised block).
//! * [`KeyedOwnerSide`]: answers a [`UserKeyedRequest`] with `KeyedOwner::answer`; there is no
//!   decryption anywhere on this side.
//! * [`KeyedUserSide`]: keys, requests from raw pixels, replies into [`SelectedOutputs`] that
//!   enter `privdnn_model::RemainderNet` exactly as the owner-keyed mode's unblinded outputs.

use std::path::Path;
use std::time::Instant;

use privdnn_artifacts::{
    Architecture, Artifact, ArtifactKind, NeuronSelection, RunLayout, TrainedModel, read_artifact,
};
use privdnn_config::HeConfig;
use privdnn_he::engine::Layout;
use privdnn_he::params::HeParams;
pub use privdnn_he::user_keyed::{
    KeyedModel, KeyedOutput, Pending, UserKeyedReply, UserKeyedRequest, noise::NoiseBound,
};
use privdnn_he::user_keyed::{KeyedOwner, KeyedUser};
use privdnn_quant::{Injection, IntBlock, SelectedOutputs};
use rand::{CryptoRng, RngCore};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::setup::{Provenance, quantise, remainder_model, write_one};

/// What the user downloads in user-keyed mode: no selected weight, encrypted or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyedModelFile {
    /// Parameters, the zeroed plaintext block, the selection (what `KeyedUser` needs).
    pub model: KeyedModel,
    /// The selection.
    pub selection: NeuronSelection,
    /// Float remainder model (every secret weight zeroed) for the clear tail.
    pub remainder: TrainedModel,
}

impl Artifact for KeyedModelFile {
    const KIND: ArtifactKind = ArtifactKind::KeyedModel;
}

/// The owner's file in user-keyed mode: the full quantised block, no key material.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyedOwnerFile {
    /// Parameter sets, one per CRT residue.
    pub params: Vec<HeParams>,
    /// The full quantised block (selected weights included).
    pub block: IntBlock,
    /// The selection.
    pub selection: NeuronSelection,
    /// Whether replies also carry the selected layer-1 squares (ResNet's shortcut).
    pub layer1: bool,
}

impl Artifact for KeyedOwnerFile {
    const KIND: ArtifactKind = ArtifactKind::KeyedOwnerBlock;
}

/// What the user-keyed setup measured (`encrypt/metrics.json` in this mode).
#[derive(Debug, Clone, Serialize)]
pub struct KeyedSetupReport {
    /// Always `user-keyed`.
    pub mode: &'static str,
    /// Ring degree.
    pub degree: usize,
    /// Ciphertext primes.
    pub moduli: Vec<u64>,
    /// Plaintext primes (CRT residues).
    pub plaintexts: Vec<u64>,
    /// log2 of the CRT plaintext space.
    pub log_plaintext_space: f64,
    /// Signed weight bits of conv1 and conv2.
    pub weight_bits: (u32, u32),
    /// log2 of the worst-case |Z| of the selected filters.
    pub log_bound: f64,
    /// Selected channels / filters.
    pub selection: (Vec<usize>, Vec<usize>),
    /// Circuit-privacy bound per residue (checked: margin ≥ 0).
    pub noise: Vec<NoiseBound>,
    /// Encrypted weights shipped (always 0 in this mode).
    pub encrypted_weight_bytes: usize,
    /// Seconds for quantisation and the checks.
    pub seconds: f64,
}

/// The two files and the report.
pub struct KeyedSetup {
    /// For the user.
    pub model: KeyedModelFile,
    /// For the owner.
    pub owner: KeyedOwnerFile,
    /// Measurements.
    pub report: KeyedSetupReport,
}

/// Quantises the block of `model` (same rule as the owner-keyed setup) and builds the two files;
/// refuses parameters that break the no-wrap or the circuit-privacy bound.
pub fn setup(model: &TrainedModel, sel: &NeuronSelection, he: &HeConfig) -> Result<KeyedSetup> {
    let clock = Instant::now();
    let q = quantise(model, sel, he)?;
    let owner = KeyedOwner::new(
        q.block.clone(),
        (&sel.layer1, &sel.layer2),
        &q.params,
        q.layer1,
    )?;
    let report = KeyedSetupReport {
        mode: "user-keyed",
        degree: he.degree,
        moduli: q.params[0].moduli.clone(),
        plaintexts: q.params.iter().map(|p| p.plaintext).collect(),
        log_plaintext_space: (q.space as f64).log2(),
        weight_bits: q.block.bits,
        log_bound: q.log_bound,
        selection: (sel.layer1.clone(), sel.layer2.clone()),
        noise: owner.noise_bounds().to_vec(),
        encrypted_weight_bytes: 0,
        seconds: clock.elapsed().as_secs_f64(),
    };
    Ok(KeyedSetup {
        model: KeyedModelFile {
            model: owner.model(),
            selection: sel.clone(),
            remainder: remainder_model(model, sel)?,
        },
        owner: KeyedOwnerFile {
            params: q.params,
            block: q.block,
            selection: sel.clone(),
            layer1: q.layer1,
        },
        report,
    })
}

/// Writes the owner's file, then the user's, where `layout` says.
pub fn write_setup(
    layout: &RunLayout,
    out: &KeyedSetup,
    provenance: Option<&Provenance<'_>>,
) -> Result<()> {
    write_one(&layout.keyed_owner_block(), &out.owner, provenance)?;
    write_one(&layout.keyed_model(), &out.model, provenance)
}

/// The slot layout of the user-keyed mode for an architecture: images across slots for LeNet5
/// (small layer-1 maps), output positions otherwise (a batch layout on VGG would need ~11 GB
/// on the owner).
pub fn layout_for(architecture: Architecture) -> Layout {
    match architecture {
        Architecture::Lenet5 => Layout::Batch,
        _ => Layout::Spatial,
    }
}

/// The owner in user-keyed mode: plaintext block, no key, no decryption.
pub struct KeyedOwnerSide {
    owner: KeyedOwner,
}

impl KeyedOwnerSide {
    /// Builds the owner from its file (checks the selection and both bounds).
    pub fn new(file: KeyedOwnerFile) -> Result<Self> {
        let sel = &file.selection;
        Ok(Self {
            owner: KeyedOwner::new(
                file.block,
                (&sel.layer1, &sel.layer2),
                &file.params,
                file.layer1,
            )?,
        })
    }

    /// Opens `RunLayout::keyed_owner_block`.
    pub fn load(path: &Path) -> Result<Self> {
        Self::new(read_artifact(path)?)
    }

    /// The public model this owner serves.
    pub fn model(&self) -> KeyedModel {
        self.owner.model()
    }

    /// Answers one decoded request (errors, never panics, on malformed requests).
    pub fn answer<R: RngCore + CryptoRng>(
        &self,
        request: &UserKeyedRequest,
        rng: &mut R,
    ) -> Result<UserKeyedReply> {
        Ok(self.owner.answer(request, rng)?)
    }

    /// Answers one serialised request (`privdnn_artifacts::codec`), bytes in, bytes out.
    pub fn answer_bytes<R: RngCore + CryptoRng>(
        &self,
        request: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>> {
        let req: UserKeyedRequest = privdnn_artifacts::codec::decode(request, "keyed request")?;
        Ok(privdnn_artifacts::codec::encode(&self.answer(&req, rng)?)?)
    }
}

/// The user in user-keyed mode: its own keys, the public model, the float remainder.
pub struct KeyedUserSide {
    user: KeyedUser,
    /// Selection (public).
    pub selection: NeuronSelection,
    /// Float remainder model for the clear tail.
    pub remainder: TrainedModel,
}

impl KeyedUserSide {
    /// Generates the user's keys for `layout` (seconds: the one-off key generation).
    pub fn new<R: RngCore + CryptoRng>(
        file: KeyedModelFile,
        layout: Layout,
        rng: &mut R,
    ) -> Result<Self> {
        Ok(Self {
            user: KeyedUser::new(file.model, layout, rng)?,
            selection: file.selection,
            remainder: file.remainder,
        })
    }

    /// Opens `RunLayout::keyed_model` and generates keys.
    pub fn load<R: RngCore + CryptoRng>(path: &Path, layout: Layout, rng: &mut R) -> Result<Self> {
        Self::new(read_artifact(path)?, layout, rng)
    }

    /// The public model.
    pub fn model(&self) -> &KeyedModel {
        self.user.model()
    }

    /// Most images one request holds.
    pub fn capacity(&self) -> Result<usize> {
        Ok(self.user.capacity()?)
    }

    /// Encrypts raw images (`[c·h·w]` bytes each) into one request (at most `capacity`).
    pub fn request<R: RngCore + CryptoRng>(
        &self,
        raw: &[&[u8]],
        rng: &mut R,
    ) -> Result<(UserKeyedRequest, Pending)> {
        let plain = &self.model().plain;
        let x: Vec<Vec<i64>> = raw.par_iter().map(|r| plain.center(r)).collect();
        Ok(self.user.request(&x, rng)?)
    }

    /// Decrypts a reply into the selected outputs (`z`, and `a1` for ResNet).
    pub fn finish(&self, pending: &Pending, reply: &UserKeyedReply) -> Result<SelectedOutputs> {
        let out = self.user.finish(pending, reply)?;
        Ok(SelectedOutputs {
            z: out.z2,
            a1: if self.model().layer1 {
                out.layer1
            } else {
                Vec::new()
            },
        })
    }

    /// Where `outputs` (decrypted, or the auditor's shadow) enter the clear remainder network.
    pub fn injection<'a>(&'a self, outputs: &'a SelectedOutputs) -> Injection<'a> {
        let m = self.model();
        Injection::new(&m.plain, &m.s1, &m.s2, m.layer1, outputs)
    }
}
