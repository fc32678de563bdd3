//! The linear kernels over Z_2^64 (wrapping): what the owner evaluates once on its masks, what the
//! edge servers evaluate per query on masked inputs, and what the shadow evaluates in the clear.
//! A linear op `L(x) = W·x + β` satisfies `L(a) + L(b) − L(c) = L(a + b − c)` exactly in the ring.

use crate::ir::{ConvLayer, FcLayer, Op};
use crate::{MpcError, Result};

/// Applies a linear op to one input vector.
pub fn apply(op: &Op, x: &[u64]) -> Result<Vec<u64>> {
    match op {
        Op::Conv(c) => conv(c, x),
        Op::Fc(f) => fc(f, x),
        other => Err(MpcError::shape(format!(
            "`{}` is not a linear op",
            other.name()
        ))),
    }
}

/// Convolution of one `[cin, h, w]` input.
pub fn conv(l: &ConvLayer, x: &[u64]) -> Result<Vec<u64>> {
    let (inp, out) = (l.input, l.output());
    let groups = l.groups.max(1);
    let (cin_g, cout_g) = (inp.c / groups, l.cout / groups);
    if x.len() != inp.len()
        || l.weights.len() != l.cout * cin_g * l.k * l.k
        || l.bias.len() != l.cout
        || !inp.c.is_multiple_of(groups)
        || !l.cout.is_multiple_of(groups)
    {
        return Err(MpcError::shape(format!(
            "conv: input {} (expected {}), weights {}, bias {}, groups {groups}",
            x.len(),
            inp.len(),
            l.weights.len(),
            l.bias.len()
        )));
    }
    let kk = l.k * l.k;
    let row = cin_g * kk;
    let mut y = vec![0u64; out.len()];
    let mut patches = vec![0u64; out.plane() * row];
    for g in 0..groups {
        im2col(l, x, g * cin_g, cin_g, &mut patches);
        for co in g * cout_g..(g + 1) * cout_g {
            let w: Vec<u64> = l.weights[co * row..(co + 1) * row]
                .iter()
                .map(|&v| v as u64)
                .collect();
            let bias = l.bias[co] as u64;
            for (p, dst) in y[co * out.plane()..(co + 1) * out.plane()]
                .iter_mut()
                .enumerate()
            {
                *dst = bias.wrapping_add(dot(&w, &patches[p * row..(p + 1) * row]));
            }
        }
    }
    Ok(y)
}

/// Wrapping dot product (four independent accumulators, so the loop vectorises).
fn dot(a: &[u64], b: &[u64]) -> u64 {
    let mut acc = [0u64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..4 {
            acc[i] = acc[i].wrapping_add(x[i].wrapping_mul(y[i]));
        }
    }
    let mut s = acc[0]
        .wrapping_add(acc[1])
        .wrapping_add(acc[2])
        .wrapping_add(acc[3]);
    for (x, y) in ra.iter().zip(rb) {
        s = s.wrapping_add(x.wrapping_mul(*y));
    }
    s
}

/// Rows `[position][ci, ky, kx]` of the input channels `c0..c0+cin_g` (zero where padded).
fn im2col(l: &ConvLayer, x: &[u64], c0: usize, cin_g: usize, patches: &mut [u64]) {
    let (inp, out, s) = (l.input, l.output(), l.stride.max(1));
    let kk = l.k * l.k;
    let row = cin_g * kk;
    patches.fill(0);
    for ci in 0..cin_g {
        let src = &x[(c0 + ci) * inp.plane()..(c0 + ci + 1) * inp.plane()];
        for ky in 0..l.k {
            let (y0, y1) = valid_range(out.h, inp.h, s, ky, l.pad);
            for kx in 0..l.k {
                let (x0, x1) = valid_range(out.w, inp.w, s, kx, l.pad);
                let col = ci * kk + ky * l.k + kx;
                for oy in y0..y1 {
                    let iy = oy * s + ky - l.pad;
                    for ox in x0..x1 {
                        let ix = ox * s + kx - l.pad;
                        patches[(oy * out.w + ox) * row + col] = src[iy * inp.w + ix];
                    }
                }
            }
        }
    }
}

/// Range of output indices `o` with `o·stride + tap − pad` inside `0..n`.
fn valid_range(n_out: usize, n_in: usize, stride: usize, tap: usize, pad: usize) -> (usize, usize) {
    let lo = pad.saturating_sub(tap).div_ceil(stride);
    // o·stride + tap − pad ≤ n_in − 1  ⇔  o ≤ (n_in − 1 + pad − tap) / stride
    let hi = match (n_in + pad).checked_sub(tap + 1) {
        Some(v) => (v / stride + 1).min(n_out),
        None => 0,
    };
    (lo, hi.max(lo))
}

/// Fully connected layer on one flattened input.
pub fn fc(l: &FcLayer, x: &[u64]) -> Result<Vec<u64>> {
    if x.len() != l.inputs || l.weights.len() != l.inputs * l.outputs || l.bias.len() != l.outputs {
        return Err(MpcError::shape(format!(
            "fc: input {} (expected {}), weights {}, bias {}",
            x.len(),
            l.inputs,
            l.weights.len(),
            l.bias.len()
        )));
    }
    Ok((0..l.outputs)
        .map(|o| {
            let row = &l.weights[o * l.inputs..(o + 1) * l.inputs];
            row.iter().zip(x).fold(l.bias[o] as u64, |acc, (w, v)| {
                acc.wrapping_add((*w as u64).wrapping_mul(*v))
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::TensorShape;
    use crate::prg::MaskKey;
    use crate::ring;

    /// Direct definition of the convolution, for comparison.
    fn naive(l: &ConvLayer, x: &[i64]) -> Vec<i64> {
        let (inp, out) = (l.input, l.output());
        let (cin_g, cout_g) = (inp.c / l.groups, l.cout / l.groups);
        let mut y = vec![0i64; out.len()];
        for co in 0..l.cout {
            for oy in 0..out.h {
                for ox in 0..out.w {
                    let mut acc = l.bias[co];
                    for cig in 0..cin_g {
                        let ci = (co / cout_g) * cin_g + cig;
                        for ky in 0..l.k {
                            for kx in 0..l.k {
                                let iy = (oy * l.stride + ky) as i64 - l.pad as i64;
                                let ix = (ox * l.stride + kx) as i64 - l.pad as i64;
                                if iy >= 0
                                    && ix >= 0
                                    && (iy as usize) < inp.h
                                    && (ix as usize) < inp.w
                                {
                                    let w = l.weights[((co * cin_g + cig) * l.k + ky) * l.k + kx];
                                    acc += w * x[(ci * inp.h + iy as usize) * inp.w + ix as usize];
                                }
                            }
                        }
                    }
                    y[(co * out.h + oy) * out.w + ox] = acc;
                }
            }
        }
        y
    }

    fn layer(
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        pad: usize,
        groups: usize,
    ) -> ConvLayer {
        let mut prg = MaskKey([3; 32]).stream("w", &[cin as u64, k as u64, stride as u64]);
        let small = |v: u64| (v % 15) as i64 - 7;
        ConvLayer {
            input: TensorShape::new(cin, 7, 6),
            cout,
            k,
            stride,
            pad,
            groups,
            weights: prg
                .ring(cout * (cin / groups) * k * k)
                .into_iter()
                .map(small)
                .collect(),
            bias: prg.ring(cout).into_iter().map(small).collect(),
        }
    }

    #[test]
    fn conv_matches_the_definition_and_is_linear_in_the_ring() {
        for (cin, cout, k, s, p, g) in [
            (2, 3, 3, 1, 1, 1),
            (2, 2, 4, 2, 1, 1),
            (4, 4, 3, 1, 1, 4),
            (3, 2, 5, 1, 0, 1),
            (2, 4, 2, 2, 0, 2),
        ] {
            let l = layer(cin, cout, k, s, p, g);
            let x: Vec<i64> = (0..l.input.len() as i64)
                .map(|i| (i * 37 % 23) - 11)
                .collect();
            let got = conv(&l, &ring::from_signed_vec(&x)).expect("conv");
            assert_eq!(
                ring::to_signed_vec(&got),
                naive(&l, &x),
                "{cin} {cout} {k} {s} {p} {g}"
            );
            assert_eq!(l.macs() as usize, {
                // count the non-padding taps through the naive kernel with unit weights and inputs
                let mut ones = l.clone();
                ones.weights.iter_mut().for_each(|w| *w = 1);
                ones.bias.iter_mut().for_each(|b| *b = 0);
                naive(&ones, &vec![1; l.input.len()]).iter().sum::<i64>() as usize
            });
            // L(a) + L(b) − L(c) = L(a + b − c) for uniform ring vectors.
            let mut prg = MaskKey([4; 32]).stream("x", &[]);
            let (a, b, c) = (prg.ring(x.len()), prg.ring(x.len()), prg.ring(x.len()));
            let lhs = ring::sub(
                &ring::add(&conv(&l, &a).expect("a"), &conv(&l, &b).expect("b")),
                &conv(&l, &c).expect("c"),
            );
            let rhs = conv(&l, &ring::sub(&ring::add(&a, &b), &c)).expect("abc");
            assert_eq!(lhs, rhs);
        }
    }

    #[test]
    fn fc_is_the_matrix_product() {
        let l = FcLayer {
            inputs: 3,
            outputs: 2,
            weights: vec![1, -2, 3, 0, 4, -1],
            bias: vec![5, -6],
        };
        let y = fc(&l, &ring::from_signed_vec(&[1, 2, -3])).expect("fc");
        assert_eq!(ring::to_signed_vec(&y), vec![5 + 1 - 4 - 9, -6 + 8 + 3]);
        assert!(fc(&l, &[1, 2]).is_err());
    }
}
