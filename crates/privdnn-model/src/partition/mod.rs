//! The two evaluation transforms of spec §3.1, applied the straightforward way (whole network,
//! weights edited in a copy): *separate(S)* zeroes conv2 weights `W2[j, c]` for `j ∉ S2, c ∈ S1`
//! (→ A_s, the authorised user's model), *remove(S)* multiplies the raw conv1 and conv2 outputs
//! by masks zeroing the selected channels (→ A_r, the unauthorised user's view). The fast
//! cached [`evaluator`] must agree with these (`privdnn-select/tests/transforms.rs` checks it);
//! [`score`] is the selection score of spec §3.2. Used by the select and attack stages.

pub mod evaluator;
pub mod score;

use burn::tensor::Device;
use privdnn_artifacts::{DatasetSplit, NeuronSelection, TrainedModel};

use crate::error::ModelError;
use crate::eval::{Evaluation, evaluate};
use crate::network::{ChannelMasks, Network};
use crate::weights::import_tensors;

/// Filters of conv1 and conv2 of a trained model.
pub fn channels(model: &TrainedModel) -> Result<[usize; 2], ModelError> {
    let first_dim = |name: &str| {
        model
            .tensor(name)
            .and_then(|t| t.shape.first().copied())
            .ok_or_else(|| ModelError::Selection(format!("model has no `{name}` tensor")))
    };
    Ok([first_dim("conv1.weight")?, first_dim("conv2.weight")?])
}

/// Checks `selection` against `model`, with a message naming the problem.
pub fn check(model: &TrainedModel, selection: &NeuronSelection) -> Result<[usize; 2], ModelError> {
    let c = channels(model)?;
    selection.validate(c).map_err(ModelError::Selection)?;
    Ok(c)
}

/// The separated model: a copy of `model` where non-selected conv2 filters no longer read the
/// selected conv1 channels.
pub fn separate_weights(
    model: &TrainedModel,
    selection: &NeuronSelection,
) -> Result<TrainedModel, ModelError> {
    check(model, selection)?;
    let mut out = model.clone();
    let w2 = out
        .tensors
        .iter_mut()
        .find(|t| t.name == "conv2.weight")
        .ok_or_else(|| ModelError::Selection("model has no `conv2.weight`".to_string()))?;
    let [c_out, c_in, kh, kw] = [w2.shape[0], w2.shape[1], w2.shape[2], w2.shape[3]];
    let taps = kh * kw;
    for j in (0..c_out).filter(|j| !selection.layer2.contains(j)) {
        for &c in &selection.layer1 {
            let start = (j * c_in + c) * taps;
            w2.values[start..start + taps].fill(0.0);
        }
    }
    Ok(out)
}

/// A network on `device` holding `model`'s weights.
pub fn network(model: &TrainedModel, device: &Device) -> Result<Network, ModelError> {
    import_tensors(Network::new(&model.spec, device)?, &model.tensors, None)
}

/// A_s and A_r of `selection` by full evaluation of the transformed networks.
pub fn reference_evaluations(
    model: &TrainedModel,
    split: &DatasetSplit,
    selection: &NeuronSelection,
    batch: usize,
    device: &Device,
) -> Result<(Evaluation, Evaluation), ModelError> {
    let c = check(model, selection)?;
    let separated = network(&separate_weights(model, selection)?, device)?;
    let a_s = evaluate(&separated, split, &model.normalization, batch, None, device)?;
    let original = network(model, device)?;
    let masks = ChannelMasks::removing(c[0], &selection.layer1, c[1], &selection.layer2, device);
    let a_r = evaluate(
        &original,
        split,
        &model.normalization,
        batch,
        Some(&masks),
        device,
    )?;
    Ok((a_s, a_r))
}
