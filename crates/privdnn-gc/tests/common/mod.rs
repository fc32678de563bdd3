//! Shared test helpers: random inputs with edge values, bitsliced plaintext evaluation, and the
//! three-way check garbled == plaintext == i64 reference.

#![allow(dead_code)]

use privdnn_gc::bits::{push_word, ring_mask, word_from_bits};
use privdnn_gc::{Circuit, GcConfig, run_local};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;

/// Edge values of an ℓ-bit ring (as ℓ-bit words): 0, ±1, ±2, MIN, MIN+1, MAX, MAX−1 and values
/// around the shift boundary `2^shift` (±1) and its negatives.
pub fn edges(ell: u32, shift: u32) -> Vec<u64> {
    let m = ring_mask(ell);
    let min = 1u64 << (ell - 1);
    let p = 1u64 << shift;
    let mut v = vec![
        0,
        1,
        2,
        m,
        m - 1,
        min,
        min + 1,
        min - 1,
        min - 2,
        p,
        p - 1,
        p + 1,
        p >> 1,
        (p >> 1).wrapping_sub(1),
    ];
    for x in [p, p - 1, p + 1, p >> 1, (p >> 1) + 1] {
        v.push(x.wrapping_neg());
    }
    v.iter().map(|x| x & m).collect()
}

/// `n` words: first every edge value, then random words (half uniform, half small magnitude).
pub fn words(rng: &mut ChaCha12Rng, ell: u32, shift: u32, n: usize) -> Vec<u64> {
    let m = ring_mask(ell);
    let e = edges(ell, shift);
    (0..n)
        .map(|i| match i {
            i if i < e.len() => e[i],
            i if i % 2 == 0 => rng.random::<u64>() & m,
            _ => (rng.random_range(-(1i64 << 20)..(1i64 << 20)) as u64) & m,
        })
        .collect()
}

/// A seeded RNG.
pub fn rng(seed: u64) -> ChaCha12Rng {
    ChaCha12Rng::seed_from_u64(seed)
}

/// Operand tuples for `n` instances: every pair of edge values first (all combinations of the
/// first two operands), then `words` for each operand.
pub fn operands(
    rng: &mut ChaCha12Rng,
    ell: u32,
    shift: u32,
    arity: usize,
    n: usize,
) -> Vec<Vec<u64>> {
    let e = edges(ell, shift);
    let mut cols: Vec<Vec<u64>> = (0..arity).map(|_| words(rng, ell, shift, n)).collect();
    let pairs = e.len() * e.len();
    for (k, (a, b)) in e
        .iter()
        .flat_map(|a| e.iter().map(move |b| (*a, *b)))
        .enumerate()
        .take(n.min(pairs))
    {
        cols[0][k] = a;
        if arity > 1 {
            cols[1][k] = b;
        }
    }
    (0..n)
        .map(|k| cols.iter().map(|c| c[k]).collect())
        .collect()
}

/// Plaintext evaluation of many instances, 64 at a time through the bitsliced evaluator.
pub fn eval_plain_many(c: &Circuit, gbits: &[bool], ebits: &[bool], n: usize) -> Vec<bool> {
    let (g, e, o) = (c.garbler_inputs(), c.evaluator_inputs(), c.outputs().len());
    let mut out = vec![false; n * o];
    for base in (0..n).step_by(64) {
        let lanes = 64.min(n - base);
        let slice = |bits: &[bool], width: usize| -> Vec<u64> {
            (0..width)
                .map(|i| {
                    (0..lanes).fold(0u64, |w, j| {
                        w | (u64::from(bits[(base + j) * width + i]) << j)
                    })
                })
                .collect()
        };
        let res = c
            .eval_bitsliced(&slice(gbits, g), &slice(ebits, e))
            .expect("plain evaluation");
        for (oi, w) in res.iter().enumerate() {
            for j in 0..lanes {
                out[(base + j) * o + oi] = (w >> j) & 1 == 1;
            }
        }
    }
    out
}

/// Garbler and evaluator words → instance-major input bits.
pub fn to_bits(words: &[Vec<u64>], ell: u32) -> Vec<bool> {
    let mut b = Vec::new();
    for ws in words {
        for &w in ws {
            push_word(&mut b, w, ell);
        }
    }
    b
}

/// Checks garbled == plaintext == `want` (output words of `out_bits` bits each) and returns the
/// number of instances checked.
pub fn three_way(
    c: &Circuit,
    gbits: &[bool],
    ebits: &[bool],
    n: usize,
    out_bits: usize,
    want: &[u64],
    cfg: GcConfig,
) -> usize {
    let plain = eval_plain_many(c, gbits, ebits, n);
    let garbled = run_local(c, gbits, ebits, n, 4096, cfg, 5)
        .expect("garbled run")
        .outputs;
    assert_eq!(garbled.len(), plain.len());
    for k in 0..n {
        let p = word_from_bits(&plain[k * out_bits..(k + 1) * out_bits]);
        let g = word_from_bits(&garbled[k * out_bits..(k + 1) * out_bits]);
        assert_eq!(p, want[k], "plaintext circuit vs reference, instance {k}");
        assert_eq!(g, want[k], "garbled vs reference, instance {k}");
    }
    n
}
