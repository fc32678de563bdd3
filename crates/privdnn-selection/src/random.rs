//! Random selection (spec §3.4, done for real rather than simulated): seeded uniform draws of
//! (S1, S2) of the requested sizes, scored like greedy's candidates, for a wall-time budget
//! (by default greedy's own time in the same run); the best point wins. Draws are generated
//! sequentially from the seed and scored in parallel batches, so the sequence is reproducible.

use std::time::Instant;

use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use privdnn_model::partition::evaluator::{Evaluator, Scores};

/// Best draw of a random search.
#[derive(Clone, Debug)]
pub struct RandomOutcome {
    /// The best selection drawn.
    pub selection: [Vec<usize>; 2],
    /// Its scores.
    pub scores: Scores,
    /// Number of selections drawn and scored.
    pub draws: usize,
}

/// Draws random selections for `seconds` (at least one batch of draws).
pub fn random_search(ev: &Evaluator, sizes: [usize; 2], seconds: f64, seed: u64) -> RandomOutcome {
    let channels = ev.channels();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start = Instant::now();
    let width = rayon::current_num_threads().max(1);
    let mut best: Option<([Vec<usize>; 2], Scores)> = None;
    let mut draws = 0;
    loop {
        let batch: Vec<[Vec<usize>; 2]> = (0..width)
            .map(|_| {
                [
                    sample(&mut rng, channels[0], sizes[0]).into_vec(),
                    sample(&mut rng, channels[1], sizes[1]).into_vec(),
                ]
            })
            .collect();
        let scored: Vec<Scores> = batch
            .par_iter()
            .map(|[s1, s2]| ev.scores(&ev.layer1(s1), s2))
            .collect();
        draws += batch.len();
        for (sel, score) in batch.into_iter().zip(scored) {
            if best.as_ref().is_none_or(|(_, b)| score.point > b.point) {
                best = Some((sel, score));
            }
        }
        if start.elapsed().as_secs_f64() >= seconds {
            break;
        }
    }
    let (selection, scores) =
        best.unwrap_or_else(|| ([vec![0], vec![0]], ev.scores(&ev.layer1(&[0]), &[0])));
    RandomOutcome {
        selection,
        scores,
        draws,
    }
}
