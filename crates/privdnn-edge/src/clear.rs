//! The device's non-linear steps in place: the same arithmetic as
//! `privdnn_mpc::shadow::apply_clear` (tested equal on every op kind), without allocating a new
//! tensor per op — pooling writes its outputs over the front of its own input (every window
//! of output `o` starts at or after index `o`, so no value is overwritten before it is read).

use privdnn_mpc::{Op, Rescale, TensorShape};

use crate::{EdgeError, Result};

/// Applies a non-linear op to `x` of shape `s` in place (`x` shrinks for pooling).
pub fn apply_in_place(op: &Op, s: TensorShape, x: &mut Vec<u64>) -> Result<()> {
    if x.len() != s.len() {
        return Err(EdgeError::protocol(format!(
            "`{}` got {} values for shape {s:?}",
            op.name(),
            x.len()
        )));
    }
    match op {
        Op::Square => x.iter_mut().for_each(|v| *v = v.wrapping_mul(*v)),
        Op::Relu => x.iter_mut().for_each(|v| {
            if (*v as i64) < 0 {
                *v = 0;
            }
        }),
        Op::Rescale(r) => rescale(r, s, x),
        Op::MaxPool(k) => pool(s, *k, x, |a, b| if (b as i64) > (a as i64) { b } else { a }),
        Op::SumPool(k) => pool(s, *k, x, u64::wrapping_add),
        Op::Conv(_) | Op::Fc(_) => {
            return Err(EdgeError::protocol(format!(
                "`{}` is linear, not a device op",
                op.name()
            )));
        }
    }
    Ok(())
}

/// Requantisation: the plain rounding shift in `i64` when the multiplier is 1 and the addend 0
/// (as the shadow), the per-channel affine map of [`Rescale::apply`] otherwise.
fn rescale(r: &Rescale, s: TensorShape, x: &mut [u64]) {
    if r.mul == [1] && r.add == [0] && r.shift < 63 {
        let half = if r.shift == 0 {
            0
        } else {
            1i64 << (r.shift - 1)
        };
        for v in x.iter_mut() {
            *v = ((*v as i64).wrapping_add(half) >> r.shift) as u64;
        }
        return;
    }
    // Rescale::apply's formula with the channel's multiplier and addend looked up once
    let half = if r.shift == 0 {
        0
    } else {
        1i128 << (r.shift - 1)
    };
    let at = |v: &[i64], c: usize| v.get(c % v.len().max(1)).copied().unwrap_or(0) as i128;
    for (c, chunk) in x.chunks_mut(s.plane().max(1)).enumerate() {
        let (m, a) = (at(&r.mul, c), at(&r.add, c) + half);
        for v in chunk.iter_mut() {
            *v = ((*v as i64 as i128 * m + a) >> r.shift) as i64 as u64;
        }
    }
}

/// `k×k` windows at stride `k` (floor of the size), folded with `f`, written in place.
fn pool(s: TensorShape, k: usize, x: &mut Vec<u64>, f: impl Fn(u64, u64) -> u64) {
    let k = k.max(1);
    let (oh, ow) = (s.h / k, s.w / k);
    let mut o = 0;
    for c in 0..s.c {
        for oy in 0..oh {
            let top = c * s.plane() + oy * k * s.w;
            for ox in 0..ow {
                let first = top + ox * k;
                let mut acc = x[first];
                for ky in 0..k {
                    let row = first + ky * s.w;
                    for &v in &x[row + usize::from(ky == 0)..row + k] {
                        acc = f(acc, v);
                    }
                }
                x[o] = acc;
                o += 1;
            }
        }
    }
    x.truncate(o);
}

#[cfg(test)]
mod tests {
    use super::*;
    use privdnn_mpc::MaskKey;
    use privdnn_mpc::shadow::apply_clear;

    #[test]
    fn in_place_ops_equal_the_shadow() {
        let s = TensorShape::new(3, 7, 6);
        let mut prg = MaskKey([5; 32]).stream("clear", &[]);
        // small signed values (as activations are) and uniform ring values
        let small: Vec<u64> = prg
            .ring(s.len())
            .iter()
            .map(|v| ((*v % 20_001) as i64 - 10_000) as u64)
            .collect();
        let uniform = prg.ring(s.len());
        let ops = [
            Op::Square,
            Op::Relu,
            Op::Rescale(Rescale::shift(0)),
            Op::Rescale(Rescale::shift(7)),
            Op::Rescale(Rescale {
                mul: vec![3, -5, 7],
                add: vec![11, 0, -13],
                shift: 4,
            }),
            Op::MaxPool(2),
            Op::MaxPool(3),
            Op::SumPool(2),
        ];
        for op in &ops {
            for x in [&small, &uniform] {
                let want = apply_clear(op, s, x).expect("shadow");
                let mut got = x.clone();
                apply_in_place(op, s, &mut got).expect("in place");
                assert_eq!(got, want, "{}", op.name());
            }
        }
        let mut short = vec![0u64; 5];
        assert!(apply_in_place(&Op::Relu, s, &mut short).is_err());
    }
}
