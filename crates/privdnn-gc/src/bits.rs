//! Bits and words: ℓ-bit ring words (little-endian bit order) ↔ `bool` slices, bit packing for the
//! wire, sign extension.

use crate::error::GcError;

/// Mask of the low `ell` bits (`ell` in 1..=64).
pub fn ring_mask(ell: u32) -> u64 {
    if ell >= 64 {
        u64::MAX
    } else {
        (1u64 << ell) - 1
    }
}

/// Interprets the low `ell` bits of `w` as a two's-complement signed number.
pub fn sign_extend(w: u64, ell: u32) -> i64 {
    if ell >= 64 {
        w as i64
    } else {
        let sh = 64 - ell;
        ((w << sh) as i64) >> sh
    }
}

/// Appends the low `ell` bits of `w`, least significant first.
pub fn push_word(out: &mut Vec<bool>, w: u64, ell: u32) {
    out.extend((0..ell).map(|i| (w >> i) & 1 == 1));
}

/// The word whose bits (least significant first) are `bits` (at most 64 of them are read).
pub fn word_from_bits(bits: &[bool]) -> u64 {
    bits.iter()
        .take(64)
        .enumerate()
        .fold(0u64, |acc, (i, &b)| acc | (u64::from(b) << i))
}

/// Packs bits into bytes, bit `i` at byte `i / 8`, position `i % 8`.
pub fn pack_bits(bits: &[bool]) -> Vec<u8> {
    let mut out = vec![0u8; bits.len().div_ceil(8)];
    for (i, &b) in bits.iter().enumerate() {
        out[i / 8] |= u8::from(b) << (i % 8);
    }
    out
}

/// Unpacks `n` bits packed by [`pack_bits`].
pub fn unpack_bits(bytes: &[u8], n: usize) -> Result<Vec<bool>, GcError> {
    if bytes.len() != n.div_ceil(8) {
        return Err(GcError::length(format!(
            "{} packed bytes for {n} bits (expected {})",
            bytes.len(),
            n.div_ceil(8)
        )));
    }
    Ok((0..n).map(|i| (bytes[i / 8] >> (i % 8)) & 1 == 1).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_packing_round_trip() {
        let mut bits = Vec::new();
        push_word(&mut bits, 0xdead_beef, 40);
        assert_eq!(bits.len(), 40);
        assert_eq!(word_from_bits(&bits), 0xdead_beef);
        let packed = pack_bits(&bits);
        assert_eq!(packed.len(), 5);
        assert_eq!(unpack_bits(&packed, 40), Ok(bits));
        assert!(unpack_bits(&packed, 41).is_err());
    }

    #[test]
    fn sign_extension() {
        assert_eq!(sign_extend(0xff, 8), -1);
        assert_eq!(sign_extend(0x7f, 8), 127);
        assert_eq!(sign_extend(u64::MAX, 64), -1);
        assert_eq!(ring_mask(64), u64::MAX);
        assert_eq!(ring_mask(1), 1);
    }
}
