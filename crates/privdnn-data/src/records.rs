//! Reader for fixed-size labelled records: one label byte followed by `channels × height × width`
//! pixel bytes in channel planes. This is the CIFAR-10 "binary version" layout and the layout of
//! the `gtsrb32_*.bin` files (raw or gzipped).
//!
//! The format has no header or magic, so the only structural check possible is the length; label
//! ranges are checked by the caller, who knows the class count. Never pad a short record.

use std::path::Path;

use crate::error::DataError;
use crate::input::read_all;

const FORMAT: &str = "labelled-record";

/// Reads every record of `path`; returns `(labels, pixels)` with pixels in NCHW order.
pub fn read_cifar_records(
    path: &Path,
    channels: usize,
    height: usize,
    width: usize,
) -> Result<(Vec<u16>, Vec<u8>), DataError> {
    let image_len = channels
        .checked_mul(height)
        .and_then(|n| n.checked_mul(width))
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            DataError::invalid(
                path,
                format!("record image shape {channels}×{height}×{width} is empty or too large"),
            )
        })?;
    let record_len = image_len + 1;
    let bytes = read_all(path, FORMAT)?;
    if bytes.is_empty() {
        return Err(DataError::truncated(
            path,
            FORMAT,
            "the file holds no record",
        ));
    }
    let tail = bytes.len() % record_len;
    if tail != 0 {
        return Err(DataError::truncated(
            path,
            FORMAT,
            format!(
                "{} bytes is not a whole number of {record_len}-byte records (1 label byte + {channels}×{height}×{width}); the last record has only {tail} bytes",
                bytes.len()
            ),
        ));
    }
    let count = bytes.len() / record_len;
    let mut labels = Vec::with_capacity(count);
    let mut pixels = Vec::with_capacity(count * image_len);
    for record in bytes.chunks_exact(record_len) {
        if let Some((&label, image)) = record.split_first() {
            labels.push(u16::from(label));
            pixels.extend_from_slice(image);
        }
    }
    Ok((labels, pixels))
}
