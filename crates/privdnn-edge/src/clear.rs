//! The device's non-linear steps in place: the same arithmetic as
//! `privdnn_mpc::shadow::apply_clear` (tested equal on every op kind), without allocating a new
//! tensor per op — pooling writes its outputs over the front of its own input (every window
//! of output `o` starts at or after index `o`, so no value is overwritten before it is read).
//!
//! [`unmask_run`] fuses the unmasking of an edge's answer with the elementwise steps that follow
//! it (requantisation, ReLU, square): block by block of [`BLOCK`] values, so each value is
//! loaded once from the reply, finished in L1 and stored once; pooling then runs on the item
//! while it is still in cache.

use privdnn_mpc::{Op, Rescale, TensorShape};

use crate::frames::words;
use crate::{EdgeError, Result};

/// Values per block of the fused unmasking loop (16 KiB: stays in L1 across the steps).
pub const BLOCK: usize = 2048;

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
        Op::Square | Op::Relu | Op::Rescale(_) => elementwise(op, s, x, 0),
        Op::MaxPool(k) => pool(s, *k, x, max_signed),
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

/// The larger of two ring elements read as signed values.
#[inline(always)]
fn max_signed(a: u64, b: u64) -> u64 {
    if (b as i64) > (a as i64) { b } else { a }
}

/// True for the ops that map each value on its own (square, ReLU, requantisation).
fn is_elementwise(op: &Op) -> bool {
    matches!(op, Op::Square | Op::Relu | Op::Rescale(_))
}

/// Recovers one item `x = reply + d` (reply: `d.len()` little-endian words) and applies `run`
/// (the non-linear ops up to the next linear one; `shapes[k]` is the input shape of `run[k]`)
/// in place: the leading elementwise ops fused with the unmasking block by block, the rest
/// (pooling and what follows it) op by op on the item while it is in cache.
pub fn unmask_run(
    reply: &[u8],
    d: &[u64],
    run: &[Op],
    shapes: &[TensorShape],
    x: &mut Vec<u64>,
) -> Result<()> {
    let n = d.len();
    if reply.len() != 8 * n
        || shapes.len() < run.len()
        || run.first().is_some_and(|_| shapes[0].len() != n)
    {
        return Err(EdgeError::protocol(format!(
            "unmasking {} reply bytes with {n} pad values",
            reply.len()
        )));
    }
    let fused = run.iter().take_while(|op| is_elementwise(op)).count();
    x.clear();
    x.reserve(n);
    for (start, (bytes, pad)) in (0..n)
        .step_by(BLOCK)
        .zip(reply.chunks(8 * BLOCK).zip(d.chunks(BLOCK)))
    {
        x.extend(words(bytes).zip(pad).map(|(v, p)| v.wrapping_add(*p)));
        for (op, &s) in run[..fused].iter().zip(shapes) {
            elementwise(op, s, &mut x[start..], start);
        }
    }
    for (op, &s) in run[fused..].iter().zip(&shapes[fused..]) {
        apply_in_place(op, s, x)?;
    }
    Ok(())
}

/// An elementwise op on `x`, the values `first..first + x.len()` of a tensor of shape `s`.
fn elementwise(op: &Op, s: TensorShape, x: &mut [u64], first: usize) {
    match op {
        Op::Square => x.iter_mut().for_each(|v| *v = v.wrapping_mul(*v)),
        Op::Relu => x.iter_mut().for_each(|v| *v = max_signed(*v, 0)),
        Op::Rescale(r) => rescale(r, s, x, first),
        _ => {}
    }
}

/// Requantisation of the values `first..first + x.len()` of a tensor of shape `s`: the plain
/// rounding shift in `i64` when the multiplier is 1 and the addend 0 (as the shadow), the
/// per-channel affine map of [`Rescale::apply`] otherwise.
fn rescale(r: &Rescale, s: TensorShape, x: &mut [u64], first: usize) {
    if r.mul == [1] && r.add == [0] && r.shift < 63 {
        let half = if r.shift == 0 {
            0
        } else {
            1i64 << (r.shift - 1)
        };
        let shift = r.shift;
        for v in x.iter_mut() {
            *v = ((*v as i64).wrapping_add(half) >> shift) as u64;
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
    let plane = s.plane().max(1);
    let mut pos = 0;
    while pos < x.len() {
        let c = (first + pos) / plane;
        let end = ((c + 1) * plane - first).min(x.len());
        let (m, a) = (at(&r.mul, c), at(&r.add, c) + half);
        for v in x[pos..end].iter_mut() {
            *v = ((*v as i64 as i128 * m + a) >> r.shift) as i64 as u64;
        }
        pos = end;
    }
}

/// `k×k` windows at stride `k` (floor of the size), folded with `f`, written in place.
fn pool(s: TensorShape, k: usize, x: &mut Vec<u64>, f: impl Fn(u64, u64) -> u64 + Copy) {
    let k = k.max(1);
    if k == 2 {
        return pool2(s, x, f);
    }
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

/// 2×2 windows at stride 2, one output row at a time (folded in the shadow's order: top left,
/// top right, bottom left, bottom right), written in place.
fn pool2(s: TensorShape, x: &mut Vec<u64>, f: impl Fn(u64, u64) -> u64 + Copy) {
    let (oh, ow) = (s.h / 2, s.w / 2);
    let mut row = vec![0u64; ow];
    let mut o = 0;
    for c in 0..s.c {
        for oy in 0..oh {
            let top = c * s.plane() + 2 * oy * s.w;
            let (upper, lower) = x[top..top + 2 * s.w].split_at(s.w);
            for ((dst, u), l) in row
                .iter_mut()
                .zip(upper.chunks_exact(2))
                .zip(lower.chunks_exact(2))
            {
                *dst = f(f(f(u[0], u[1]), l[0]), l[1]);
            }
            x[o..o + ow].copy_from_slice(&row);
            o += ow;
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

    #[test]
    fn fused_unmasking_equals_the_shadow() {
        // planes of 1, of 42 and larger than a block, odd sides (pooling floors)
        for s in [
            TensorShape::new(50, 1, 1),
            TensorShape::new(5, 7, 6),
            TensorShape::new(3, 47, 45),
        ] {
            let mut prg = MaskKey([6; 32]).stream("fused", &[s.len() as u64]);
            let y: Vec<u64> = prg
                .ring(s.len())
                .iter()
                .map(|v| ((*v % 2_000_001) as i64 - 1_000_000) as u64)
                .collect();
            let d = prg.ring(s.len());
            let reply: Vec<u8> = y
                .iter()
                .zip(&d)
                .flat_map(|(v, p)| v.wrapping_sub(*p).to_le_bytes())
                .collect();
            let c = s.c;
            let per_channel = Rescale {
                mul: (0..c as i64).map(|k| 3 - k).collect(),
                add: (0..c as i64).map(|k| 100 * k - 7).collect(),
                shift: 5,
            };
            let runs: Vec<Vec<Op>> = vec![
                vec![],
                vec![Op::Rescale(Rescale::shift(9)), Op::Relu],
                vec![
                    Op::Rescale(per_channel),
                    Op::Relu,
                    Op::MaxPool(2),
                    Op::Square,
                ],
                vec![Op::Square, Op::SumPool(2), Op::Rescale(Rescale::shift(3))],
            ];
            for run in &runs {
                let (mut want, mut shape) = (y.clone(), s);
                let mut shapes = Vec::new();
                for op in run {
                    shapes.push(shape);
                    want = apply_clear(op, shape, &want).expect("shadow");
                    shape = op.output(shape);
                }
                let mut got = Vec::new();
                unmask_run(&reply, &d, run, &shapes, &mut got).expect("fused");
                assert_eq!(got, want, "{s:?} {run:?}");
            }
        }
    }
}
