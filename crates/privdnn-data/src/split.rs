//! Deterministic index shuffles: the validation/test halving of an official test set, attacker
//! sample selection, and per-epoch training order.
//!
//! Everything here is a pure function of its seed (ChaCha8, Fisher–Yates via `SliceRandom`), so
//! runs are reproducible across machines. Never use a thread or OS random source here.

use privdnn_artifacts::DatasetSplit;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// Splits an official test set into `(validation, test)`: indices `0..n` are shuffled with
/// `ChaCha8Rng::seed_from_u64(seed)`, the first `⌊n/2⌋` become `validation`, the rest `test`.
pub fn split_validation_test(test: &DatasetSplit, seed: u64) -> (DatasetSplit, DatasetSplit) {
    let mut order: Vec<usize> = (0..test.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let (validation, rest) = order.split_at(test.len() / 2);
    (
        test.subset(validation, "validation"),
        test.subset(rest, "test"),
    )
}

/// `min(k, n)` distinct indices from `0..n`, in random order, determined by `seed`.
pub fn sample_indices(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rand::seq::index::sample(&mut rng, n, k.min(n)).into_vec()
}

/// The order in which to visit `0..n` during `epoch`: a shuffle seeded by `seed` on a ChaCha
/// stream numbered by the epoch, so every epoch differs and each is reproducible on its own.
pub fn epoch_order(n: usize, epoch: usize, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(epoch as u64);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    order
}
