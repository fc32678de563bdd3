//! Selection tables: Tables 2–3 (rank of each algorithm's choice within its exhaustive group)
//! and Tables 4–5 (selection time, and every algorithm's A_s / A_r from the sweep).

use super::{group_label, missing_note};
use crate::runs::Run;
use crate::stages::{GroupSummary, selection_text};
use crate::table::{NA, Table, acc, count, num, secs};

fn algorithms_of(groups: &[&GroupSummary]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for g in groups {
        for r in &g.ranks {
            if !names.contains(&r.algorithm) {
                names.push(r.algorithm.clone());
            }
        }
    }
    names
}

fn exhaustive_runs(runs: &[Run]) -> Vec<(&Run, &Vec<GroupSummary>)> {
    runs.iter()
        .filter_map(|r| r.exhaustive.get().map(|e| (r, e)))
        .collect()
}

fn exhaustive_notes(t: &mut Table, runs: &[Run]) {
    for run in runs {
        if run.architecture() == "lenet5" {
            missing_note(
                t,
                run,
                &run.exhaustive,
                &run.select_command("exhaustive"),
                None,
            );
        }
    }
}

/// Tables 2–3: the rank of every algorithm's choice within each exhaustive group, and the random
/// baseline.
pub fn ranks(runs: &[Run]) -> Table {
    let with = exhaustive_runs(runs);
    let all_groups: Vec<&GroupSummary> = with.iter().flat_map(|(_, e)| e.iter()).collect();
    let algorithms = algorithms_of(&all_groups);
    let mut columns = vec!["run".to_string(), "group".into(), "selections".into()];
    columns.extend(algorithms.iter().cloned());
    columns.extend([
        "random (expected)".to_string(),
        "best A_s / A_r".into(),
        "worst A_s / A_r".into(),
    ]);
    let mut t = Table {
        id: "table2_3_ranks".into(),
        title: "Tables 2–3 — rank of each algorithm's selection in its exhaustive group (1 = best)"
            .into(),
        columns,
        rows: Vec::new(),
        notes: Vec::new(),
    };
    for (run, groups) in &with {
        for g in groups.iter() {
            let mut row = vec![
                run.name.clone(),
                group_label(g.sizes),
                g.selections.to_string(),
            ];
            for a in &algorithms {
                row.push(
                    g.rank(a)
                        .and_then(|r| r.rank)
                        .map(|r| r.to_string())
                        .unwrap_or_else(|| NA.to_string()),
                );
            }
            row.push(num(Some(g.expected_random_rank), 1));
            row.push(format!(
                "{} / {}",
                acc(Some(g.best_scores[0])),
                acc(Some(g.best_scores[1]))
            ));
            row.push(format!(
                "{} / {}",
                acc(Some(g.worst_scores[0])),
                acc(Some(g.worst_scores[1]))
            ));
            t.push(row);
        }
    }
    t.note("Source: `select/exhaustive.json` (`cargo xtask select exhaustive <pipeline>`). Every selection of a group (|S1|, |S2|) is scored on the validation split with point(A_s, A_r) (spec §3.2); rank = 1 + number of strictly better selections.");
    t.note("random: one seeded random search given greedy's wall time; random (expected): the exact expected best rank of as many uniform draws (the reference's simulated baseline, spec §3.4).");
    exhaustive_notes(&mut t, runs);
    t
}

/// Tables 4–5 (time): seconds per algorithm and group, random draws, and the expected time
/// random search needs to match greedy.
pub fn selection_time(runs: &[Run]) -> Table {
    let with = exhaustive_runs(runs);
    let all_groups: Vec<&GroupSummary> = with.iter().flat_map(|(_, e)| e.iter()).collect();
    let algorithms = algorithms_of(&all_groups);
    let mut columns = vec!["run".to_string(), "group".into()];
    columns.extend(algorithms.iter().map(|a| format!("{a} s")));
    columns.extend([
        "random draws".to_string(),
        "s per random draw".into(),
        "random: expected s to match greedy".into(),
        "exhaustive group s".into(),
    ]);
    let mut t = Table {
        id: "table4_5_selection_time".into(),
        title: "Tables 4–5 — selection time per algorithm and group (seconds)".into(),
        columns,
        rows: Vec::new(),
        notes: Vec::new(),
    };
    for (run, groups) in &with {
        for g in groups.iter() {
            let mut row = vec![run.name.clone(), group_label(g.sizes)];
            for a in &algorithms {
                row.push(secs(g.rank(a).map(|r| r.seconds)));
            }
            let random = g.rank("random");
            let per_draw = random
                .filter(|r| r.draws > 0)
                .map(|r| r.seconds / r.draws as f64);
            let to_match = match (g.rank("greedy").and_then(|r| r.rank), per_draw) {
                (Some(rank), Some(per)) => Some(g.selections as f64 / rank as f64 * per),
                _ => None,
            };
            row.push(count(random.map(|r| r.draws as f64)));
            row.push(secs(per_draw));
            row.push(secs(to_match));
            row.push(secs(Some(g.seconds)));
            t.push(row);
        }
    }
    t.note("Source: `select/exhaustive.json`. Wall seconds of each algorithm on the run's machine (the selection split of the config); the exhaustive group column is the time to score every selection of the group.");
    t.note("random: expected s to match greedy = (selections / greedy's rank) × seconds per random draw: the expected number of uniform draws until one is at least as good as greedy (ties ignored), spec §3.4 (b).");
    exhaustive_notes(&mut t, runs);
    t
}

fn sweep_notes(t: &mut Table, runs: &[Run]) {
    for run in runs {
        missing_note(t, run, &run.sweep, &run.select_command("sweep"), None);
    }
}

/// Tables 4–5 (quality): every algorithm's selection per group or percent point with its test
/// A_s / A_r, from the selection sweep.
pub fn algorithms(runs: &[Run]) -> Table {
    let mut t = Table::new(
        "table4_5_algorithms",
        "Tables 4–5 — selection algorithms compared: A_s / A_r per group or percent (test split, %)",
        &[
            "run",
            "algorithm",
            "percent",
            "group",
            "selection",
            "A_s",
            "A_r",
            "A_s − A_r",
            "point",
            "validation A_s / A_r",
            "evaluations",
            "seconds",
        ],
    );
    for run in runs {
        let Some(records) = run.sweep.get() else {
            continue;
        };
        for r in records {
            t.push(vec![
                run.name.clone(),
                r.algorithm.clone(),
                if r.percent > 0.0 {
                    num(Some(r.percent), 0)
                } else {
                    NA.to_string()
                },
                group_label(r.sizes),
                selection_text(&r.selection),
                acc(Some(r.test.separate)),
                acc(Some(r.test.removed)),
                acc(Some(r.test.separate - r.test.removed)),
                num(Some(r.test.point), 4),
                format!(
                    "{} / {}",
                    acc(Some(r.validation.separate)),
                    acc(Some(r.validation.removed))
                ),
                r.evaluations.to_string(),
                secs(Some(r.seconds)),
            ]);
        }
    }
    t.note("Source: `select/sweep.json` (`cargo xtask select sweep <pipeline>`): every (|S1|, |S2|) group × algorithm for LeNet5, nested greedy percent points for the large models. point uses A_o of the test split.");
    sweep_notes(&mut t, runs);
    t
}
