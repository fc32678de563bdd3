//! Additive two-party shares over Z_2^64: `x = x0 + x1 (mod 2^64)`, each share alone uniform.

use crate::prg::Prg;
use crate::ring;

/// Splits `x` into two shares with the mask drawn from `prg` (`x0 = x − m`, `x1 = m`).
pub fn split(x: &[u64], prg: &mut Prg) -> (Vec<u64>, Vec<u64>) {
    let m = prg.ring(x.len());
    (ring::sub(x, &m), m)
}

/// Recombines two shares.
pub fn reconstruct(x0: &[u64], x1: &[u64]) -> Vec<u64> {
    ring::add(x0, x1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prg::MaskKey;

    #[test]
    fn shares_recombine_and_differ_from_the_secret() {
        let x = ring::from_signed_vec(&[-3, 0, 5, i64::MIN]);
        let (a, b) = split(&x, &mut MaskKey([1; 32]).stream("s", &[0]));
        assert_eq!(reconstruct(&a, &b), x);
        assert_ne!(a, x);
        assert_ne!(b, x);
    }
}
