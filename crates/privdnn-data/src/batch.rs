//! Turning raw NCHW bytes into a normalised float batch, with optional training augmentation
//! (random crop of the zero-padded image, horizontal flip, random grayscale).
//!
//! Normalisation is `(byte / 255 − mean[c]) / std[c]`, computed through a 256-entry table per
//! channel. Padding uses raw pixel value 0 (as torchvision pads before normalising). This runs
//! once per training batch: it must never allocate per pixel and never read outside an image.

use privdnn_artifacts::{DatasetSplit, Normalization};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

pub use privdnn_config::Augmentation;

/// What augmentation does to one image: read source pixel `(y + dy, x' + dx)` for output pixel
/// `(y, x)`, where `x' = w − 1 − x` when flipped; outside the image reads raw value 0.
#[derive(Clone, Copy, Debug, Default)]
struct Plan {
    flip: bool,
    gray: bool,
    dy: isize,
    dx: isize,
}

impl Plan {
    /// Draws a plan; draws happen in a fixed order (flip, grayscale, crop) for reproducibility.
    fn draw(aug: &Augmentation, channels: usize, rng: &mut ChaCha8Rng) -> Plan {
        let flip = aug.hflip && rng.random_bool(0.5);
        let gray = channels == 3 && aug.grayscale_p > 0.0 && rng.random::<f32>() < aug.grayscale_p;
        let pad = aug.crop_padding as i64;
        let (dy, dx) = if pad > 0 {
            (
                rng.random_range(-pad..=pad) as isize,
                rng.random_range(-pad..=pad) as isize,
            )
        } else {
            (0, 0)
        };
        Plan { flip, gray, dy, dx }
    }
}

/// Builds the float batch of `split`'s images at `indices`: NCHW values normalised with `norm`
/// (after augmentation when `aug` is given), and the labels as `i64`.
///
/// # Panics
/// On programming errors only: an index outside the split, or `norm` having neither 1 nor
/// `split.channels` entries in `mean` and `std`.
pub fn make_batch(
    split: &DatasetSplit,
    indices: &[usize],
    norm: &Normalization,
    mut aug: Option<(&Augmentation, &mut ChaCha8Rng)>,
) -> (Vec<f32>, Vec<i64>) {
    let (channels, h, w) = (split.channels, split.height, split.width);
    let stats: Vec<(f32, f32)> = (0..channels)
        .map(|c| channel_stats(norm, c, channels))
        .collect();
    let luts: Vec<[f32; 256]> = stats
        .iter()
        .map(|&(mean, std)| std::array::from_fn(|v| (v as f32 / 255.0 - mean) / std))
        .collect();
    let pad: Vec<f32> = luts.iter().map(|lut| lut[0]).collect();
    let image_len = split.image_len();
    let mut out = vec![0f32; indices.len() * image_len];
    let mut gray = vec![0f32; h * w];
    for (&index, dst) in indices.iter().zip(out.chunks_exact_mut(image_len.max(1))) {
        let src = split.image(index);
        let plan = match aug.as_mut() {
            Some((settings, rng)) => Plan::draw(settings, channels, rng),
            None => Plan::default(),
        };
        if plan.gray {
            let plane = h * w;
            for (i, g) in gray.iter_mut().enumerate() {
                let [r, gr, b] = [src[i], src[plane + i], src[2 * plane + i]].map(f32::from);
                *g = 0.299 * r + 0.587 * gr + 0.114 * b;
            }
            write_image(dst, channels, h, w, plan, &pad, |c, i| {
                (gray[i] / 255.0 - stats[c].0) / stats[c].1
            });
        } else {
            let plane = h * w;
            write_image(dst, channels, h, w, plan, &pad, |c, i| {
                luts[c][usize::from(src[c * plane + i])]
            });
        }
    }
    let labels = indices
        .iter()
        .map(|&i| i64::from(split.labels[i]))
        .collect();
    (out, labels)
}

/// `(mean, std)` of channel `c`; a single entry applies to every channel.
fn channel_stats(norm: &Normalization, c: usize, channels: usize) -> (f32, f32) {
    let pick = |values: &[f32], what: &str| match values.len() {
        1 => values[0],
        n if n == channels => values[c],
        n => panic!("normalization {what} has {n} entries for {channels}-channel images"),
    };
    (pick(&norm.mean, "mean"), pick(&norm.std, "std"))
}

/// Writes one `channels × h × w` output image following `plan`; `value(c, i)` gives the
/// normalised value of source pixel `i` (row-major) of channel `c`, `pad[c]` the padding value.
fn write_image(
    dst: &mut [f32],
    channels: usize,
    h: usize,
    w: usize,
    plan: Plan,
    pad: &[f32],
    value: impl Fn(usize, usize) -> f32,
) {
    let inside = |v: isize, limit: usize| usize::try_from(v).ok().filter(|&v| v < limit);
    for c in 0..channels {
        for (y, row) in dst[c * h * w..(c + 1) * h * w]
            .chunks_exact_mut(w.max(1))
            .enumerate()
        {
            let Some(sy) = inside(y as isize + plan.dy, h) else {
                row.fill(pad[c]);
                continue;
            };
            for (x, out) in row.iter_mut().enumerate() {
                let xs = if plan.flip { w - 1 - x } else { x };
                *out = match inside(xs as isize + plan.dx, w) {
                    Some(sx) => value(c, sy * w + sx),
                    None => pad[c],
                };
            }
        }
    }
}
