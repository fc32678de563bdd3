//! The project's one bincode configuration: every payload that is written to a file or sent
//! between roles or processes is encoded and decoded here, and nowhere else.
//!
//! Decoding is bounded by the input's own length: bincode counts the bytes a value *claims*
//! while it is decoded (a string or byte buffer claims its length before it is allocated, a
//! one-byte varint `u128` claims 16), and the bound is [`DECODE_FACTOR`] × input length +
//! [`DECODE_SLACK`]. No field type claims more than 16 decoded bytes per encoded byte, so every
//! honestly encoded value decodes, and a hostile length prefix is an error instead of an
//! allocation that aborts the process. Trailing bytes after the value are an error too.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ArtifactError;

/// Decoded bytes allowed per input byte (the widest primitive, `u128`, as a one-byte varint).
pub const DECODE_FACTOR: usize = 16;
/// Decoded bytes allowed on top of the proportional bound (empty and tiny inputs).
pub const DECODE_SLACK: usize = 64;

/// The allocation bound for an input of `len` bytes.
pub fn decode_limit(len: usize) -> usize {
    len.saturating_mul(DECODE_FACTOR)
        .saturating_add(DECODE_SLACK)
}

/// Encodes a value (no envelope); the error names the type.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, ArtifactError> {
    encode_raw(value).map_err(|reason| ArtifactError::Codec {
        what: std::any::type_name::<T>().to_string(),
        reason,
    })
}

/// Decodes one value that must fill `bytes` exactly, bounded by [`decode_limit`] of the input
/// length; `what` names the message or file in errors.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, ArtifactError> {
    decode_with_limit(bytes, decode_limit(bytes.len()), what)
}

/// [`decode`] with an explicit allocation bound (rounded up to a power of two, at least 256).
pub fn decode_with_limit<T: DeserializeOwned>(
    bytes: &[u8],
    limit: usize,
    what: &str,
) -> Result<T, ArtifactError> {
    decode_raw(bytes, limit).map_err(|reason| ArtifactError::Codec {
        what: what.to_string(),
        reason,
    })
}

pub(crate) fn encode_raw<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    bincode::serde::encode_to_vec(value, bincode::config::standard()).map_err(|e| e.to_string())
}

pub(crate) fn decode_raw<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, String> {
    let (value, used) = ladder::decode::<T>(bytes, limit)?;
    if used != bytes.len() {
        return Err(format!("{} unexpected trailing bytes", bytes.len() - used));
    }
    Ok(value)
}

/// bincode's limit is a compile-time constant: a runtime limit picks the smallest power of two
/// at or above it (so the effective bound is below twice the requested one).
mod ladder {
    use serde::de::DeserializeOwned;

    fn with_limit<T: DeserializeOwned, const N: usize>(bytes: &[u8]) -> Result<(T, usize), String> {
        let config = bincode::config::standard().with_limit::<N>();
        bincode::serde::decode_from_slice(bytes, config).map_err(|e| e.to_string())
    }

    macro_rules! rungs {
        ($bytes:expr, $limit:expr; $($k:literal)*) => {
            $(if $limit <= (1usize << $k) {
                return with_limit::<T, { 1usize << $k }>($bytes);
            })*
        };
    }

    pub(super) fn decode<T: DeserializeOwned>(
        bytes: &[u8],
        limit: usize,
    ) -> Result<(T, usize), String> {
        rungs!(bytes, limit; 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30
            31 32 33 34 35 36 37 38 39 40);
        Err(format!(
            "{limit} decoded bytes exceed the largest decode limit (1 TiB)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_of_the_widest_primitives_fits_the_bound() {
        let v: Vec<u128> = (0..1000).map(|i| i % 3).collect();
        let bytes = encode(&v).expect("encode");
        assert!(bytes.len() < 1100, "one byte per small varint");
        let back: Vec<u128> = decode(&bytes, "test").expect("decode");
        assert_eq!(back, v);
        let s: Vec<String> = vec![String::new(); 500];
        let back: Vec<String> = decode(&encode(&s).expect("enc"), "test").expect("dec");
        assert_eq!(back, s);
    }

    #[test]
    fn hostile_length_prefix_and_trailing_bytes_are_errors() {
        // A byte string claiming 2^40 bytes in a 10-byte input.
        let mut b = vec![0xFD];
        b.extend_from_slice(&(1u64 << 40).to_le_bytes());
        b.push(0);
        let err = decode::<serde_bytes::ByteBuf>(&b, "probe").expect_err("bounded");
        assert!(err.to_string().contains("probe"), "{err}");
        let mut ok = encode(&7u32).expect("enc");
        ok.push(0);
        let err = decode::<u32>(&ok, "tail").expect_err("trailing");
        assert!(err.to_string().contains("trailing"), "{err}");
    }
}
