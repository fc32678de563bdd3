//! Seeded inputs shared by the engine's integration tests: random float blocks of any block
//! shape and the small CRT parameter sets (N = 8192, four 54-bit primes, two 24-bit residues).

#![allow(dead_code)]

use privdnn_he::block::{BlockShape, FloatBlock};
use privdnn_he::params::HeParams;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The parameter sets of the end-to-end tests: N = 8192, 4 × 54-bit primes, t = two 24-bit
/// CRT residues.
pub fn params() -> Vec<HeParams> {
    HeParams::generate_crt(8192, &[54, 54, 54, 54], 24, 2).expect("params")
}

/// A seeded block of `shape`: uniform weights and biases in ±0.4 (w1), ±0.2 (b1), ±0.3 (w2),
/// ±0.5 (b2); normalisation mean 0.45, std 0.25.
pub fn float_block(shape: &BlockShape, seed: u64) -> FloatBlock {
    float_block_scaled(shape, seed, [0.4, 0.2, 0.3, 0.5])
}

/// A seeded block of `shape` whose w1, b1, w2, b2 are uniform in ±`scales[i]` (drawn in that
/// order from one ChaCha8 stream); normalisation mean 0.45, std 0.25.
pub fn float_block_scaled(shape: &BlockShape, seed: u64, scales: [f32; 4]) -> FloatBlock {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let k_raw = shape.k1 + 1 - shape.pool;
    let mut v = |n: usize, s: f32| (0..n).map(|_| rng.random_range(-s..s)).collect::<Vec<_>>();
    FloatBlock {
        w1: v(shape.c1 * shape.cin * k_raw * k_raw, scales[0]),
        b1: v(shape.c1, scales[1]),
        w2: v(shape.c2 * shape.w2_len(), scales[2]),
        b2: v(shape.c2, scales[3]),
        mean: vec![0.45; shape.cin],
        std: vec![0.25; shape.cin],
        shape: shape.clone(),
    }
}
