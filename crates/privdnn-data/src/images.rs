//! Encoded-image datasets on disk: ImageFolder trees (`dir/<class>/*.{jpg,jpeg,png}`), the
//! official Tiny ImageNet layout, plus the decoding and resizing shared with the tar reader.
//!
//! Every image is decoded, converted to RGB (3 channels) or luma (1 channel, the `image` crate's
//! Rec. 709 weights), resized to `size × size` with a bilinear (triangle) filter when its size
//! differs, and stored as NCHW bytes. Order is deterministic: classes and files are sorted by
//! name (numeric-aware). This module must never skip an undecodable image silently.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use image::imageops::{self, FilterType};
use image::{GrayImage, ImageBuffer, Pixel};

use crate::error::DataError;
use crate::input::fill_parallel;

/// Decoded images with their labels, NCHW bytes, in a deterministic order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelledImages {
    /// Class names in label order (label `i` is `class_names[i]`).
    pub class_names: Vec<String>,
    /// One label per image.
    pub labels: Vec<u16>,
    /// `labels.len() × channels × size × size` bytes.
    pub images: Vec<u8>,
}

const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];
/// Largest image side accepted (guards against absurd sizes from configs).
const MAX_SIZE: usize = 4096;

/// Reads an ImageFolder tree: classes are the sorted sub-folder names of `dir`, images are the
/// `.jpg`/`.jpeg`/`.png` files (any case) in each class folder, or in its `images/` sub-folder
/// when it has one (Tiny ImageNet's official `train/<wnid>/images/` layout).
pub fn read_image_folder(
    dir: &Path,
    size: usize,
    channels: usize,
) -> Result<LabelledImages, DataError> {
    check_shape(dir, size, channels)?;
    let class_names = sorted_entries(dir, |p| p.is_dir())?;
    if class_names.is_empty() {
        return Err(DataError::layout(
            dir,
            "no class sub-folders (expected <dir>/<class>/<image>)",
        ));
    }
    let mut jobs = Vec::new();
    for (label, class) in class_names.iter().enumerate() {
        let label = class_label(dir, label)?;
        let class_dir = dir.join(class);
        let images_dir = class_dir.join("images");
        let image_dir = if images_dir.is_dir() {
            images_dir
        } else {
            class_dir
        };
        let files = sorted_entries(&image_dir, |p| p.is_file() && has_image_extension(p))?;
        if files.is_empty() {
            log::warn!("{}: class folder holds no image", image_dir.display());
        }
        jobs.extend(files.into_iter().map(|f| (label, image_dir.join(f))));
    }
    if jobs.is_empty() {
        return Err(DataError::layout(
            dir,
            "no .jpg, .jpeg or .png image in any class folder",
        ));
    }
    decode_files(class_names, jobs, size, channels)
}

/// Reads Tiny ImageNet's official validation folder: `dir/images/*.JPEG` labelled by
/// `dir/val_annotations.txt` (tab-separated: file name, wnid, box…). Labels index `class_names`
/// (the train folder's sorted wnids). Always 3 channels.
pub fn read_tiny_imagenet_val(
    dir: &Path,
    class_names: &[String],
    size: usize,
) -> Result<LabelledImages, DataError> {
    check_shape(dir, size, 3)?;
    let annotations = dir.join("val_annotations.txt");
    let text = std::fs::read_to_string(&annotations).map_err(|e| DataError::io(&annotations, e))?;
    let mut jobs = Vec::new();
    for (line_no, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let mut fields = line.split('\t');
        let (Some(file), Some(wnid)) = (fields.next(), fields.next()) else {
            return Err(DataError::corrupt(
                &annotations,
                "Tiny ImageNet annotations",
                format!(
                    "line {}: expected tab-separated file name and wnid",
                    line_no + 1
                ),
            ));
        };
        let label = class_names
            .iter()
            .position(|c| c == wnid.trim())
            .ok_or_else(|| {
                DataError::layout(
                    &annotations,
                    format!(
                        "line {}: class `{wnid}` is not among the {} train classes",
                        line_no + 1,
                        class_names.len()
                    ),
                )
            })?;
        jobs.push((
            class_label(&annotations, label)?,
            dir.join("images").join(file.trim()),
        ));
    }
    if jobs.is_empty() {
        return Err(DataError::layout(&annotations, "no annotated image"));
    }
    jobs.sort_by(|a, b| natural_cmp(&a.1.to_string_lossy(), &b.1.to_string_lossy()));
    decode_files(class_names.to_vec(), jobs, size, 3)
}

/// Reads and decodes `(label, file)` jobs into a [`LabelledImages`].
fn decode_files(
    class_names: Vec<String>,
    jobs: Vec<(u16, PathBuf)>,
    size: usize,
    channels: usize,
) -> Result<LabelledImages, DataError> {
    let images = fill_parallel(&jobs, channels * size * size, |(_, file), out| {
        let bytes = std::fs::read(file).map_err(|e| DataError::io(file, e))?;
        decode_into(&bytes, size, channels, out).map_err(|reason| DataError::BadImage {
            path: file.clone(),
            member: String::new(),
            reason,
        })
    })?;
    Ok(LabelledImages {
        class_names,
        labels: jobs.iter().map(|(label, _)| *label).collect(),
        images,
    })
}

/// Rejects sizes and channel counts the decoder cannot produce.
pub(crate) fn check_shape(path: &Path, size: usize, channels: usize) -> Result<(), DataError> {
    if size == 0 || size > MAX_SIZE {
        return Err(DataError::invalid(
            path,
            format!("image size {size} is not in 1..={MAX_SIZE}"),
        ));
    }
    if channels != 1 && channels != 3 {
        return Err(DataError::invalid(
            path,
            format!("{channels} channels requested; only 1 (luma) or 3 (RGB) are supported"),
        ));
    }
    Ok(())
}

/// Label `index` as u16, or a layout error when there are too many classes.
pub(crate) fn class_label(path: &Path, index: usize) -> Result<u16, DataError> {
    u16::try_from(index)
        .map_err(|_| DataError::layout(path, format!("more than {} classes", u16::MAX)))
}

/// Non-hidden entry names of `dir` accepted by `keep`, numeric-aware sorted.
fn sorted_entries(dir: &Path, keep: impl Fn(&Path) -> bool) -> Result<Vec<String>, DataError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && keep(&entry.path()) {
            names.push(name);
        }
    }
    names.sort_by(|a, b| natural_cmp(a, b));
    Ok(names)
}

/// True for `.jpg`, `.jpeg` and `.png` names, any case.
pub(crate) fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Decodes one encoded image into `out` (`channels × size × size` bytes, channel planes).
pub(crate) fn decode_into(
    bytes: &[u8],
    size: usize,
    channels: usize,
    out: &mut [u8],
) -> Result<(), String> {
    let image = image::load_from_memory(bytes).map_err(|e| e.to_string())?;
    if channels == 1 {
        out.copy_from_slice(fit(image.to_luma8(), size).as_raw());
    } else {
        let rgb = fit(image.to_rgb8(), size);
        let plane = size * size;
        for (i, pixel) in rgb.as_raw().chunks_exact(3).enumerate() {
            for (c, &value) in pixel.iter().enumerate() {
                out[c * plane + i] = value;
            }
        }
    }
    Ok(())
}

/// Resizes to `size × size` (triangle filter) unless it already has that size.
fn fit<P: Pixel + 'static>(
    image: ImageBuffer<P, Vec<P::Subpixel>>,
    size: usize,
) -> ImageBuffer<P, Vec<P::Subpixel>> {
    let side = size as u32; // size ≤ MAX_SIZE, checked by the callers
    if image.dimensions() == (side, side) {
        image
    } else {
        imageops::resize(&image, side, side, FilterType::Triangle)
    }
}

/// Resizes NCHW images of `height × width` to `size × size`, plane by plane (triangle filter,
/// identical to resizing each multi-channel image).
pub(crate) fn resize_chw(
    path: &Path,
    images: &[u8],
    height: usize,
    width: usize,
    size: usize,
) -> Result<Vec<u8>, DataError> {
    check_shape(path, size, 1)?;
    let (w, h) = match (u32::try_from(width), u32::try_from(height)) {
        (Ok(w), Ok(h)) if w > 0 && h > 0 => (w, h),
        _ => {
            return Err(DataError::invalid(
                path,
                format!("cannot resize {height}×{width} images"),
            ));
        }
    };
    let planes: Vec<&[u8]> = images.chunks_exact(height * width).collect();
    fill_parallel(&planes, size * size, |plane, out| {
        let image = GrayImage::from_raw(w, h, plane.to_vec())
            .ok_or_else(|| DataError::invalid(path, "image plane has the wrong length"))?;
        out.copy_from_slice(fit(image, size).as_raw());
        Ok(())
    })
}

/// Numeric-aware comparison: digit runs compare by value (`2.jpg` < `10.jpg`), the rest bytewise.
pub(crate) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    while let (Some(&p), Some(&q)) = (x.first(), y.first()) {
        let order = if p.is_ascii_digit() && q.is_ascii_digit() {
            let (dx, rx) = split_digits(x);
            let (dy, ry) = split_digits(y);
            (x, y) = (rx, ry);
            dx.len().cmp(&dy.len()).then(dx.cmp(dy))
        } else {
            (x, y) = (&x[1..], &y[1..]);
            p.cmp(&q)
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    x.len().cmp(&y.len()).then_with(|| a.cmp(b))
}

/// Splits a leading digit run (without leading zeros) from the rest.
fn split_digits(s: &[u8]) -> (&[u8], &[u8]) {
    let end = s
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(s.len());
    let (digits, rest) = s.split_at(end);
    let first_nonzero = digits
        .iter()
        .position(|&c| c != b'0')
        .unwrap_or(digits.len());
    (&digits[first_nonzero..], rest)
}

#[cfg(test)]
mod tests {
    use super::natural_cmp;

    #[test]
    fn natural_order() {
        let mut names = vec!["10.jpg", "2.jpg", "1.jpg", "b", "a10", "a9", "007.jpg"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            ["1.jpg", "2.jpg", "007.jpg", "10.jpg", "a9", "a10", "b"]
        );
    }
}
