//! The Levenberg–Marquardt solver of the extraction attack: normal equations, observations,
//! the recovered block and its error against the owner's.

use privdnn_artifacts::TrainedModel;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::block::{Block, Geometry, dot};
use crate::error::AttackError;

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
                    if s <= 0.0 || !s.is_finite() {
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

fn observe(block: &Block, queries: &[Vec<f64>], answers: &[Vec<Vec<f64>>]) -> Vec<Observation> {
    let g = &block.geometry;
    queries
        .iter()
        .zip(answers)
        .map(|(x, z)| Observation {
            patches: patches(g, x),
            plain: block.plain_squares(x),
            z: z.clone(),
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
/// user's plaintext conv1 filters and the oracle ([`Block::query`]); the solver never reads the
/// secret weights.
pub fn solve(
    block: &Block,
    queries: &[Vec<f64>],
    s: &SolveSettings,
) -> Result<Recovered, AttackError> {
    let answers: Vec<Vec<Vec<f64>>> = queries.iter().map(|x| block.query(x)).collect();
    solve_observed(block, queries, &answers, s)
}

/// [`solve`] on answers obtained elsewhere (e.g. through the protocol's roles): `answers[i]` are
/// the selected outputs `[|S2|][h2²]` of `queries[i]`. `block` needs only the public part (the
/// user's plaintext filters and the geometry).
pub fn solve_observed(
    block: &Block,
    queries: &[Vec<f64>],
    answers: &[Vec<Vec<f64>>],
    s: &SolveSettings,
) -> Result<Recovered, AttackError> {
    let g = &block.geometry;
    if queries.is_empty() || answers.len() != queries.len() {
        return Err(AttackError::Invalid(format!(
            "{} queries with {} answers",
            queries.len(),
            answers.len()
        )));
    }
    let obs = observe(block, queries, answers);
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
