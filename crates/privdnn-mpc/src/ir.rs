//! The integer model: a raw image is centred by PrivDNN's integer offsets, then a flat list of
//! [`Op`]s runs on `[c, h, w]` tensors of ring elements. Linear ops ([`ConvLayer`], [`FcLayer`])
//! are defined over Z_2^64 (wrapping), which is what the outsourcing protocols compute; every other
//! op reads its input as signed integers and runs in the clear where a protocol reveals the value
//! (device, garbled circuit). The first three ops are PrivDNN's quantised block exactly
//! (combined conv1+pool, square, conv2), kept as [`IntModel::block`] for the bit-for-bit check.

use privdnn_artifacts::ModelSpec;
use privdnn_quant::IntBlock;
use serde::{Deserialize, Serialize};

/// Shape of an activation tensor (`[c, h, w]`; fully connected activations are `[n, 1, 1]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorShape {
    /// Channels.
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
}

impl TensorShape {
    /// A `[c, h, w]` shape.
    pub fn new(c: usize, h: usize, w: usize) -> Self {
        Self { c, h, w }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// True when the tensor holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Elements per channel.
    pub fn plane(&self) -> usize {
        self.h * self.w
    }
}

/// A 2-d convolution over Z_2^64 (zero padding, square kernel, grouped).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvLayer {
    /// Input shape.
    pub input: TensorShape,
    /// Output channels.
    pub cout: usize,
    /// Kernel size.
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on every side.
    pub pad: usize,
    /// Groups (input and output channels split evenly; VGG's obscure conv: groups = channels).
    pub groups: usize,
    /// Weights `[cout, cin/groups, k, k]` (signed integers).
    pub weights: Vec<i64>,
    /// Bias `[cout]` at the output scale.
    pub bias: Vec<i64>,
}

impl ConvLayer {
    /// Output shape.
    pub fn output(&self) -> TensorShape {
        let side = |n: usize| (n + 2 * self.pad).saturating_sub(self.k) / self.stride.max(1) + 1;
        TensorShape::new(self.cout, side(self.input.h), side(self.input.w))
    }

    /// Multiply–accumulates per evaluation (padding taps excluded).
    pub fn macs(&self) -> u64 {
        let out = self.output();
        let per_group = (self.input.c / self.groups.max(1)) as u64;
        let mut taps = 0u64;
        for oy in 0..out.h {
            for ox in 0..out.w {
                for ky in 0..self.k {
                    for kx in 0..self.k {
                        let y = (oy * self.stride + ky).checked_sub(self.pad);
                        let x = (ox * self.stride + kx).checked_sub(self.pad);
                        if matches!((y, x), (Some(y), Some(x)) if y < self.input.h && x < self.input.w)
                        {
                            taps += 1;
                        }
                    }
                }
            }
        }
        taps * per_group * self.cout as u64
    }
}

/// A fully connected layer over Z_2^64: `y_o = b_o + Σ_i W[o, i] · x_i`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FcLayer {
    /// Inputs.
    pub inputs: usize,
    /// Outputs.
    pub outputs: usize,
    /// Weights `[outputs, inputs]` (signed integers).
    pub weights: Vec<i64>,
    /// Bias `[outputs]` at the output scale.
    pub bias: Vec<i64>,
}

/// Per-channel affine requantisation in the clear:
/// `y = floor((x · mul_c + add_c + 2^(shift−1)) / 2^shift)` computed in `i128` (round to nearest,
/// ties up; `shift = 0` adds nothing). With `mul = [1]`, `add = [0]` it is the plain rounding
/// shift that brings a product scale back to the activation scale; per-channel values fold a
/// batch norm and the conversion of PrivDNN's block output (scale `out_scale`) to fixed point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rescale {
    /// Multiplier per channel (one value = all channels).
    pub mul: Vec<i64>,
    /// Addend per channel at the pre-shift scale (one value = all channels).
    pub add: Vec<i64>,
    /// Right shift.
    pub shift: u32,
}

impl Rescale {
    /// The plain rounding shift by `shift` bits.
    pub fn shift(shift: u32) -> Self {
        Self {
            mul: vec![1],
            add: vec![0],
            shift,
        }
    }

    /// Applies the requantisation to one value of channel `c`.
    pub fn apply(&self, x: i64, c: usize) -> i64 {
        let m = self.mul[c % self.mul.len().max(1)] as i128;
        let a = self.add[c % self.add.len().max(1)] as i128;
        let half = if self.shift == 0 {
            0
        } else {
            1i128 << (self.shift - 1)
        };
        ((x as i128 * m + a + half) >> self.shift) as i64
    }
}

/// One step of the integer model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// Convolution over Z_2^64 (outsourced by the protocols).
    Conv(ConvLayer),
    /// Fully connected layer over Z_2^64 (outsourced); flattens its `[c, h, w]` input row-major.
    Fc(FcLayer),
    /// `x²` (wrapping).
    Square,
    /// `max(x, 0)` on signed values.
    Relu,
    /// Max pooling, `k×k` windows at stride `k`, no padding (floor of the size).
    MaxPool(usize),
    /// Sum over `k×k` windows at stride `k` (an average pool whose `1/k²` is folded into the
    /// following [`Op::Rescale`]).
    SumPool(usize),
    /// Requantisation (see [`Rescale`]).
    Rescale(Rescale),
}

impl Op {
    /// True for the ops an outsourcing protocol sends to the servers.
    pub fn is_linear(&self) -> bool {
        matches!(self, Op::Conv(_) | Op::Fc(_))
    }

    /// Output shape for input `s`.
    pub fn output(&self, s: TensorShape) -> TensorShape {
        match self {
            Op::Conv(c) => c.output(),
            Op::Fc(f) => TensorShape::new(f.outputs, 1, 1),
            Op::MaxPool(k) | Op::SumPool(k) => TensorShape::new(s.c, s.h / k, s.w / k),
            Op::Square | Op::Relu | Op::Rescale(_) => s,
        }
    }

    /// Short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv(_) => "conv",
            Op::Fc(_) => "fc",
            Op::Square => "square",
            Op::Relu => "relu",
            Op::MaxPool(_) => "maxpool",
            Op::SumPool(_) => "sumpool",
            Op::Rescale(_) => "rescale",
        }
    }
}

/// The integer model of a trained network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IntModel {
    /// Shape of the trained model.
    pub spec: ModelSpec,
    /// PrivDNN's quantised block (its ops are the first three of `ops`).
    pub block: IntBlock,
    /// Every op from the centred image to the logits.
    pub ops: Vec<Op>,
    /// Logits are `value / 2^logit_frac_bits`.
    pub logit_frac_bits: u32,
    /// Fractional bits of the tail's activations.
    pub frac_bits: u32,
}

impl IntModel {
    /// Shape of the centred input.
    pub fn input_shape(&self) -> TensorShape {
        let s = &self.block.shape;
        TensorShape::new(s.cin, s.height, s.width)
    }

    /// Input shape of every op, then the output shape (`ops.len() + 1` entries).
    pub fn shapes(&self) -> Vec<TensorShape> {
        let mut out = vec![self.input_shape()];
        for op in &self.ops {
            let last = out[out.len() - 1];
            out.push(op.output(last));
        }
        out
    }

    /// Indices (into `ops`) of the linear ops, in order.
    pub fn linear_indices(&self) -> Vec<usize> {
        (0..self.ops.len())
            .filter(|&i| self.ops[i].is_linear())
            .collect()
    }

    /// A copy without any weight or bias of the linear ops (what a device may hold): shapes and
    /// the non-linear steps remain.
    pub fn without_linear_weights(&self) -> IntModel {
        let mut m = self.clone();
        m.block.w1.clear();
        m.block.b1.clear();
        m.block.w2.clear();
        m.block.b2.clear();
        for op in m.ops.iter_mut() {
            match op {
                Op::Conv(c) => {
                    c.weights.clear();
                    c.bias.clear();
                }
                Op::Fc(f) => {
                    f.weights.clear();
                    f.bias.clear();
                }
                _ => {}
            }
        }
        m
    }
}
