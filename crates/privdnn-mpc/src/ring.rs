//! Arithmetic in the ring Z_2^64: elements are `u64` with wrapping operations; signed values are
//! their two's-complement images, so any integer computation whose true result fits in `i64` is
//! recovered exactly from its ring image. Fixed point: a real `v` at `frac` fractional bits is the
//! ring image of `round(v · 2^frac)`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Ring image of a signed integer.
pub fn from_signed(v: i64) -> u64 {
    v as u64
}

/// Signed value of a ring element (two's complement).
pub fn to_signed(v: u64) -> i64 {
    v as i64
}

/// Fixed-point encoding of `v` at `frac` fractional bits (rounded to nearest).
pub fn encode_fixed(v: f64, frac: u32) -> u64 {
    from_signed((v * (frac as f64).exp2()).round() as i64)
}

/// Real value of a fixed-point ring element at `frac` fractional bits.
pub fn decode_fixed(v: u64, frac: u32) -> f64 {
    to_signed(v) as f64 / (frac as f64).exp2()
}

/// `a += b` elementwise in the ring.
pub fn add_assign(a: &mut [u64], b: &[u64]) {
    a.iter_mut()
        .zip(b)
        .for_each(|(x, y)| *x = x.wrapping_add(*y));
}

/// `a -= b` elementwise in the ring.
pub fn sub_assign(a: &mut [u64], b: &[u64]) {
    a.iter_mut()
        .zip(b)
        .for_each(|(x, y)| *x = x.wrapping_sub(*y));
}

/// `a + b` elementwise in the ring.
pub fn add(a: &[u64], b: &[u64]) -> Vec<u64> {
    a.iter().zip(b).map(|(x, y)| x.wrapping_add(*y)).collect()
}

/// `a − b` elementwise in the ring.
pub fn sub(a: &[u64], b: &[u64]) -> Vec<u64> {
    a.iter().zip(b).map(|(x, y)| x.wrapping_sub(*y)).collect()
}

/// Ring images of signed values.
pub fn from_signed_vec(v: &[i64]) -> Vec<u64> {
    v.iter().map(|&x| from_signed(x)).collect()
}

/// Signed values of ring elements.
pub fn to_signed_vec(v: &[u64]) -> Vec<i64> {
    v.iter().map(|&x| to_signed(x)).collect()
}

/// A vector of ring elements that serialises as its little-endian bytes (8 bytes per element,
/// no varint expansion of uniform values).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RingVec(pub Vec<u64>);

impl RingVec {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u64>> for RingVec {
    fn from(v: Vec<u64>) -> Self {
        RingVec(v)
    }
}

impl Serialize for RingVec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::with_capacity(self.0.len() * 8);
        for v in &self.0 {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        serializer.serialize_bytes(&bytes)
    }
}

impl<'de> Deserialize<'de> for RingVec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes = serde_bytes::ByteBuf::deserialize(deserializer)?;
        if bytes.len() % 8 != 0 {
            return Err(serde::de::Error::custom(format!(
                "ring vector of {} bytes is not a whole number of 8-byte elements",
                bytes.len()
            )));
        }
        Ok(RingVec(
            bytes
                .chunks_exact(8)
                .map(|c| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(c);
                    u64::from_le_bytes(b)
                })
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_values_survive_wrapping_sums() {
        let a = from_signed(-5);
        let b = from_signed(i64::MAX);
        // (−5 + MAX) − MAX wraps through the top of the ring and comes back.
        assert_eq!(to_signed(a.wrapping_add(b).wrapping_sub(b)), -5);
        assert_eq!(decode_fixed(encode_fixed(-1.25, 12), 12), -1.25);
        assert_eq!(decode_fixed(encode_fixed(3.0e-4, 12), 12), 1.0 / 4096.0);
    }

    #[test]
    fn ring_vectors_are_eight_bytes_per_element() {
        let v = RingVec(vec![u64::MAX, 1, 0x0102_0304_0506_0708]);
        let bytes = privdnn_artifacts::encode_payload(&v, std::path::Path::new("t")).expect("enc");
        assert_eq!(bytes.len(), 1 + 24);
        let back: RingVec =
            privdnn_artifacts::decode_payload(&bytes, std::path::Path::new("t"), "test")
                .expect("dec");
        assert_eq!(back, v);
        let mut a = vec![1u64, 2];
        add_assign(&mut a, &[u64::MAX, 3]);
        assert_eq!(a, vec![0, 5]);
        sub_assign(&mut a, &[1, 1]);
        assert_eq!(to_signed_vec(&a), vec![-1, 4]);
    }
}
