//! Word gadgets on little-endian bit vectors (two's complement, mod 2^n for n-bit words).
//!
//! AND counts for n-bit words (asserted in the tests):
//! | gadget | ANDs |
//! |---|---|
//! | [`add`], [`sub`] (ripple carry, carry `c' = c ⊕ ((x⊕c) ∧ (y⊕c))`, no carry-out) | n − 1 |
//! | [`lt_unsigned`], [`lt_signed`] (carry chain of x + ¬y + 1, carry-out only) | n |
//! | [`mux`] (`y ⊕ s∧(x⊕y)`) | n |
//! | [`max_signed`] (compare + mux) | 2n |
//! | [`max4_signed`] (three max) | 6n |
//! | [`relu`] (low n − 1 bits AND ¬sign; the sign becomes constant 0) | n − 1 |
//! | [`ashr`], [`narrow`], [`sign_extend`] (rewiring) | 0 |

use crate::circuit::{Bit, Builder};
use crate::error::GcError;

fn same_len(x: &[Bit], y: &[Bit], what: &str) -> Result<(), GcError> {
    if x.len() != y.len() || x.is_empty() {
        return Err(GcError::length(format!(
            "{what}: words of {} and {} bits",
            x.len(),
            y.len()
        )));
    }
    Ok(())
}

/// Ripple-carry core: sum bits (if `want_sum`) and the final carry. Emits `n − 1` ANDs, or `n` when
/// `carry_out` is requested.
fn ripple(
    b: &mut Builder,
    x: &[Bit],
    y: &[Bit],
    cin: Bit,
    want_sum: bool,
    carry_out: bool,
) -> (Vec<Bit>, Bit) {
    let n = x.len();
    let mut c = cin;
    let mut sum = Vec::with_capacity(if want_sum { n } else { 0 });
    for i in 0..n {
        if want_sum {
            let t = b.xor(x[i], y[i]);
            sum.push(b.xor(t, c));
        }
        if i + 1 < n || carry_out {
            let xc = b.xor(x[i], c);
            let yc = b.xor(y[i], c);
            let t = b.and(xc, yc);
            c = b.xor(c, t);
        }
    }
    (sum, c)
}

fn not_all(b: &mut Builder, x: &[Bit]) -> Vec<Bit> {
    x.iter().map(|&v| b.not(v)).collect()
}

/// `x + y mod 2^n` (n − 1 ANDs).
pub fn add(b: &mut Builder, x: &[Bit], y: &[Bit]) -> Result<Vec<Bit>, GcError> {
    same_len(x, y, "add")?;
    Ok(ripple(b, x, y, Bit::Const(false), true, false).0)
}

/// `x − y mod 2^n` = `x + ¬y + 1` (n − 1 ANDs).
pub fn sub(b: &mut Builder, x: &[Bit], y: &[Bit]) -> Result<Vec<Bit>, GcError> {
    same_len(x, y, "sub")?;
    let ny = not_all(b, y);
    Ok(ripple(b, x, &ny, Bit::Const(true), true, false).0)
}

/// `x < y` as unsigned numbers: the carry-out of `x + ¬y + 1` is `x ≥ y` (n ANDs).
pub fn lt_unsigned(b: &mut Builder, x: &[Bit], y: &[Bit]) -> Result<Bit, GcError> {
    same_len(x, y, "lt_unsigned")?;
    let ny = not_all(b, y);
    let (_, ge) = ripple(b, x, &ny, Bit::Const(true), false, true);
    Ok(b.not(ge))
}

/// `x < y` as two's-complement numbers: flipping both sign bits maps signed to unsigned order (n ANDs).
pub fn lt_signed(b: &mut Builder, x: &[Bit], y: &[Bit]) -> Result<Bit, GcError> {
    same_len(x, y, "lt_signed")?;
    let n = x.len();
    let (mut xf, mut yf) = (x.to_vec(), y.to_vec());
    xf[n - 1] = b.not(x[n - 1]);
    yf[n - 1] = b.not(y[n - 1]);
    lt_unsigned(b, &xf, &yf)
}

/// `s ? x : y` (n ANDs).
pub fn mux(b: &mut Builder, s: Bit, x: &[Bit], y: &[Bit]) -> Result<Vec<Bit>, GcError> {
    same_len(x, y, "mux")?;
    Ok(x.iter()
        .zip(y)
        .map(|(&xi, &yi)| {
            let d = b.xor(xi, yi);
            let t = b.and(s, d);
            b.xor(yi, t)
        })
        .collect())
}

/// `max(x, y)` signed (2n ANDs).
pub fn max_signed(b: &mut Builder, x: &[Bit], y: &[Bit]) -> Result<Vec<Bit>, GcError> {
    let x_lt_y = lt_signed(b, x, y)?;
    mux(b, x_lt_y, y, x)
}

/// `max(w0, w1, w2, w3)` signed as a tree (6n ANDs).
pub fn max4_signed(b: &mut Builder, w: [&[Bit]; 4]) -> Result<Vec<Bit>, GcError> {
    let m01 = max_signed(b, w[0], w[1])?;
    let m23 = max_signed(b, w[2], w[3])?;
    max_signed(b, &m01, &m23)
}

/// `max(x, 0)` signed (n − 1 ANDs; the result's sign bit is the constant 0).
pub fn relu(b: &mut Builder, x: &[Bit]) -> Result<Vec<Bit>, GcError> {
    let Some((&sign, low)) = x.split_last() else {
        return Err(GcError::length("relu of an empty word"));
    };
    let keep = b.not(sign);
    let mut out: Vec<Bit> = low.iter().map(|&v| b.and(v, keep)).collect();
    out.push(Bit::Const(false));
    Ok(out)
}

/// Arithmetic shift right by `f` (`f < n`): rewiring only.
pub fn ashr(x: &[Bit], f: usize) -> Result<Vec<Bit>, GcError> {
    let n = x.len();
    if f >= n {
        return Err(GcError::param(format!("shift {f} of a {n}-bit word")));
    }
    Ok((0..n)
        .map(|i| if i + f < n { x[i + f] } else { x[n - 1] })
        .collect())
}

/// The low `w` bits, valid as a signed `w`-bit word when bits `w−1..` are copies of the sign
/// (e.g. after [`ashr`] by `n − w`).
pub fn narrow(x: &[Bit], w: usize) -> Result<Vec<Bit>, GcError> {
    if w == 0 || w > x.len() {
        return Err(GcError::param(format!(
            "narrow a {}-bit word to {w} bits",
            x.len()
        )));
    }
    Ok(x[..w].to_vec())
}

/// Sign-extends `x` to `n` bits (rewiring).
pub fn sign_extend(x: &[Bit], n: usize) -> Result<Vec<Bit>, GcError> {
    let Some(&sign) = x.last() else {
        return Err(GcError::length("sign-extend an empty word"));
    };
    if n < x.len() {
        return Err(GcError::param(format!(
            "sign-extend {} bits to {n}",
            x.len()
        )));
    }
    let mut out = x.to_vec();
    out.resize(n, sign);
    Ok(out)
}
