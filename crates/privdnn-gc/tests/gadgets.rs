//! Every gadget: garbled evaluation == plaintext circuit evaluation == i64 reference on 100,000
//! inputs (all pairs of edge values first, then random), and its AND count.

mod common;

use common::{operands, rng, three_way, to_bits};
use privdnn_gc::bits::{ring_mask, sign_extend};
use privdnn_gc::{Bit, Builder, GcConfig, gadgets};

const N: usize = 100_000;

/// Garbler holds operand 0 (and a selector bit for mux), evaluator operands 1...
type BuildFn = fn(&mut Builder, &[&[Bit]]) -> Vec<Bit>;
type RefFn = fn(&[i64], u32) -> u64;

/// Builds a gadget circuit whose first operand is the garbler's and the rest the evaluator's,
/// checks its AND count and the three-way equality on `n` instances.
fn check(ell: u32, arity: usize, n: usize, ands: usize, build: BuildFn, reference: RefFn) {
    let l = ell as usize;
    let mut b = Builder::new(l, (arity - 1) * l);
    let (g, e) = (b.garbler_inputs(), b.evaluator_inputs());
    let mut ops: Vec<&[Bit]> = vec![&g];
    ops.extend(e.chunks(l));
    let out = build(&mut b, &ops);
    let out_bits = out.len();
    let c = b.finish(out);
    assert_eq!(c.and_count(), ands, "AND count at ℓ = {ell}");
    let mut r = rng(u64::from(ell) * 31 + arity as u64);
    let xs = operands(&mut r, ell, ell / 4, arity, n);
    let gw: Vec<Vec<u64>> = xs.iter().map(|x| vec![x[0]]).collect();
    let ew: Vec<Vec<u64>> = xs.iter().map(|x| x[1..].to_vec()).collect();
    let want: Vec<u64> = xs
        .iter()
        .map(|x| {
            reference(
                &x.iter().map(|&w| sign_extend(w, ell)).collect::<Vec<_>>(),
                ell,
            )
        })
        .collect();
    let checked = three_way(
        &c,
        &to_bits(&gw, ell),
        &to_bits(&ew, ell),
        n,
        out_bits,
        &want,
        GcConfig::default(),
    );
    assert_eq!(checked, n);
}

fn word(v: i64, ell: u32) -> u64 {
    (v as u64) & ring_mask(ell)
}

fn add_ref(x: &[i64], ell: u32) -> u64 {
    word(x[0].wrapping_add(x[1]), ell)
}
fn sub_ref(x: &[i64], ell: u32) -> u64 {
    word(x[0].wrapping_sub(x[1]), ell)
}
fn lt_ref(x: &[i64], _: u32) -> u64 {
    u64::from(x[0] < x[1])
}
fn ltu_ref(x: &[i64], ell: u32) -> u64 {
    u64::from(word(x[0], ell) < word(x[1], ell))
}
fn max_ref(x: &[i64], ell: u32) -> u64 {
    word(x[0].max(x[1]), ell)
}
fn max4_ref(x: &[i64], ell: u32) -> u64 {
    word(x[0].max(x[1]).max(x[2]).max(x[3]), ell)
}
/// mux: the selector is the sign of operand 2 (evaluator), picks operand 0 if negative.
fn mux_ref(x: &[i64], ell: u32) -> u64 {
    word(if x[2] < 0 { x[0] } else { x[1] }, ell)
}
fn relu_of_sum_ref(x: &[i64], ell: u32) -> u64 {
    word(
        sign_extend(word(x[0].wrapping_add(x[1]), ell), ell).max(0),
        ell,
    )
}
fn ashr_ref(x: &[i64], ell: u32) -> u64 {
    word(sign_extend(word(x[0] ^ x[1], ell), ell) >> (ell / 4), ell)
}

fn ok<T>(r: Result<T, privdnn_gc::GcError>) -> T {
    r.expect("gadget builds")
}

#[test]
fn add_and_sub() {
    for ell in [64, 40, 13] {
        let n = if ell == 64 { N } else { N / 10 };
        check(
            ell,
            2,
            n,
            ell as usize - 1,
            |b, o| ok(gadgets::add(b, o[0], o[1])),
            add_ref,
        );
        check(
            ell,
            2,
            n,
            ell as usize - 1,
            |b, o| ok(gadgets::sub(b, o[0], o[1])),
            sub_ref,
        );
    }
}

#[test]
fn compare_signed_and_unsigned() {
    for ell in [64, 40] {
        let n = if ell == 64 { N } else { N / 10 };
        check(
            ell,
            2,
            n,
            ell as usize,
            |b, o| vec![ok(gadgets::lt_signed(b, o[0], o[1]))],
            lt_ref,
        );
        check(
            ell,
            2,
            n,
            ell as usize,
            |b, o| vec![ok(gadgets::lt_unsigned(b, o[0], o[1]))],
            ltu_ref,
        );
    }
}

#[test]
fn mux_and_max() {
    check(
        64,
        3,
        N,
        64,
        |b, o| ok(gadgets::mux(b, o[2][63], o[0], o[1])),
        mux_ref,
    );
    check(
        64,
        2,
        N,
        128,
        |b, o| ok(gadgets::max_signed(b, o[0], o[1])),
        max_ref,
    );
    check(
        64,
        4,
        N,
        384,
        |b, o| ok(gadgets::max4_signed(b, [o[0], o[1], o[2], o[3]])),
        max4_ref,
    );
    check(
        40,
        4,
        N / 10,
        240,
        |b, o| ok(gadgets::max4_signed(b, [o[0], o[1], o[2], o[3]])),
        max4_ref,
    );
}

#[test]
fn relu_and_shift() {
    // ReLU of a reconstructed value: adder (ℓ − 1) + ReLU (ℓ − 1).
    check(
        64,
        2,
        N,
        126,
        |b, o| {
            let x = ok(gadgets::add(b, o[0], o[1]));
            ok(gadgets::relu(b, &x))
        },
        relu_of_sum_ref,
    );
    // Arithmetic shift of an XOR-shared value: free.
    check(
        64,
        2,
        N,
        0,
        |b, o| {
            let x: Vec<Bit> = o[0].iter().zip(o[1]).map(|(&p, &q)| b.xor(p, q)).collect();
            ok(gadgets::ashr(&x, 16))
        },
        ashr_ref,
    );
    assert!(gadgets::ashr(&[Bit::Const(false); 8], 8).is_err());
}
