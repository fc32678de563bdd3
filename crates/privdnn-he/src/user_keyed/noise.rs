//! The circuit-privacy bound of the user-keyed reply, written down and checked.
//!
//! All bounds are worst-case ∞-norms of the invariant noise `v` (`c0 + c1·s = (Q/t)·m + v mod Q`)
//! with ring expansion factor δ = N (‖a·b‖∞ ≤ N·‖a‖∞·‖b‖∞), for honestly generated inputs:
//! fhe 0.1.1 samples secrets and errors from a centred binomial of variance 10, so
//! ‖s‖∞, ‖e‖∞ ≤ B = 20.
//!
//! | step | bound |
//! |---|---|
//! | fresh input (sk encryption, rounding of Q/t·m) | `E_in = B + 1` |
//! | conv1 (ct×scalar, plaintext bias) | `E_U = Σ|W1_c|·E_in + 1` |
//! | square (tensor, scale t/Q) | `2·δ·t·E_U·(δB + 1) + 2·t²·δ²·(B + 1)²` (Fan–Vercauteren) |
//! | relinearisation / rotation (fhe's RNS-digit key switching, L digits < q_max) | `E_ks = L·δ·q_max·B` |
//! | conv2 (ct×scalar on squares and the user's a1) | `E_Z = Σ|W2_j|·max(E_A, E_in) + k2²·E_ks + 1` |
//! | re-randomisation `+ Enc_pk(r)` | `E_pk = 2·δ·B² + B` |
//!
//! The owner then switches the reply from Q to the last prime q₀. The user sees
//! `v' = (q₀/Q)·v + ρ`, where ρ is the rounding noise of the switch (`r0 + r1·s`, r uniform in
//! (−½, ½]; per coefficient of standard deviation σ = √(N·Var(s)/12) ≈ 2^6.4 at N = 8192), whose
//! distribution does not depend on the weights. **Bound:** `(q₀/Q)·E ≤ 2^-40 · σ`, so the
//! weight-dependent part of what the user sees is a shift below 2^-40 of the noise it is buried
//! in (statistical distance ≤ N·2^-40 per ciphertext by the usual smudging argument). No flooding
//! noise is needed when it holds; [`check`] refuses the parameters otherwise, with the numbers.
//! It assumes the user's ciphertexts are fresh: a malicious user can give its inputs any noise,
//! but such a user can extract the weights by chosen inputs anyway (see the module doc).

use serde::{Deserialize, Serialize};

use crate::block::IntBlock;
use crate::params::HeParams;
use crate::{HeError, Result};

/// Required gap (bits) between the switched evaluation noise and the rounding noise.
pub const SMUDGING_BITS: f64 = 40.0;

/// Bound on fhe 0.1.1's secret and error coefficients (centred binomial of variance 10).
const B: f64 = 20.0;

/// The numbers of the bound for one parameter set and block (all log2).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NoiseBound {
    /// Worst-case evaluation noise of a reply before the switch.
    pub log_eval: f64,
    /// The same after the switch to the last prime: `log_eval + log q₀ − log Q`.
    pub log_switched: f64,
    /// Standard deviation of the switch's rounding noise the user sees.
    pub log_rounding: f64,
    /// `log_rounding − SMUDGING_BITS − log_switched` (≥ 0 when the bound holds).
    pub margin_bits: f64,
    /// Headroom for correct decryption before the switch: `log(Q/2t) − log_eval`.
    pub correctness_bits: f64,
}

fn l1_rows(w: &[i64], len: usize, rows: &[usize]) -> f64 {
    rows.iter()
        .map(|&r| {
            w[r * len..(r + 1) * len]
                .iter()
                .map(|v| v.unsigned_abs() as f64)
                .sum()
        })
        .fold(0.0, f64::max)
}

/// Computes the bound for `block` with selection (`s1`, `s2`) under `params`; `layer1`: the
/// reply also carries the selected layer-1 squares.
pub fn bound(
    params: &HeParams,
    block: &IntBlock,
    (s1, s2): (&[usize], &[usize]),
    layer1: bool,
) -> NoiseBound {
    let s = &block.shape;
    let delta = params.degree as f64;
    let t = params.plaintext as f64;
    let log_q = params.log_q();
    let q_max = params.moduli.iter().copied().max().unwrap_or(0) as f64;
    let levels = params.moduli.len() as f64;
    let e_in = B + 1.0;
    let e_u = l1_rows(&block.w1, s.w1_len(), s1) * e_in + 1.0;
    let e_ks = levels * delta * q_max * B;
    let e_a = 2.0 * delta * t * e_u * (delta * B + 1.0)
        + 2.0 * t * t * delta * delta * (B + 1.0) * (B + 1.0)
        + e_ks;
    let e_z =
        l1_rows(&block.w2, s.w2_len(), s2) * e_a.max(e_in) + (s.k2 * s.k2) as f64 * e_ks + 1.0;
    let e_pk = 2.0 * delta * B * B + B;
    let e = if layer1 { e_z.max(e_a) } else { e_z } + e_pk;
    let log_eval = e.log2();
    let q0 = params.moduli.first().copied().unwrap_or(1) as f64;
    let log_switched = log_eval + q0.log2() - log_q;
    let log_rounding = 0.5 * (delta * 10.0 / 12.0).log2();
    NoiseBound {
        log_eval,
        log_switched,
        log_rounding,
        margin_bits: log_rounding - SMUDGING_BITS - log_switched,
        correctness_bits: log_q - (2.0 * t).log2() - log_eval,
    }
}

/// [`bound`], refusing parameters under which the reply could reveal more than its values.
pub fn check(
    params: &HeParams,
    block: &IntBlock,
    selection: (&[usize], &[usize]),
    layer1: bool,
) -> Result<NoiseBound> {
    let b = bound(params, block, selection, layer1);
    if b.correctness_bits < 1.0 {
        return Err(HeError::Parameters(format!(
            "user-keyed evaluation noise 2^{:.1} exceeds Q/2t = 2^{:.1}: decryption could fail; \
             raise he.moduli_bits or lower the weight bits",
            b.log_eval,
            b.log_eval + b.correctness_bits
        )));
    }
    if b.margin_bits < 0.0 {
        return Err(HeError::Parameters(format!(
            "user-keyed circuit privacy: evaluation noise after the switch 2^{:.1} is not ≤ \
             2^-{SMUDGING_BITS} of the rounding noise 2^{:.1} (short by {:.1} bits): add \
             ciphertext primes or lower the weight bits",
            b.log_switched, b.log_rounding, -b.margin_bits
        )));
    }
    Ok(b)
}
