//! fhe 0.1.1's `SecretKey` serialisation (protobuf `repeated sint64 coeffs = 1`), written and
//! read by hand: fhe builds a key from coefficients only inside its own crate.

use crate::{HeError, Result};

/// fhe's `SecretKey` protobuf (`repeated sint64 coeffs = 1`, packed), written by hand: fhe
/// builds keys from coefficients only inside the crate.
pub(super) fn encode_key_proto(coeffs: &[i64]) -> Vec<u8> {
    let mut body = Vec::with_capacity(coeffs.len() * 2);
    for &c in coeffs {
        put_varint(&mut body, ((c << 1) ^ (c >> 63)) as u64);
    }
    let mut out = vec![0x0a];
    put_varint(&mut out, body.len() as u64);
    out.extend_from_slice(&body);
    out
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &[u8], pos: &mut usize) -> Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos).ok_or_else(|| HeError::Decode {
            what: "secret key",
            detail: "truncated varint".into(),
        })?;
        *pos += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(HeError::Decode {
        what: "secret key",
        detail: "varint longer than 64 bits".into(),
    })
}

/// Reads the coefficients of fhe's `SecretKey` protobuf (packed or not).
pub(super) fn decode_key_proto(bytes: &[u8]) -> Result<Vec<i64>> {
    let unzig = |v: u64| ((v >> 1) as i64) ^ -((v & 1) as i64);
    let (mut pos, mut out) = (0, Vec::new());
    while pos < bytes.len() {
        match get_varint(bytes, &mut pos)? {
            0x0a => {
                let len = get_varint(bytes, &mut pos)? as usize;
                let end = pos.checked_add(len).filter(|&e| e <= bytes.len());
                let end = end.ok_or_else(|| HeError::Decode {
                    what: "secret key",
                    detail: "packed field past the end".into(),
                })?;
                while pos < end {
                    out.push(unzig(get_varint(bytes, &mut pos)?));
                }
            }
            0x08 => out.push(unzig(get_varint(bytes, &mut pos)?)),
            tag => {
                return Err(HeError::Decode {
                    what: "secret key",
                    detail: format!("unexpected protobuf tag {tag}"),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_fhe_key_bytes() {
        let coeffs = vec![0i64, 1, -1, 20, -20, 63, -64, 1 << 40, i64::MIN, i64::MAX];
        let bytes = encode_key_proto(&coeffs);
        assert_eq!(decode_key_proto(&bytes).expect("decodes"), coeffs);
        // unpacked form: tag 0x08 per value (zigzag: -1 → 1, 2 → 4)
        assert_eq!(
            decode_key_proto(&[0x08, 1, 0x08, 4]).expect("decodes"),
            vec![-1, 2]
        );
        assert!(decode_key_proto(&[0x0a, 5, 1]).is_err());
        assert!(decode_key_proto(&[0x12, 0]).is_err());
    }

    #[test]
    fn matches_fhe_serialisation() {
        use fhe::bfv::SecretKey;
        use fhe_traits::Serialize as _;
        use rand::SeedableRng;
        let hp = crate::params::HeParams::generate(2048, &[54], 16).expect("params");
        let par = hp.build().expect("build");
        let sk = SecretKey::random(&par, &mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
        let bytes = sk.to_bytes();
        let coeffs = decode_key_proto(&bytes).expect("decodes");
        assert_eq!(coeffs.len(), 2048);
        assert!(coeffs.iter().all(|c| c.abs() <= 20) && coeffs.iter().any(|&c| c != 0));
        assert_eq!(encode_key_proto(&coeffs), bytes);
    }
}
