//! The block the user queries, as the extraction attack models it: geometry (folded conv1,
//! conv2, optionally composed with an obscure conv) and the float oracle in f64.

use privdnn_artifacts::{Architecture, NeuronSelection, TrainedModel};
use privdnn_quant::IntBlock;

use crate::error::AttackError;

/// Geometry of the block: input, folded conv1, conv2 (possibly composed with an obscure conv).
#[derive(Clone, Debug, PartialEq)]
pub struct Geometry {
    /// Input channels.
    pub cin: usize,
    /// Input height = width.
    pub size: usize,
    /// Folded conv1 kernel side (k1 + pool − 1).
    pub k1: usize,
    /// conv1 zero padding (before the pool).
    pub pad1: usize,
    /// Pool / stride of the folded conv1.
    pub pool: usize,
    /// Layer-1 channels.
    pub c1: usize,
    /// Layer-1 map side.
    pub h1: usize,
    /// conv2 kernel side.
    pub k2: usize,
    /// conv2 zero padding.
    pub pad2: usize,
    /// Output map side.
    pub h2: usize,
    /// Output positions used as equations: only those whose conv2 window lies inside the
    /// layer-1 map when `interior` (composed obscure conv).
    pub interior: bool,
}

impl Geometry {
    /// Patch length `d = cin · k1²`.
    pub fn patch(&self) -> usize {
        self.cin * self.k1 * self.k1
    }

    /// Lifted feature length `P = 1 + d + d(d+1)/2`.
    pub fn lifted(&self) -> usize {
        let d = self.patch();
        1 + d + d * (d + 1) / 2
    }

    /// Output positions used as equations.
    pub fn rows(&self) -> Vec<usize> {
        let h = self.h2;
        (0..h * h)
            .filter(|&p| {
                if !self.interior {
                    return true;
                }
                let (py, px) = (p / h, p % h);
                let lo = |v: usize| v >= self.pad2;
                let hi = |v: usize| v + self.k2 <= self.h1 + self.pad2;
                lo(py) && lo(px) && hi(py) && hi(px)
            })
            .collect()
    }

    /// The patch of input `x` (`cin × size × size`) at layer-1 position `q`, zero padded.
    pub fn patch_at(&self, x: &[f64], q: usize, out: &mut [f64]) {
        let (qy, qx) = (q / self.h1, q % self.h1);
        let s = self.size as isize;
        let mut i = 0;
        for ci in 0..self.cin {
            for ky in 0..self.k1 {
                let y = (self.pool * qy + ky) as isize - self.pad1 as isize;
                for kx in 0..self.k1 {
                    let xx = (self.pool * qx + kx) as isize - self.pad1 as isize;
                    out[i] = if y >= 0 && y < s && xx >= 0 && xx < s {
                        x[(ci * self.size + y as usize) * self.size + xx as usize]
                    } else {
                        0.0
                    };
                    i += 1;
                }
            }
        }
    }

    /// Layer-1 position read by output `p` through tap `t`, if inside the map.
    pub fn tap(&self, p: usize, t: usize) -> Option<usize> {
        let (py, px) = (p / self.h2, p % self.h2);
        let (ty, tx) = (t / self.k2, t % self.k2);
        let y = (py + ty).checked_sub(self.pad2)?;
        let x = (px + tx).checked_sub(self.pad2)?;
        (y < self.h1 && x < self.h1).then_some(y * self.h1 + x)
    }
}

/// A block in f64: the owner's secret (encrypted) filters and the user's plaintext ones.
#[derive(Clone, Debug)]
pub struct Block {
    /// Geometry.
    pub geometry: Geometry,
    /// Folded conv1 weights `[c1][d]`.
    pub w1: Vec<Vec<f64>>,
    /// conv1 biases.
    pub b1: Vec<f64>,
    /// conv2 weights of every filter `[c2][c1][k2²]`.
    pub w2: Vec<Vec<Vec<f64>>>,
    /// conv2 biases.
    pub b2: Vec<f64>,
    /// Selected conv1 channels (encrypted).
    pub s1: Vec<usize>,
    /// Selected conv2 filters (whose outputs the user receives).
    pub s2: Vec<usize>,
}

fn named<'a>(model: &'a TrainedModel, name: &str) -> Result<&'a [f32], AttackError> {
    model
        .tensor(name)
        .map(|t| t.values.as_slice())
        .ok_or_else(|| AttackError::Invalid(format!("model has no `{name}`")))
}

impl Block {
    /// The block of `model` (the separated model: the user's view plus the owner's filters).
    pub fn from_model(model: &TrainedModel, sel: &NeuronSelection) -> Result<Self, AttackError> {
        let (pad1, pool, pad2) = match model.spec.architecture {
            Architecture::Lenet5 => (0, 2, 0),
            Architecture::Alexnet => (1, 2, 1),
            Architecture::Vgg16 | Architecture::Resnet18 => (1, 1, 1),
        };
        let t1 = model
            .tensor("conv1.weight")
            .ok_or_else(|| AttackError::Invalid("model has no `conv1.weight`".into()))?;
        let t2 = model
            .tensor("conv2.weight")
            .ok_or_else(|| AttackError::Invalid("model has no `conv2.weight`".into()))?;
        let (c1, cin, k1) = (t1.shape[0], t1.shape[1], t1.shape[2]);
        let (c2, k2) = (t2.shape[0], t2.shape[2]);
        let size = model.spec.image_size;
        let kf = k1 + pool - 1;
        let h1 = (size + 2 * pad1 + 1 - k1) / pool;
        let geometry = Geometry {
            cin,
            size,
            k1: kf,
            pad1,
            pool,
            c1,
            h1,
            k2,
            pad2,
            h2: h1 + 2 * pad2 + 1 - k2,
            interior: false,
        };
        let mut b1: Vec<f64> = match model.tensor("conv1.bias") {
            Some(t) => t.values.iter().map(|v| f64::from(*v)).collect(),
            None => vec![0.0; c1],
        };
        let raw = &t1.values;
        let mut w1 = Vec::with_capacity(c1);
        let scale = 1.0 / (pool * pool) as f64;
        for c in 0..c1 {
            let mut w = vec![0.0; cin * kf * kf];
            for ci in 0..cin {
                for ky in 0..k1 {
                    for kx in 0..k1 {
                        let v = f64::from(raw[((c * cin + ci) * k1 + ky) * k1 + kx]);
                        for a in 0..pool {
                            for b in 0..pool {
                                w[(ci * kf + ky + a) * kf + kx + b] += v * scale;
                            }
                        }
                    }
                }
            }
            w1.push(w);
        }
        if model.spec.architecture == Architecture::Resnet18 {
            let g = named(model, "bn1.gamma")?;
            let be = named(model, "bn1.beta")?;
            let m = named(model, "bn1.running_mean")?;
            let var = named(model, "bn1.running_var")?;
            for c in 0..c1 {
                let s = f64::from(g[c]) / (f64::from(var[c]) + 1e-5).sqrt();
                w1[c].iter_mut().for_each(|v| *v *= s);
                b1[c] = (b1[c] - f64::from(m[c])) * s + f64::from(be[c]);
            }
        }
        let w2 = (0..c2)
            .map(|j| {
                (0..c1)
                    .map(|c| {
                        (0..k2 * k2)
                            .map(|t| f64::from(t2.values[(j * c1 + c) * k2 * k2 + t]))
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let b2 = match model.tensor("conv2.bias") {
            Some(t) => t.values.iter().map(|v| f64::from(*v)).collect(),
            None => vec![0.0; c2],
        };
        Ok(Self {
            geometry,
            w1,
            b1,
            w2,
            b2,
            s1: sel.layer1.clone(),
            s2: sel.layer2.clone(),
        })
    }

    /// The quantised block the protocol evaluates, in the units of the float experiment: inputs
    /// `X / 255` (centred raw pixels), outputs `Z / out_scale`. With these units the integer
    /// block is exactly this block (`U / u_scale` and `Z / out_scale` are the same quadratic
    /// function), so the solver runs unchanged on decrypted protocol answers. Given the user's
    /// public block (selected weights zeroed) it is the attacker's model; given the owner's, the
    /// truth to score against.
    pub fn from_int(b: &IntBlock, s1: &[usize], s2: &[usize]) -> Result<Self, AttackError> {
        let s = &b.shape;
        if s.height != s.width || s.h1 != s.w1 || s.h2 != s.w2 || b.u_scale <= 0.0 {
            return Err(AttackError::Invalid(
                "the extraction models square maps and a positive scale only".into(),
            ));
        }
        let units = IntUnits::of(b);
        let (d, kk) = (s.w1_len(), s.k2 * s.k2);
        Ok(Self {
            geometry: Geometry {
                cin: s.cin,
                size: s.height,
                k1: s.k1,
                pad1: s.pad1,
                pool: s.pool,
                c1: s.c1,
                h1: s.h1,
                k2: s.k2,
                pad2: s.pad2,
                h2: s.h2,
                interior: false,
            },
            w1: b
                .w1
                .chunks(d)
                .map(|w| w.iter().map(|&v| v as f64 * units.w1).collect())
                .collect(),
            b1: b.b1.iter().map(|&v| v as f64 * units.b1).collect(),
            w2: b
                .w2
                .chunks(s.w2_len())
                .map(|f| {
                    f.chunks(kk)
                        .map(|t| t.iter().map(|&v| v as f64 * units.w2).collect())
                        .collect()
                })
                .collect(),
            b2: b.b2.iter().map(|&v| v as f64 * units.b2).collect(),
            s1: s1.to_vec(),
            s2: s2.to_vec(),
        })
    }

    /// Composes each selected filter with a per-channel `ko×ko` kernel (zero padding `ko/2`):
    /// the block the user would face if that conv were encrypted too. Only interior output
    /// positions stay exact, so the geometry switches to interior equations.
    pub fn compose_obscure(&self, kernels: &[Vec<f64>], ko: usize) -> Self {
        let g = &self.geometry;
        let k = g.k2 + ko - 1;
        let mut out = self.clone();
        out.geometry.k2 = k;
        out.geometry.pad2 = g.pad2 + ko / 2;
        out.geometry.interior = true;
        for (&j, kern) in self.s2.iter().zip(kernels) {
            let mut w = vec![vec![0.0; k * k]; g.c1];
            for (c, wc) in w.iter_mut().enumerate() {
                for oy in 0..ko {
                    for ox in 0..ko {
                        for ty in 0..g.k2 {
                            for tx in 0..g.k2 {
                                wc[(oy + ty) * k + ox + tx] +=
                                    kern[oy * ko + ox] * self.w2[j][c][ty * g.k2 + tx];
                            }
                        }
                    }
                }
            }
            out.w2[j] = w;
            out.b2[j] = self.b2[j] * kern.iter().sum::<f64>();
        }
        out
    }

    /// Layer-1 pre-squares `U_c` of input `x` for every channel, `[c1][h1²]`.
    pub fn layer1(&self, x: &[f64]) -> Vec<Vec<f64>> {
        let g = &self.geometry;
        let mut patch = vec![0.0; g.patch()];
        let mut u = vec![vec![0.0; g.h1 * g.h1]; g.c1];
        for q in 0..g.h1 * g.h1 {
            g.patch_at(x, q, &mut patch);
            for (c, uc) in u.iter_mut().enumerate() {
                uc[q] = self.b1[c] + dot(&self.w1[c], &patch);
            }
        }
        u
    }

    /// The oracle: the selected filters' outputs `[|S2|][h2²]` for input `x`.
    pub fn query(&self, x: &[f64]) -> Vec<Vec<f64>> {
        let g = &self.geometry;
        let a: Vec<Vec<f64>> = self
            .layer1(x)
            .into_iter()
            .map(|u| u.into_iter().map(|v| v * v).collect())
            .collect();
        self.s2
            .iter()
            .map(|&j| {
                (0..g.h2 * g.h2)
                    .map(|p| {
                        let mut z = self.b2[j];
                        for (c, ac) in a.iter().enumerate() {
                            for t in 0..g.k2 * g.k2 {
                                if let Some(q) = g.tap(p, t) {
                                    z += self.w2[j][c][t] * ac[q];
                                }
                            }
                        }
                        z
                    })
                    .collect()
            })
            .collect()
    }

    /// The user's known squares `A_c` of the plaintext conv1 channels (`None` for encrypted).
    pub fn plain_squares(&self, x: &[f64]) -> Vec<Option<Vec<f64>>> {
        self.layer1(x)
            .into_iter()
            .enumerate()
            .map(|(c, u)| (!self.s1.contains(&c)).then(|| u.into_iter().map(|v| v * v).collect()))
            .collect()
    }
}

/// Factors from the integer block's values to [`Block::from_int`]'s units (multiply).
#[derive(Clone, Copy, Debug)]
pub struct IntUnits {
    /// conv1 weights: `255 / u_scale` (inputs are `X / 255`).
    pub w1: f64,
    /// conv1 bias: `1 / u_scale`.
    pub b1: f64,
    /// conv2 weights: `u_scale² / out_scale`.
    pub w2: f64,
    /// conv2 bias and outputs: `1 / out_scale`.
    pub b2: f64,
}

impl IntUnits {
    /// The factors of `b`.
    pub fn of(b: &IntBlock) -> Self {
        Self {
            w1: 255.0 / b.u_scale,
            b1: 1.0 / b.u_scale,
            w2: b.u_scale * b.u_scale / b.out_scale,
            b2: 1.0 / b.out_scale,
        }
    }
}

pub(super) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
