//! The encrypted block in integers: shapes, quantisation from float weights, the exact integer
//! "shadow" evaluation and the no-wrap bound.
//!
//! Block: `U_c[q] = B1_c + Σ W1[c,ci,κ]·X[ci, pool·q + κ − pad1]` (the conv1 kernel combined with
//! the average pool, so pooling is part of the kernel), `A_c = U_c²`,
//! `Z_j[p] = B2_j + Σ W2[j,c,τ]·A_c[p + τ − pad2]`, with zero padding everywhere. Inputs `X` are
//! the user's pixels (0..=255) minus a per-channel integer offset (the folded mean); the float
//! layer-2 output is `Z / out_scale`. Nothing here may round or saturate silently: the bound
//! check refuses parameters under which any value could wrap modulo t.

use serde::{Deserialize, Serialize};

use crate::{QuantError, Result};

/// Public geometry of the block (known to both roles).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockShape {
    /// Input channels.
    pub cin: usize,
    /// Input height and width.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Combined (conv1 ⊛ pool) kernel size.
    pub k1: usize,
    /// conv1 zero padding.
    pub pad1: usize,
    /// Average-pool size folded into conv1 (1 = none); also the stride of the combined kernel.
    pub pool: usize,
    /// Layer-1 channels.
    pub c1: usize,
    /// Layer-1 output height (after pooling).
    pub h1: usize,
    /// Layer-1 output width.
    pub w1: usize,
    /// conv2 kernel size.
    pub k2: usize,
    /// conv2 zero padding.
    pub pad2: usize,
    /// Layer-2 filters.
    pub c2: usize,
    /// Layer-2 output height.
    pub h2: usize,
    /// Layer-2 output width.
    pub w2: usize,
}

impl BlockShape {
    /// Derives the output sizes from conv1 (`k1_raw`, `pad1`), the pool and conv2 (`k2`, `pad2`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cin: usize,
        height: usize,
        width: usize,
        k1_raw: usize,
        pad1: usize,
        pool: usize,
        c1: usize,
        k2: usize,
        pad2: usize,
        c2: usize,
    ) -> Result<Self> {
        let conv_h = (height + 2 * pad1 + 1)
            .checked_sub(k1_raw)
            .ok_or_else(|| QuantError::shape("conv1 kernel larger than the image"))?;
        let conv_w = (width + 2 * pad1 + 1)
            .checked_sub(k1_raw)
            .ok_or_else(|| QuantError::shape("conv1 kernel larger than the image"))?;
        let (h1, w1) = (conv_h / pool, conv_w / pool);
        let h2 = (h1 + 2 * pad2 + 1)
            .checked_sub(k2)
            .ok_or_else(|| QuantError::shape("conv2 kernel larger than layer 1's output"))?;
        let w2 = (w1 + 2 * pad2 + 1)
            .checked_sub(k2)
            .ok_or_else(|| QuantError::shape("conv2 kernel larger than layer 1's output"))?;
        Ok(Self {
            cin,
            height,
            width,
            k1: k1_raw + pool - 1,
            pad1,
            pool,
            c1,
            h1,
            w1,
            k2,
            pad2,
            c2,
            h2,
            w2,
        })
    }

    /// Values per input image.
    pub fn input_len(&self) -> usize {
        self.cin * self.height * self.width
    }

    /// Weights of one layer-1 channel (combined kernel).
    pub fn w1_len(&self) -> usize {
        self.cin * self.k1 * self.k1
    }

    /// Weights of one layer-2 filter.
    pub fn w2_len(&self) -> usize {
        self.c1 * self.k2 * self.k2
    }

    /// Input pixel read by layer-1 position `(qy,qx)` through combined tap `(ky,kx)`, if inside.
    pub fn input_at(&self, qy: usize, qx: usize, ky: usize, kx: usize) -> Option<(usize, usize)> {
        let y = (self.pool * qy + ky).checked_sub(self.pad1)?;
        let x = (self.pool * qx + kx).checked_sub(self.pad1)?;
        (y < self.height && x < self.width).then_some((y, x))
    }

    /// Layer-1 position read by layer-2 position `(py,px)` through tap `(ty,tx)`, if inside.
    pub fn layer1_at(&self, py: usize, px: usize, ty: usize, tx: usize) -> Option<(usize, usize)> {
        let y = (py + ty).checked_sub(self.pad2)?;
        let x = (px + tx).checked_sub(self.pad2)?;
        (y < self.h1 && x < self.w1).then_some((y, x))
    }
}

/// Float weights of the block as the trained model holds them (normalisation and BN already
/// folded into conv1 by the caller when needed; the pool is still separate).
#[derive(Debug, Clone)]
pub struct FloatBlock {
    /// Geometry (its `k1` is the combined size).
    pub shape: BlockShape,
    /// conv1 weights `[c1, cin, k1_raw, k1_raw]` acting on normalised inputs.
    pub w1: Vec<f32>,
    /// conv1 bias `[c1]`.
    pub b1: Vec<f32>,
    /// conv2 weights `[c2, c1, k2, k2]`.
    pub w2: Vec<f32>,
    /// conv2 bias `[c2]`.
    pub b2: Vec<f32>,
    /// Per-channel normalisation mean (of x/255).
    pub mean: Vec<f32>,
    /// Per-channel normalisation std.
    pub std: Vec<f32>,
}

/// The quantised block: what the shadow computes and the owner encrypts (selected parts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntBlock {
    /// Geometry.
    pub shape: BlockShape,
    /// Combined conv1 weights `[c1, cin, k1, k1]`.
    pub w1: Vec<i64>,
    /// conv1 bias `[c1]`.
    pub b1: Vec<i64>,
    /// conv2 weights `[c2, c1, k2, k2]`.
    pub w2: Vec<i64>,
    /// conv2 bias `[c2]` (at the product scale).
    pub b2: Vec<i64>,
    /// Integer subtracted from raw pixels of each input channel (the folded mean).
    pub input_offset: Vec<i64>,
    /// Bits of the layer-1 and layer-2 weights (signed, including the sign bit).
    pub bits: (u32, u32),
    /// `z2_float ≈ Z / out_scale`.
    pub out_scale: f64,
    /// `u_float ≈ U / u_scale` (layer-1 pre-activation, after pooling).
    pub u_scale: f64,
}

fn round_i64(v: f64) -> i64 {
    v.round() as i64
}

impl IntBlock {
    /// Quantises a float block with signed `bits1`/`bits2`-bit weights (one scale per layer).
    pub fn quantize(f: &FloatBlock, bits1: u32, bits2: u32) -> Result<Self> {
        let s = &f.shape;
        let k_raw = s.k1 + 1 - s.pool;
        if f.w1.len() != s.c1 * s.cin * k_raw * k_raw || f.w2.len() != s.c2 * s.w2_len() {
            return Err(QuantError::shape(
                "float block weights do not match its shape",
            ));
        }
        if f.mean.len() != s.cin || f.std.len() != s.cin || f.b1.len() != s.c1 || f.b2.len() != s.c2
        {
            return Err(QuantError::shape(
                "float block bias/normalisation lengths do not match",
            ));
        }
        // Combined kernel on centred raw pixels: average of the pool's shifted copies, divided by
        // 255·std (normalisation folded).
        let mut comb = vec![0f64; s.c1 * s.w1_len()];
        let inv_pool = 1.0 / (s.pool * s.pool) as f64;
        for c in 0..s.c1 {
            for ci in 0..s.cin {
                let fold = inv_pool / (255.0 * f.std[ci] as f64);
                for dy in 0..s.pool {
                    for dx in 0..s.pool {
                        for ky in 0..k_raw {
                            for kx in 0..k_raw {
                                let w = f.w1[((c * s.cin + ci) * k_raw + ky) * k_raw + kx] as f64;
                                let idx = ((c * s.cin + ci) * s.k1 + ky + dy) * s.k1 + kx + dx;
                                comb[idx] += w * fold;
                            }
                        }
                    }
                }
            }
        }
        let max1 = comb.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-12);
        let max2 =
            f.w2.iter()
                .fold(0f64, |m, &v| m.max((v as f64).abs()))
                .max(1e-12);
        let s1 = ((1i64 << (bits1 - 1)) - 1) as f64 / max1;
        let s2 = ((1i64 << (bits2 - 1)) - 1) as f64 / max2;
        let input_offset: Vec<i64> = f
            .mean
            .iter()
            .map(|&m| round_i64(255.0 * m as f64))
            .collect();
        Ok(Self {
            shape: s.clone(),
            w1: comb.iter().map(|&w| round_i64(w * s1)).collect(),
            b1: f.b1.iter().map(|&b| round_i64(b as f64 * s1)).collect(),
            w2: f.w2.iter().map(|&w| round_i64(w as f64 * s2)).collect(),
            b2: f
                .b2
                .iter()
                .map(|&b| round_i64(b as f64 * s2 * s1 * s1))
                .collect(),
            input_offset,
            bits: (bits1, bits2),
            out_scale: s2 * s1 * s1,
            u_scale: s1,
        })
    }

    /// Largest |X| per input channel for raw pixels in 0..=255.
    pub fn input_bound(&self) -> Vec<i128> {
        self.input_offset
            .iter()
            .map(|&o| o.max(255 - o).max(0) as i128)
            .collect()
    }

    /// Worst-case |U_c| and |A_c| per layer-1 channel, and |Z_j| per layer-2 filter, over all
    /// inputs with pixels in 0..=255.
    pub fn bounds(&self) -> (Vec<i128>, Vec<i128>) {
        let s = &self.shape;
        let xb = self.input_bound();
        let kk = s.k1 * s.k1;
        let a: Vec<i128> = (0..s.c1)
            .map(|c| {
                let mut u = self.b1[c].unsigned_abs() as i128;
                for (ci, &x) in xb.iter().enumerate().take(s.cin) {
                    let base = (c * s.cin + ci) * kk;
                    let sum: i128 = self.w1[base..base + kk]
                        .iter()
                        .map(|w| w.unsigned_abs() as i128)
                        .sum();
                    u += sum * x;
                }
                u * u
            })
            .collect();
        let t2 = s.k2 * s.k2;
        let z = (0..s.c2)
            .map(|j| {
                let mut acc = self.b2[j].unsigned_abs() as i128;
                for (c, ac) in a.iter().enumerate() {
                    let base = (j * s.c1 + c) * t2;
                    let sum: i128 = self.w2[base..base + t2]
                        .iter()
                        .map(|w| w.unsigned_abs() as i128)
                        .sum();
                    acc += sum * ac;
                }
                acc
            })
            .collect();
        (a, z)
    }

    /// Refuses the block if any value of the listed filters (and, with `layer1`, any layer-1
    /// square) could reach t/2 in magnitude.
    pub fn check_no_wrap(&self, plaintext: u128, filters: &[usize], layer1: bool) -> Result<()> {
        let half = (plaintext / 2) as i128;
        let (a, z) = self.bounds();
        for &j in filters {
            if z[j] >= half {
                return Err(QuantError::Overflow(format!(
                    "layer-2 filter {j} can reach |Z| = 2^{:.2} ≥ t/2 = 2^{:.2} with {}/{}-bit \
                     weights: lower he.weight_bits or add CRT plaintext moduli (he.crt_moduli)",
                    (z[j] as f64).log2(),
                    (half as f64).log2(),
                    self.bits.0,
                    self.bits.1
                )));
            }
        }
        if layer1 && let Some((c, v)) = a.iter().enumerate().find(|(_, v)| **v >= half) {
            return Err(QuantError::Overflow(format!(
                "layer-1 channel {c} can reach |A| = 2^{:.2} ≥ t/2",
                (*v as f64).log2()
            )));
        }
        Ok(())
    }

    /// Quantises with the widest weights (≤ `max_bits`) that pass [`IntBlock::check_no_wrap`].
    pub fn quantize_fitting(
        f: &FloatBlock,
        max_bits: u32,
        plaintext: u128,
        filters: &[usize],
        layer1: bool,
    ) -> Result<Self> {
        let mut last_err = None;
        for bits in (3..=max_bits).rev() {
            let q = Self::quantize(f, bits, bits)?;
            match q.check_no_wrap(plaintext, filters, layer1) {
                Ok(()) => {
                    // Spend what is left of the budget on layer 2's weights.
                    let mut best = q;
                    for b2 in bits + 1..=max_bits.max(bits + 4).min(16) {
                        let wider = Self::quantize(f, bits, b2)?;
                        if wider.check_no_wrap(plaintext, filters, layer1).is_err() {
                            break;
                        }
                        best = wider;
                    }
                    return Ok(best);
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| QuantError::Overflow("max_bits below 3".into())))
    }

    /// Centred integer input of one raw image (`[cin, h, w]`, 0..=255).
    pub fn center(&self, raw: &[u8]) -> Vec<i64> {
        let hw = self.shape.height * self.shape.width;
        raw.iter()
            .enumerate()
            .map(|(i, &p)| p as i64 - self.input_offset[i / hw])
            .collect()
    }

    /// Layer-1 pre-activation `U_c` of one centred image: `[h1·w1]`.
    pub fn layer1_u(&self, x: &[i64], c: usize) -> Vec<i64> {
        let s = &self.shape;
        let mut out = vec![0i64; s.h1 * s.w1];
        for qy in 0..s.h1 {
            for qx in 0..s.w1 {
                let mut acc = self.b1[c];
                for ci in 0..s.cin {
                    for ky in 0..s.k1 {
                        for kx in 0..s.k1 {
                            if let Some((y, xx)) = s.input_at(qy, qx, ky, kx) {
                                let w = self.w1[((c * s.cin + ci) * s.k1 + ky) * s.k1 + kx];
                                acc += w * x[(ci * s.height + y) * s.width + xx];
                            }
                        }
                    }
                }
                out[qy * s.w1 + qx] = acc;
            }
        }
        out
    }

    /// All layer-1 squares `A` of one centred image: `[c1][h1·w1]`.
    pub fn layer1(&self, x: &[i64]) -> Vec<Vec<i64>> {
        (0..self.shape.c1)
            .map(|c| self.layer1_u(x, c).into_iter().map(|u| u * u).collect())
            .collect()
    }

    /// Layer-2 output `Z_j` of one image from its layer-1 squares: `[h2·w2]` (i128: exact).
    pub fn layer2(&self, a: &[Vec<i64>], j: usize) -> Vec<i128> {
        let s = &self.shape;
        let mut out = vec![0i128; s.h2 * s.w2];
        for py in 0..s.h2 {
            for px in 0..s.w2 {
                let mut acc = self.b2[j] as i128;
                for (c, ac) in a.iter().enumerate() {
                    for ty in 0..s.k2 {
                        for tx in 0..s.k2 {
                            if let Some((y, x)) = s.layer1_at(py, px, ty, tx) {
                                let w = self.w2[((j * s.c1 + c) * s.k2 + ty) * s.k2 + tx];
                                acc += w as i128 * ac[y * s.w1 + x] as i128;
                            }
                        }
                    }
                }
                out[py * s.w2 + px] = acc;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    pub(crate) fn random_float_block(shape: &BlockShape, seed: u64) -> FloatBlock {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let k_raw = shape.k1 + 1 - shape.pool;
        let mut v = |n: usize| {
            (0..n)
                .map(|_| rng.random_range(-0.5f32..0.5))
                .collect::<Vec<_>>()
        };
        FloatBlock {
            w1: v(shape.c1 * shape.cin * k_raw * k_raw),
            b1: v(shape.c1),
            w2: v(shape.c2 * shape.w2_len()),
            b2: v(shape.c2),
            mean: vec![0.5; shape.cin],
            std: vec![0.25; shape.cin],
            shape: shape.clone(),
        }
    }

    #[test]
    fn shapes_of_the_architectures() {
        let lenet = BlockShape::new(1, 28, 28, 5, 0, 2, 6, 5, 0, 16).expect("lenet");
        assert_eq!((lenet.k1, lenet.h1, lenet.h2), (6, 12, 8));
        let vgg = BlockShape::new(3, 32, 32, 3, 1, 1, 16, 3, 1, 16).expect("vgg");
        assert_eq!((vgg.h1, vgg.h2), (32, 32));
        let alex = BlockShape::new(3, 32, 32, 5, 1, 2, 8, 3, 1, 8).expect("alexnet");
        assert_eq!((alex.k1, alex.h1, alex.h2), (6, 15, 15));
    }

    #[test]
    fn quantised_block_tracks_the_float_block() {
        // Float reference of one output with pooling and padding, versus Z / out_scale.
        let shape = BlockShape::new(1, 10, 10, 3, 1, 2, 2, 3, 1, 2).expect("shape");
        let f = random_float_block(&shape, 1);
        let q = IntBlock::quantize(&f, 12, 12).expect("quantize");
        let raw: Vec<u8> = (0..100).map(|i| (i * 37 % 256) as u8).collect();
        let x = q.center(&raw);
        let z = q.layer2(&q.layer1(&x), 1);
        // float: conv1 on normalised input, avg-pool, square, conv2.
        let xn: Vec<f64> = raw
            .iter()
            .map(|&p| (p as f64 / 255.0 - 0.5) / 0.25)
            .collect();
        let conv = |c: usize, y: i64, x: i64| -> f64 {
            let mut acc = f.b1[c] as f64;
            for ky in 0..3i64 {
                for kx in 0..3i64 {
                    let (iy, ix) = (y + ky - 1, x + kx - 1);
                    if (0..10).contains(&iy) && (0..10).contains(&ix) {
                        acc += f.w1[(c * 9) + (ky * 3 + kx) as usize] as f64
                            * xn[(iy * 10 + ix) as usize];
                    }
                }
            }
            acc
        };
        let a = |c: usize, qy: i64, qx: i64| -> f64 {
            if !(0..5).contains(&qy) || !(0..5).contains(&qx) {
                return 0.0;
            }
            let u = (conv(c, 2 * qy, 2 * qx)
                + conv(c, 2 * qy + 1, 2 * qx)
                + conv(c, 2 * qy, 2 * qx + 1)
                + conv(c, 2 * qy + 1, 2 * qx + 1))
                / 4.0;
            u * u
        };
        let (py, px) = (2i64, 0i64);
        let mut zf = f.b2[1] as f64;
        for c in 0..2 {
            for ty in 0..3i64 {
                for tx in 0..3i64 {
                    zf += f.w2[(2 + c) * 9 + (ty * 3 + tx) as usize] as f64
                        * a(c, py + ty - 1, px + tx - 1);
                }
            }
        }
        let zq = z[(py * 5 + px) as usize] as f64 / q.out_scale;
        assert!(
            (zq - zf).abs() < 0.02 * zf.abs().max(1.0),
            "quantised {zq} vs float {zf}"
        );
    }

    #[test]
    fn bounds_hold_on_extreme_inputs_and_refuse_unsafe_t() {
        let shape = BlockShape::new(1, 8, 8, 3, 1, 1, 2, 3, 1, 2).expect("shape");
        let q = IntBlock::quantize(&random_float_block(&shape, 2), 8, 8).expect("quantize");
        let (_, zb) = q.bounds();
        for raw_value in [0u8, 255] {
            let x = q.center(&[raw_value; 64]);
            let z = q.layer2(&q.layer1(&x), 0);
            assert!(z.iter().all(|v| v.abs() <= zb[0]));
        }
        let small_t = (zb[0] as u128) * 2 - 1;
        assert!(matches!(
            q.check_no_wrap(small_t, &[0], false),
            Err(QuantError::Overflow(_))
        ));
        q.check_no_wrap((zb[0].max(zb[1]) as u128) * 2 + 3, &[0, 1], false)
            .expect("fits");
        let fit =
            IntBlock::quantize_fitting(&random_float_block(&shape, 2), 8, 1 << 30, &[0, 1], false)
                .expect("fits at fewer bits");
        fit.check_no_wrap(1 << 30, &[0, 1], false)
            .expect("consistent");
    }
}
