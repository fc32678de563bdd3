//! The decoders under test. A [`Target`] holds valid encodings as seeds and a function that
//! decodes one input the way the receiving code does, wrapping every decode in
//! [`crate::Exec::bounded`] with that decoder's configured allocation bound.
//!
//! Bounds: a codec decode of `n` bytes may allocate at most [`codec_bound`]`(n)` in one piece:
//! the decode limit `16·n + 64` as bincode enforces it (rounded up to a power of two, at least
//! 256), or [`SERDE_PREALLOC`], whichever is larger — serde pre-allocates a sequence from its
//! announced length before bincode counts a single element, capped at 1 MiB, so a message of a
//! few bytes can make its receiver allocate 1 MiB once (bounded; not a limit bincode can see);
//! a frame read at most the frame limit ([`net::MAX_FRAME`]); a ciphertext decompression
//! at most [`he::WORK_BOUND`] (two polynomials of the fixed ring degree, whatever the input).

pub mod artifacts;
pub mod he;
pub mod net;

use privdnn_artifacts::codec::decode_limit;

use crate::Exec;

/// Decodes one input; `true` when the decoder accepted it.
pub type Decode = Box<dyn Fn(&[u8], &mut Exec) -> bool + Send + Sync>;

/// One decoder under test.
pub struct Target {
    /// Name in reports.
    pub name: &'static str,
    /// Relative share of executions (the file reader, ~1000× slower than the in-memory
    /// decoders because it writes and reads a file, gets a small share).
    pub weight: u32,
    /// Valid encodings (the mutator starts from these).
    pub seeds: Vec<Vec<u8>>,
    /// Decodes one input; `true` when the decoder accepted it.
    pub run: Decode,
    /// Repairs an input after mutation (e.g. recomputes a checksum) so that the decoder behind
    /// an integrity check is reached; applied to half of the inputs.
    pub fixup: Option<fn(&mut [u8])>,
}

/// serde's cap on the pre-allocation of a sequence (`serde::private::size_hint::cautious`).
pub const SERDE_PREALLOC: usize = 1 << 20;

/// The allocation bound of one codec decode of `len` bytes.
pub fn codec_bound(len: usize) -> usize {
    decode_limit(len).next_power_of_two().max(SERDE_PREALLOC)
}

/// Every target.
pub fn all() -> anyhow::Result<Vec<Target>> {
    let mut targets = net::targets()?;
    targets.extend(artifacts::targets()?);
    targets.extend(he::targets()?);
    Ok(targets)
}
