//! Re-initialising the encrypted filters for real (spec §4.1, without the reference's bug §8.1.1).
//!
//! The attacker starts from the model the user holds: the *separated* model (non-selected conv2
//! filters do not read the selected conv1 channels) with every encrypted value unknown. Those
//! values are replaced by PyTorch's default initialisation (Kaiming-uniform with a = √5, i.e.
//! `U(−1/√fan_in, 1/√fan_in)` for weights and biases; BN γ = 1, β = 0, running mean 0, variance 1
//! for ResNet18's BN1 of a selected channel): conv1 filter `c ∈ S1` (`conv1.weight[c]`,
//! `conv1.bias[c]`, ResNet18's `bn1.*[c]`) and conv2 filter `j ∈ S2` (`conv2.weight[j]` over all
//! input channels, `conv2.bias[j]`). Nothing else changes; [`ReinitMasks`] records which elements
//! were re-drawn so the fine-tuning can give them their own learning rate or train only them.

use privdnn_artifacts::{NamedTensor, NeuronSelection, TrainedModel};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::AttackError;

/// Per tensor, 1.0 for every element that was re-initialised (trainable values only).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReinitMasks {
    /// `(tensor name, mask with the tensor's length)`.
    pub tensors: Vec<(String, Vec<f32>)>,
}

impl ReinitMasks {
    /// Number of re-initialised trainable values.
    pub fn count(&self) -> usize {
        self.tensors
            .iter()
            .map(|(_, m)| m.iter().filter(|v| **v > 0.0).count())
            .sum()
    }

    /// The mask of `name`, if that tensor holds re-initialised values.
    pub fn get(&self, name: &str) -> Option<&[f32]> {
        self.tensors
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, m)| m.as_slice())
    }
}

fn tensor_mut<'a>(model: &'a mut TrainedModel, name: &str) -> Option<&'a mut NamedTensor> {
    model.tensors.iter_mut().find(|t| t.name == name)
}

/// Re-draws the rows `rows` (first dimension) of tensor `name`; returns its mask, or `None`
/// when the model has no such tensor. `value` gives the new value of an element.
fn redraw(
    model: &mut TrainedModel,
    name: &str,
    rows: &[usize],
    mut value: impl FnMut() -> f32,
) -> Result<Option<Vec<f32>>, AttackError> {
    let Some(t) = tensor_mut(model, name) else {
        return Ok(None);
    };
    let first = t.shape.first().copied().unwrap_or(0);
    let row_len = t.values.len().checked_div(first).unwrap_or(0);
    let mut mask = vec![0.0f32; t.values.len()];
    for &r in rows {
        if r >= first {
            return Err(AttackError::Invalid(format!(
                "filter {r} out of range for `{name}` ({first} filters)"
            )));
        }
        let row = r * row_len..(r + 1) * row_len;
        for (v, m) in t.values[row.clone()].iter_mut().zip(&mut mask[row]) {
            *v = value();
            *m = 1.0;
        }
    }
    Ok(Some(mask))
}

fn fan_in(model: &TrainedModel, name: &str) -> Result<usize, AttackError> {
    let t = model
        .tensor(name)
        .ok_or_else(|| AttackError::Invalid(format!("model has no `{name}`")))?;
    Ok(t.shape.iter().skip(1).product::<usize>().max(1))
}

/// The attacker's starting model: `separated` (the user's model) with the encrypted filters of
/// `selection` re-initialised with `seed`, and the masks of what was re-drawn.
pub fn reinitialize(
    separated: &TrainedModel,
    selection: &NeuronSelection,
    seed: u64,
) -> Result<(TrainedModel, ReinitMasks), AttackError> {
    let mut out = separated.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_0FA7_7AC4);
    let mut masks = ReinitMasks::default();
    for (layer, rows) in [("conv1", &selection.layer1), ("conv2", &selection.layer2)] {
        let weight = format!("{layer}.weight");
        let bound = 1.0 / (fan_in(separated, &weight)? as f32).sqrt();
        for name in [weight, format!("{layer}.bias")] {
            if let Some(m) = redraw(&mut out, &name, rows, || rng.random_range(-bound..bound))? {
                masks.tensors.push((name, m));
            }
        }
    }
    // ResNet18: BN1 of a selected conv1 channel is folded into the encrypted block.
    for (name, value, trainable) in [
        ("bn1.gamma", 1.0f32, true),
        ("bn1.beta", 0.0, true),
        ("bn1.running_mean", 0.0, false),
        ("bn1.running_var", 1.0, false),
    ] {
        if let Some(m) = redraw(&mut out, name, &selection.layer1, || value)?
            && trainable
        {
            masks.tensors.push((name.to_string(), m));
        }
    }
    Ok((out, masks))
}
