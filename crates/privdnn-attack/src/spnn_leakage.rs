//! What the SPNN server learns (issue 18): during split training it reconstructs z1 = conv1(x) + b
//! of every training image (conv1's raw output on the normalised image, before pooling) and keeps
//! some of them ([`privdnn_spnn::ServerView`]). This experiment reconstructs those training images
//! from z1 for each variant of the run (`spnn`: σ = 0, `spnn_noise`: SGLD noise on the weight
//! updates) and scores the reconstructions against the true images:
//!
//! * `blind` (knows z1 only: no weights, no images): every pixel's `c1` channel vector is
//!   projected on the top principal component of all recorded images' vectors (mean-centred,
//!   power iteration); the sign is chosen so that the map's border ring is darker than the mean
//!   (a dark-background prior, right for MNIST-like data, possibly wrong for natural images);
//!   every map is min-max normalised to [0, 1] and placed centred in the image frame (LeNet5's
//!   conv1 has no padding: 24 × 24 inside 28 × 28), the margin filled with the mean of the map's
//!   border ring; maps that are not a kernel's margin smaller than the image (strided stems) are
//!   resized nearest-neighbour instead. The result is grey: for colour models it is scored
//!   against the grey truth (mean over colour channels), both replicated over the channels.
//!   The map is an edge-like, blurred image (recognisable in the grid), but the scores are
//!   sensitive to its sign and contrast: on data without a dark background (a GTSRB check: the
//!   shapes are readable, the sign came out inverted, 8.4 dB / SSIM −0.36 vs 13.0 dB / 0.16 for
//!   the mean image) they understate what a viewer reads off the grid.
//! * `released_conv1` (knows z1 and conv1's weights and bias of the released model, i.e. after
//!   the model is published): Adam on the image in [0, 1] through the model's normalisation and
//!   conv1 ([`crate::invert::fit_images`], the owner's inversion), loss
//!   `‖conv1(x̂) − z1‖² / ‖z1‖² + tv · TV(x̂)` with a small TV weight ([`RELEASED_TV`]). The
//!   released model is the one after the last epoch; the view was recorded during that epoch
//!   with slightly older weights, which only costs the attacker a little.
//! * reference: the mean training image (over the whole training split), scored the same way,
//!   is what "no information about the image" scores.
//!
//! Quality: PSNR (dB) and SSIM of [`crate::invert`] against the true training images (pixels in
//! [0, 1], before normalisation), averaged over the images. Grid rows: the originals, then per
//! variant its blind and released-conv1 reconstructions (and its own originals first when its
//! images differ from the first variant's).

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use privdnn_artifacts::{DatasetSplit, TrainedModel};
use privdnn_model::burn::tensor::{Device, Tensor, TensorData};
use privdnn_model::{Network, import_tensors};
use privdnn_spnn::ServerView;
use serde_json::{Value, json};

use crate::invert::{InvertSettings, fit_images, mean_quality, normalise_input, write_grid};

/// Variant folders under `results/<run>/baselines/spnn/` and the names the record gives them.
pub const VARIANTS: [(&str, &str); 2] = [("spnn", "spnn"), ("spnn-noise", "spnn_noise")];

/// File name of the record and of the picture grid in the attack folder.
pub const RECORD_FILE: &str = "spnn_leakage.json";
/// File name of the picture grid in the attack folder.
pub const GRID_FILE: &str = "spnn_leakage.png";

/// Total-variation weight of the released-conv1 attacker (small: z1 nearly determines x).
pub const RELEASED_TV: f64 = 1e-4;

/// One SPNN variant's run: what its server saw and the model it released.
pub struct VariantRun {
    /// Name in the record (`spnn`, `spnn_noise`).
    pub name: String,
    /// The variant's folder (for error messages).
    pub dir: PathBuf,
    /// z1 of the recorded training images.
    pub view: ServerView,
    /// The trained model of the variant.
    pub model: TrainedModel,
}

/// Image geometry shared by the experiment's helpers.
#[derive(Clone, Copy)]
struct Frame {
    channels: usize,
    side: usize,
}

impl Frame {
    fn plane(&self) -> usize {
        self.channels * self.side * self.side
    }
}

/// Checks that `v`'s view and model fit the training split; the frame of its images.
fn check(v: &VariantRun, train: &DatasetSplit) -> Result<Frame> {
    let spec = &v.model.spec;
    let where_ = v.dir.display();
    if v.view.dataset != train.dataset {
        bail!(
            "{where_}: the server view is of dataset `{}`, the pipeline's training split of `{}`",
            v.view.dataset,
            train.dataset
        );
    }
    if v.view.indices.is_empty() {
        bail!("{where_}: the server view holds no images");
    }
    if let Some(i) = v.view.indices.iter().find(|&&i| i >= train.len()) {
        bail!(
            "{where_}: image index {i} outside the training split ({} images)",
            train.len()
        );
    }
    let side = spec.image_size;
    if train.channels != spec.in_channels || train.height != side || train.width != side {
        bail!(
            "{where_}: the model expects {}×{side}×{side} images, the training split has {}×{}×{}",
            spec.in_channels,
            train.channels,
            train.height,
            train.width
        );
    }
    Ok(Frame {
        channels: spec.in_channels,
        side,
    })
}

/// Pixels in [0, 1] of the first `n` recorded images (`n × plane`).
fn truth(view: &ServerView, train: &DatasetSplit, n: usize) -> Vec<f32> {
    view.indices[..n]
        .iter()
        .flat_map(|&i| train.image(i).iter().map(|b| f32::from(*b) / 255.0))
        .collect()
}

/// Every image replaced by its mean over colour channels, replicated over the channels.
fn grey(images: &[f32], f: Frame) -> Vec<f32> {
    let hw = f.side * f.side;
    let mut out = Vec::with_capacity(images.len());
    for img in images.chunks(f.plane()) {
        let g: Vec<f32> = (0..hw)
            .map(|p| (0..f.channels).map(|c| img[c * hw + p]).sum::<f32>() / f.channels as f32)
            .collect();
        for _ in 0..f.channels {
            out.extend_from_slice(&g);
        }
    }
    out
}

/// Mean and top principal direction of the `c`-vectors `z1[i, :, p]` over images and pixels.
fn top_component(z1: &[f32], c: usize, hw: usize) -> (Vec<f64>, Vec<f64>) {
    let vectors = z1.len() / (c * hw).max(1) * hw;
    let at = |k: usize, j: usize| f64::from(z1[(k / hw * c + j) * hw + k % hw]);
    let mean: Vec<f64> = (0..c)
        .map(|j| (0..vectors).map(|k| at(k, j)).sum::<f64>() / vectors.max(1) as f64)
        .collect();
    let mut cov = vec![0.0f64; c * c];
    for k in 0..vectors {
        let d: Vec<f64> = (0..c).map(|j| at(k, j) - mean[j]).collect();
        for a in 0..c {
            for b in 0..c {
                cov[a * c + b] += d[a] * d[b];
            }
        }
    }
    // power iteration from a fixed, asymmetric start
    let mut u: Vec<f64> = (0..c).map(|j| 1.0 + 0.37 * j as f64).collect();
    for _ in 0..500 {
        let w: Vec<f64> = (0..c)
            .map(|a| (0..c).map(|b| cov[a * c + b] * u[b]).sum())
            .collect();
        let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm <= 0.0 || !norm.is_finite() {
            break;
        }
        u = w.into_iter().map(|x| x / norm).collect();
    }
    (mean, u)
}

/// Whether pixel `(y, x)` lies on the border ring of an `h × w` map.
fn on_border(y: usize, x: usize, h: usize, w: usize) -> bool {
    y == 0 || x == 0 || y + 1 == h || x + 1 == w
}

/// The blind attacker's reconstruction of the first `n` recorded images (`n × plane`).
fn blind(view: &ServerView, n: usize, f: Frame) -> Vec<f32> {
    let [c, h, w] = view.shape;
    let hw = h * w;
    let (mean, u) = top_component(&view.z1, c, hw);
    let mut maps: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            let z = &view.z1[i * c * hw..(i + 1) * c * hw];
            (0..hw)
                .map(|p| {
                    (0..c)
                        .map(|j| u[j] * (f64::from(z[j * hw + p]) - mean[j]))
                        .sum()
                })
                .collect()
        })
        .collect();
    // dark-background prior: the border ring is below the (zero) mean projection
    let border: f64 = maps
        .iter()
        .flat_map(|m| {
            (0..hw)
                .filter(|p| on_border(p / w, p % w, h, w))
                .map(|p| m[p])
        })
        .sum();
    if border > 0.0 {
        maps.iter_mut().flatten().for_each(|v| *v = -*v);
    }
    let mut out = Vec::with_capacity(n * f.plane());
    for m in maps {
        let img = place(&min_max(&m), h, w, f.side);
        for _ in 0..f.channels {
            out.extend_from_slice(&img);
        }
    }
    out
}

/// `m` scaled to [0, 1] (a constant map becomes 0).
fn min_max(m: &[f64]) -> Vec<f64> {
    let lo = m.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = m.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = hi - lo;
    m.iter()
        .map(|v| if span > 0.0 { (v - lo) / span } else { 0.0 })
        .collect()
}

/// An `h × w` map in a `side × side` frame: centred with the border ring's mean around it when
/// it is at most a kernel's margin smaller, else resized nearest-neighbour.
fn place(m: &[f64], h: usize, w: usize, side: usize) -> Vec<f32> {
    let centred = h <= side && w <= side && side - h <= h / 2 && side - w <= w / 2;
    if !centred {
        return (0..side * side)
            .map(|p| m[(p / side * h / side) * w + (p % side) * w / side] as f32)
            .collect();
    }
    let ring: Vec<f64> = (0..h * w)
        .filter(|p| on_border(p / w, p % w, h, w))
        .map(|p| m[p])
        .collect();
    let fill = ring.iter().sum::<f64>() / ring.len().max(1) as f64;
    let (oy, ox) = ((side - h) / 2, (side - w) / 2);
    (0..side * side)
        .map(|p| {
            let (y, x) = (p / side, p % side);
            if (oy..oy + h).contains(&y) && (ox..ox + w).contains(&x) {
                m[(y - oy) * w + x - ox] as f32
            } else {
                fill as f32
            }
        })
        .collect()
}

/// The released-conv1 attacker's reconstruction of the first `n` recorded images.
fn released(
    v: &VariantRun,
    n: usize,
    f: Frame,
    s: &InvertSettings,
    device: &Device,
) -> Result<Vec<f32>> {
    let model = &v.model;
    let net = import_tensors(Network::new(&model.spec, device)?, &model.tensors, None)?;
    let probe = Tensor::<4>::zeros([1, f.channels, f.side, f.side], device);
    let [_, c1, h1, w1] = net.conv1(probe).dims();
    if [c1, h1, w1] != v.view.shape {
        bail!(
            "{}: the server view's z1 is {:?} per image, the model's conv1 gives {:?}",
            v.dir.display(),
            v.view.shape,
            [c1, h1, w1]
        );
    }
    let per = c1 * h1 * w1;
    let target = Tensor::<4>::from_data(
        TensorData::new(v.view.z1[..n * per].to_vec(), [n, c1, h1, w1]),
        device,
    );
    let shape = [n, f.channels, f.side, f.side];
    fit_images(|x| net.conv1(normalise_input(x, model)), target, shape, s)
}

/// The mean image of `train` (pixels in [0, 1]), repeated `n` times.
fn mean_image(train: &DatasetSplit, n: usize) -> Vec<f32> {
    let len = train.image_len();
    let mut sum = vec![0.0f64; len];
    for i in 0..train.len() {
        for (a, b) in sum.iter_mut().zip(train.image(i)) {
            *a += f64::from(*b);
        }
    }
    let count = train.len().max(1) as f64 * 255.0;
    let img: Vec<f32> = sum.iter().map(|a| (a / count) as f32).collect();
    img.repeat(n)
}

/// Scores of one attacker, as the record lists them.
fn scored(name: &str, knows: &str, (psnr, ssim): (f64, f64)) -> Value {
    json!({"name": name, "knows": knows, "psnr_db": psnr, "ssim": ssim})
}

/// Runs both attackers on every variant (the first `n` images common to all views), writes the
/// grid [`GRID_FILE`] in `out` and returns the record (`spnn_leakage.json`'s content).
pub fn run_experiment(
    variants: &[VariantRun],
    train: &DatasetSplit,
    s: &InvertSettings,
    device: &Device,
    out: &Path,
) -> Result<Value> {
    let Some(first) = variants.first() else {
        bail!("no SPNN variant to attack");
    };
    let f = check(first, train)?;
    for v in variants {
        let g = check(v, train)?;
        if g.channels != f.channels || g.side != f.side {
            bail!(
                "{}: image shape differs from {}",
                v.dir.display(),
                first.dir.display()
            );
        }
    }
    let n = variants
        .iter()
        .map(|v| v.view.indices.len())
        .min()
        .unwrap_or(0);
    let originals = truth(&first.view, train, n);
    let mut rows = vec![originals.clone()];
    let mut row_names = vec!["original".to_string()];
    let mut records = Vec::new();
    for v in variants {
        let clock = std::time::Instant::now();
        let truth_v = truth(&v.view, train, n);
        if v.view.indices[..n] != first.view.indices[..n] {
            rows.push(truth_v.clone());
            row_names.push(format!("original ({})", v.name));
        }
        let b = blind(&v.view, n, f);
        let r = released(v, n, f, s, device)?;
        let qb = mean_quality(&grey(&truth_v, f), &b, n, f.channels, f.side);
        let qr = mean_quality(&truth_v, &r, n, f.channels, f.side);
        log::info!(
            "spnn leakage, {}: blind PSNR {:.2} dB SSIM {:.3}; released conv1 PSNR {:.2} dB SSIM {:.3} ({:.1}s)",
            v.name,
            qb.0,
            qb.1,
            qr.0,
            qr.1,
            clock.elapsed().as_secs_f64()
        );
        records.push(json!({
            "name": v.name, "noise_sigma": v.view.noise_sigma, "epoch": v.view.epoch,
            "attackers": [scored("blind", "z1 only", qb),
                          scored("released_conv1", "z1 and the released model's conv1", qr)],
        }));
        rows.extend([b, r]);
        row_names.extend([
            format!("{} blind", v.name),
            format!("{} released conv1", v.name),
        ]);
    }
    let reference = mean_quality(&originals, &mean_image(train, n), n, f.channels, f.side);
    write_grid(
        &out.join(GRID_FILE),
        &rows,
        n,
        f.channels,
        f.side,
        if f.side <= 28 { 3 } else { 2 },
    )?;
    Ok(json!({
        "images": n,
        "variants": records,
        "reference": {"name": "mean training image", "psnr_db": reference.0, "ssim": reference.1},
        "grid": GRID_FILE,
        "grid_rows": row_names,
    }))
}
