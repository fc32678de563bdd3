//! Fixed-point encoding and the first layer's geometry.
//!
//! Pixels are encoded at `input_bits` fractional bits (after the model's normalisation), conv1
//! weights at `weight_bits`, so z1 = conv(W, X) + b sits at `input_bits + weight_bits` (the bias
//! is kept at that scale). The server returns ∂(summed loss)/∂z1 at `grad_bits`; the learning rate
//! divided by the batch is encoded at `rate_bits`. The weight update `lr/n · Σ δ·X` is at
//! `input_bits + grad_bits + rate_bits` and is truncated locally on the shares to `weight_bits`
//! (SecureML-style: ±1 LSB, and a wrong result with probability ≈ |value| / 2^63).

use privdnn_mpc::ir::{ConvLayer, TensorShape};
use privdnn_mpc::{linear, ring};
use serde::{Deserialize, Serialize};

use crate::error::SpnnError;

/// Fractional bits of every fixed-point quantity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encoding {
    /// Pixels (normalised).
    pub input_bits: u32,
    /// conv1 weights.
    pub weight_bits: u32,
    /// The server's gradient δ = ∂(summed loss)/∂z1.
    pub grad_bits: u32,
    /// The learning rate divided by the batch size.
    pub rate_bits: u32,
}

impl Default for Encoding {
    fn default() -> Self {
        Self {
            input_bits: 8,
            weight_bits: 20,
            grad_bits: 16,
            rate_bits: 20,
        }
    }
}

impl Encoding {
    /// Fractional bits of z1 and of the bias.
    pub fn output_bits(&self) -> u32 {
        self.input_bits + self.weight_bits
    }

    /// Right shift that brings `lr_q · Σ δ_q·X_q` to the weights' scale.
    pub fn update_shift(&self) -> u32 {
        (self.input_bits + self.grad_bits + self.rate_bits).saturating_sub(self.weight_bits)
    }

    /// Right shift that brings `lr_q · Σ δ_q` to the bias' scale.
    pub fn bias_shift(&self) -> u32 {
        (self.grad_bits + self.rate_bits).saturating_sub(self.output_bits())
    }

    /// `lr / n` at `rate_bits`.
    pub fn rate(&self, lr: f64, n: usize) -> u64 {
        ring::encode_fixed(lr / n.max(1) as f64, self.rate_bits)
    }
}

/// The first conv layer's shape and the vertical split of the image columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Geometry {
    /// Input `[c, h, w]` of one image.
    pub input: TensorShape,
    /// Output channels.
    pub cout: usize,
    /// Kernel size.
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding.
    pub pad: usize,
    /// Holder A owns columns `0..cut`, holder B columns `cut..w`.
    pub cut: usize,
}

impl Geometry {
    /// A geometry; the cut must leave both holders at least one column.
    pub fn new(
        input: TensorShape,
        cout: usize,
        k: usize,
        stride: usize,
        pad: usize,
        cut: usize,
    ) -> Result<Self, SpnnError> {
        if cut == 0 || cut >= input.w || k == 0 || cout == 0 || k > input.h + 2 * pad {
            return Err(SpnnError::config(format!(
                "cut {cut} of {} columns, kernel {k}, {cout} filters",
                input.w
            )));
        }
        Ok(Self {
            input,
            cout,
            k,
            stride: stride.max(1),
            pad,
            cut,
        })
    }

    /// Weights per filter bank `[cout, c, k, k]`.
    pub fn weights(&self) -> usize {
        self.cout * self.input.c * self.k * self.k
    }

    /// Values of one image.
    pub fn image(&self) -> usize {
        self.input.len()
    }

    /// Output shape of one image.
    pub fn output(&self) -> TensorShape {
        self.layer(Vec::new(), Vec::new()).output()
    }

    /// Columns `[start, end)` of holder `party` (0 = A, 1 = B).
    pub fn columns(&self, party: usize) -> (usize, usize) {
        if party == 0 {
            (0, self.cut)
        } else {
            (self.cut, self.input.w)
        }
    }

    /// Values of one image owned by holder `party`.
    pub fn part(&self, party: usize) -> usize {
        let (a, b) = self.columns(party);
        self.input.c * self.input.h * (b - a)
    }

    fn layer(&self, weights: Vec<i64>, bias: Vec<i64>) -> ConvLayer {
        ConvLayer {
            input: self.input,
            cout: self.cout,
            k: self.k,
            stride: self.stride,
            pad: self.pad,
            groups: 1,
            weights,
            bias,
        }
    }

    /// conv(w, x) + bias over the ring for every image of `x` (`n × image`), no truncation.
    pub fn conv(&self, w: &[u64], bias: Option<&[u64]>, x: &[u64]) -> Result<Vec<u64>, SpnnError> {
        let b = match bias {
            Some(b) => ring::to_signed_vec(b),
            None => vec![0; self.cout],
        };
        let layer = self.layer(ring::to_signed_vec(w), b);
        let mut out = Vec::with_capacity(x.len() / self.image().max(1) * self.output().len());
        for img in x.chunks(self.image()) {
            out.extend(linear::conv(&layer, img)?);
        }
        Ok(out)
    }

    /// Σ over images and positions of δ[n, co, p] · x[n, ci, p + tap]: the weight gradient
    /// `[cout, c, k, k]` (bilinear, so it runs on a share of `x` with a public `δ`).
    pub fn weight_gradient(&self, x: &[u64], delta: &[u64]) -> Vec<u64> {
        let (inp, out) = (self.input, self.output());
        let mut g = vec![0u64; self.weights()];
        for (img, d) in x.chunks(self.image()).zip(delta.chunks(out.len())) {
            for co in 0..self.cout {
                let dplane = &d[co * out.plane()..(co + 1) * out.plane()];
                for ci in 0..inp.c {
                    let xplane = &img[ci * inp.plane()..(ci + 1) * inp.plane()];
                    for ky in 0..self.k {
                        for kx in 0..self.k {
                            let mut acc = 0u64;
                            for oy in 0..out.h {
                                let iy = (oy * self.stride + ky) as isize - self.pad as isize;
                                if iy < 0 || iy as usize >= inp.h {
                                    continue;
                                }
                                let row = &xplane[iy as usize * inp.w..(iy as usize + 1) * inp.w];
                                let drow = &dplane[oy * out.w..(oy + 1) * out.w];
                                for (ox, dv) in drow.iter().enumerate() {
                                    let ix = (ox * self.stride + kx) as isize - self.pad as isize;
                                    if ix >= 0 && (ix as usize) < inp.w {
                                        acc = acc.wrapping_add(dv.wrapping_mul(row[ix as usize]));
                                    }
                                }
                            }
                            let idx = ((co * inp.c + ci) * self.k + ky) * self.k + kx;
                            g[idx] = g[idx].wrapping_add(acc);
                        }
                    }
                }
            }
        }
        g
    }

    /// Σ over images and positions of δ per output channel (the bias gradient).
    pub fn bias_gradient(&self, delta: &[u64]) -> Vec<u64> {
        let plane = self.output().plane();
        let mut g = vec![0u64; self.cout];
        for d in delta.chunks(self.output().len()) {
            for (co, gv) in g.iter_mut().enumerate() {
                *gv = d[co * plane..(co + 1) * plane]
                    .iter()
                    .fold(*gv, |a, v| a.wrapping_add(*v));
            }
        }
        g
    }
}

/// Fixed-point pixels of holder `party`'s columns of `n` images given as raw bytes
/// (`n × [c, h, cols]`), normalised per channel as the model expects.
pub fn encode_pixels(
    g: &Geometry,
    party: usize,
    raw: &[u8],
    norm: &privdnn_artifacts::Normalization,
    bits: u32,
) -> Vec<u64> {
    let cols = {
        let (a, b) = g.columns(party);
        b - a
    };
    let per_channel = g.input.h * cols.max(1);
    raw.iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = (i / per_channel) % g.input.c;
            let mean = norm.mean.get(c).copied().unwrap_or(0.0) as f64;
            let std = norm.std.get(c).copied().unwrap_or(1.0) as f64;
            ring::encode_fixed((v as f64 / 255.0 - mean) / std, bits)
        })
        .collect()
}

/// Holder `party`'s columns of images `indices` of `split` (`n × [c, h, cols]` raw bytes).
pub fn columns_of(
    g: &Geometry,
    party: usize,
    split: &privdnn_artifacts::DatasetSplit,
    indices: &[usize],
) -> Vec<u8> {
    let (a, b) = g.columns(party);
    let (c, h, w) = (split.channels, split.height, split.width);
    let mut out = Vec::with_capacity(indices.len() * c * h * (b - a));
    for &i in indices {
        let img = &split.images[i * c * h * w..(i + 1) * c * h * w];
        for row in img.chunks(w) {
            out.extend_from_slice(&row[a..b]);
        }
    }
    out
}

/// Places holder `party`'s values (`n × [c, h, cols]`) into full images (`n × [c, h, w]`),
/// adding them to `full`.
pub fn scatter_add(g: &Geometry, party: usize, part: &[u64], full: &mut [u64]) {
    let (a, b) = g.columns(party);
    let cols = b - a;
    let w = g.input.w;
    for (row, src) in full.chunks_mut(w).zip(part.chunks(cols)) {
        ring::add_assign(&mut row[a..b], src);
    }
}

/// Local truncation of a share by `shift` bits (party 0: arithmetic shift; party 1: the negated
/// shift of the negation), so the two results add up to the truncated secret ±1 unless the
/// shares wrapped (probability ≈ |secret| / 2^63).
pub fn truncate_share(v: u64, shift: u32, party: usize) -> u64 {
    if party == 0 {
        ((v as i64) >> shift) as u64
    } else {
        (((v.wrapping_neg()) as i64) >> shift).wrapping_neg() as u64
    }
}

/// A standard normal draw from two uniform floats (Box–Muller).
pub fn gaussian(u1: f64, u2: f64) -> f64 {
    let u1 = u1.max(f64::MIN_POSITIVE);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use privdnn_mpc::MaskKey;

    fn geometry() -> Geometry {
        Geometry::new(TensorShape::new(2, 7, 6), 3, 3, 1, 0, 2).expect("geometry")
    }

    #[test]
    fn weight_gradient_is_the_adjoint_of_the_convolution() {
        // <conv(W, x), δ> = <W, grad(x, δ)> for every W: check on unit weights.
        let g = geometry();
        let mut prg = MaskKey([5; 32]).stream("t", &[]);
        let x: Vec<u64> = prg.ring(2 * g.image()).iter().map(|v| v % 9).collect();
        let d: Vec<u64> = prg
            .ring(2 * g.output().len())
            .iter()
            .map(|v| v % 7)
            .collect();
        let grad = g.weight_gradient(&x, &d);
        for i in 0..g.weights() {
            let mut w = vec![0u64; g.weights()];
            w[i] = 1;
            let y = g.conv(&w, None, &x).expect("conv");
            let dot = y
                .iter()
                .zip(&d)
                .fold(0u64, |a, (p, q)| a.wrapping_add(p.wrapping_mul(*q)));
            assert_eq!(dot, grad[i], "tap {i}");
        }
        let bias = g.bias_gradient(&d);
        assert_eq!(
            bias.iter().fold(0u64, |a, v| a.wrapping_add(*v)),
            d.iter().sum::<u64>()
        );
    }

    #[test]
    fn local_truncation_is_within_one() {
        let mut prg = MaskKey([6; 32]).stream("t", &[]);
        for secret in [-123_456_789i64, 0, 1, 987_654_321_000, -1] {
            let r = prg.next_ring();
            let (s0, s1) = ((secret as u64).wrapping_sub(r), r);
            let t = truncate_share(s0, 12, 0).wrapping_add(truncate_share(s1, 12, 1)) as i64;
            assert!((t - (secret >> 12)).abs() <= 1, "{secret}: {t}");
        }
    }

    #[test]
    fn columns_cover_the_image() {
        let g = geometry();
        assert_eq!(g.part(0) + g.part(1), g.image());
        let mut full = vec![0u64; g.image()];
        scatter_add(&g, 0, &vec![1; g.part(0)], &mut full);
        scatter_add(&g, 1, &vec![2; g.part(1)], &mut full);
        assert_eq!(full[..6], [1, 1, 2, 2, 2, 2]);
        assert!(Geometry::new(TensorShape::new(1, 4, 4), 1, 3, 1, 0, 4).is_err());
    }
}
