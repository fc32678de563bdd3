//! Fixed-point encoding and the first layer's geometry.
//!
//! Pixels are encoded at `input_bits` fractional bits (after the model's normalisation), conv1
//! weights at `weight_bits`, so z1 = conv(W, X) + b sits at `input_bits + weight_bits` (the bias
//! is kept at that scale). The server returns ∂(summed loss)/∂z1 at `grad_bits`; the learning rate
//! divided by the batch is encoded at `rate_bits`. The weight update `lr/n · Σ δ·X` is at
//! `input_bits + grad_bits + rate_bits` and is truncated locally on the shares to `weight_bits`
//! (SecureML-style: ±1 LSB, and a wrong result with probability ≈ |value| / 2^63).

use privdnn_mpc::ir::{ConvLayer, TensorShape};
use privdnn_mpc::ring;
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

    /// Output columns `[ox0, ox1)` whose input column `ox·stride + kx − pad` lies inside the
    /// image (the rest read padding zeros).
    fn valid_columns(&self, kx: usize) -> (usize, usize) {
        let (s, pad, w, out) = (self.stride, self.pad, self.input.w, self.output().w);
        let lo = pad.saturating_sub(kx).div_ceil(s);
        let hi = (w + pad).saturating_sub(kx).div_ceil(s);
        (lo.min(out), hi.min(out))
    }

    /// Input row of output row `oy` and tap row `ky` (None: padding).
    fn input_row(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy * self.stride + ky)
            .checked_sub(self.pad)
            .filter(|iy| *iy < self.input.h)
    }

    /// conv(w, x) + bias over the ring for every image of `x` (`n × image`), no truncation.
    /// Direct convolution: for every weight, a wrapping multiply-add of an input row into an
    /// output row (contiguous at stride 1, so it vectorises); equal to `privdnn_mpc::linear::conv`
    /// (a unit test checks it).
    pub fn conv(&self, w: &[u64], bias: Option<&[u64]>, x: &[u64]) -> Result<Vec<u64>, SpnnError> {
        let (inp, out) = (self.input, self.output());
        if w.len() != self.weights()
            || !x.len().is_multiple_of(self.image().max(1))
            || bias.is_some_and(|b| b.len() != self.cout)
        {
            return Err(SpnnError::protocol(format!(
                "conv of {} weights (expected {}) over {} values of {}-value images",
                w.len(),
                self.weights(),
                x.len(),
                self.image()
            )));
        }
        let (k, plane) = (self.k, out.plane());
        let mut y = vec![0u64; x.len() / self.image().max(1) * out.len()];
        for (img, yo) in x.chunks(self.image()).zip(y.chunks_mut(out.len())) {
            for co in 0..self.cout {
                let yplane = &mut yo[co * plane..(co + 1) * plane];
                if let Some(b) = bias {
                    yplane.fill(b[co]);
                }
                for ci in 0..inp.c {
                    let xplane = &img[ci * inp.plane()..(ci + 1) * inp.plane()];
                    for ky in 0..k {
                        for kx in 0..k {
                            let wv = w[((co * inp.c + ci) * k + ky) * k + kx];
                            self.axpy_rows(wv, xplane, yplane, ky, kx);
                        }
                    }
                }
            }
        }
        Ok(y)
    }

    /// y[oy, ox] += wv · x[oy·s + ky − pad, ox·s + kx − pad] over the valid rows and columns.
    fn axpy_rows(&self, wv: u64, xplane: &[u64], yplane: &mut [u64], ky: usize, kx: usize) {
        let (ow, iw, s) = (self.output().w, self.input.w, self.stride);
        let (ox0, ox1) = self.valid_columns(kx);
        if ox0 >= ox1 {
            return;
        }
        let ix0 = ox0 * s + kx - self.pad;
        for oy in 0..self.output().h {
            let Some(iy) = self.input_row(oy, ky) else {
                continue;
            };
            let yrow = &mut yplane[oy * ow + ox0..oy * ow + ox1];
            let xrow = &xplane[iy * iw + ix0..(iy + 1) * iw];
            if s == 1 {
                // contiguous: a plain zip vectorises (step_by would not)
                for (yv, xv) in yrow.iter_mut().zip(xrow) {
                    *yv = yv.wrapping_add(wv.wrapping_mul(*xv));
                }
            } else {
                for (yv, xv) in yrow.iter_mut().zip(xrow.iter().step_by(s)) {
                    *yv = yv.wrapping_add(wv.wrapping_mul(*xv));
                }
            }
        }
    }

    /// Σ over images and positions of δ[n, co, p] · x[n, ci, p + tap]: the weight gradient
    /// `[cout, c, k, k]` (bilinear, so it runs on a share of `x` with a public `δ`).
    pub fn weight_gradient(&self, x: &[u64], delta: &[u64]) -> Vec<u64> {
        let (inp, out) = (self.input, self.output());
        let (k, s, ow, iw) = (self.k, self.stride, out.w, inp.w);
        let mut g = vec![0u64; self.weights()];
        for (img, d) in x.chunks(self.image()).zip(delta.chunks(out.len())) {
            for co in 0..self.cout {
                let dplane = &d[co * out.plane()..(co + 1) * out.plane()];
                for ci in 0..inp.c {
                    let xplane = &img[ci * inp.plane()..(ci + 1) * inp.plane()];
                    for ky in 0..k {
                        for kx in 0..k {
                            let (ox0, ox1) = self.valid_columns(kx);
                            if ox0 >= ox1 {
                                continue;
                            }
                            let ix0 = ox0 * s + kx - self.pad;
                            let mut acc = 0u64;
                            for oy in 0..out.h {
                                let Some(iy) = self.input_row(oy, ky) else {
                                    continue;
                                };
                                let drow = &dplane[oy * ow + ox0..oy * ow + ox1];
                                let xrow = &xplane[iy * iw + ix0..(iy + 1) * iw];
                                acc = acc.wrapping_add(dot(drow, xrow, s));
                            }
                            let idx = ((co * inp.c + ci) * k + ky) * k + kx;
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

/// Wrapping Σ a[i]·b[i·stride] (four accumulators at stride 1, so the loop vectorises).
fn dot(a: &[u64], b: &[u64], stride: usize) -> u64 {
    if stride != 1 {
        return a
            .iter()
            .zip(b.iter().step_by(stride))
            .fold(0u64, |s, (x, y)| s.wrapping_add(x.wrapping_mul(*y)));
    }
    let mut acc = [0u64; 4];
    let (ca, cb) = (a.chunks_exact(4), b[..a.len().min(b.len())].chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..4 {
            acc[i] = acc[i].wrapping_add(x[i].wrapping_mul(y[i]));
        }
    }
    let head = acc.iter().fold(0u64, |s, v| s.wrapping_add(*v));
    ra.iter()
        .zip(rb)
        .fold(head, |s, (x, y)| s.wrapping_add(x.wrapping_mul(*y)))
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

    /// Shapes with and without padding and stride.
    fn geometries() -> Vec<Geometry> {
        vec![
            geometry(),
            Geometry::new(TensorShape::new(3, 9, 8), 2, 3, 1, 1, 3).expect("pad"),
            Geometry::new(TensorShape::new(1, 11, 10), 2, 5, 2, 1, 5).expect("stride"),
            Geometry::new(TensorShape::new(1, 12, 12), 3, 5, 1, 0, 6).expect("lenet-like"),
        ]
    }

    #[test]
    fn direct_convolution_equals_the_mpc_kernel() {
        let mut prg = MaskKey([4; 32]).stream("t", &[]);
        for g in geometries() {
            let x = prg.ring(3 * g.image());
            let w = prg.ring(g.weights());
            let b = prg.ring(g.cout);
            let layer = g.layer(ring::to_signed_vec(&w), ring::to_signed_vec(&b));
            let want: Vec<u64> = x
                .chunks(g.image())
                .flat_map(|img| privdnn_mpc::linear::conv(&layer, img).expect("mpc conv"))
                .collect();
            assert_eq!(g.conv(&w, Some(&b), &x).expect("conv"), want, "{g:?}");
        }
    }

    #[test]
    fn weight_gradient_is_the_adjoint_of_the_convolution() {
        for g in geometries() {
            adjoint(g);
        }
    }

    /// <conv(W, x), δ> = <W, grad(x, δ)> for every W: checked on unit weights.
    fn adjoint(g: Geometry) {
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
