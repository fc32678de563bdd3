//! Writers for small fixtures in the real on-disk formats (IDX, labelled records, PNG/JPEG,
//! tar and tar.gz), used by every test module. Fixtures go into temporary folders only; never
//! write into the source tree.

use std::io::Write;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use image::{ImageFormat, RgbImage};

/// Result type of the tests.
pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// gzip-compresses `bytes`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder
        .write_all(bytes)
        .expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

/// Writes `bytes` to `path`, creating parent folders.
pub fn write(path: &Path, bytes: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create fixture folder");
    }
    std::fs::write(path, bytes).expect("write fixture");
}

/// An IDX image file (magic 0x803) holding `count` images of `rows × cols` bytes.
pub fn idx_images(count: usize, rows: usize, cols: usize, pixels: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 8, 3];
    for d in [count, rows, cols] {
        bytes.extend_from_slice(&(d as u32).to_be_bytes());
    }
    bytes.extend_from_slice(pixels);
    bytes
}

/// An IDX label file (magic 0x801).
pub fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 8, 1];
    bytes.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    bytes.extend_from_slice(labels);
    bytes
}

/// Deterministic pixel pattern `(i * 7 + seed) mod 256`.
pub fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + seed) % 256) as u8).collect()
}

/// Labelled records: per image one label byte then its pixels.
pub fn records(labels: &[u8], pixels: &[u8]) -> Vec<u8> {
    let image_len = pixels.len() / labels.len();
    labels
        .iter()
        .zip(pixels.chunks_exact(image_len))
        .flat_map(|(&label, image)| std::iter::once(label).chain(image.iter().copied()))
        .collect()
}

/// A `w × h` RGB image whose pixel `(x, y)` is `(base + x, base + 10 y, base + 20)`.
pub fn rgb_image(w: u32, h: u32, base: u8) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([base + x as u8, base + 10 * y as u8, base + 20])
    })
}

/// A single-colour image.
pub fn flat_image(w: u32, h: u32, rgb: [u8; 3]) -> RgbImage {
    RgbImage::from_pixel(w, h, image::Rgb(rgb))
}

/// Encodes an image as PNG or JPEG.
pub fn encode(image: &RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, format)
        .expect("encode fixture image");
    out.into_inner()
}

/// The NCHW planes of an RGB image.
pub fn planes(image: &RgbImage) -> Vec<u8> {
    (0..3)
        .flat_map(|c| image.pixels().map(move |p| p.0[c]))
        .collect()
}

/// A tar archive of `(path, bytes)` entries (regular files).
pub fn tar(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, bytes.as_slice())
            .expect("append tar entry");
    }
    builder.into_inner().expect("finish tar")
}

/// A fake MNIST: `train` and `test` images of 4×4 (first byte = label * 10) and labels `i % 10`,
/// gzipped, under `dir` with the official file names.
pub fn write_mnist_like(
    dir: &Path,
    prefix: &str,
    train_name: &str,
    test_name: &str,
    train: usize,
    test: usize,
) {
    for (split, count) in [(train_name, train), (test_name, test)] {
        let labels: Vec<u8> = (0..count).map(|i| (i % 10) as u8).collect();
        let mut pixels = pattern(count * 16, count);
        for (i, label) in labels.iter().enumerate() {
            pixels[i * 16] = label * 10;
        }
        write(
            &dir.join(format!("{prefix}{split}-images-idx3-ubyte.gz")),
            &gzip(&idx_images(count, 4, 4, &pixels)),
        );
        write(
            &dir.join(format!("{prefix}{split}-labels-idx1-ubyte.gz")),
            &gzip(&idx_labels(&labels)),
        );
    }
}

/// Asserts that `message` names `path`.
pub fn assert_names(message: &str, path: &Path) {
    let shown = path.display().to_string();
    assert!(
        message.contains(&shown),
        "message does not name {shown}: {message}"
    );
}
