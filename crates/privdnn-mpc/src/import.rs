//! The integer model of a trained model artifact.
//!
//! Layers 1–2 are PrivDNN's quantised block ([`IntBlock::quantize_fitting`], the same quantiser
//! and bound check as the encrypt stage), so every protocol agrees with PrivDNN bit for bit there.
//! The tail is fixed point with power-of-two scales:
//! * activations carry `frac_bits` fractional bits;
//! * each conv / FC has its own weight scale `2^fw`, `fw = weight_bits − 1 − ⌈log2 max|w|⌉` (the
//!   largest weight uses `weight_bits` signed bits), its bias is at `2^(frac_bits + fw)`, and a
//!   rounding shift by `fw` follows it;
//! * batch norm is folded into the preceding conv (`w·γ/√(σ²+ε)`, `(b−μ)·γ/√(σ²+ε)+β`) — except
//!   AlexNet's BN2, which directly follows PrivDNN's block and is folded into the per-channel
//!   requantisation that converts the block output `Z` (scale `out_scale`) to fixed point;
//! * LeNet5's average pool after conv2 is a sum pool whose `1/4` is folded into that same
//!   requantisation; max pooling is kept.
//!
//! Default scales (`frac_bits = 12`, `weight_bits = 12`) keep the integer accuracy within a few
//! hundredths of a point of burn's float accuracy on the models measured (see the edge crate's
//! `float_vs_integer` test and the baseline report); every tail value stays far below 2^63.

use privdnn_artifacts::{Architecture, NamedTensor, TrainedModel};
use privdnn_quant::{IntBlock, float_block, needs_layer1_outputs};
use serde::{Deserialize, Serialize};

use crate::ir::{ConvLayer, FcLayer, IntModel, Op, Rescale, TensorShape};
use crate::{MpcError, Result};

/// burn's batch-norm epsilon (`BatchNormConfig` default).
const BN_EPS: f64 = 1e-5;
/// VGG16: a max pool follows the plaintext conv blocks with these indices (as `privdnn-model`).
const VGG_POOL_AFTER: [usize; 4] = [1, 4, 7, 10];

/// Scales of the integer model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantConfig {
    /// Fractional bits of the tail's activations.
    pub frac_bits: u32,
    /// Signed bits of the largest weight of each tail layer.
    pub weight_bits: u32,
    /// Bits of precision of the requantisation multipliers (fewer where a large addend needs
    /// the room: the addend at `2^(frac_bits + shift)` must fit in 62 bits).
    pub rescale_bits: u32,
    /// PrivDNN's `he.max_weight_bits` for the block.
    pub block_max_weight_bits: u32,
    /// log2 of the plaintext space the block must fit (PrivDNN: two 24-bit CRT primes ≈ 2^48).
    pub block_plaintext_bits: u32,
}

impl Default for QuantConfig {
    fn default() -> Self {
        Self {
            frac_bits: 12,
            weight_bits: 12,
            rescale_bits: 30,
            block_max_weight_bits: 8,
            block_plaintext_bits: 48,
        }
    }
}

/// Imports `model`, quantising the block as PrivDNN would with every layer-2 filter selected.
pub fn import_model(model: &TrainedModel, cfg: &QuantConfig) -> Result<IntModel> {
    if model.spec.architecture == Architecture::Resnet18 {
        return Err(MpcError::Unsupported("resnet18".into()));
    }
    let fb = float_block(model)?;
    let filters: Vec<usize> = (0..fb.shape.c2).collect();
    let space = 1u128 << cfg.block_plaintext_bits.min(126);
    let layer1 = needs_layer1_outputs(model.spec.architecture);
    let block =
        IntBlock::quantize_fitting(&fb, cfg.block_max_weight_bits, space, &filters, layer1)?;
    import_with_block(model, block, cfg)
}

/// Imports `model` around a given quantised block (e.g. the one PrivDNN's encrypt stage made).
pub fn import_with_block(
    model: &TrainedModel,
    block: IntBlock,
    cfg: &QuantConfig,
) -> Result<IntModel> {
    let mut t = Tail::new(model, cfg, &block)?;
    match model.spec.architecture {
        Architecture::Lenet5 => t.lenet()?,
        Architecture::Alexnet => t.alexnet()?,
        Architecture::Vgg16 => t.vgg()?,
        Architecture::Resnet18 => return Err(MpcError::Unsupported("resnet18".into())),
    }
    let logit_frac_bits = cfg.frac_bits;
    Ok(IntModel {
        spec: model.spec.clone(),
        block,
        ops: t.ops,
        logit_frac_bits,
        frac_bits: cfg.frac_bits,
    })
}

/// The block's three ops: combined conv1+pool (stride = pool), square, conv2.
fn block_ops(b: &IntBlock) -> Result<(Vec<Op>, TensorShape)> {
    let s = &b.shape;
    let conv1 = ConvLayer {
        input: TensorShape::new(s.cin, s.height, s.width),
        cout: s.c1,
        k: s.k1,
        stride: s.pool,
        pad: s.pad1,
        groups: 1,
        weights: b.w1.clone(),
        bias: b.b1.clone(),
    };
    let conv2 = ConvLayer {
        input: TensorShape::new(s.c1, s.h1, s.w1),
        cout: s.c2,
        k: s.k2,
        stride: 1,
        pad: s.pad2,
        groups: 1,
        weights: b.w2.clone(),
        bias: b.b2.clone(),
    };
    let (o1, o2) = (conv1.output(), conv2.output());
    if (o1.h, o1.w) != (s.h1, s.w1) || (o2.h, o2.w) != (s.h2, s.w2) {
        return Err(MpcError::shape(format!(
            "block geometry {s:?} does not match the convolutions ({o1:?}, {o2:?})"
        )));
    }
    Ok((vec![Op::Conv(conv1), Op::Square, Op::Conv(conv2)], o2))
}

/// Builder of the tail: the current shape and the ops so far.
struct Tail<'a> {
    model: &'a TrainedModel,
    cfg: &'a QuantConfig,
    out_scale: f64,
    shape: TensorShape,
    ops: Vec<Op>,
}

fn scale(bits: i64) -> f64 {
    (bits as f64).exp2()
}

/// `v` rounded to an integer below 2^62 in magnitude, or an error naming `what` (never the
/// saturating `as i64` cast).
fn fixed_i64(v: f64, what: &str) -> Result<i64> {
    let r = v.round();
    if r.is_finite() && r.abs() < scale(62) {
        Ok(r as i64)
    } else {
        Err(MpcError::model(format!(
            "{what} {v:e} does not fit in 62 bits: lower the quantisation's frac_bits"
        )))
    }
}

impl<'a> Tail<'a> {
    fn new(model: &'a TrainedModel, cfg: &'a QuantConfig, block: &IntBlock) -> Result<Self> {
        let (ops, shape) = block_ops(block)?;
        Ok(Self {
            model,
            cfg,
            out_scale: block.out_scale,
            shape,
            ops,
        })
    }

    fn tensor(&self, name: &str) -> Result<&'a NamedTensor> {
        self.model
            .tensor(name)
            .ok_or_else(|| MpcError::model(format!("no tensor `{name}` in the model")))
    }

    fn vector(&self, name: &str, n: usize) -> Result<Vec<f64>> {
        let t = self.tensor(name)?;
        if t.values.len() != n {
            return Err(MpcError::model(format!(
                "`{name}` has {} values, expected {n}",
                t.values.len()
            )));
        }
        Ok(t.values.iter().map(|&v| v as f64).collect())
    }

    /// Per-channel (scale, shift) of batch norm `name` over `n` channels.
    fn batch_norm(&self, name: &str, n: usize) -> Result<(Vec<f64>, Vec<f64>)> {
        let g = self.vector(&format!("{name}.gamma"), n)?;
        let b = self.vector(&format!("{name}.beta"), n)?;
        let m = self.vector(&format!("{name}.running_mean"), n)?;
        let v = self.vector(&format!("{name}.running_var"), n)?;
        let sc: Vec<f64> = (0..n).map(|c| g[c] / (v[c] + BN_EPS).sqrt()).collect();
        let sh = (0..n).map(|c| b[c] - m[c] * sc[c]).collect();
        Ok((sc, sh))
    }

    /// Requantises the block output `Z` (optionally sum-pooled over `pooled` values) to fixed
    /// point, applying `gain·z + offset` per channel.
    ///
    /// The shift `k` gives the largest multiplier `rescale_bits` bits, but no more than lets the
    /// addend `offset·2^(frac_bits + k)` fit in 62 bits: PrivDNN's `Z` is at a scale near 2^36,
    /// so `k` alone can exceed 50, and an `f64 → i64` cast saturates silently (a trained GTSRB
    /// AlexNet had `k = 54` and 44 of its 64 BN2 shifts clipped to ±0.125 that way).
    fn block_to_fixed(&mut self, gain: &[f64], offset: &[f64], pooled: f64) -> Result<()> {
        let fa = self.cfg.frac_bits as i64;
        let unit = scale(fa) / (self.out_scale * pooled);
        let max_gain = gain.iter().fold(1e-30f64, |m, g| m.max(g.abs())) * unit;
        let max_offset = offset.iter().fold(0f64, |m, o| m.max(o.abs()));
        let k_add = if max_offset > 0.0 {
            62 - fa - (max_offset.log2().floor() as i64 + 1)
        } else {
            62
        };
        let k = (self.cfg.rescale_bits as i64 - max_gain.log2().ceil() as i64)
            .min(k_add)
            .clamp(0, 62);
        let add = offset
            .iter()
            .map(|o| fixed_i64(o * scale(fa + k), "block requantisation addend"))
            .collect::<Result<Vec<i64>>>()?;
        let mul = gain
            .iter()
            .map(|g| fixed_i64(g * unit * scale(k), "block requantisation multiplier"))
            .collect::<Result<Vec<i64>>>()?;
        self.ops.push(Op::Rescale(Rescale {
            mul,
            add,
            shift: k as u32,
        }));
        Ok(())
    }

    /// Weight scale exponent of a layer with largest weight `max_abs`.
    fn weight_frac(&self, max_abs: f64) -> u32 {
        let fw = self.cfg.weight_bits as f64 - 1.0 - max_abs.max(1e-30).log2().ceil();
        fw.clamp(0.0, 40.0) as u32
    }

    /// Conv `name` (`k`, `pad`, `groups`), with batch norm `bn` folded, then its rounding shift.
    fn conv(&mut self, name: &str, pad: usize, groups: usize, bn: Option<&str>) -> Result<()> {
        let wt = self.tensor(&format!("{name}.weight"))?;
        let (cout, cin_g, k) = match wt.shape[..] {
            [o, i, k, k2] if k == k2 && i * groups == self.shape.c => (o, i, k),
            _ => {
                return Err(MpcError::model(format!(
                    "`{name}.weight` has shape {:?}, expected [_, {}, k, k]",
                    wt.shape,
                    self.shape.c / groups.max(1)
                )));
            }
        };
        let mut w: Vec<f64> = wt.values.iter().map(|&v| v as f64).collect();
        let mut b = match self.model.tensor(&format!("{name}.bias")) {
            Some(_) => self.vector(&format!("{name}.bias"), cout)?,
            None => vec![0.0; cout],
        };
        if let Some(bn) = bn {
            let (sc, sh) = self.batch_norm(bn, cout)?;
            let per = cin_g * k * k;
            for c in 0..cout {
                w[c * per..(c + 1) * per]
                    .iter_mut()
                    .for_each(|v| *v *= sc[c]);
                b[c] = b[c] * sc[c] + sh[c];
            }
        }
        let fw = self.weight_frac(w.iter().fold(0.0, |m, v| m.max(v.abs())));
        let layer = ConvLayer {
            input: self.shape,
            cout,
            k,
            stride: 1,
            pad,
            groups,
            weights: w
                .iter()
                .map(|v| (v * scale(fw as i64)).round() as i64)
                .collect(),
            bias: self.bias(&b, fw)?,
        };
        self.shape = layer.output();
        self.ops.push(Op::Conv(layer));
        self.ops.push(Op::Rescale(Rescale::shift(fw)));
        Ok(())
    }

    fn bias(&self, b: &[f64], fw: u32) -> Result<Vec<i64>> {
        let s = scale(self.cfg.frac_bits as i64 + fw as i64);
        b.iter().map(|v| fixed_i64(v * s, "bias")).collect()
    }

    /// Fully connected `name` (burn stores the weight as `[in, out]`), then its rounding shift.
    fn fc(&mut self, name: &str) -> Result<()> {
        let wt = self.tensor(&format!("{name}.weight"))?;
        let inputs = self.shape.len();
        let outputs = match wt.shape[..] {
            [i, o] if i == inputs && wt.values.len() == i * o => o,
            _ => {
                return Err(MpcError::model(format!(
                    "`{name}.weight` has shape {:?}, expected [{inputs}, _]",
                    wt.shape
                )));
            }
        };
        let b = match self.model.tensor(&format!("{name}.bias")) {
            Some(_) => self.vector(&format!("{name}.bias"), outputs)?,
            None => vec![0.0; outputs],
        };
        let fw = self.weight_frac(wt.values.iter().fold(0.0, |m, v| m.max((*v as f64).abs())));
        let s = scale(fw as i64);
        let mut weights = vec![0i64; inputs * outputs];
        for i in 0..inputs {
            for o in 0..outputs {
                weights[o * inputs + i] = (wt.values[i * outputs + o] as f64 * s).round() as i64;
            }
        }
        let bias = self.bias(&b, fw)?;
        self.ops.push(Op::Fc(FcLayer {
            inputs,
            outputs,
            weights,
            bias,
        }));
        self.ops.push(Op::Rescale(Rescale::shift(fw)));
        self.shape = TensorShape::new(outputs, 1, 1);
        Ok(())
    }

    fn push(&mut self, op: Op) {
        self.shape = op.output(self.shape);
        self.ops.push(op);
    }

    fn classifier(&mut self) -> Result<()> {
        self.fc("fc1")?;
        self.push(Op::Relu);
        self.fc("fc2")?;
        self.push(Op::Relu);
        self.fc("fc3")
    }

    /// Z → avg-pool (sum, ÷4 folded) → square → fc-ReLU-fc-ReLU-fc.
    fn lenet(&mut self) -> Result<()> {
        let c = self.shape.c;
        self.push(Op::SumPool(2));
        self.block_to_fixed(&vec![1.0; c], &vec![0.0; c], 4.0)?;
        self.push(Op::Square);
        self.push(Op::Rescale(Rescale::shift(self.cfg.frac_bits)));
        self.classifier()
    }

    /// Z → BN2 (folded into the requantisation) → ReLU → max-pool → conv3-5 → max-pool → fc×3.
    fn alexnet(&mut self) -> Result<()> {
        let (sc, sh) = self.batch_norm("bn2", self.shape.c)?;
        self.block_to_fixed(&sc, &sh, 1.0)?;
        self.push(Op::Relu);
        self.push(Op::MaxPool(2));
        for name in ["conv3", "conv4", "conv5"] {
            self.conv(name, 1, 1, None)?;
            self.push(Op::Relu);
        }
        self.push(Op::MaxPool(2));
        self.classifier()
    }

    /// Z → obscure depthwise conv (BN2 folded) → ReLU → max-pool → 11 conv-BN-ReLU (pools) → fc×3.
    fn vgg(&mut self) -> Result<()> {
        let c = self.shape.c;
        self.block_to_fixed(&vec![1.0; c], &vec![0.0; c], 1.0)?;
        self.conv("obscure", 1, c, Some("bn2"))?;
        self.push(Op::Relu);
        self.push(Op::MaxPool(2));
        for i in 0..11 {
            self.conv(
                &format!("blocks.{i}.conv"),
                1,
                1,
                Some(&format!("blocks.{i}.bn")),
            )?;
            self.push(Op::Relu);
            if VGG_POOL_AFTER.contains(&i) {
                self.push(Op::MaxPool(2));
            }
        }
        self.classifier()
    }
}
