//! Input generation: random bytes, and mutations of valid encodings so that most inputs get
//! past magic, version and kind checks into the decoders proper. Mutations: bit flips,
//! interesting byte values, truncation, deletion, duplication, random insertion, bincode
//! length-field inflation (a varint rewritten as a huge `u32`/`u64`), frame/envelope length
//! inflation (a little-endian `u32`/`u64` overwritten), and splices of two inputs.

use rand::{Rng, RngCore};

/// Largest input the generator produces (bytes).
pub const MAX_INPUT: usize = 1 << 16;

/// Byte values that often sit on decoder boundaries (bincode varint markers 251–254).
const INTERESTING: [u8; 10] = [0, 1, 0x7F, 0x80, 0xFA, 0xFB, 0xFC, 0xFD, 0xFE, 0xFF];

/// Large values written into length fields.
const HUGE: [u64; 7] = [
    u32::MAX as u64,
    (1 << 31) - 1,
    1 << 30,
    1 << 24,
    u64::MAX,
    1 << 40,
    (1 << 62) + 3,
];

/// A random input of up to 256 bytes.
pub fn random_bytes<R: RngCore>(rng: &mut R) -> Vec<u8> {
    let len = rng.random_range(0..=256);
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    v
}

/// Applies 1–4 random mutations to `input`; `other` is a second input for splices.
pub fn mutate<R: RngCore>(rng: &mut R, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        mutate_once(rng, &mut v, other);
    }
    v.truncate(MAX_INPUT);
    v
}

fn pos<R: RngCore>(rng: &mut R, len: usize) -> usize {
    if len == 0 {
        0
    } else {
        rng.random_range(0..len)
    }
}

fn mutate_once<R: RngCore>(rng: &mut R, v: &mut Vec<u8>, other: &[u8]) {
    let len = v.len();
    match rng.random_range(0..10) {
        0 | 1 if len > 0 => {
            let p = pos(rng, len);
            v[p] ^= 1 << rng.random_range(0..8);
        }
        2 if len > 0 => {
            let p = pos(rng, len);
            v[p] = INTERESTING[rng.random_range(0..INTERESTING.len())];
        }
        3 => v.truncate(pos(rng, len + 1)),
        4 if len > 0 => {
            let a = pos(rng, len);
            let b = (a + rng.random_range(1..=16)).min(len);
            v.drain(a..b);
        }
        5 if len > 0 => {
            let a = pos(rng, len);
            let b = (a + rng.random_range(1..=32)).min(len);
            let copy = v[a..b].to_vec();
            let at = pos(rng, len + 1);
            v.splice(at..at, copy);
        }
        6 => {
            let mut extra = vec![0u8; rng.random_range(1..=8)];
            rng.fill_bytes(&mut extra);
            let at = pos(rng, len + 1);
            v.splice(at..at, extra);
        }
        7 => inflate_varint(rng, v),
        8 if len >= 4 => {
            let huge = HUGE[rng.random_range(0..HUGE.len())];
            let width = if rng.random_bool(0.5) || len < 8 {
                4
            } else {
                8
            };
            let at = pos(rng, len - width + 1);
            v[at..at + width].copy_from_slice(&huge.to_le_bytes()[..width]);
        }
        _ => splice(rng, v, other),
    }
}

/// Replaces the byte at a random position by a bincode varint marker and a huge value, as if
/// a length or count field claimed far more than the input holds.
fn inflate_varint<R: RngCore>(rng: &mut R, v: &mut Vec<u8>) {
    let at = pos(rng, v.len());
    let huge = HUGE[rng.random_range(0..HUGE.len())];
    let mut field = Vec::with_capacity(9);
    if huge <= u64::from(u32::MAX) && rng.random_bool(0.5) {
        field.push(0xFC);
        field.extend_from_slice(&(huge as u32).to_le_bytes());
    } else {
        field.push(0xFD);
        field.extend_from_slice(&huge.to_le_bytes());
    }
    let end = (at + 1).min(v.len());
    v.splice(at..end, field);
}

/// A prefix of `v` followed by a suffix of `other`.
fn splice<R: RngCore>(rng: &mut R, v: &mut Vec<u8>, other: &[u8]) {
    let cut = pos(rng, v.len() + 1);
    let from = pos(rng, other.len() + 1);
    v.truncate(cut);
    v.extend_from_slice(&other[from..]);
}

/// Hex of the first `max` bytes (for printing failing inputs).
pub fn hex(bytes: &[u8], max: usize) -> String {
    let shown: String = bytes.iter().take(max).map(|b| format!("{b:02x}")).collect();
    if bytes.len() > max {
        format!("{shown}… ({} bytes)", bytes.len())
    } else {
        shown
    }
}
