//! Plaintext-weight arithmetic on ciphertexts: integer linear combinations Σ wᵢ·ctᵢ computed
//! coefficient-wise in the NTT domain with 128-bit lazy reduction (one reduction per prime and
//! chunk of terms instead of one per product).

use std::sync::Arc;

use fhe::bfv::{BfvParameters, Ciphertext};
use fhe_math::rq::traits::TryConvertFrom;
use fhe_math::rq::{Poly, Representation};
use ndarray::Array2;

use crate::{HeError, Result};

/// Σ wᵢ·ctᵢ over 2-part ciphertexts of one level (NTT form). Empty sums are an error.
pub(crate) fn weighted_sum(
    terms: &[(&Ciphertext, i64)],
    par: &Arc<BfvParameters>,
) -> Result<Ciphertext> {
    let first = terms
        .first()
        .ok_or_else(|| HeError::shape("empty weighted sum"))?;
    let ctx = first.0[0].ctx().clone();
    if terms
        .iter()
        .any(|(ct, _)| ct.len() != 2 || ct[0].ctx() != &ctx)
    {
        return Err(HeError::shape(
            "weighted sums need 2-part ciphertexts of one level",
        ));
    }
    let n = par.degree();
    let mut polys = Vec::with_capacity(2);
    for part in 0..2 {
        let mut out = Array2::<u64>::zeros((ctx.moduli().len(), n));
        let mut acc = vec![0u128; n];
        for (i, &q) in ctx.moduli().iter().enumerate() {
            let q128 = q as u128;
            let chunk = (u128::MAX / ((q128 - 1) * (q128 - 1)) - 1).max(1) as usize;
            acc.fill(0);
            for group in terms.chunks(chunk) {
                for (ct, w) in group {
                    let wq = w.rem_euclid(q as i64) as u128;
                    if wq == 0 {
                        continue;
                    }
                    let coeffs = ct[part].coefficients();
                    let row = coeffs.row(i);
                    let row = row
                        .as_slice()
                        .ok_or_else(|| HeError::shape("polynomial rows are not contiguous"))?;
                    for (a, &c) in acc.iter_mut().zip(row) {
                        *a += wq * c as u128;
                    }
                }
                for a in acc.iter_mut() {
                    *a %= q128;
                }
            }
            for (d, &a) in out.row_mut(i).iter_mut().zip(&acc) {
                *d = a as u64;
            }
        }
        polys.push(Poly::try_convert_from(
            out,
            &ctx,
            false,
            Representation::Ntt,
        )?);
    }
    Ok(Ciphertext::new(polys, par)?)
}
