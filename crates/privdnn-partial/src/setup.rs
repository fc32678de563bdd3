//! The owner's setup: turns a trained model and a selection into the three files of
//! `privdnn_he::files` — encrypted model (for the user), evaluation keys (for the user) and the
//! owner's secret (never leaves the owner).
//!
//! The float block is read from the model's named tensors (`privdnn_quant::float_block`),
//! quantised with the widest weights whose worst case fits the CRT plaintext space, and the
//! selected filters are packed densely and encrypted. [`write_outputs`] stores the three files
//! where `RunLayout` says, the secret apart.

use std::path::Path;
use std::time::Instant;

use privdnn_artifacts::{
    Artifact, Manifest, NeuronSelection, RunLayout, TrainedModel, write_artifact,
};
use privdnn_config::HeConfig;
use privdnn_he::files::{EncryptedModelFile, EvaluationKeysFile, OwnerSecretFile};
use privdnn_he::params::HeParams;
use privdnn_he::protocol::owner_setup;
use privdnn_quant::{IntBlock, float_block, needs_layer1_outputs};
use serde::Serialize;

use crate::{PartialError, Result};

/// The float model the user may hold: selected conv1 channels (and their BN1 affine), selected
/// conv2 filters and the cross weights the separation rule removes are zero.
pub fn remainder_model(model: &TrainedModel, sel: &NeuronSelection) -> Result<TrainedModel> {
    let mut out = model.clone();
    let mut zero_rows = |name: &str, rows: &dyn Fn(usize, usize) -> bool| -> Result<()> {
        let Some(t) = out.tensors.iter_mut().find(|t| t.name == name) else {
            return Ok(());
        };
        let (n0, n1) = (t.shape[0], t.shape.get(1).copied().unwrap_or(1));
        let per = t.values.len() / (n0 * if t.shape.len() > 2 { n1 } else { 1 }).max(1);
        let inner = if t.shape.len() > 2 { n1 } else { 1 };
        for a in 0..n0 {
            for b in 0..inner {
                if rows(a, b) {
                    let start = (a * inner + b) * per;
                    t.values[start..start + per].fill(0.0);
                }
            }
        }
        Ok(())
    };
    let s1 = sel.layer1.clone();
    let s2 = sel.layer2.clone();
    for name in ["conv1.weight", "conv1.bias", "bn1.gamma", "bn1.beta"] {
        zero_rows(name, &|a, _| s1.contains(&a))?;
    }
    zero_rows("conv2.bias", &|a, _| s2.contains(&a))?;
    zero_rows("conv2.weight", &|j, c| s2.contains(&j) || s1.contains(&c))?;
    Ok(out)
}

/// What the encrypt stage measured.
#[derive(Debug, Clone, Serialize)]
pub struct EncryptReport {
    /// Ring degree.
    pub degree: usize,
    /// Ciphertext primes.
    pub moduli: Vec<u64>,
    /// log2 q.
    pub log_q: f64,
    /// Plaintext primes (CRT residues).
    pub plaintexts: Vec<u64>,
    /// log2 of the CRT plaintext space.
    pub log_plaintext_space: f64,
    /// Signed weight bits of conv1 and conv2 chosen by the no-wrap search.
    pub weight_bits: (u32, u32),
    /// log2 of the worst-case |Z| of the selected filters.
    pub log_bound: f64,
    /// Selected channels / filters.
    pub selection: (Vec<usize>, Vec<usize>),
    /// Scalar weights packed.
    pub packed_weights: usize,
    /// Weights per packed ciphertext.
    pub chunk: usize,
    /// Packed ciphertexts (all residues).
    pub packed_ciphertexts: usize,
    /// Bytes of the encrypted weights (ciphertexts only).
    pub encrypted_weight_bytes: usize,
    /// Bytes of the public evaluation keys.
    pub evaluation_key_bytes: usize,
    /// Seconds for quantisation + key generation + encryption.
    pub seconds: f64,
}

/// Everything the stage produces.
pub struct EncryptOutputs {
    /// For the user.
    pub model: EncryptedModelFile,
    /// For the user.
    pub keys: EvaluationKeysFile,
    /// For the owner only.
    pub secret: OwnerSecretFile,
    /// Measurements.
    pub report: EncryptReport,
}

/// Parameter sets of a config.
pub fn parameter_sets(he: &HeConfig) -> Result<Vec<HeParams>> {
    Ok(HeParams::generate_crt(
        he.degree,
        &he.moduli_bits,
        he.plaintext_bits,
        he.crt_moduli,
    )?)
}

/// The block of a model quantised for a selection under a config's parameter sets: the first
/// step of both setups (owner-keyed [`encrypt`], user-keyed [`crate::keyed::setup`]).
pub(crate) struct Quantised {
    /// Parameter sets of the config.
    pub(crate) params: Vec<HeParams>,
    /// Their CRT plaintext space.
    pub(crate) space: u128,
    /// The quantised block (largest weights that keep the selected outputs from wrapping).
    pub(crate) block: IntBlock,
    /// Whether the architecture needs the layer-1 outputs too.
    pub(crate) layer1: bool,
    /// log2 of the largest bound of a selected layer-2 output.
    pub(crate) log_bound: f64,
}

/// Validates the selection against the model's block and quantises it (see [`Quantised`]).
pub(crate) fn quantise(
    model: &TrainedModel,
    sel: &NeuronSelection,
    he: &HeConfig,
) -> Result<Quantised> {
    let params = parameter_sets(he)?;
    let space = HeParams::crt_modulus(&params);
    let fb = float_block(model)?;
    sel.validate([fb.shape.c1, fb.shape.c2])
        .map_err(PartialError::Selection)?;
    let layer1 = needs_layer1_outputs(model.spec.architecture);
    let block = IntBlock::quantize_fitting(&fb, he.max_weight_bits, space, &sel.layer2, layer1)?;
    let (_, zb) = block.bounds();
    let log_bound = sel
        .layer2
        .iter()
        .map(|&j| (zb[j] as f64).log2())
        .fold(0.0, f64::max);
    Ok(Quantised {
        params,
        space,
        block,
        layer1,
        log_bound,
    })
}

/// Quantises, generates keys and encrypts the selected filters of `model`.
pub fn encrypt(
    model: &TrainedModel,
    sel: &NeuronSelection,
    he: &HeConfig,
) -> Result<EncryptOutputs> {
    let clock = Instant::now();
    let q = quantise(model, sel, he)?;
    let (secret, keys, enc) = owner_setup(
        &q.params,
        &q.block,
        (&sel.layer1, &sel.layer2),
        he.max_chunk,
        q.layer1,
        &mut rand::rng(),
    )?;
    let report = EncryptReport {
        degree: he.degree,
        moduli: q.params[0].moduli.clone(),
        log_q: q.params[0].log_q(),
        plaintexts: q.params.iter().map(|p| p.plaintext).collect(),
        log_plaintext_space: (q.space as f64).log2(),
        weight_bits: q.block.bits,
        log_bound: q.log_bound,
        selection: (sel.layer1.clone(), sel.layer2.clone()),
        packed_weights: enc.weight_count(),
        chunk: enc.chunk,
        packed_ciphertexts: enc.packed.iter().map(Vec::len).sum(),
        encrypted_weight_bytes: enc.bytes(),
        evaluation_key_bytes: keys.bytes(),
        seconds: clock.elapsed().as_secs_f64(),
    };
    Ok(EncryptOutputs {
        model: EncryptedModelFile {
            block: enc,
            selection: sel.clone(),
            remainder: remainder_model(model, sel)?,
            layer1_outputs: q.layer1,
        },
        keys: EvaluationKeysFile { keys },
        secret: OwnerSecretFile {
            secret,
            block: q.block,
        },
        report,
    })
}

/// Provenance written beside each file ([`Manifest`]); `None` writes the files alone.
pub struct Provenance<'a> {
    /// Producer, e.g. `privdnn-encrypt 0.1.0`.
    pub producer: &'a str,
    /// The stage's config hash.
    pub config_hash: &'a str,
    /// Input files (model, selection).
    pub inputs: &'a [&'a Path],
    /// Wall time of the setup.
    pub seconds: f64,
}

pub(crate) fn write_one<T: Artifact>(
    path: &Path,
    value: &T,
    provenance: Option<&Provenance<'_>>,
) -> Result<()> {
    write_artifact(path, value)?;
    if let Some(p) = provenance {
        Manifest::for_artifact(
            T::KIND,
            T::SCHEMA_VERSION,
            p.producer,
            path,
            p.config_hash,
            p.inputs,
            p.seconds,
        )?
        .write_beside(path)?;
    }
    Ok(())
}

/// Writes the secret, the encrypted model and the keys where `layout` says (the secret first,
/// so a user file never exists without its secret).
pub fn write_outputs(
    layout: &RunLayout,
    out: &EncryptOutputs,
    provenance: Option<&Provenance<'_>>,
) -> Result<()> {
    write_one(&layout.owner_secret(), &out.secret, provenance)?;
    write_one(&layout.encrypted_model(), &out.model, provenance)?;
    write_one(&layout.evaluation_keys(), &out.keys, provenance)
}

#[cfg(test)]
mod tests {
    use super::*;
    use privdnn_artifacts::{Architecture, ModelSpec, NamedTensor, Normalization};

    fn lenet(seed: u32) -> TrainedModel {
        let t = |name: &str, shape: Vec<usize>| {
            let n: usize = shape.iter().product();
            let values = (0..n)
                .map(|i| (((i as u32 * 2654435761u32) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
                .collect();
            NamedTensor {
                name: name.into(),
                shape,
                values,
            }
        };
        TrainedModel {
            dataset: "synthetic".into(),
            spec: ModelSpec {
                architecture: Architecture::Lenet5,
                in_channels: 1,
                image_size: 28,
                num_classes: 10,
                lenet_filters: [3, 4],
                width: 1.0,
            },
            normalization: Normalization {
                mean: vec![0.1307],
                std: vec![0.3081],
            },
            tensors: vec![
                t("conv1.weight", vec![3, 1, 5, 5]),
                t("conv1.bias", vec![3]),
                t("conv2.weight", vec![4, 3, 5, 5]),
                t("conv2.bias", vec![4]),
            ],
        }
    }

    fn selection() -> NeuronSelection {
        NeuronSelection {
            layer1: vec![1],
            layer2: vec![2],
            channels: [3, 4],
            algorithm: "test".into(),
        }
    }

    #[test]
    fn an_unsafe_plaintext_space_is_refused() {
        let he = HeConfig {
            plaintext_bits: 20,
            crt_moduli: 1,
            ..HeConfig::default()
        };
        let err = encrypt(&lenet(1), &selection(), &he)
            .err()
            .expect("must be refused");
        let msg = err.to_string();
        assert!(
            msg.contains("no-wrap") && msg.contains("crt_moduli"),
            "{msg}"
        );
    }

    #[test]
    fn remainder_zeroes_exactly_the_secret_and_separated_weights() {
        let model = lenet(2);
        let rem = remainder_model(&model, &selection()).expect("remainder");
        let w1 = rem.tensor("conv1.weight").expect("w1");
        for c in 0..3 {
            let zero = w1.values[c * 25..(c + 1) * 25].iter().all(|v| *v == 0.0);
            assert_eq!(zero, c == 1, "conv1 channel {c}");
        }
        let w2 = rem.tensor("conv2.weight").expect("w2");
        let orig = model.tensor("conv2.weight").expect("w2");
        for j in 0..4 {
            for c in 0..3 {
                let r = (j * 3 + c) * 25..(j * 3 + c + 1) * 25;
                let zeroed = w2.values[r.clone()].iter().all(|v| *v == 0.0);
                assert_eq!(zeroed, j == 2 || c == 1, "conv2 ({j}, {c})");
                if !zeroed {
                    assert_eq!(w2.values[r.clone()], orig.values[r]);
                }
            }
        }
        assert_eq!(rem.tensor("conv2.bias").expect("b2").values[2], 0.0);
        assert_eq!(rem.tensor("conv1.bias").expect("b1").values[1], 0.0);
    }

    #[test]
    fn encryption_reports_sizes_and_packs_densely() {
        let out = encrypt(&lenet(3), &selection(), &HeConfig::default()).expect("encrypt");
        let r = &out.report;
        assert_eq!(r.packed_weights, 37 + 76);
        assert_eq!(
            r.packed_ciphertexts, 2,
            "one packed ciphertext per CRT residue"
        );
        assert!(r.log_bound < r.log_plaintext_space - 1.0);
        assert!(r.encrypted_weight_bytes < 500_000);
    }
}
