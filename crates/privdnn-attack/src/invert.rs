//! Input recovery by the owner (spec §4.3): the owner decrypts the selected layer-2 outputs of
//! the user's image and knows every weight, so it can search for an image whose selected
//! layer-2 outputs match what it decrypted.
//!
//! The image `x̂ ∈ [0, 1]` (initialised to 0.5) is optimised with Adam through burn's autodiff:
//! `loss = ‖(f(x̂) − target)·m‖² / ‖target·m‖² + tv · TV(x̂)`, where `f` is conv1 → layer1 →
//! conv2 of the model on the normalised image and `m` keeps the selected filters. Cases:
//!
//! * `unblinded`: the target is the true `Z_j` (what the reference's C++ path gives the owner);
//! * `scaled`: the reference's proposed defence, every selected channel multiplied by an
//!   independent factor `U[0, 100)`, fitted as is (the reference's attacker did the same), and
//!   `scaled_scale_invariant`: the same target fitted after normalising every map to unit
//!   norm (an attacker who knows the defence; positive factors cancel);
//! * `blinded`: our protocol — the owner decrypts `Z + r mod t` with `r` uniform mod `t`, which is
//!   uniform and independent of the image; modelled as uniform values over the range of the
//!   true features (any scale gives an image-independent target).
//!
//! Quality: PSNR (dB, pixels in [0, 1]) and SSIM (7×7 uniform windows, per channel, averaged)
//! against the true images; a PNG grid (rows: originals, then each case) is written by the CLI.
//! The optimiser ([`fit_images`]) takes any features function; the SPNN leakage experiment
//! uses it with conv1 alone.

use std::path::Path;

use anyhow::{Context as _, Result};
use privdnn_artifacts::{NeuronSelection, TrainedModel};
use privdnn_model::burn::tensor::{Tensor, TensorData};
use privdnn_model::{Network, import_tensors};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::experiment::Experiment;

/// Settings of one inversion.
#[derive(Clone, Debug)]
pub struct InvertSettings {
    /// Adam steps.
    pub steps: usize,
    /// Adam learning rate (pixels in [0, 1]).
    pub learning_rate: f64,
    /// Total-variation weight.
    pub tv: f64,
    /// Compare per-(image, channel) L2-normalised maps: undoes any positive per-channel
    /// scaling of the target (the attacker who knows the reference's defence).
    pub scale_invariant: bool,
}

/// Each `[n, c]` map divided by its L2 norm (zero maps stay zero).
fn normalise_maps(t: Tensor<4>) -> Tensor<4> {
    let norm = ((t.clone() * t.clone()).sum_dim(3).sum_dim(2) + 1e-12).sqrt();
    t / norm
}

/// Peak signal-to-noise ratio in dB of `b` against `a` (values in [0, 1]).
pub fn psnr(a: &[f32], b: &[f32]) -> f64 {
    let mse: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(x - y).powi(2))
        .sum::<f64>()
        / a.len().max(1) as f64;
    if mse <= 0.0 {
        f64::INFINITY
    } else {
        10.0 * (1.0 / mse).log10()
    }
}

/// Mean SSIM of two `channels × side × side` images in [0, 1] (7×7 uniform windows).
pub fn ssim(a: &[f32], b: &[f32], channels: usize, side: usize) -> f64 {
    let (c1, c2) = (1e-4f64, 9e-4f64);
    let win = 7.min(side);
    let mut total = 0.0;
    let mut count = 0usize;
    for c in 0..channels {
        let at = |img: &[f32], y: usize, x: usize| f64::from(img[(c * side + y) * side + x]);
        for y0 in 0..=side - win {
            for x0 in 0..=side - win {
                let (mut ma, mut mb) = (0.0, 0.0);
                for y in y0..y0 + win {
                    for x in x0..x0 + win {
                        ma += at(a, y, x);
                        mb += at(b, y, x);
                    }
                }
                let n = (win * win) as f64;
                ma /= n;
                mb /= n;
                let (mut va, mut vb, mut cov) = (0.0, 0.0, 0.0);
                for y in y0..y0 + win {
                    for x in x0..x0 + win {
                        let (da, db) = (at(a, y, x) - ma, at(b, y, x) - mb);
                        va += da * da;
                        vb += db * db;
                        cov += da * db;
                    }
                }
                // sample covariance, as skimage
                let m = n - 1.0;
                let (va, vb, cov) = (va / m, vb / m, cov / m);
                total += ((2.0 * ma * mb + c1) * (2.0 * cov + c2))
                    / ((ma * ma + mb * mb + c1) * (va + vb + c2));
                count += 1;
            }
        }
    }
    total / count.max(1) as f64
}

/// `x` (pixels in [0, 1], `[n, c, h, w]`) normalised per channel as `model` expects.
pub(crate) fn normalise_input(x: Tensor<4>, model: &TrainedModel) -> Tensor<4> {
    let c = model.spec.in_channels;
    let norm = &model.normalization;
    let pick = |v: &[f32], i: usize| v[i.min(v.len().saturating_sub(1))];
    let mean: Vec<f32> = (0..c).map(|i| pick(&norm.mean, i)).collect();
    let std: Vec<f32> = (0..c).map(|i| pick(&norm.std, i)).collect();
    let device = x.device();
    let mean = Tensor::<4>::from_data(TensorData::new(mean, [1, c, 1, 1]), &device);
    let std = Tensor::<4>::from_data(TensorData::new(std, [1, c, 1, 1]), &device);
    (x - mean) / std
}

/// Selected layer-2 outputs of `x` (pixels in [0,1], `[n, c, h, w]`), other channels zeroed.
fn features(net: &Network, x: Tensor<4>, model: &TrainedModel, mask: &Tensor<4>) -> Tensor<4> {
    let xn = normalise_input(x, model);
    net.conv2(net.layer1(net.conv1(xn))) * mask.clone()
}

/// Total variation (mean absolute neighbour difference).
fn tv(x: Tensor<4>) -> Tensor<1> {
    let [n, c, h, w] = x.dims();
    let dy =
        x.clone().slice([0..n, 0..c, 1..h, 0..w]) - x.clone().slice([0..n, 0..c, 0..h - 1, 0..w]);
    let dx = x.clone().slice([0..n, 0..c, 0..h, 1..w]) - x.slice([0..n, 0..c, 0..h, 0..w - 1]);
    dy.abs().mean() + dx.abs().mean()
}

/// Inverts `target` (`[n, c2, h2, w2]` values, selected channels) to images in [0, 1].
pub fn invert(
    model: &TrainedModel,
    selection: &NeuronSelection,
    target: &[f32],
    n: usize,
    s: &InvertSettings,
    device: &privdnn_model::burn::tensor::Device,
) -> Result<Vec<f32>> {
    let spec = &model.spec;
    let net = import_tensors(Network::new(spec, device)?, &model.tensors, None)?;
    let c2 = privdnn_model::partition::channels(model)?[1];
    let side = spec.image_size;
    let shape = [n, spec.in_channels, side, side];
    let mask_values: Vec<f32> = (0..c2)
        .map(|j| {
            if selection.layer2.contains(&j) {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    let mask = Tensor::<4>::from_data(TensorData::new(mask_values, [1, c2, 1, 1]), device);
    let t_len = target.len();
    let h2 = ((t_len / n.max(1) / c2) as f64).sqrt() as usize;
    let target_t =
        Tensor::<4>::from_data(TensorData::new(target.to_vec(), [n, c2, h2, h2]), device);
    fit_images(|x| features(&net, x, model, &mask), target_t, shape, s)
}

/// Searches images `x̂ ∈ [0, 1]` of `shape` (initialised to 0.5) whose `features` match
/// `target` (on an autodiff device): Adam on
/// `‖f(x̂) − target‖² / ‖target‖² + tv · TV(x̂)`, both sides normalised per map first when
/// `s.scale_invariant`. `features` receives pixels in [0, 1] (normalise inside if the model
/// expects it).
pub fn fit_images(
    features: impl Fn(Tensor<4>) -> Tensor<4>,
    mut target: Tensor<4>,
    shape: [usize; 4],
    s: &InvertSettings,
) -> Result<Vec<f32>> {
    let device = target.device();
    let len: usize = shape.iter().product();
    if s.scale_invariant {
        target = normalise_maps(target);
    }
    let scale = target
        .clone()
        .powf_scalar(2.0)
        .mean()
        .into_scalar::<f32>()
        .max(1e-20) as f64;
    let mut x = vec![0.5f32; len];
    let (mut m, mut v) = (vec![0.0f32; len], vec![0.0f32; len]);
    let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
    for step in 1..=s.steps {
        let xt = Tensor::<4>::from_data(TensorData::new(x.clone(), shape), &device).require_grad();
        let mut f = features(xt.clone());
        if s.scale_invariant {
            f = normalise_maps(f);
        }
        let diff = f - target.clone();
        let loss = (diff.clone() * diff).mean() / scale + tv(xt.clone()) * s.tv;
        let grads = loss.backward();
        let g = xt
            .grad(&grads)
            .context("no gradient for the image")?
            .into_data();
        let g = privdnn_model::data_values(g, "image gradient")?;
        let lr = s.learning_rate as f32;
        let (c1, c2b) = (1.0 - b1.powi(step as i32), 1.0 - b2.powi(step as i32));
        for i in 0..len {
            m[i] = b1 * m[i] + (1.0 - b1) * g[i];
            v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
            let upd = lr * (m[i] / c1) / ((v[i] / c2b).sqrt() + eps);
            x[i] = (x[i] - upd).clamp(0.0, 1.0);
        }
    }
    Ok(x)
}

/// Writes a grid of `rows` (each `n` images `channels × side × side` in [0, 1]) as an RGB PNG,
/// every pixel drawn as `zoom × zoom`, 2-pixel white gaps.
pub fn write_grid(
    path: &Path,
    rows: &[Vec<f32>],
    n: usize,
    channels: usize,
    side: usize,
    zoom: usize,
) -> Result<()> {
    let gap = 2;
    let cell = side * zoom + gap;
    let (w, h) = (n * cell + gap, rows.len() * cell + gap);
    let mut rgb = vec![255u8; w * h * 3];
    let plane = side * side;
    for (r, images) in rows.iter().enumerate() {
        for i in 0..n {
            let img = &images[i * channels * plane..(i + 1) * channels * plane];
            for y in 0..side * zoom {
                for x in 0..side * zoom {
                    let (py, px) = (y / zoom, x / zoom);
                    let (oy, ox) = (gap + r * cell + y, gap + i * cell + x);
                    for k in 0..3 {
                        let c = if channels == 3 { k } else { 0 };
                        let v = img[c * plane + py * side + px].clamp(0.0, 1.0);
                        rgb[(oy * w + ox) * 3 + k] = (v * 255.0).round() as u8;
                    }
                }
            }
        }
    }
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w as u32, h as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()?.write_image_data(&rgb)?;
    Ok(())
}

/// What the owner observes of the user's first `n` evaluation images in the three cases.
struct Observed {
    /// Pixels in [0, 1], `[n · plane]`.
    truth: Vec<f32>,
    /// Layer-2 outputs as decrypted without blinding (the selected filters; others zero).
    z: Vec<f32>,
    /// The reference defence: every map multiplied by a random factor.
    scaled: Vec<f32>,
    /// Our protocol: uniform masks, independent of the image.
    blinded: Vec<f32>,
    /// Values per image (all filters).
    per_image: usize,
    /// Layer-2 filters.
    c2: usize,
}

fn observe(exp: &Experiment<'_>, sel: &NeuronSelection, n: usize) -> Result<Observed> {
    let model = &exp.model;
    let spec = &model.spec;
    let eval_device = &exp.devices.eval;
    // pixels in [0, 1]
    let plane = spec.in_channels * spec.image_size * spec.image_size;
    let mut truth = Vec::with_capacity(n * plane);
    for i in 0..n {
        truth.extend(exp.eval.image(i).iter().map(|b| f32::from(*b) / 255.0));
    }
    let net = import_tensors(Network::new(spec, eval_device)?, &model.tensors, None)?;
    let c2 = privdnn_model::partition::channels(model)?[1];
    let mask_values: Vec<f32> = (0..c2)
        .map(|j| if sel.layer2.contains(&j) { 1.0 } else { 0.0 })
        .collect();
    let mask = Tensor::<4>::from_data(TensorData::new(mask_values, [1, c2, 1, 1]), eval_device);
    let side = spec.image_size;
    let xt = Tensor::<4>::from_data(
        TensorData::new(truth.clone(), [n, spec.in_channels, side, side]),
        eval_device,
    );
    let z = privdnn_model::tensor_values(features(&net, xt, model, &mask), "features")?;
    let per_image = z.len() / n;
    let hw = per_image / c2;
    let max_abs = z.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let mut rng = ChaCha8Rng::seed_from_u64(exp.seed ^ 0x1_4E27);
    let scaled: Vec<f32> = {
        let factors: Vec<f32> = (0..n * c2).map(|_| rng.random_range(0.0..100.0)).collect();
        z.iter()
            .enumerate()
            .map(|(i, v)| v * factors[i / hw])
            .collect()
    };
    let blinded: Vec<f32> = (0..z.len())
        .map(|i| {
            let j = (i / hw) % c2;
            if sel.layer2.contains(&j) {
                rng.random_range(-max_abs..max_abs)
            } else {
                0.0
            }
        })
        .collect();
    Ok(Observed {
        truth,
        z,
        scaled,
        blinded,
        per_image,
        c2,
    })
}

/// Mean PSNR and SSIM of the `n` recovered images against the originals.
pub(crate) fn mean_quality(
    truth: &[f32],
    rec: &[f32],
    n: usize,
    channels: usize,
    side: usize,
) -> (f64, f64) {
    let plane = channels * side * side;
    let (mut p, mut s) = (0.0, 0.0);
    for i in 0..n {
        let (a, b) = (
            &truth[i * plane..(i + 1) * plane],
            &rec[i * plane..(i + 1) * plane],
        );
        p += psnr(a, b);
        s += ssim(a, b, channels, side);
    }
    (p / n as f64, s / n as f64)
}

/// The inversion experiment of the attack stage: the four cases on the first `invert_images`
/// evaluation images, scored and drawn as a picture grid.
pub fn run_experiment(exp: &Experiment<'_>, sel: &NeuronSelection) -> Result<Value> {
    let a = &exp.attack;
    let model = &exp.model;
    let spec = &model.spec;
    let n = a.invert_images.min(exp.eval.len()).max(1);
    let (side, channels) = (spec.image_size, spec.in_channels);
    let obs = observe(exp, sel, n)?;
    let settings = InvertSettings {
        steps: a.invert_steps,
        learning_rate: a.invert_learning_rate,
        tv: 0.01,
        scale_invariant: false,
    };
    let mut rows = vec![obs.truth.clone()];
    let mut cases = serde_json::Map::new();
    let (bp, bs) = mean_quality(
        &obs.truth,
        &vec![0.5f32; obs.truth.len()],
        n,
        channels,
        side,
    );
    cases.insert("constant_0.5".into(), json!({"psnr": bp, "ssim": bs}));
    let progress = crate::experiment::bar(4, "input recovery");
    for (name, target, invariant) in [
        ("unblinded", &obs.z, false),
        ("scaled", &obs.scaled, false),
        ("scaled_scale_invariant", &obs.scaled, true),
        ("blinded", &obs.blinded, false),
    ] {
        let clock = std::time::Instant::now();
        let s = InvertSettings {
            scale_invariant: invariant,
            ..settings.clone()
        };
        let rec = invert(model, sel, target, n, &s, &exp.devices.train)?;
        let (p, s) = mean_quality(&obs.truth, &rec, n, channels, side);
        progress.suspend(|| log::info!("input recovery, {name}: PSNR {p:.2} dB, SSIM {s:.3}"));
        cases.insert(
            name.into(),
            json!({"psnr": p, "ssim": s, "seconds": clock.elapsed().as_secs_f64()}),
        );
        rows.push(rec);
        progress.inc(1);
    }
    progress.finish_and_clear();
    let grid = exp.out.join("inversion.png");
    write_grid(
        &grid,
        &rows,
        n,
        channels,
        side,
        if side <= 28 { 3 } else { 2 },
    )?;
    Ok(json!({
        "selection": sel.to_reference_json(),
        "images": n,
        "steps": settings.steps,
        "learning_rate": settings.learning_rate,
        "tv_weight": settings.tv,
        "observed_values_per_image": obs.per_image / obs.c2 * sel.layer2.len(),
        "pixels_per_image": channels * side * side,
        "cases": cases,
        "grid": grid.display().to_string(),
        "grid_rows": ["original", "unblinded", "scaled (reference defence, fitted as is)", "scaled, scale-invariant attacker", "blinded (ours)"],
    }))
}
