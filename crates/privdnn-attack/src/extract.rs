//! Weight extraction by the user (not in the reference; spec §8.2 names the risk).
//!
//! The user sends inputs of its choice and receives the decrypted selected layer-2 outputs
//! `Z_j` (exact: the HE evaluation is bit-exact with the integer block). For every architecture
//! `Z_j[p] = B2_j + Σ_{c∉S1,τ} W2[j,c,τ]·A_c[p+τ−pad2] + Σ_{c∈S1,τ} W2[j,c,τ]·U_c[p+τ−pad2]²`,
//! where the plaintext squares `A_c` are known to the user and `U_c[q] = b_c + w_c·x_q` is the
//! encrypted conv1 filter on the input patch `x_q` (the 2×2 average pool folded into a
//! (k+1)×(k+1) stride-2 kernel, ResNet18's BN1 folded into `w_c`, `b_c`). So
//! `U_c[q]²` is a quadratic form of the input patch: the block is a low-degree polynomial whose
//! unknowns are the encrypted conv1 filters `(w_c, b_c)` and the selected conv2 filters (weights
//! on every layer-1 square, bias). [`solve`] fits exactly that model to the decrypted outputs by
//! Levenberg–Marquardt (Gauss–Newton with damping), starting from random conv1 filters with the
//! conv2 part solved linearly (variable projection), restarting if a start stalls. The model is
//! exact, so enough equations give the block up to its symmetries (`(w, b)·s` with the conv2
//! weights on that channel `/s²`, and the sign of `(w, b)`), which change no output: the
//! recovered block is functionally the owner's. (A generic lifted least squares over all
//! quadratic monomials, `[b², 2b·w, w_i w_k]`, would need `1 + d + d(d+1)/2` unknowns per channel;
//! reported for comparison.)
//!
//! The oracle here is the float block in f64 on normalised inputs (the user's pixels are
//! normalised by the public per-channel statistics); the integer block the protocol decrypts is
//! the same function with quantised weights, so the numbers of queries carry over.
//!
//! "Polymorphic obfuscation" (spec §4.4): the owner adds a secret per-channel 3×3 conv after
//! conv2 and re-draws it per model variant. Were that conv inside the encrypted part, the user
//! would receive `O_j ∗ Z_j`: still bilinear, with a 5×5 composed kernel (interior positions);
//! [`solve`] with `k2 + 2` recovers it the same way. (In the reference, and in our protocol, the
//! obscure conv runs in clear after decryption, so the user sees `Z_j` itself.)

use anyhow::Result;
use privdnn_artifacts::{Architecture, NeuronSelection, TrainedModel};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::cli::Stage;
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
            for c in 0..g.c1 {
                u[c][q] = self.b1[c] + dot(&self.w1[c], &patch);
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

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Solves `(N + λI) x = r` for a symmetric positive semi-definite `N` given as its upper
/// triangle (row-major `n×n`) by Cholesky, raising `λ` until it factorises.
pub fn solve_normal(n: usize, normal: &[f64], rhs: &[f64]) -> Result<Vec<f64>, AttackError> {
    let max_diag = (0..n).map(|i| normal[i * n + i]).fold(0.0f64, f64::max);
    let mut lambda = 1e-12 * max_diag.max(1e-300);
    for _ in 0..12 {
        let mut l = vec![0.0f64; n * n];
        let mut ok = true;
        'outer: for i in 0..n {
            for k in 0..=i {
                let mut s = normal[k * n + i]; // upper triangle: (k, i) with k ≤ i
                if i == k {
                    s += lambda;
                }
                let (ri, rk) = (&l[i * n..i * n + k], &l[k * n..k * n + k]);
                s -= dot(ri, rk);
                if i == k {
                    if !(s > 0.0) || !s.is_finite() {
                        ok = false;
                        break 'outer;
                    }
                    l[i * n + i] = s.sqrt();
                } else {
                    l[i * n + k] = s / l[k * n + k];
                }
            }
        }
        if ok {
            let mut y = vec![0.0; n];
            for i in 0..n {
                y[i] = (rhs[i] - dot(&l[i * n..i * n + i], &y[..i])) / l[i * n + i];
            }
            let mut x = vec![0.0; n];
            for i in (0..n).rev() {
                let mut s = y[i];
                for k in i + 1..n {
                    s -= l[k * n + i] * x[k];
                }
                x[i] = s / l[i * n + i];
            }
            return Ok(x);
        }
        lambda = (lambda * 100.0).max(1e-300);
    }
    Err(AttackError::Singular(format!("{n} unknowns")))
}

/// Accumulates least-squares rows into a normal matrix (upper triangle) and right-hand side.
struct Normal {
    n: usize,
    m: Vec<f64>,
    r: Vec<f64>,
}

impl Normal {
    fn new(n: usize) -> Self {
        Self {
            n,
            m: vec![0.0; n * n],
            r: vec![0.0; n],
        }
    }

    fn add(&mut self, row: &[f64], target: f64) {
        let n = self.n;
        for i in 0..n {
            let v = row[i];
            if v == 0.0 {
                continue;
            }
            self.r[i] += v * target;
            let dst = &mut self.m[i * n + i..i * n + n];
            for (d, w) in dst.iter_mut().zip(&row[i..]) {
                *d += v * w;
            }
        }
    }

    /// Adds a row given by its non-zero `values` at increasing column indices `index`.
    fn add_sparse(&mut self, index: &[usize], values: &[f64], target: f64) {
        let n = self.n;
        for (a, (&i, &v)) in index.iter().zip(values).enumerate() {
            if v == 0.0 {
                continue;
            }
            self.r[i] += v * target;
            let row = &mut self.m[i * n..(i + 1) * n];
            for (&k, &w) in index[a..].iter().zip(&values[a..]) {
                row[k] += v * w;
            }
        }
    }

    fn solve(&self) -> Result<Vec<f64>, AttackError> {
        solve_normal(self.n, &self.m, &self.r)
    }
}

/// What the attacker observed for one query.
struct Observation {
    /// Input patches per layer-1 position, `[h1²][d]` flattened.
    patches: Vec<f64>,
    /// Known plaintext squares.
    plain: Vec<Option<Vec<f64>>>,
    /// Decrypted selected outputs `[|S2|][h2²]`.
    z: Vec<Vec<f64>>,
}

/// The recovered (functionally equivalent) block.
#[derive(Clone, Debug)]
pub struct Recovered {
    /// Folded conv1 weights per encrypted channel (order of `s1`), up to scale and sign.
    pub w: Vec<Vec<f64>>,
    /// conv1 biases per encrypted channel.
    pub b: Vec<f64>,
    /// Per selected filter: `[c1 · k2²]` conv2 weights (on the squares) and the bias last.
    pub coef: Vec<Vec<f64>>,
    /// Levenberg–Marquardt iterations run (all restarts).
    pub iterations: usize,
    /// Restarts used.
    pub restarts: usize,
    /// Relative residual on the queries at the end.
    pub residual: f64,
}

impl Recovered {
    fn squares(&self, patches: &[f64], d: usize, positions: usize) -> Vec<Vec<f64>> {
        self.w
            .iter()
            .zip(&self.b)
            .map(|(w, b)| {
                (0..positions)
                    .map(|q| {
                        let u = b + dot(w, &patches[q * d..(q + 1) * d]);
                        u * u
                    })
                    .collect()
            })
            .collect()
    }

    /// Predicted selected outputs `[|S2|][h2²]` for input `x` (the user's plaintext part from
    /// `block`, the encrypted part from the recovered values).
    pub fn predict(&self, block: &Block, x: &[f64]) -> Vec<Vec<f64>> {
        let g = &block.geometry;
        let plain = block.plain_squares(x);
        let patches = patches(g, x);
        let enc = self.squares(&patches, g.patch(), g.h1 * g.h1);
        let maps = channel_maps(block, &plain, &enc);
        let mut f = vec![0.0; g.c1 * g.k2 * g.k2 + 1];
        self.coef
            .iter()
            .map(|coef| {
                (0..g.h2 * g.h2)
                    .map(|p| {
                        linear_features(g, &maps, p, &mut f);
                        dot(&f, coef)
                    })
                    .collect()
            })
            .collect()
    }
}

fn patches(g: &Geometry, x: &[f64]) -> Vec<f64> {
    let d = g.patch();
    let mut out = vec![0.0; g.h1 * g.h1 * d];
    for q in 0..g.h1 * g.h1 {
        g.patch_at(x, q, &mut out[q * d..(q + 1) * d]);
    }
    out
}

/// Per conv1 channel, the map conv2 reads: the known square or the encrypted channel's square.
fn channel_maps<'a>(
    block: &Block,
    plain: &'a [Option<Vec<f64>>],
    enc: &'a [Vec<f64>],
) -> Vec<&'a [f64]> {
    (0..block.geometry.c1)
        .map(|c| match block.s1.iter().position(|s| *s == c) {
            Some(i) => enc[i].as_slice(),
            None => plain[c].as_deref().unwrap_or(&[]),
        })
        .collect()
}

fn linear_features(g: &Geometry, maps: &[&[f64]], p: usize, out: &mut [f64]) {
    let kk = g.k2 * g.k2;
    for (c, map) in maps.iter().enumerate() {
        for t in 0..kk {
            out[c * kk + t] = g.tap(p, t).and_then(|q| map.get(q).copied()).unwrap_or(0.0);
        }
    }
    out[maps.len() * kk] = 1.0;
}

/// Settings of the solver.
#[derive(Clone, Debug)]
pub struct SolveSettings {
    /// Most Levenberg–Marquardt iterations per start.
    pub iterations: usize,
    /// Starts from fresh random conv1 filters when a start ends above `tolerance`.
    pub restarts: usize,
    /// Equations per unknown used (a fixed random subset when there are more).
    pub rows_per_unknown: usize,
    /// Seed (initial filters, row subset).
    pub seed: u64,
    /// Stop when the relative residual falls below this.
    pub tolerance: f64,
}

impl Default for SolveSettings {
    fn default() -> Self {
        Self {
            iterations: 100,
            restarts: 8,
            rows_per_unknown: 3,
            seed: 0,
            tolerance: 1e-9,
        }
    }
}

fn observe(block: &Block, queries: &[Vec<f64>]) -> Vec<Observation> {
    let g = &block.geometry;
    queries
        .iter()
        .map(|x| Observation {
            patches: patches(g, x),
            plain: block.plain_squares(x),
            z: block.query(x),
        })
        .collect()
}

/// One equation: (selected filter index, query, output position).
type Row = (usize, usize, usize);

/// Residuals of every row and, when `normal` is given, the Gauss–Newton normal equations.
fn evaluate_rows(
    block: &Block,
    obs: &[Observation],
    rows: &[Row],
    params: &[f64],
    mut normal: Option<&mut Normal>,
) -> f64 {
    let g = &block.geometry;
    let (d, kk, s1) = (g.patch(), g.k2 * g.k2, block.s1.len());
    let n_lin = g.c1 * kk + 1;
    let m1 = s1 * (d + 1);
    let positions = g.h1 * g.h1;
    // U maps of the encrypted channels per query
    let u: Vec<Vec<Vec<f64>>> = obs
        .iter()
        .map(|o| {
            (0..s1)
                .map(|ci| {
                    let w = &params[ci * (d + 1)..ci * (d + 1) + d];
                    let b = params[ci * (d + 1) + d];
                    (0..positions)
                        .map(|q| b + dot(w, &o.patches[q * d..(q + 1) * d]))
                        .collect()
                })
                .collect()
        })
        .collect();
    let sq: Vec<Vec<Vec<f64>>> = u
        .iter()
        .map(|per| {
            per.iter()
                .map(|m| m.iter().map(|v| v * v).collect())
                .collect()
        })
        .collect();
    let mut cost = 0.0;
    let mut feat = vec![0.0; n_lin];
    let nnz = m1 + n_lin;
    let mut jrow = vec![0.0; nnz];
    let mut index = vec![0usize; nnz];
    for &(ji, o, p) in rows {
        let coef = &params[m1 + ji * n_lin..m1 + (ji + 1) * n_lin];
        let maps = channel_maps(block, &obs[o].plain, &sq[o]);
        linear_features(g, &maps, p, &mut feat);
        let r = obs[o].z[ji][p] - dot(&feat, coef);
        cost += r * r;
        let Some(ne) = normal.as_deref_mut() else {
            continue;
        };
        jrow.iter_mut().for_each(|v| *v = 0.0);
        for (ci, &c) in block.s1.iter().enumerate() {
            let base = ci * (d + 1);
            for t in 0..kk {
                let a = coef[c * kk + t];
                if a == 0.0 {
                    continue;
                }
                if let Some(q) = g.tap(p, t) {
                    let two_au = 2.0 * a * u[o][ci][q];
                    let patch = &obs[o].patches[q * d..(q + 1) * d];
                    for (k, x) in patch.iter().enumerate() {
                        jrow[base + k] += two_au * x;
                    }
                    jrow[base + d] += two_au;
                }
            }
        }
        jrow[m1..].copy_from_slice(&feat);
        for (k, idx) in index.iter_mut().enumerate() {
            *idx = if k < m1 {
                k
            } else {
                m1 + ji * n_lin + (k - m1)
            };
        }
        ne.add_sparse(&index, &jrow, r);
    }
    cost
}

/// Fits the block's unknowns — the encrypted conv1 filters (folded weights and bias) and every
/// selected conv2 filter (weights on all layer-1 squares, bias) — to the decrypted outputs of
/// `queries` by Levenberg–Marquardt on the exact model (variable projection start: the conv2
/// part is solved linearly for random conv1 filters). `block` supplies the geometry, the
/// user's plaintext conv1 filters and the oracle; the solver never reads the secret weights.
pub fn solve(
    block: &Block,
    queries: &[Vec<f64>],
    s: &SolveSettings,
) -> Result<Recovered, AttackError> {
    let g = &block.geometry;
    if queries.is_empty() {
        return Err(AttackError::Invalid("no queries".into()));
    }
    let obs = observe(block, queries);
    let (d, kk) = (g.patch(), g.k2 * g.k2);
    let n_lin = g.c1 * kk + 1;
    let m1 = block.s1.len() * (d + 1);
    let n = m1 + block.s2.len() * n_lin;
    let positions = g.rows();
    let mut rng = ChaCha8Rng::seed_from_u64(s.seed ^ 0xE1_7AC7);
    let mut all: Vec<Row> = Vec::new();
    for j in 0..block.s2.len() {
        for o in 0..obs.len() {
            all.extend(positions.iter().map(|&p| (j, o, p)));
        }
    }
    let want = n * s.rows_per_unknown;
    let rows: Vec<Row> = if want >= all.len() {
        all
    } else {
        let mut pick = rand::seq::index::sample(&mut rng, all.len(), want).into_vec();
        pick.sort_unstable();
        pick.into_iter().map(|i| all[i]).collect()
    };
    let norm: f64 = rows
        .iter()
        .map(|&(j, o, p)| obs[o].z[j][p].powi(2))
        .sum::<f64>()
        .max(1e-300);
    let mut best: Option<(f64, Vec<f64>)> = None;
    let mut iterations = 0;
    let mut restarts = 0;
    for start in 0..=s.restarts {
        restarts = start;
        let mut params = vec![0.0; n];
        let scale = 1.0 / (d as f64).sqrt();
        for ci in 0..block.s1.len() {
            for k in 0..=d {
                params[ci * (d + 1) + k] = rng.random_range(-scale..scale);
            }
        }
        // linear start for the conv2 part (the conv1 block of the normal matrix is damped away)
        linear_start(block, &obs, &rows, &mut params, m1, n_lin)?;
        let mut cost = evaluate_rows(block, &obs, &rows, &params, None);
        let mut mu = 1e-3;
        for _ in 0..s.iterations {
            iterations += 1;
            let mut ne = Normal::new(n);
            evaluate_rows(block, &obs, &rows, &params, Some(&mut ne));
            let mut improved = false;
            for _ in 0..10 {
                let mut damped = ne.m.clone();
                for i in 0..n {
                    damped[i * n + i] += mu * damped[i * n + i] + 1e-12;
                }
                let step = solve_normal(n, &damped, &ne.r)?;
                let trial: Vec<f64> = params.iter().zip(&step).map(|(p, s)| p + s).collect();
                let c = evaluate_rows(block, &obs, &rows, &trial, None);
                if c.is_finite() && c < cost {
                    params = trial;
                    cost = c;
                    mu = (mu / 3.0).max(1e-12);
                    improved = true;
                    break;
                }
                mu *= 8.0;
            }
            let rel = (cost / norm).sqrt();
            log::debug!(
                "start {start}: LM iteration {iterations}: relative residual {rel:.3e}, mu {mu:.1e}"
            );
            if !improved || rel < s.tolerance {
                break;
            }
        }
        let rel = (cost / norm).sqrt();
        if best.as_ref().is_none_or(|(b, _)| rel < *b) {
            best = Some((rel, params));
        }
        if rel < s.tolerance.max(1e-7) {
            break;
        }
    }
    let (residual, params) = best.ok_or_else(|| AttackError::Singular("no start".into()))?;
    let (w, b) = conv1_part(params.as_slice(), block.s1.len(), d);
    Ok(Recovered {
        w,
        b,
        coef: (0..block.s2.len())
            .map(|j| params[m1 + j * n_lin..m1 + (j + 1) * n_lin].to_vec())
            .collect(),
        iterations,
        restarts,
        residual,
    })
}

/// The conv1 filters in the parameter vector: per selected channel `d` weights then the bias.
fn conv1_part(params: &[f64], channels: usize, d: usize) -> (Vec<Vec<f64>>, Vec<f64>) {
    (0..channels)
        .map(|ci| {
            let start = ci * (d + 1);
            (params[start..start + d].to_vec(), params[start + d])
        })
        .unzip()
}

/// Solves the conv2 part linearly for the current conv1 filters.
fn linear_start(
    block: &Block,
    obs: &[Observation],
    rows: &[Row],
    params: &mut [f64],
    m1: usize,
    n_lin: usize,
) -> Result<(), AttackError> {
    let g = &block.geometry;
    let d = g.patch();
    let (w, b) = conv1_part(params, block.s1.len(), d);
    let tmp = Recovered {
        w,
        b,
        coef: Vec::new(),
        iterations: 0,
        restarts: 0,
        residual: 0.0,
    };
    let sq: Vec<Vec<Vec<f64>>> = obs
        .iter()
        .map(|o| tmp.squares(&o.patches, d, g.h1 * g.h1))
        .collect();
    let mut feat = vec![0.0; n_lin];
    for ji in 0..block.s2.len() {
        let mut ne = Normal::new(n_lin);
        for &(j, o, p) in rows.iter().filter(|r| r.0 == ji) {
            let maps = channel_maps(block, &obs[o].plain, &sq[o]);
            linear_features(g, &maps, p, &mut feat);
            ne.add(&feat, obs[o].z[j][p]);
        }
        let x = ne.solve()?;
        params[m1 + ji * n_lin..m1 + (ji + 1) * n_lin].copy_from_slice(&x);
    }
    Ok(())
}

/// Random query images (uniform raw pixels, normalised with the model's statistics).
pub fn random_queries(model: &TrainedModel, n: usize, seed: u64) -> Vec<Vec<f64>> {
    let spec = &model.spec;
    let plane = spec.image_size * spec.image_size;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9E_E7);
    let norm = &model.normalization;
    (0..n)
        .map(|_| {
            (0..spec.in_channels * plane)
                .map(|i| {
                    let c = (i / plane).min(norm.mean.len().saturating_sub(1));
                    let raw: f64 = rng.random_range(0.0..1.0);
                    (raw - f64::from(norm.mean[c])) / f64::from(norm.std[c])
                })
                .collect()
        })
        .collect()
}

/// Normalised test images as f64.
fn images(
    split: &privdnn_artifacts::DatasetSplit,
    model: &TrainedModel,
    n: usize,
) -> Vec<Vec<f64>> {
    let idx: Vec<usize> = (0..n.min(split.len())).collect();
    let (values, _) = privdnn_data::make_batch(split, &idx, &model.normalization, None);
    let len = split.image_len();
    values
        .chunks(len.max(1))
        .map(|c| c.iter().map(|v| f64::from(*v)).collect())
        .collect()
}

/// Relative error `‖Ẑ − Z‖ / ‖Z‖` over the selected outputs of `inputs` (equation positions).
pub fn relative_error(block: &Block, rec: &Recovered, inputs: &[Vec<f64>]) -> f64 {
    let positions = block.geometry.rows();
    let (mut num, mut den) = (0.0, 0.0);
    for x in inputs {
        let z = block.query(x);
        let zh = rec.predict(block, x);
        for (a, b) in z.iter().zip(&zh) {
            for &p in &positions {
                num += (a[p] - b[p]).powi(2);
                den += a[p] * a[p];
            }
        }
    }
    (num / den.max(1e-300)).sqrt()
}

/// Accuracy of the user's model with the selected layer-2 outputs computed from the recovered
/// block (no owner involved), on the first `n` test images.
fn rebuilt_accuracy(
    stage: &Stage,
    separated: &TrainedModel,
    block: &Block,
    rec: &Recovered,
    n: usize,
) -> Result<f64> {
    use privdnn_model::{Evaluation, Network, batch_tensor, import_tensors};
    let device = &stage.devices.eval;
    let net = import_tensors(
        Network::new(&separated.spec, device)?,
        &separated.tensors,
        None,
    )?;
    let split = &stage.eval;
    let idx: Vec<usize> = (0..n.min(split.len())).collect();
    let mut eval = Evaluation::default();
    let g = &block.geometry;
    let hw = g.h2 * g.h2;
    for chunk in idx.chunks(100) {
        let (values, labels) =
            privdnn_data::make_batch(split, chunk, &separated.normalization, None);
        let xs: Vec<Vec<f64>> = values
            .chunks(split.image_len())
            .map(|c| c.iter().map(|v| f64::from(*v)).collect())
            .collect();
        let x = batch_tensor(values, chunk.len(), split, device);
        let a1 = net.layer1(net.conv1(x));
        let z2 = net.conv2(a1.clone());
        let dims = z2.dims();
        let mut data = z2.into_data().try_into_vec::<f32>().unwrap_or_default();
        for (i, xi) in xs.iter().enumerate() {
            let zh = rec.predict(block, xi);
            for (k, &j) in block.s2.iter().enumerate() {
                let base = (i * dims[1] + j) * hw;
                for p in 0..hw {
                    data[base + p] = zh[k][p] as f32;
                }
            }
        }
        let z2 =
            burn::tensor::Tensor::<4>::from_data(burn::tensor::TensorData::new(data, dims), device);
        let logits = net
            .tail(a1, z2)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap_or_default();
        eval.add_logits(&logits, &labels, split.num_classes());
    }
    Ok(eval.accuracy())
}

/// The extraction experiment of the attack stage: for each query count, solve and measure.
pub fn run_experiment(stage: &Stage, sel: &NeuronSelection) -> Result<Value> {
    let a = &stage.cfg.pipeline.attack;
    let separated = privdnn_select::transform::separate_weights(&stage.model, sel)?;
    let block = Block::from_model(&separated, sel)?;
    let g = &block.geometry;
    let test = images(&stage.eval, &stage.model, 200);
    let settings = SolveSettings {
        iterations: a.extract_iterations,
        restarts: a.extract_restarts,
        seed: stage.cfg.pipeline.seed,
        ..SolveSettings::default()
    };
    let unknowns_lifted = block.s1.len() * g.lifted();
    let unknowns_conv1 = block.s1.len() * (g.patch() + 1);
    let unknowns_linear = block.s2.len() * (g.c1 * g.k2 * g.k2 + 1);
    let equations_per_query = block.s2.len() * g.rows().len();
    log::info!(
        "extraction of {}: {} conv1 + {} conv2 unknowns, {} equations per query",
        sel.to_reference_json(),
        unknowns_conv1,
        unknowns_linear,
        equations_per_query
    );
    let baseline = {
        let exact = Recovered {
            w: block.s1.iter().map(|&c| block.w1[c].clone()).collect(),
            b: block.s1.iter().map(|&c| block.b1[c]).collect(),
            coef: block
                .s2
                .iter()
                .map(|&j| {
                    let mut v: Vec<f64> = block.w2[j].iter().flatten().copied().collect();
                    v.push(block.b2[j]);
                    v
                })
                .collect(),
            iterations: 0,
            restarts: 0,
            residual: 0.0,
        };
        rebuilt_accuracy(stage, &separated, &block, &exact, 1000)?
    };
    log::info!("A_s with the true block on the same 1000 images: {baseline:.2} %");
    let mut rows = Vec::new();
    let mut needed = None;
    let progress = crate::cli::bar(a.extract_queries.len() as u64, "extraction");
    for &n in &a.extract_queries {
        let clock = std::time::Instant::now();
        let queries = random_queries(&stage.model, n, stage.cfg.pipeline.seed ^ n as u64);
        let rec = solve(&block, &queries, &settings);
        let row = match rec {
            Ok(rec) => {
                let err = relative_error(&block, &rec, &test);
                let acc = rebuilt_accuracy(stage, &separated, &block, &rec, 1000)?;
                if err < 0.01 && needed.is_none() {
                    needed = Some(n);
                }
                progress.suspend(|| {
                    println!(
                        "extraction, {n} queries: relative error {err:.3e}, rebuilt model {acc:.2} %, {} LM iterations, {} restarts, {:.1}s",
                        rec.iterations,
                        rec.restarts,
                        clock.elapsed().as_secs_f64()
                    )
                });
                json!({"queries": n, "relative_error": err, "rebuilt_accuracy": acc,
                       "iterations": rec.iterations, "restarts": rec.restarts, "query_residual": rec.residual,
                       "seconds": clock.elapsed().as_secs_f64()})
            }
            Err(e) => json!({"queries": n, "error": e.to_string()}),
        };
        rows.push(row);
        progress.inc(1);
    }
    progress.finish_and_clear();
    // polymorphic obfuscation: a fresh per-channel 3×3 kernel composed with conv2
    let obscure = obfuscation(stage, &block, &settings)?;
    Ok(json!({
        "selection": sel.to_reference_json(),
        "conv1_unknowns": unknowns_conv1,
        "lifted_unknowns_if_unstructured": unknowns_lifted,
        "conv2_unknowns": unknowns_linear,
        "equations_per_query": equations_per_query,
        "queries_for_1_percent": needed,
        "separate_same_images": baseline,
        "accuracy_images": 1000.min(stage.eval.len()),
        "curve": rows,
        "obfuscation": obscure,
        "oracle": "float block in f64 on normalised inputs (the decrypted integer block is the same function, quantised)",
    }))
}

fn obfuscation(stage: &Stage, block: &Block, settings: &SolveSettings) -> Result<Value> {
    let a = &stage.cfg.pipeline.attack;
    let mut rng = ChaCha8Rng::seed_from_u64(stage.cfg.pipeline.seed ^ 0x0B5C);
    // at most two selected filters: the composed 5×5 kernels multiply the conv2 unknowns
    let mut block = block.clone();
    block.s2.truncate(2);
    let block = &block;
    let mut out = Vec::new();
    for variant in 0..2 {
        let kernels: Vec<Vec<f64>> = block
            .s2
            .iter()
            .map(|_| {
                (0..9)
                    .map(|_| rng.random_range(-1.0 / 3.0..1.0 / 3.0))
                    .collect()
            })
            .collect();
        let composed = block.compose_obscure(&kernels, 3);
        let test = images(&stage.eval, &stage.model, 100);
        let mut needed = None;
        let mut curve = Vec::new();
        for &n in &a.extract_queries {
            let queries =
                random_queries(&stage.model, n, stage.cfg.pipeline.seed ^ (n as u64) ^ 0x0B);
            match solve(&composed, &queries, settings) {
                Ok(rec) => {
                    let err = relative_error(&composed, &rec, &test);
                    println!("obfuscated variant {variant}, {n} queries: relative error {err:.3e}");
                    curve.push(json!({"queries": n, "relative_error": err}));
                    if err < 0.01 {
                        needed = Some(n);
                        break;
                    }
                }
                Err(e) => curve.push(json!({"queries": n, "error": e.to_string()})),
            }
        }
        out.push(json!({"variant": variant, "queries_for_1_percent": needed, "curve": curve}));
    }
    Ok(json!({
        "model": "the obscure per-channel 3×3 conv treated as secret (inside the encrypted block) and re-drawn per variant; the user receives O_j ∗ Z_j (interior positions)",
        "filters": block.s2,
        "variants": out,
    }))
}
