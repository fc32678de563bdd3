//! `privdnn-select exhaustive`: the exhaustive ground truth of every (|S1|, |S2|) group up to
//! `select.max_group`, every algorithm's choice ranked in it (with the tie span and the point),
//! greedy's choice made on the other split, and the reference's rank table. Writes
//! `exhaustive{,_test}.json`, `exhaustive_points{,_test}.csv` and `exhaustive_ranks{,_test}.md`.
//! Both files are rewritten after every group and double as the checkpoint: a rerun on the same
//! model, split and scoring images keeps the finished groups and scores only the others.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Result, bail};
use privdnn_artifacts::{Manifest, write_bytes_atomic, write_json_atomic};
use privdnn_config::SelectAlgorithm;
use serde::{Deserialize, Serialize};

use crate::choose::{Choice, choose};
use crate::cli::{Common, Loaded, bar, load};
use crate::evaluator::Evaluator;
use crate::exhaustive::{Group, group_size, groups, score_group};

/// The split an exhaustive experiment selects and ranks on (both halves of the official test
/// set).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RankSplit {
    /// The validation half; the test half stays held out (the clean default).
    Validation,
    /// The test half, as the reference selected and ranked (selection sees the report images).
    Test,
}

impl RankSplit {
    /// Name written into the outputs.
    pub fn name(self) -> &'static str {
        match self {
            RankSplit::Validation => "validation",
            RankSplit::Test => "test",
        }
    }

    /// Suffix of the output files (`exhaustive{suffix}.json`).
    fn suffix(self) -> &'static str {
        match self {
            RankSplit::Validation => "",
            RankSplit::Test => "_test",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct GroupSummary {
    /// What the group was scored with: the trained model's SHA-256, the split and its images
    /// (a rerun resumes only groups with the same key).
    #[serde(default)]
    key: String,
    sizes: [usize; 2],
    selections: usize,
    seconds: f64,
    /// Split the group is scored on and the algorithms selected on.
    split: String,
    best: serde_json::Value,
    best_scores: [f64; 3],
    worst: serde_json::Value,
    worst_scores: [f64; 3],
    /// (algorithm, selection, rank, seconds, random draws)
    ranks: Vec<AlgorithmRank>,
    /// Greedy's choice made on the other split, ranked in this group (with `--split test`: the
    /// rank on held-out images of the selection the pipeline makes).
    greedy_other_split: AlgorithmRank,
    /// Expected best rank of random search with as many draws as random made in greedy's time.
    expected_random_rank: f64,
}

#[derive(Serialize, Deserialize)]
struct AlgorithmRank {
    algorithm: String,
    selection: serde_json::Value,
    /// Rank with ties sharing the better rank.
    rank: Option<usize>,
    /// Rank with ties counted against the choice (members with a point at least as high).
    worst_rank: Option<usize>,
    /// The choice's point in this group.
    point: Option<f64>,
    seconds: f64,
    draws: usize,
}

fn rank_entry(group: &Group, c: &Choice) -> AlgorithmRank {
    let (l1, l2) = (&c.selection.layer1, &c.selection.layer2);
    let span = group.rank_span(l1, l2);
    AlgorithmRank {
        algorithm: c.selection.algorithm.clone(),
        selection: c.selection.to_reference_json(),
        rank: span.map(|s| s.0),
        worst_rank: span.map(|s| s.1),
        point: group.member(l1, l2).map(|m| m.point),
        seconds: c.seconds,
        draws: c.draws,
    }
}

fn summary(
    group: &Group,
    choices: &[Choice],
    cross: &Choice,
    (split, key): (RankSplit, &str),
) -> GroupSummary {
    let as_json = |m: &crate::exhaustive::Scored| serde_json::json!({"1": m.layer1, "2": m.layer2});
    let best = &group.members[0];
    let worst = &group.members[group.members.len() - 1];
    let random_draws = choices
        .iter()
        .find(|c| c.selection.algorithm == "random")
        .map(|c| c.draws)
        .unwrap_or(1);
    GroupSummary {
        key: key.to_string(),
        sizes: group.sizes,
        selections: group.members.len(),
        seconds: group.seconds,
        split: split.name().to_string(),
        best: as_json(best),
        best_scores: [best.separate, best.removed, best.point],
        worst: as_json(worst),
        worst_scores: [worst.separate, worst.removed, worst.point],
        ranks: choices.iter().map(|c| rank_entry(group, c)).collect(),
        greedy_other_split: rank_entry(group, cross),
        expected_random_rank: group.expected_random_rank(random_draws),
    }
}

/// Every algorithm's choice for `group` on `on`, and greedy's on `other`, summarised.
fn group_summary(
    l: &Loaded,
    group: &Group,
    split: (RankSplit, &str),
    (on, other): (&Evaluator, &Evaluator),
) -> Result<GroupSummary> {
    let (ctx, sizes, none) = (l.context_on(on), group.sizes, [vec![], vec![]]);
    let greedy = choose(&ctx, SelectAlgorithm::Greedy, sizes, &none, 0.0)?;
    let budget = l.random_seconds(greedy.seconds);
    let mut choices = vec![greedy.clone()];
    for algorithm in SelectAlgorithm::ALL.into_iter().skip(1) {
        choices.push(choose(&ctx, algorithm, sizes, &none, budget)?);
    }
    let cross = choose(
        &l.context_on(other),
        SelectAlgorithm::Greedy,
        sizes,
        &none,
        0.0,
    )?;
    Ok(summary(group, &choices, &cross, split))
}

fn print_group(sum: &GroupSummary) {
    let ranks: Vec<String> = sum
        .ranks
        .iter()
        .map(|r| format!("{} {:?}", r.algorithm, r.rank.unwrap_or(0)))
        .collect();
    println!(
        "group {:?} on {}: {} selections in {:.1}s; best {} ({:.2}/{:.2}); ranks: {}; greedy chosen on the other split {:?}; random expected {:.1}",
        sum.sizes,
        sum.split,
        sum.selections,
        sum.seconds,
        sum.best,
        sum.best_scores[0],
        sum.best_scores[1],
        ranks.join(", "),
        sum.greedy_other_split.rank.unwrap_or(0),
        sum.expected_random_rank
    )
}

fn append_points(csv: &mut String, group: &Group) {
    let join = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(" ");
    for m in &group.members {
        csv.push_str(&format!(
            "{},{},{},{},{:.4},{:.4},{:.6}\n",
            group.sizes[0],
            group.sizes[1],
            join(&m.layer1),
            join(&m.layer2),
            m.separate,
            m.removed,
            m.point
        ));
    }
}

/// `exhaustive`: every group up to `select.max_group`, with ranks, scored and selected on
/// `split`.
pub fn exhaustive(common: &Common, split: RankSplit) -> Result<PathBuf> {
    let l = load(common)?;
    let (on, other) = match split {
        RankSplit::Validation => (&l.validation, &l.test),
        RankSplit::Test => (&l.test, &l.validation),
    };
    let channels = on.channels();
    let all = groups(l.cfg.pipeline.select.max_group, channels);
    let total: u128 = all.iter().map(|g| group_size(channels, *g)).sum();
    if total > 5_000_000 {
        bail!(
            "the exhaustive search up to {:?} has {total} selections; lower `select.max_group`",
            l.cfg.pipeline.select.max_group
        );
    }
    let file = |stem: &str, ext: &str| l.out.join(format!("{stem}{}.{ext}", split.suffix()));
    let (json, points) = (file("exhaustive", "json"), file("exhaustive_points", "csv"));
    let key = checkpoint_key(&l, split);
    let (mut summaries, mut csv) = resume(&json, &points, &key);
    let finished: u128 = summaries.iter().map(|s| s.selections as u128).sum();
    let progress = bar(total as u64, "exhaustive");
    progress.set_position(finished as u64);
    let done = AtomicUsize::new(finished as usize);
    for sizes in all {
        if summaries.iter().any(|s| s.sizes == sizes) {
            continue;
        }
        let group = score_group(on, sizes, &|n| {
            let d = done.fetch_add(n, Ordering::Relaxed) + n;
            if d.is_multiple_of(64) {
                progress.set_position(d as u64);
            }
        });
        let sum = group_summary(&l, &group, (split, &key), (on, other))?;
        progress.suspend(|| print_group(&sum));
        append_points(&mut csv, &group);
        summaries.push(sum);
        // points first: a summary on disk always has its points (see `resume`)
        write_bytes_atomic(&points, csv.as_bytes())?;
        write_json_atomic(&json, &summaries)?;
    }
    progress.finish_and_clear();
    let table = rank_table(&summaries);
    println!("{table}");
    write_bytes_atomic(&file("exhaustive_ranks", "md"), table.as_bytes())?;
    Ok(json)
}

/// Header of `exhaustive_points*.csv`.
const POINTS_HEADER: &str = "s1_size,s2_size,layer1,layer2,separate,removed,point\n";

/// What the groups are scored with: the trained model's SHA-256 (from its manifest), the split
/// and its images. Empty (nothing resumes) when the model has no readable manifest.
fn checkpoint_key(l: &Loaded, split: RankSplit) -> String {
    let images = match split {
        RankSplit::Validation => l.cfg.pipeline.select.eval_images,
        RankSplit::Test => 0,
    };
    Manifest::read_beside(&l.model_path)
        .map(|m| format!("{}:{}:{images}", m.output_sha256, split.name()))
        .unwrap_or_default()
}

/// The finished groups of an earlier run with the same `key` and their points (a group whose
/// points are not all in the CSV is scored again); nothing when the files are absent, unreadable
/// or from another model, split or image count.
fn resume(json: &Path, points: &Path, key: &str) -> (Vec<GroupSummary>, String) {
    let fresh = (Vec::new(), POINTS_HEADER.to_string());
    let Some(mut done) = std::fs::read(json)
        .ok()
        .and_then(|b| serde_json::from_slice::<Vec<GroupSummary>>(&b).ok())
    else {
        return fresh;
    };
    let text = std::fs::read_to_string(points).unwrap_or_default();
    let sizes_of = |line: &str| -> Option<[usize; 2]> {
        let mut f = line.split(',').map(|v| v.parse::<usize>().ok());
        Some([f.next()??, f.next()??])
    };
    let mut rows: HashMap<[usize; 2], usize> = HashMap::new();
    for sizes in text.lines().filter_map(sizes_of) {
        *rows.entry(sizes).or_default() += 1;
    }
    done.retain(|s| !key.is_empty() && s.key == key && rows.get(&s.sizes) == Some(&s.selections));
    if done.is_empty() {
        return fresh;
    }
    let mut csv = POINTS_HEADER.to_string();
    for line in text
        .lines()
        .filter(|l| sizes_of(l).is_some_and(|g| done.iter().any(|s| s.sizes == g)))
    {
        csv.push_str(line);
        csv.push('\n');
    }
    log::info!(
        "resuming {}: {} groups already scored with this model and split",
        json.display(),
        done.len()
    );
    (done, csv)
}

/// The reference's Tables 2–3: rank of each algorithm's choice within its group.
fn rank_table(summaries: &[GroupSummary]) -> String {
    let algorithms: Vec<&str> = SelectAlgorithm::ALL.iter().map(|a| a.name()).collect();
    let mut out = format!(
        "| group | selections | {} | random (expected) | greedy s | random draws |\n|---|---|{}---|---|---|\n",
        algorithms.join(" | "),
        "---|".repeat(algorithms.len())
    );
    for s in summaries {
        let find = |name: &str| s.ranks.iter().find(|r| r.algorithm == name);
        let rank = |name: &str| {
            find(name)
                .and_then(|r| r.rank)
                .map_or_else(|| "–".to_string(), |r| r.to_string())
        };
        let greedy_seconds = find("greedy").map_or(0.0, |r| r.seconds);
        let draws = find("random").map_or(0, |r| r.draws);
        out.push_str(&format!(
            "| ({}, {}) | {} | {} | {:.1} | {:.2} | {} |\n",
            s.sizes[0],
            s.sizes[1],
            s.selections,
            algorithms
                .iter()
                .map(|a| rank(a))
                .collect::<Vec<_>>()
                .join(" | "),
            s.expected_random_rank,
            greedy_seconds,
            draws
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(sizes: [usize; 2], selections: usize, key: &str) -> GroupSummary {
        let rank = || AlgorithmRank {
            algorithm: "greedy".into(),
            selection: serde_json::json!({"1": [0], "2": [0]}),
            rank: Some(1),
            worst_rank: Some(1),
            point: Some(0.5),
            seconds: 0.1,
            draws: 0,
        };
        GroupSummary {
            key: key.into(),
            sizes,
            selections,
            seconds: 1.0,
            split: "validation".into(),
            best: serde_json::json!({}),
            best_scores: [0.0; 3],
            worst: serde_json::json!({}),
            worst_scores: [0.0; 3],
            ranks: vec![rank()],
            greedy_other_split: rank(),
            expected_random_rank: 1.0,
        }
    }

    #[test]
    fn resume_keeps_only_complete_groups_of_the_same_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (json, csv) = (dir.path().join("e.json"), dir.path().join("e.csv"));
        assert!(resume(&json, &csv, "k").0.is_empty(), "no files: fresh");
        // (1, 1) has both of its points, (1, 2) only two of its three
        let groups = vec![group([1, 1], 2, "k"), group([1, 2], 3, "k")];
        write_json_atomic(&json, &groups).expect("json");
        let rows =
            "1,1,0,0,90,10,0.5\n1,1,1,0,91,11,0.6\n1,2,0,0 1,92,12,0.7\n1,2,0,1 2,93,13,0.8\n";
        std::fs::write(&csv, format!("{POINTS_HEADER}{rows}")).expect("csv");
        let (done, points) = resume(&json, &csv, "k");
        assert_eq!(done.iter().map(|g| g.sizes).collect::<Vec<_>>(), [[1, 1]]);
        assert_eq!(
            points,
            format!("{POINTS_HEADER}1,1,0,0,90,10,0.5\n1,1,1,0,91,11,0.6\n")
        );
        // another model, split or image count (another key), or no key: nothing resumes
        assert!(resume(&json, &csv, "other").0.is_empty());
        assert!(resume(&json, &csv, "").0.is_empty());
        // an unreadable checkpoint starts over instead of failing
        std::fs::write(&json, "{ not json").expect("json");
        let (done, points) = resume(&json, &csv, "k");
        assert!(done.is_empty() && points == POINTS_HEADER);
    }
}
