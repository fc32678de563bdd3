//! Low-level input helpers shared by every reader: open a file with transparent gzip detection
//! (by the `1f 8b` magic, never by the file name), read it whole, classify stream errors into
//! truncated / corrupt / I/O, and fill an output buffer in parallel.
//!
//! Nothing here knows a dataset format, and nothing here may panic on file contents.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use flate2::bufread::MultiGzDecoder;

use crate::error::DataError;

/// First two bytes of every gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A readable source plus whether it is gzip-compressed.
pub(crate) struct Opened {
    /// Decompressed bytes of the file.
    pub reader: Box<dyn Read + Send>,
    /// True when the file starts with the gzip magic.
    pub gzip: bool,
}

/// Opens `path`, decompressing on the fly when it starts with the gzip magic.
pub(crate) fn open(path: &Path) -> Result<Opened, DataError> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut buffered = BufReader::with_capacity(1 << 16, file);
    let head = buffered.fill_buf().map_err(|e| DataError::io(path, e))?;
    let gzip = head.starts_with(&GZIP_MAGIC);
    let reader: Box<dyn Read + Send> = if gzip {
        Box::new(MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    Ok(Opened { reader, gzip })
}

/// Reads the whole (decompressed) contents of `path`; `format` names the expected format in errors.
pub(crate) fn read_all(path: &Path, format: &'static str) -> Result<Vec<u8>, DataError> {
    let mut opened = open(path)?;
    let mut bytes = Vec::new();
    opened
        .reader
        .read_to_end(&mut bytes)
        .map_err(|e| stream_error(path, format, opened.gzip, false, e))?;
    Ok(bytes)
}

/// Turns an error met while streaming `path` into the right [`DataError`] variant.
///
/// `eof_seen` is true when the underlying stream had already ended (a reader then complaining
/// about a short block means the file is cut short).
pub(crate) fn stream_error(
    path: &Path,
    format: &'static str,
    gzip: bool,
    eof_seen: bool,
    e: io::Error,
) -> DataError {
    let container = if gzip { "gzip stream" } else { "file" };
    match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            DataError::truncated(path, format, format!("the {container} ends early ({e})"))
        }
        _ if eof_seen => {
            DataError::truncated(path, format, format!("the {container} ends early ({e})"))
        }
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData | io::ErrorKind::Other => {
            DataError::corrupt(path, format, format!("{container}: {e}"))
        }
        _ => DataError::io(path, e),
    }
}

/// A reader that remembers whether its inner reader has reported end of file.
pub(crate) struct EofWatch<R> {
    inner: R,
    /// Set once a non-empty read returned 0 bytes.
    pub eof: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl<R: Read> EofWatch<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        EofWatch {
            inner,
            eof: Default::default(),
        }
    }
}

impl<R: Read> Read for EofWatch<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.eof.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// Runs `fill(job, out)` for every job, each writing exactly `item_len` bytes of the result, on
/// all available cores. Output order is job order; the first failing job (in job order) wins.
pub(crate) fn fill_parallel<T: Sync>(
    jobs: &[T],
    item_len: usize,
    fill: impl Fn(&T, &mut [u8]) -> Result<(), DataError> + Sync,
) -> Result<Vec<u8>, DataError> {
    let mut out = vec![0u8; jobs.len().saturating_mul(item_len)];
    if jobs.is_empty() || item_len == 0 {
        return Ok(out);
    }
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 16);
    let per_thread = jobs.len().div_ceil(threads);
    let fill = &fill;
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .chunks(per_thread)
            .zip(out.chunks_mut(per_thread * item_len))
            .map(|(jobs, out)| {
                scope.spawn(move || {
                    jobs.iter()
                        .zip(out.chunks_mut(item_len))
                        .try_for_each(|(job, out)| fill(job, out))
                })
            })
            .collect();
        let mut first_error = None;
        for handle in handles {
            match handle.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        first_error.map_or(Ok(()), Err)
    })?;
    Ok(out)
}
