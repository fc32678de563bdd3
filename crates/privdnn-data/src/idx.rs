//! Reader for the IDX format of MNIST, Fashion-MNIST and EMNIST (raw or gzipped).
//!
//! Layout: big-endian magic `0x00000800 | type << 8 | ndim` (`0x0803` for unsigned-byte images,
//! `0x0801` for unsigned-byte labels), then `ndim` big-endian u32 dimensions, then the bytes.
//! This module only parses; it must never guess a missing dimension or pad a short file.

use std::path::Path;

use crate::error::DataError;
use crate::input::read_all;

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

/// Images of an IDX file, row-major, one byte per pixel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `count × rows × cols` bytes.
    pub pixels: Vec<u8>,
}

impl IdxImages {
    /// Transposes every image in place (rows become columns).
    ///
    /// EMNIST stores each image transposed relative to MNIST; this turns it upright.
    pub fn transpose(&mut self) {
        let (rows, cols) = (self.rows, self.cols);
        let mut scratch = vec![0u8; rows * cols];
        for image in self.pixels.chunks_exact_mut(rows * cols) {
            for r in 0..rows {
                for c in 0..cols {
                    scratch[c * rows + r] = image[r * cols + c];
                }
            }
            image.copy_from_slice(&scratch);
        }
        std::mem::swap(&mut self.rows, &mut self.cols);
    }
}

/// Reads an IDX image file (magic `0x00000803`), gzipped or not.
pub fn read_idx_images(path: &Path) -> Result<IdxImages, DataError> {
    const FORMAT: &str = "IDX images";
    let mut bytes = read_all(path, FORMAT)?;
    let dims = parse_header(&bytes, path, FORMAT, IMAGES_MAGIC)?;
    let [count, rows, cols] = [dims[0], dims[1], dims[2]];
    let image_len = rows.checked_mul(cols).ok_or_else(|| {
        DataError::corrupt(path, FORMAT, format!("absurd image size {rows}×{cols}"))
    })?;
    let header_len = header_len(3);
    check_body_len(&bytes, path, FORMAT, header_len, count, image_len, "images")?;
    bytes.drain(..header_len);
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels: bytes,
    })
}

/// Reads an IDX label file (magic `0x00000801`), gzipped or not.
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    const FORMAT: &str = "IDX labels";
    let mut bytes = read_all(path, FORMAT)?;
    let dims = parse_header(&bytes, path, FORMAT, LABELS_MAGIC)?;
    let header_len = header_len(1);
    check_body_len(&bytes, path, FORMAT, header_len, dims[0], 1, "labels")?;
    bytes.drain(..header_len);
    Ok(bytes)
}

fn header_len(ndim: usize) -> usize {
    4 + 4 * ndim
}

/// Checks the magic and returns the dimensions it announces.
fn parse_header(
    bytes: &[u8],
    path: &Path,
    format: &'static str,
    magic: u32,
) -> Result<Vec<usize>, DataError> {
    let be_u32 = |at: usize| {
        bytes
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
    };
    let found = be_u32(0).ok_or_else(|| {
        DataError::truncated(
            path,
            format,
            format!("{} bytes, too short for an IDX header", bytes.len()),
        )
    })?;
    if found != magic {
        return Err(DataError::corrupt(
            path,
            format,
            format!("magic number 0x{found:08x}, expected 0x{magic:08x}"),
        ));
    }
    let ndim = (magic & 0xff) as usize;
    (0..ndim)
        .map(|d| {
            be_u32(4 + 4 * d).map(|v| v as usize).ok_or_else(|| {
                DataError::truncated(
                    path,
                    format,
                    format!(
                        "{} bytes, the header needs {}",
                        bytes.len(),
                        header_len(ndim)
                    ),
                )
            })
        })
        .collect()
}

/// Checks that exactly `count × item_len` bytes follow the header.
fn check_body_len(
    bytes: &[u8],
    path: &Path,
    format: &'static str,
    header_len: usize,
    count: usize,
    item_len: usize,
    items: &str,
) -> Result<(), DataError> {
    let body = bytes.len().saturating_sub(header_len);
    let promised = count.checked_mul(item_len).ok_or_else(|| {
        DataError::corrupt(
            path,
            format,
            format!("absurd header: {count} {items} of {item_len} bytes"),
        )
    })?;
    let what = format!(
        "header promises {count} {items} of {item_len} bytes ({promised} bytes after the {header_len}-byte header)"
    );
    if body < promised {
        return Err(DataError::truncated(
            path,
            format,
            format!("{what}, file has {body}"),
        ));
    }
    if body > promised {
        return Err(DataError::corrupt(
            path,
            format,
            format!(
                "{what}, file has {} unexpected trailing bytes",
                body - promised
            ),
        ));
    }
    Ok(())
}
