//! The exhaustive ground truth of spec §3.8: every (S1, S2) of every group (|S1|, |S2|) with
//! |S1| ≤ a, |S1| ≤ |S2| ≤ b is scored, and each algorithm's choice is ranked inside its group
//! (rank 1 = best point; ties share the better rank). Also the expected best rank of k uniform
//! random draws, computed exactly from the group's ranking.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use privdnn_model::partition::evaluator::{Evaluator, Scores};

/// All k-subsets of 0..n in lexicographic order.
pub fn combinations(n: usize, k: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut current = Vec::with_capacity(k);
    fn rec(start: usize, n: usize, k: usize, current: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if current.len() == k {
            out.push(current.clone());
            return;
        }
        for i in start..n {
            if n - i < k - current.len() {
                break;
            }
            current.push(i);
            rec(i + 1, n, k, current, out);
            current.pop();
        }
    }
    rec(0, n, k, &mut current, &mut out);
    out
}

/// One scored member of a group.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Scored {
    /// S1 (sorted).
    pub layer1: Vec<usize>,
    /// S2 (sorted).
    pub layer2: Vec<usize>,
    /// A_s.
    pub separate: f64,
    /// A_r.
    pub removed: f64,
    /// point.
    pub point: f64,
}

/// Every selection of one group, best point first.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Group {
    /// (|S1|, |S2|).
    pub sizes: [usize; 2],
    /// Members sorted by decreasing point.
    pub members: Vec<Scored>,
    /// Seconds spent scoring the group.
    pub seconds: f64,
}

impl Group {
    /// Rank (1 = best) of a selection: one plus the number of members with a strictly higher
    /// point. `None` when the selection is not in the group.
    pub fn rank_of(&self, layer1: &[usize], layer2: &[usize]) -> Option<usize> {
        self.rank_span(layer1, layer2).map(|(best, _)| best)
    }

    /// The scored member with these filters (in any order), if it is in the group.
    pub fn member(&self, layer1: &[usize], layer2: &[usize]) -> Option<&Scored> {
        let (mut a, mut b) = (layer1.to_vec(), layer2.to_vec());
        a.sort_unstable();
        b.sort_unstable();
        self.members.iter().find(|m| m.layer1 == a && m.layer2 == b)
    }

    /// Best and worst rank a selection can have under any tie rule: one plus the members with a
    /// strictly higher point, and the members with a point at least as high. `None` when the
    /// selection is not in the group.
    pub fn rank_span(&self, layer1: &[usize], layer2: &[usize]) -> Option<(usize, usize)> {
        let member = self.member(layer1, layer2)?;
        let higher = self
            .members
            .iter()
            .filter(|m| m.point > member.point)
            .count();
        let at_least = self
            .members
            .iter()
            .filter(|m| m.point >= member.point)
            .count();
        Some((1 + higher, at_least))
    }

    /// Expected best rank of `draws` uniform draws with replacement:
    /// E[min] = Σ_{r=1..M} P(min ≥ r) = Σ_r ((M − r + 1) / M)^draws, over the members' ranks.
    pub fn expected_random_rank(&self, draws: usize) -> f64 {
        let m = self.members.len();
        if m == 0 || draws == 0 {
            return m as f64;
        }
        let ranks: Vec<usize> = self
            .members
            .iter()
            .map(|x| 1 + self.members.iter().filter(|y| y.point > x.point).count())
            .collect();
        // P(min rank ≥ r) = (#members with rank ≥ r / m)^draws
        let mut sorted = ranks;
        sorted.sort_unstable();
        let mut expected = 0.0;
        for r in 1..=sorted[m - 1] {
            let at_least = sorted.len() - sorted.partition_point(|&x| x < r);
            expected += (at_least as f64 / m as f64).powi(draws as i32);
        }
        expected
    }
}

/// Scores every member of group `sizes`; `progress` receives the count of members scored.
pub fn score_group(ev: &Evaluator, sizes: [usize; 2], progress: &(dyn Fn(usize) + Sync)) -> Group {
    let start = std::time::Instant::now();
    let channels = ev.channels();
    let mut members = Vec::new();
    for s1 in combinations(channels[0], sizes[0]) {
        let cache = ev.layer1(&s1);
        let scored: Vec<Scored> = combinations(channels[1], sizes[1])
            .par_iter()
            .map(|s2| {
                let Scores {
                    separate,
                    removed,
                    point,
                } = ev.scores(&cache, s2);
                progress(1);
                Scored {
                    layer1: s1.clone(),
                    layer2: s2.clone(),
                    separate,
                    removed,
                    point,
                }
            })
            .collect();
        members.extend(scored);
    }
    members.sort_by(|a, b| b.point.total_cmp(&a.point));
    Group {
        sizes,
        members,
        seconds: start.elapsed().as_secs_f64(),
    }
}

/// The groups of a search bounded by `max` = (a, b): |S1| in 1..=a, |S2| in |S1|..=b.
pub fn groups(max: [usize; 2], channels: [usize; 2]) -> Vec<[usize; 2]> {
    let mut out = Vec::new();
    for a in 1..=max[0].min(channels[0]) {
        for b in a..=max[1].min(channels[1]) {
            out.push([a, b]);
        }
    }
    out
}

/// Number of selections in a group.
pub fn group_size(channels: [usize; 2], sizes: [usize; 2]) -> u128 {
    let binom = |n: usize, k: usize| -> u128 {
        (0..k).fold(1u128, |acc, i| acc * (n - i) as u128 / (i + 1) as u128)
    };
    binom(channels[0], sizes[0]) * binom(channels[1], sizes[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_sizes_match_the_reference_counts() {
        let mnist = [6, 16];
        let counts: Vec<u128> = groups([2, 6], mnist)
            .iter()
            .map(|g| group_size(mnist, *g))
            .collect();
        assert_eq!(
            counts,
            vec![
                96, 720, 3360, 10920, 26208, 48048, 1800, 8400, 27300, 65520, 120120
            ]
        );
        assert_eq!(counts.iter().sum::<u128>(), 312_492);
        assert_eq!(combinations(5, 2).len(), 10);
        assert_eq!(combinations(4, 4), vec![vec![0, 1, 2, 3]]);
    }

    #[test]
    fn ranks_and_expected_random_rank() {
        let member = |p: f64, i: usize| Scored {
            layer1: vec![0],
            layer2: vec![i],
            separate: 0.0,
            removed: 0.0,
            point: p,
        };
        let g = Group {
            sizes: [1, 1],
            members: vec![
                member(0.9, 2),
                member(0.5, 0),
                member(0.5, 1),
                member(0.1, 3),
            ],
            seconds: 0.0,
        };
        assert_eq!(g.rank_of(&[0], &[2]), Some(1));
        assert_eq!(g.rank_of(&[0], &[1]), Some(2));
        assert_eq!(g.rank_of(&[0], &[0]), Some(2), "ties share the better rank");
        assert_eq!(g.rank_of(&[0], &[3]), Some(4));
        assert_eq!(g.rank_of(&[1], &[3]), None);
        assert_eq!(
            g.rank_span(&[0], &[0]),
            Some((2, 3)),
            "a tie spans ranks 2 to 3"
        );
        assert_eq!(g.rank_span(&[0], &[3]), Some((4, 4)));
        // one draw: mean of ranks (1 + 2 + 2 + 4) / 4
        assert!((g.expected_random_rank(1) - 2.25).abs() < 1e-12);
        assert!(g.expected_random_rank(50) < 1.001);
    }
}
