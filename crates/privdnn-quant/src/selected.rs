//! The block's selected outputs in integers — what the user decrypts (or the shadow computes)
//! for the selected layer-2 filters (and, when the tail reads layer 1, the selected layer-1
//! squares) — and the plan that injects them into the clear remainder network.

use privdnn_artifacts::NeuronSelection;
use rayon::prelude::*;

use crate::IntBlock;

/// Selected outputs of a call, per image: `z[img][jj][p]`, `a1[img][cc][q]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SelectedOutputs {
    /// Layer-2 outputs of the selected filters (integers at the block's output scale).
    pub z: Vec<Vec<Vec<i64>>>,
    /// Layer-1 squares of the selected channels (only when the tail needs them).
    pub a1: Vec<Vec<Vec<i64>>>,
}

impl SelectedOutputs {
    /// Appends another call's outputs (images in order).
    pub fn extend(&mut self, other: SelectedOutputs) {
        self.z.extend(other.z);
        self.a1.extend(other.a1);
    }
}

/// Where and at which scale selected outputs replace the clear network's channels.
#[derive(Debug, Clone, Copy)]
pub struct Injection<'a> {
    /// Selected layer-1 channels (their squares are injected only when `layer1` is set).
    pub s1: &'a [usize],
    /// Selected layer-2 filters.
    pub s2: &'a [usize],
    /// `a1_float ≈ A / layer1_scale` (the square of the layer-1 scale).
    pub layer1_scale: f64,
    /// `z2_float ≈ Z / out_scale`.
    pub out_scale: f64,
    /// Whether the tail reads layer 1 (ResNet18's shortcut), so `a1` is injected too.
    pub layer1: bool,
    /// The integer outputs.
    pub outputs: &'a SelectedOutputs,
}

impl<'a> Injection<'a> {
    /// The injection of `outputs` of `block` (scales from the block) for selection `s1`/`s2`.
    pub fn new(
        block: &IntBlock,
        s1: &'a [usize],
        s2: &'a [usize],
        layer1: bool,
        outputs: &'a SelectedOutputs,
    ) -> Self {
        Self {
            s1,
            s2,
            layer1_scale: block.u_scale * block.u_scale,
            out_scale: block.out_scale,
            layer1,
            outputs,
        }
    }
}

/// The integer shadow of the selected outputs (auditor side: uses the owner's block).
pub fn shadow_outputs(
    block: &IntBlock,
    sel: &NeuronSelection,
    raw: &[&[u8]],
    layer1: bool,
) -> SelectedOutputs {
    let (z, a1): (Vec<_>, Vec<_>) = raw
        .par_iter()
        .map(|r| {
            let a = block.layer1(&block.center(r));
            let z = sel
                .layer2
                .iter()
                .map(|&j| block.layer2(&a, j).into_iter().map(|v| v as i64).collect())
                .collect::<Vec<Vec<i64>>>();
            let a1 = if layer1 {
                sel.layer1.iter().map(|&c| a[c].clone()).collect()
            } else {
                Vec::new()
            };
            (z, a1)
        })
        .unzip();
    SelectedOutputs {
        z,
        a1: if layer1 { a1 } else { Vec::new() },
    }
}
