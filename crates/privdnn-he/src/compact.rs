//! Compact wire format for ciphertexts at the last level (one prime q): the low bits of c0 and
//! c1, which decryption only needs up to an error far below q/(2t), are dropped and the rest is
//! bit-packed. Dropping k bits adds at most 2^(k−1) to c0 and 2^(k−1)·|s|-sized terms through c1;
//! the amounts are chosen from log(q/2t) with margin (c1's error is multiplied by the secret,
//! ≈ 2^10 larger), and the shadow check of every run verifies that decryption stays exact.

use std::sync::Arc;

use fhe::bfv::{BfvParameters, Ciphertext};
use fhe_math::rq::traits::TryConvertFrom;
use fhe_math::rq::{Poly, Representation};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::{HeError, Result};

/// A ciphertext with dropped low bits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompactCiphertext {
    /// Level (index into the modulus chain).
    pub level: usize,
    /// Low bits dropped from c0 and c1.
    pub dropped: [u32; 2],
    /// Bit-packed coefficients of c0 then c1.
    #[serde(with = "serde_bytes")]
    pub bits: Vec<u8>,
}

impl CompactCiphertext {
    /// Serialised payload size.
    pub fn len(&self) -> usize {
        self.bits.len() + 16
    }

    /// Never empty.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Bits to drop from (c0, c1) for a last prime `q` and plaintext modulus `t`.
pub fn drop_bits(q: u64, t: u64, degree: usize) -> [u32; 2] {
    let margin = ((q as f64) / (2.0 * t as f64)).log2().floor() as i64;
    // c1's rounding error is multiplied by the secret: ≈ √(N·Var(s)) · 2^(k−1) / √3.
    let amplification = (0.5 * (degree as f64 * 10.0).log2()).ceil() as i64;
    [
        (margin - 3).max(0) as u32,
        (margin - 6 - amplification).max(0) as u32,
    ]
}

fn level_of(ct: &Ciphertext, par: &BfvParameters) -> usize {
    par.moduli().len() - ct[0].ctx().moduli().len()
}

/// Compresses a 2-part ciphertext at the last level.
pub fn compress(ct: &Ciphertext, par: &Arc<BfvParameters>) -> Result<CompactCiphertext> {
    let level = level_of(ct, par);
    let ctx = par.context_at_level(level)?;
    if ct.len() != 2 || ctx.moduli().len() != 1 {
        return Err(HeError::shape(
            "only 2-part ciphertexts at a single-prime level can be compacted",
        ));
    }
    let q = ctx.moduli()[0];
    let dropped = drop_bits(q, par.plaintext(), par.degree());
    let mut writer = BitWriter::default();
    for (part, &k) in dropped.iter().enumerate() {
        let mut poly = ct[part].clone();
        poly.change_representation(Representation::PowerBasis);
        let width = 64 - (q >> k).leading_zeros() + 1;
        for &c in poly.coefficients().row(0).iter() {
            let r = if k == 0 {
                c
            } else {
                (c + (1u64 << (k - 1))) >> k
            };
            writer.push(r, width);
        }
    }
    Ok(CompactCiphertext {
        level,
        dropped,
        bits: writer.finish(),
    })
}

/// Restores a ciphertext (with the rounding error of the dropped bits).
pub fn decompress(c: &CompactCiphertext, par: &Arc<BfvParameters>) -> Result<Ciphertext> {
    let ctx = par.context_at_level(c.level)?;
    if ctx.moduli().len() != 1 {
        return Err(HeError::Decode {
            what: "compact ciphertext",
            detail: format!("level {} has several primes", c.level),
        });
    }
    let q = ctx.moduli()[0];
    let n = par.degree();
    let mut reader = BitReader {
        bytes: &c.bits,
        pos: 0,
    };
    let mut polys = Vec::with_capacity(2);
    for &k in &c.dropped {
        if k >= 63 {
            return Err(HeError::Decode {
                what: "compact ciphertext",
                detail: "drop amount".into(),
            });
        }
        let width = 64 - (q >> k).leading_zeros() + 1;
        let mut coeffs = Array2::<u64>::zeros((1, n));
        for v in coeffs.iter_mut() {
            let r = reader.take(width).ok_or_else(|| HeError::Decode {
                what: "compact ciphertext",
                detail: "truncated".into(),
            })?;
            *v = (((r as u128) << k) % q as u128) as u64;
        }
        let mut poly = Poly::try_convert_from(coeffs, ctx, false, Representation::PowerBasis)?;
        poly.change_representation(Representation::Ntt);
        polys.push(poly);
    }
    Ok(Ciphertext::new(polys, par)?)
}

#[derive(Default)]
pub(crate) struct BitWriter {
    out: Vec<u8>,
    acc: u128,
    filled: u32,
}

impl BitWriter {
    pub(crate) fn push(&mut self, value: u64, width: u32) {
        self.acc |= (value as u128) << self.filled;
        self.filled += width;
        while self.filled >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.filled -= 8;
        }
    }

    pub(crate) fn finish(mut self) -> Vec<u8> {
        if self.filled > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

pub(crate) struct BitReader<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) pos: usize,
}

impl BitReader<'_> {
    pub(crate) fn take(&mut self, width: u32) -> Option<u64> {
        let mut v: u128 = 0;
        for i in 0..width as usize {
            let bit = self.pos + i;
            let byte = *self.bytes.get(bit / 8)?;
            v |= (((byte >> (bit % 8)) & 1) as u128) << i;
        }
        self.pos += width as usize;
        Some(v as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_packing_round_trips() {
        let mut w = BitWriter::default();
        let vals = [5u64, 0, (1 << 40) - 1, 12345, 1];
        for v in vals {
            w.push(v, 41);
        }
        let bytes = w.finish();
        let mut r = BitReader {
            bytes: &bytes,
            pos: 0,
        };
        for v in vals {
            assert_eq!(r.take(41), Some(v));
        }
        assert_eq!(drop_bits(1 << 54, 1 << 24, 8192), [26, 14]);
        let packed = PackedSlots::pack(&[1, 2, 3], 24);
        assert_eq!(packed.unpack(), Some(vec![1, 2, 3]));
        let hostile = PackedSlots {
            width: 0,
            len: u32::MAX,
            data: vec![],
        };
        assert_eq!(hostile.unpack(), None);
        let short = PackedSlots {
            width: 24,
            len: 1000,
            data: vec![0; 10],
        };
        assert_eq!(short.unpack(), None);
    }
}

/// Slot values mod t, bit-packed at ⌈log2 t⌉ bits each (the owner's reply).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackedSlots {
    /// Bits per value.
    pub width: u8,
    /// Number of values.
    pub len: u32,
    /// Packed values.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

impl PackedSlots {
    /// Packs values below `2^width`.
    pub fn pack(values: &[u64], width: u32) -> Self {
        let mut w = BitWriter::default();
        for &v in values {
            w.push(v, width);
        }
        Self {
            width: width as u8,
            len: values.len() as u32,
            data: w.finish(),
        }
    }

    /// Unpacks; `None` when the width is not 1..=64 or the data is shorter than announced.
    pub fn unpack(&self) -> Option<Vec<u64>> {
        let needed = (self.len as u64).checked_mul(self.width as u64)?;
        if !(1..=64).contains(&self.width) || needed > self.data.len() as u64 * 8 {
            return None;
        }
        let mut r = BitReader {
            bytes: &self.data,
            pos: 0,
        };
        (0..self.len).map(|_| r.take(self.width as u32)).collect()
    }
}
