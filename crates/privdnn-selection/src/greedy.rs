//! Greedy selection (spec §3.5). Layer 1: repeatedly add the filter whose removal (together with
//! those already chosen) leaves the *highest* accuracy — the one the plaintext path misses least.
//! Layer 2: repeatedly add the filter with the best point(A_s, A_r). Ties go to the larger index
//! (the reference sorts `[score, index]` in reverse). Candidates of one step are scored in
//! parallel. Optional pools restrict the candidates (pruning + greedy, §3.7) and an optional
//! start selection is kept and extended (the nested "amend" sweep).

use rayon::prelude::*;

use privdnn_model::partition::evaluator::Evaluator;

/// What to choose and from where.
#[derive(Clone, Debug, Default)]
pub struct GreedyPlan {
    /// Target (|S1|, |S2|).
    pub sizes: [usize; 2],
    /// Filters appended per iteration.
    pub step: usize,
    /// Candidate pools per layer (None = every filter).
    pub pools: [Option<Vec<usize>>; 2],
    /// Filters already selected per layer (kept, in order).
    pub start: [Vec<usize>; 2],
}

/// The `take` best `(score, index)` pairs: highest score first, ties to the larger index.
pub fn best_candidates(mut scored: Vec<(f64, usize)>, take: usize) -> Vec<usize> {
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
    scored.into_iter().take(take).map(|(_, i)| i).collect()
}

fn candidates(pool: &Option<Vec<usize>>, channels: usize, chosen: &[usize]) -> Vec<usize> {
    let all: Vec<usize> = match pool {
        Some(p) => p.clone(),
        None => (0..channels).collect(),
    };
    all.into_iter().filter(|c| !chosen.contains(c)).collect()
}

/// Extends `chosen` to `target` filters: each iteration scores every remaining candidate `c`
/// with `score(chosen + [c])` (in parallel) and appends the `step` best.
fn grow(
    mut chosen: Vec<usize>,
    target: usize,
    pool: &Option<Vec<usize>>,
    channels: usize,
    step: usize,
    score: &(dyn Fn(&[usize]) -> f64 + Sync),
    progress: &(dyn Fn(usize) + Sync),
) -> Vec<usize> {
    while chosen.len() < target {
        let pool = candidates(pool, channels, &chosen);
        if pool.is_empty() {
            break;
        }
        let scored: Vec<(f64, usize)> = pool
            .par_iter()
            .map(|&c| {
                let mut trial = chosen.clone();
                trial.push(c);
                (score(&trial), c)
            })
            .collect();
        progress(scored.len());
        chosen.extend(best_candidates(scored, step.min(target - chosen.len())));
    }
    chosen
}

/// Runs the greedy plan; `progress` is told how many candidate scores each step computed.
pub fn greedy(
    ev: &Evaluator,
    plan: &GreedyPlan,
    progress: &(dyn Fn(usize) + Sync),
) -> [Vec<usize>; 2] {
    let channels = ev.channels();
    let step = plan.step.max(1);
    // layer 1: the accuracy left after removing the candidate set (higher = less needed)
    let removal_accuracy = |s1: &[usize]| ev.removed(&ev.layer1(s1), &[]).accuracy();
    let s1 = grow(
        plan.start[0].clone(),
        plan.sizes[0],
        &plan.pools[0],
        channels[0],
        step,
        &removal_accuracy,
        progress,
    );
    // layer 2: point(A_s, A_r) with S1 fixed
    let cache = ev.layer1(&s1);
    let point = |s2: &[usize]| ev.scores(&cache, s2).point;
    let s2 = grow(
        plan.start[1].clone(),
        plan.sizes[1],
        &plan.pools[1],
        channels[1],
        step,
        &point,
        progress,
    );
    [s1, s2]
}

#[cfg(test)]
mod tests {
    use super::best_candidates;

    #[test]
    fn ties_go_to_the_larger_index() {
        let scored = vec![(90.0, 1), (91.0, 0), (91.0, 4), (91.0, 2), (10.0, 5)];
        assert_eq!(best_candidates(scored.clone(), 1), vec![4]);
        assert_eq!(best_candidates(scored.clone(), 3), vec![4, 2, 0]);
        assert_eq!(best_candidates(scored, 10).len(), 5);
    }
}
