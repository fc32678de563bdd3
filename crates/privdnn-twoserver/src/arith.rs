//! Share arithmetic shared by the servers and the dealer: linear ops with substituted weights,
//! triple streams, local steps.

use privdnn_mpc::{MaskKey, Op, TensorShape, linear, ring, shadow};

use crate::plan::Step;
use crate::{Result, TwoServerError};

/// Stream labels of the dealer-derived material (both the dealer and server `i` expand them from
/// the seed they share).
pub(crate) const LABEL_B: &str = "twoserver/B";
pub(crate) const LABEL_A: &str = "twoserver/A";
pub(crate) const LABEL_C: &str = "twoserver/C";

/// `op` (conv or FC of the public model) evaluated on `x` with weights `w` and bias `b` (`None`:
/// zero bias), wrapping in Z_2^64.
pub(crate) fn linear_with(op: &Op, w: &[u64], b: Option<&[u64]>, x: &[u64]) -> Result<Vec<u64>> {
    let signed = |v: &[u64]| ring::to_signed_vec(v);
    let op = match op {
        Op::Conv(c) => {
            let mut c = c.clone();
            c.weights = signed(w);
            c.bias = b.map_or_else(|| vec![0; c.cout], signed);
            Op::Conv(c)
        }
        Op::Fc(f) => {
            let mut f = f.clone();
            f.weights = signed(w);
            f.bias = b.map_or_else(|| vec![0; f.outputs], signed);
            Op::Fc(f)
        }
        other => {
            return Err(TwoServerError::protocol(format!(
                "`{}` is not linear",
                other.name()
            )));
        }
    };
    Ok(linear::apply(&op, x)?)
}

/// Number of weights of a linear op.
pub(crate) fn weight_count(op: &Op, input: TensorShape) -> usize {
    match op {
        Op::Conv(c) => c.cout * (input.c / c.groups.max(1)) * c.k * c.k,
        Op::Fc(f) => f.inputs * f.outputs,
        _ => 0,
    }
}

/// Number of bias values of a linear op.
pub(crate) fn bias_count(op: &Op) -> usize {
    match op {
        Op::Conv(c) => c.cout,
        Op::Fc(f) => f.outputs,
        _ => 0,
    }
}

/// The dealer stream `label` of server seed `key` for `(query, step)` or `(op)`, `n` words.
pub(crate) fn stream(key: &MaskKey, label: &str, idx: &[u64], n: usize) -> Vec<u64> {
    key.stream(label, idx).ring(n)
}

/// Applies a local step (sum pool or affine) to server `id`'s share; other steps are errors.
pub(crate) fn local(step: &Step, id: u8, x: &[u64]) -> Result<Vec<u64>> {
    match step {
        Step::SumPool { k, shape } => Ok(shadow::apply_clear(&Op::SumPool(*k), *shape, x)?),
        Step::Affine { mul, add, shape } => {
            if x.len() != shape.len() || mul.is_empty() || add.is_empty() {
                return Err(TwoServerError::protocol("affine step: bad lengths"));
            }
            let plane = shape.plane().max(1);
            Ok(x.iter()
                .enumerate()
                .map(|(i, &v)| {
                    let c = i / plane;
                    let m = mul[c % mul.len()] as u64;
                    let a = if id == 1 {
                        add[c % add.len()] as u64
                    } else {
                        0
                    };
                    v.wrapping_mul(m).wrapping_add(a)
                })
                .collect())
        }
        _ => Err(TwoServerError::protocol("not a local step")),
    }
}
