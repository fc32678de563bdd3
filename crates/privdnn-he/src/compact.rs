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

use crate::params::HeParams;
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
    let bad = |detail: String| HeError::Decode {
        what: "compact ciphertext",
        detail,
    };
    if c.dropped.iter().any(|&k| k >= 63) {
        return Err(bad(format!("drop amounts {:?}", c.dropped)));
    }
    let bits: u64 = c
        .dropped
        .iter()
        .map(|&k| u64::from(64 - (q >> k).leading_zeros() + 1) * n as u64)
        .sum();
    if bits.div_ceil(8) != c.bits.len() as u64 {
        return Err(bad(format!(
            "{} bytes of coefficients, the level and drop amounts need {}",
            c.bits.len(),
            bits.div_ceil(8)
        )));
    }
    let mut reader = BitReader {
        bytes: &c.bits,
        pos: 0,
    };
    let mut polys = Vec::with_capacity(2);
    for &k in &c.dropped {
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

    /// Review §2.1 (fuzz target `he-reply`): width-1 slots let a reply announce 8 values per
    /// byte, so `unpack` allocated 64× the reply (a 2 MiB reply: 128 MiB); the announced count
    /// is now capped, and the user's path takes exactly N values of ⌈log2 t⌉ bits below t.
    #[test]
    fn hostile_slot_headers_are_refused_before_allocation() {
        let wide = PackedSlots {
            width: 1,
            len: MAX_SLOTS + 1,
            data: vec![0xFF; (MAX_SLOTS as usize + 1).div_ceil(8)],
        };
        assert_eq!(wide.unpack(), None);
        let hp = HeParams {
            degree: 16,
            moduli: vec![0x3f_ffff_fffe_d001],
            plaintext: 65537,
        };
        let w = slot_width(hp.plaintext);
        assert_eq!(w, 17);
        let good = PackedSlots::pack(&[65536; 16], w);
        assert_eq!(good.unpack_exact(w, 16), Some(vec![65536; 16]));
        let ok = unpack_checked(
            &[vec![good.clone(), good.clone()]],
            std::slice::from_ref(&hp),
            2,
        );
        assert_eq!(ok.expect("valid").len(), 1);
        let too_big = PackedSlots::pack(&[65537; 16], w);
        let narrow = PackedSlots::pack(&[1; 16], 1);
        let long = PackedSlots::pack(&[1; 17], w);
        let mut trailing = good.clone();
        trailing.data.push(0);
        for (reply, count, needle) in [
            (
                vec![vec![good.clone()]],
                2,
                "1 ciphertexts, the request has 2",
            ),
            (vec![vec![too_big]], 1, "≥ t"),
            (vec![vec![narrow]], 1, "of 1 bits"),
            (vec![vec![long]], 1, "17 values"),
            (vec![vec![trailing]], 1, "expected 16 values of 17 bits"),
            (vec![vec![good.clone()], vec![good]], 1, "2 residues"),
        ] {
            let err = unpack_checked(&reply, std::slice::from_ref(&hp), count).expect_err(needle);
            assert!(err.to_string().contains(needle), "{err} lacks {needle}");
        }
    }

    /// Fuzz target `he-request`: a compact ciphertext whose bit string does not have exactly
    /// the length its level and drop amounts imply, an unknown level or a drop of ≥ 63 bits is
    /// a decode error.
    #[test]
    fn compact_ciphertexts_of_the_wrong_size_are_refused() {
        let hp = HeParams::generate(2048, &[50], 16).expect("params");
        let par = hp.build().expect("build");
        let q = hp.moduli[0];
        let dropped = drop_bits(q, hp.plaintext, hp.degree);
        let bits: usize = dropped
            .iter()
            .map(|&k| (64 - (q >> k).leading_zeros() + 1) as usize * hp.degree)
            .sum();
        let good = CompactCiphertext {
            level: 0,
            dropped,
            bits: vec![0x5A; bits.div_ceil(8)],
        };
        assert!(decompress(&good, &par).is_ok());
        let mut short = good.clone();
        short.bits.pop();
        let mut long = good.clone();
        long.bits.push(0);
        let mut level = good.clone();
        level.level = usize::MAX;
        let mut drop = good.clone();
        drop.dropped = [63, 0];
        for bad in [short, long, level, drop] {
            assert!(decompress(&bad, &par).is_err());
        }
    }
}

/// Largest value count a [`PackedSlots`] may announce: the largest ring degree fhe supports.
pub const MAX_SLOTS: u32 = 1 << 15;

/// Bits per packed slot value for plaintext modulus `t` (what the owner packs at).
pub fn slot_width(t: u64) -> u32 {
    64 - t.leading_zeros()
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

    /// Unpacks; `None` when the width is not 1..=64, the count exceeds [`MAX_SLOTS`] or the
    /// data is shorter than announced. A receiver that knows the parameters uses
    /// [`PackedSlots::unpack_exact`].
    pub fn unpack(&self) -> Option<Vec<u64>> {
        let needed = (self.len as u64).checked_mul(self.width as u64)?;
        if self.len > MAX_SLOTS
            || !(1..=64).contains(&self.width)
            || needed > self.data.len() as u64 * 8
        {
            return None;
        }
        let mut r = BitReader {
            bytes: &self.data,
            pos: 0,
        };
        (0..self.len).map(|_| r.take(self.width as u32)).collect()
    }

    /// Unpacks exactly `len` values of `width` bits: `None` unless the header announces that
    /// width and count and the data holds exactly ⌈len·width/8⌉ bytes.
    pub fn unpack_exact(&self, width: u32, len: usize) -> Option<Vec<u64>> {
        let bytes = (len as u64).checked_mul(u64::from(width))?.div_ceil(8);
        if !(1..=64).contains(&width)
            || u32::from(self.width) != width
            || self.len as usize != len
            || bytes != self.data.len() as u64
        {
            return None;
        }
        let mut r = BitReader {
            bytes: &self.data,
            pos: 0,
        };
        (0..len).map(|_| r.take(width)).collect()
    }
}

/// The owner's reply values (per residue, per ciphertext), checked against what the user
/// asked for: one entry per parameter set, `count` ciphertexts in each, every one exactly N
/// values of ⌈log2 t⌉ bits below t (the owner's packing). A reply of another shape is an error before anything is unpacked,
/// so a hostile owner cannot make the user allocate more than the reply's own size.
pub fn unpack_checked(
    values: &[Vec<PackedSlots>],
    params: &[HeParams],
    count: usize,
) -> Result<Vec<Vec<Vec<u64>>>> {
    let bad = |detail: String| HeError::Decode {
        what: "reply",
        detail,
    };
    if values.len() != params.len() {
        return Err(bad(format!(
            "{} residues, the request has {}",
            values.len(),
            params.len()
        )));
    }
    values
        .iter()
        .zip(params)
        .enumerate()
        .map(|(i, (per, hp))| {
            if per.len() != count {
                return Err(bad(format!(
                    "residue {i}: {} ciphertexts, the request has {count}",
                    per.len()
                )));
            }
            let width = slot_width(hp.plaintext);
            per.iter()
                .enumerate()
                .map(|(k, p)| {
                    let values = p.unpack_exact(width, hp.degree).ok_or_else(|| {
                        bad(format!(
                            "residue {i}, ciphertext {k}: {} values of {} bits in {} bytes, \
                                 expected {} values of {width} bits",
                            p.len,
                            p.width,
                            p.data.len(),
                            hp.degree
                        ))
                    })?;
                    match values.iter().find(|&&v| v >= hp.plaintext) {
                        Some(v) => Err(bad(format!(
                            "residue {i}, ciphertext {k}: slot value {v} ≥ t = {}",
                            hp.plaintext
                        ))),
                        None => Ok(values),
                    }
                })
                .collect()
        })
        .collect()
}
