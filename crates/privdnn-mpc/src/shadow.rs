//! The integer shadow: the model evaluated in the clear, op by op, with exactly the arithmetic the
//! protocols reproduce (linear ops wrapping in Z_2^64, everything else on signed values). The
//! non-linear ops are public so a protocol's device evaluates them with this very code.

use crate::ir::{IntModel, Op, TensorShape};
use crate::{MpcError, Result, linear, ring};

/// The centred input of one raw image (`[cin, h, w]` bytes): PrivDNN's `X = raw − offset`.
pub fn center(model: &IntModel, raw: &[u8]) -> Result<Vec<u64>> {
    let s = model.input_shape();
    if raw.len() != s.len() || model.block.input_offset.len() != s.c {
        return Err(MpcError::shape(format!(
            "image of {} bytes, the model takes {}",
            raw.len(),
            s.len()
        )));
    }
    Ok(ring::from_signed_vec(&model.block.center(raw)))
}

/// Applies a non-linear op (anything but conv / FC) to `x` of shape `s`, in the clear.
pub fn apply_clear(op: &Op, s: TensorShape, x: &[u64]) -> Result<Vec<u64>> {
    if x.len() != s.len() {
        return Err(MpcError::shape(format!(
            "`{}` got {} values for shape {:?}",
            op.name(),
            x.len(),
            s
        )));
    }
    Ok(match op {
        Op::Square => x.iter().map(|v| v.wrapping_mul(*v)).collect(),
        Op::Relu => x
            .iter()
            .map(|&v| if (v as i64) < 0 { 0 } else { v })
            .collect(),
        Op::Rescale(r) => rescale(r, s, x),
        Op::MaxPool(k) => pool(s, *k, x, |a, b| if (b as i64) > (a as i64) { b } else { a }),
        Op::SumPool(k) => pool(s, *k, x, u64::wrapping_add),
        Op::Conv(_) | Op::Fc(_) => {
            return Err(MpcError::shape(format!(
                "`{}` is linear, not a clear op",
                op.name()
            )));
        }
    })
}

/// Requantisation of a `[c, h, w]` tensor: the plain rounding shift in `i64` when the
/// multiplier is 1 and the addend 0 (exact: the sum cannot overflow for |x| < 2^62), the
/// per-channel affine map in `i128` otherwise.
fn rescale(r: &crate::ir::Rescale, s: TensorShape, x: &[u64]) -> Vec<u64> {
    if r.mul == [1] && r.add == [0] && r.shift < 63 {
        let half = if r.shift == 0 {
            0
        } else {
            1i64 << (r.shift - 1)
        };
        return x
            .iter()
            .map(|&v| ((v as i64).wrapping_add(half) >> r.shift) as u64)
            .collect();
    }
    let plane = s.plane().max(1);
    x.chunks(plane)
        .enumerate()
        .flat_map(|(c, chunk)| chunk.iter().map(move |&v| r.apply(v as i64, c) as u64))
        .collect()
}

/// `k×k` windows at stride `k` (floor of the size), folded with `f` from the window's first
/// value.
fn pool(s: TensorShape, k: usize, x: &[u64], f: impl Fn(u64, u64) -> u64) -> Vec<u64> {
    let k = k.max(1);
    let (oh, ow) = (s.h / k, s.w / k);
    let mut out = Vec::with_capacity(s.c * oh * ow);
    for c in 0..s.c {
        let plane = &x[c * s.plane()..(c + 1) * s.plane()];
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = plane[oy * k * s.w + ox * k];
                for t in 1..k * k {
                    acc = f(acc, plane[(oy * k + t / k) * s.w + ox * k + t % k]);
                }
                out.push(acc);
            }
        }
    }
    out
}

/// Applies op `i` of the model (linear or not) in the clear.
pub fn apply_op(model: &IntModel, shapes: &[TensorShape], i: usize, x: &[u64]) -> Result<Vec<u64>> {
    let op = &model.ops[i];
    if op.is_linear() {
        linear::apply(op, x)
    } else {
        apply_clear(op, shapes[i], x)
    }
}

/// Every intermediate tensor of one raw image: the centred input, then the output of each op.
pub fn trace(model: &IntModel, raw: &[u8]) -> Result<Vec<Vec<u64>>> {
    let shapes = model.shapes();
    let mut out = vec![center(model, raw)?];
    for i in 0..model.ops.len() {
        let next = apply_op(model, &shapes, i, &out[i])?;
        out.push(next);
    }
    Ok(out)
}

/// Integer logits of one raw image (`logits / 2^logit_frac_bits` approximates the float logits).
pub fn logits(model: &IntModel, raw: &[u8]) -> Result<Vec<i64>> {
    let shapes = model.shapes();
    let mut x = center(model, raw)?;
    for i in 0..model.ops.len() {
        x = apply_op(model, &shapes, i, &x)?;
    }
    Ok(ring::to_signed_vec(&x))
}

/// Index of the largest logit (the first on ties, as burn's argmax).
pub fn argmax(logits: &[i64]) -> usize {
    let mut best = 0;
    for (i, v) in logits.iter().enumerate() {
        if *v > logits[best] {
            best = i;
        }
    }
    best
}

/// Operation counts of one inference.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OpCounts {
    /// Multiply–accumulates of the linear ops (conv, FC).
    pub linear_macs: u64,
    /// Input plus output elements of the linear ops (what a masking protocol moves per server).
    pub linear_io: u64,
    /// Elementwise operations of the non-linear ops (square, ReLU, pooling comparisons or
    /// additions, requantisation).
    pub clear_ops: u64,
    /// Number of linear ops (one round trip each in the edge protocol).
    pub linear_layers: u64,
}

/// Operation counts of the model.
pub fn op_counts(model: &IntModel) -> OpCounts {
    let shapes = model.shapes();
    let mut c = OpCounts::default();
    for (i, op) in model.ops.iter().enumerate() {
        let (inp, out) = (shapes[i], shapes[i + 1]);
        match op {
            Op::Conv(l) => {
                c.linear_macs += l.macs();
                c.linear_io += (inp.len() + out.len()) as u64;
                c.linear_layers += 1;
            }
            Op::Fc(f) => {
                c.linear_macs += (f.inputs * f.outputs) as u64;
                c.linear_io += (f.inputs + f.outputs) as u64;
                c.linear_layers += 1;
            }
            Op::MaxPool(k) | Op::SumPool(k) => {
                c.clear_ops += (out.len() * (k * k).saturating_sub(1)) as u64
            }
            Op::Square | Op::Relu | Op::Rescale(_) => c.clear_ops += inp.len() as u64,
        }
    }
    c
}
