//! Greedy selection (spec §3.5). Layer 1: repeatedly add the filter whose removal (together with
//! those already chosen) leaves the *highest* accuracy — the one the plaintext path misses least.
//! Layer 2: repeatedly add the filter with the best point(A_s, A_r). Ties go to the larger index
//! (the reference sorts `[score, index]` in reverse). Candidates of one step are scored in
//! parallel. Optional pools restrict the candidates (pruning + greedy, §3.7) and an optional
//! start selection is kept and extended (the nested "amend" sweep).

use rayon::prelude::*;

use crate::evaluator::Evaluator;

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

/// Runs the greedy plan; `progress` is told how many candidate scores each step computed.
pub fn greedy(
    ev: &Evaluator,
    plan: &GreedyPlan,
    progress: &(dyn Fn(usize) + Sync),
) -> [Vec<usize>; 2] {
    let channels = ev.channels();
    let step = plan.step.max(1);
    let mut s1 = plan.start[0].clone();
    while s1.len() < plan.sizes[0] {
        let pool = candidates(&plan.pools[0], channels[0], &s1);
        if pool.is_empty() {
            break;
        }
        let scored: Vec<(f64, usize)> = pool
            .par_iter()
            .map(|&c| {
                let mut trial = s1.clone();
                trial.push(c);
                let cache = ev.layer1(&trial);
                (ev.removed(&cache, &[]).accuracy(), c)
            })
            .collect();
        progress(scored.len());
        s1.extend(best_candidates(scored, step.min(plan.sizes[0] - s1.len())));
    }
    let cache = ev.layer1(&s1);
    let mut s2 = plan.start[1].clone();
    while s2.len() < plan.sizes[1] {
        let pool = candidates(&plan.pools[1], channels[1], &s2);
        if pool.is_empty() {
            break;
        }
        let scored: Vec<(f64, usize)> = pool
            .par_iter()
            .map(|&c| {
                let mut trial = s2.clone();
                trial.push(c);
                (ev.scores(&cache, &trial).point, c)
            })
            .collect();
        progress(scored.len());
        s2.extend(best_candidates(scored, step.min(plan.sizes[1] - s2.len())));
    }
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
