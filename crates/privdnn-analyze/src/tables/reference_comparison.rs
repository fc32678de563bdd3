//! Ours next to the reference's published numbers (spec §7), with ratio ours / reference. The
//! table is built by one function per block of rows, in this order: A_o, the exhaustive groups
//! (greedy rank and time, random's expected rank, best and worst selections), MNIST's selection
//! time, the share of multiplications under HE, the large models' sweep points (A_s, A_r, A_rec,
//! HE time, A_t), and MNIST's HE time.

use super::group_label;
use crate::infer::ModeReport;
use crate::ops::Network;
use crate::reference::{self, Curve};
use crate::runs::{FULL_BLOCK_VARIANT, RefDataset, Run, representative};
use crate::stages::{AlgorithmRank, GroupSummary, SelectionRecord};
use crate::table::{NA, Table, num, ratio};

/// The table being built and the runs it reads.
struct Comparison<'a> {
    t: Table,
    runs: &'a [Run],
}

/// One row's values: the quantity, ours and the reference's, and how many decimals.
struct Quantity<'q> {
    name: &'q str,
    ours: Option<f64>,
    reference: Option<f64>,
    digits: usize,
}

impl<'q> Quantity<'q> {
    fn new(name: &'q str, ours: Option<f64>, reference: Option<f64>, digits: usize) -> Self {
        Quantity {
            name,
            ours,
            reference,
            digits,
        }
    }
}

impl Comparison<'_> {
    /// A row whose "our run" column is the dataset's representative run.
    fn row(&mut self, d: RefDataset, q: Quantity<'_>, note: String) {
        self.row_as(d, None, q, note);
    }

    /// A row whose "our run" column is `label` instead of the representative run (values not
    /// taken from a run).
    fn row_as(&mut self, d: RefDataset, label: Option<&str>, q: Quantity<'_>, note: String) {
        if q.reference.is_none() {
            return; // the reference has no such number (e.g. Tiny ImageNet, freeze)
        }
        let run = representative(self.runs, d).filter(|_| label.is_none());
        let mut notes = Vec::new();
        if let Some((_, true)) = run.and_then(|r| r.reference()) {
            notes.push(format!(
                "stand-in: {}",
                run.map(|r| r.dataset()).unwrap_or("")
            ));
        }
        if !note.is_empty() {
            notes.push(note);
        }
        if run.is_none() && label.is_none() {
            notes.push(format!("no run: `cargo xtask pipeline {}`", d.pipeline()));
        }
        self.t.push(vec![
            q.name.to_string(),
            d.name().to_string(),
            label
                .map(str::to_string)
                .or_else(|| run.map(|r| r.name.clone()))
                .unwrap_or_else(|| NA.to_string()),
            num(q.ours, q.digits),
            num(q.reference, q.digits),
            ratio(q.ours, q.reference),
            notes.join("; "),
        ]);
    }
}

/// Ours next to the reference's published numbers (spec §7), with ratio ours / reference.
pub fn reference_comparison(runs: &[Run]) -> Table {
    let t = Table::new(
        "reference_comparison",
        "Ours vs reference (spec §7): ratio = ours / reference",
        &[
            "quantity",
            "dataset",
            "our run",
            "ours",
            "reference",
            "ratio",
            "note",
        ],
    );
    let mut c = Comparison { t, runs };
    original_accuracy_rows(&mut c);
    for d in [RefDataset::Mnist, RefDataset::Emnist] {
        exhaustive_rows(&mut c, d);
    }
    mnist_selection_time_row(&mut c);
    for d in RefDataset::ALL {
        mult_fraction_rows(&mut c, d);
    }
    for d in [
        RefDataset::Gtsrb,
        RefDataset::Cifar10,
        RefDataset::TinyImageNet,
    ] {
        let run = representative(runs, d);
        for p in [50.0, 100.0] {
            sweep_point_rows(&mut c, d, run, p);
            he_time_row(&mut c, d, run, p);
        }
        from_scratch_row(&mut c, d, run);
    }
    mnist_he_time_row(&mut c);
    let mut t = c.t;
    t.note("Reference numbers: spec §7 (from the reference repository; the paper's tables were not found). Ours: the representative run of each dataset (the default output folder first, a real dataset before a stand-in).");
    t.note("Selections are made on the validation split here (the reference selected on test); exhaustive scores are validation-split numbers. The MNIST rows `reference setting (test split)` select and rank on the test split as the reference did (`cargo xtask select exhaustive mnist --split test`); `chosen on validation, ranked on test` is the rank of the pipeline's own choice on held-out images. Greedy's rank moves with the trained model and with the images it is scored on (compare the three MNIST rows of a group; README, \"Why greedy's ranks differ\").");
    if let Some(line) =
        representative(runs, RefDataset::Mnist).and_then(super::greedy_layer1::summary_line)
    {
        t.note(line);
    }
    t
}

/// A_o (top-5 for Tiny ImageNet) of every dataset.
fn original_accuracy_rows(c: &mut Comparison<'_>) {
    for d in RefDataset::ALL {
        let run = representative(c.runs, d);
        let ours = run.and_then(Run::original_accuracy);
        let label = if d.top5() { "A_o top-5 (%)" } else { "A_o (%)" };
        let note = match run {
            Some(r) if ours.is_none() => r.train.problem(&r.pipeline_command()).unwrap_or_default(),
            _ => String::new(),
        };
        c.row(
            d,
            Quantity::new(label, ours, Some(reference::original_accuracy(d)), 2),
            note,
        );
    }
}

/// Why a group of the reference has no number of ours: `missing` (no exhaustive.json), a group
/// we did not score, or `found` when we have it.
fn group_note(
    has_groups: bool,
    group: Option<&GroupSummary>,
    missing: &str,
    found: &str,
) -> String {
    match (has_groups, group) {
        (false, _) => missing.to_string(),
        (true, None) => {
            "group not in our exhaustive.json: an unfinished run resumes when rerun, or raise `select.max_group`".into()
        }
        _ => found.to_string(),
    }
}

/// Exhaustive groups of a LeNet5 dataset: greedy rank, greedy time and random's expected rank
/// per reference group, then the best and worst selections of the extremes group.
fn exhaustive_rows(c: &mut Comparison<'_>, d: RefDataset) {
    let run = representative(c.runs, d);
    let groups = run.and_then(|r| r.exhaustive.get());
    let missing = match (run, groups) {
        (Some(r), None) => r
            .exhaustive
            .problem(&r.select_command("exhaustive"))
            .unwrap_or_default(),
        _ => String::new(),
    };
    let group = |sizes: [usize; 2]| groups.and_then(|g| g.iter().find(|x| x.sizes == sizes));
    let reference_groups = reference::greedy_groups(d);
    // without our exhaustive data, only the largest group's rows (same command for all)
    let shown = if groups.is_some() {
        reference_groups
    } else {
        &reference_groups[reference_groups.len().saturating_sub(1)..]
    };
    for &(sizes, rank, seconds, random) in shown {
        let g = group(sizes);
        let note = group_note(groups.is_some(), g, &missing, "");
        greedy_group_rows(c, d, sizes, g, [rank as f64, seconds, random], note);
        if d == RefDataset::Mnist {
            test_split_rows(c, d, run, sizes, rank as f64);
        }
    }
    if let Some((sizes, scores)) = reference::extremes(d) {
        let g = group(sizes);
        let note = group_note(
            groups.is_some(),
            g,
            &missing,
            "ours on the validation split, reference on test",
        );
        extreme_rows(c, d, sizes, g, scores, &note);
    }
}

/// Greedy's rank in one group in the reference's setting (selected and ranked on the test
/// split) and its held-out rank (chosen on validation, ranked on test), from
/// `exhaustive_test.json`.
fn test_split_rows(
    c: &mut Comparison<'_>,
    d: RefDataset,
    run: Option<&Run>,
    sizes: [usize; 2],
    rank: f64,
) {
    let groups = run.and_then(|r| r.exhaustive_test.get());
    let g = groups.and_then(|g| g.iter().find(|x| x.sizes == sizes));
    let command = run
        .map(|r| format!("{} --split test", r.select_command("exhaustive")))
        .unwrap_or_default();
    let missing = run
        .and_then(|r| r.exhaustive_test.problem(&command))
        .unwrap_or_default();
    let ties = |r: Option<&AlgorithmRank>| match r.map(|r| (r.rank, r.worst_rank)) {
        Some((Some(a), Some(b))) if b > a => format!("ties: ranks {a}–{b}"),
        _ => String::new(),
    };
    let note = |found: String| match (groups.is_some(), g) {
        (false, _) => missing.clone(),
        (true, None) => format!("group not in exhaustive_test.json yet: rerun `{command}`"),
        _ => found,
    };
    let label = group_label(sizes);
    let greedy = g.and_then(|g| g.rank("greedy"));
    let held = g.and_then(|g| g.greedy_other_split.as_ref());
    let rows = [
        ("reference setting (test split)", greedy, ties(greedy)),
        (
            "chosen on validation, ranked on test",
            held,
            format!(
                "reference: its same-split rank (it reported none held out) {}",
                ties(held)
            )
            .trim_end()
            .to_string(),
        ),
    ];
    for (what, entry, found) in rows {
        c.row(
            d,
            Quantity::new(
                &format!("greedy rank {label}, {what}"),
                entry.and_then(|r| r.rank).map(|r| r as f64),
                Some(rank),
                0,
            ),
            note(found),
        );
    }
}

/// Greedy's rank and seconds and random's expected best rank in one group;
/// `theirs` = [rank, seconds, random expected rank].
fn greedy_group_rows(
    c: &mut Comparison<'_>,
    d: RefDataset,
    sizes: [usize; 2],
    g: Option<&GroupSummary>,
    [rank, seconds, random]: [f64; 3],
    note: String,
) {
    let label = group_label(sizes);
    c.row(
        d,
        Quantity::new(
            &format!("greedy rank {label}"),
            g.and_then(|g| g.rank("greedy")?.rank).map(|r| r as f64),
            Some(rank),
            0,
        ),
        note.clone(),
    );
    c.row(
        d,
        Quantity::new(
            &format!("greedy seconds {label}"),
            g.and_then(|g| g.rank("greedy")).map(|r| r.seconds),
            Some(seconds),
            2,
        ),
        note.clone(),
    );
    c.row(
        d,
        Quantity::new(
            &format!("random expected best rank {label}"),
            g.map(|g| g.expected_random_rank),
            Some(random),
            1,
        ),
        if note.is_empty() {
            "ours: draws random made in greedy's time; reference: 2 s per draw".into()
        } else {
            note
        },
    );
}

/// Best and worst A_s / A_r of one group; `[bs, br, ws, wr]` are the reference's.
fn extreme_rows(
    c: &mut Comparison<'_>,
    d: RefDataset,
    sizes: [usize; 2],
    g: Option<&GroupSummary>,
    [bs, br, ws, wr]: [f64; 4],
    note: &str,
) {
    let label = group_label(sizes);
    for (what, ours, theirs) in [
        ("best A_s", g.map(|g| g.best_scores[0]), bs),
        ("best A_r", g.map(|g| g.best_scores[1]), br),
        ("worst A_s", g.map(|g| g.worst_scores[0]), ws),
        ("worst A_r", g.map(|g| g.worst_scores[1]), wr),
    ] {
        c.row(
            d,
            Quantity::new(&format!("{what} {label} (%)"), ours, Some(theirs), 2),
            note.to_string(),
        );
    }
}

/// MNIST greedy (1, 1) selection time.
fn mnist_selection_time_row(c: &mut Comparison<'_>) {
    let d = RefDataset::Mnist;
    let run = representative(c.runs, d);
    let sel = run
        .and_then(|r| r.select.get())
        .filter(|s| s.algorithm == "greedy" && s.sizes == [1, 1]);
    c.row(
        d,
        Quantity::new(
            "greedy (1, 1) selection seconds",
            sel.map(|s| s.seconds),
            Some(reference::MNIST_SELECT_SECONDS),
            2,
        ),
        "reference: README, about 22 s".into(),
    );
}

/// (|S1|, |S2|) of a reference selection label: `"25 %"` or `"(1, 2)"`.
fn label_sizes(net: &Network, label: &str) -> [u64; 2] {
    if let Some(p) = label.strip_suffix(" %") {
        return net.percent_sizes(p.parse().unwrap_or(100.0));
    }
    let nums: Vec<u64> = label
        .trim_matches(|ch| ch == '(' || ch == ')')
        .split(", ")
        .filter_map(|x| x.parse().ok())
        .collect();
    [
        nums.first().copied().unwrap_or(1),
        nums.get(1).copied().unwrap_or(1),
    ]
}

/// Share of multiplications under HE (formula at the paper's shape) for each reference point.
fn mult_fraction_rows(c: &mut Comparison<'_>, d: RefDataset) {
    let net = Network::new(&d.paper_shape());
    for &(label, theirs) in reference::mult_fractions(d) {
        let [s1, s2] = label_sizes(&net, label);
        let ours = net.encrypted(s1, s2).mult_percent;
        let note = if d == RefDataset::Cifar10 {
            "the reference counted conv2 at 16×16 (spec §6)".to_string()
        } else {
            String::new()
        };
        c.row_as(
            d,
            Some("formula, paper shape"),
            Quantity::new(
                &format!("% mults under HE {label}"),
                Some(ours),
                Some(theirs),
                2,
            ),
            note,
        );
    }
}

fn sweep_at(run: Option<&Run>, percent: f64) -> Option<&SelectionRecord> {
    run?.sweep
        .get()?
        .iter()
        .find(|r| r.percent > 0.0 && (r.percent - percent).abs() < 1e-9)
}

/// `a; b`, or whichever is not empty.
fn join_notes(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}; {b}"),
    }
}

/// A_s, A_r (select sweep) and A_rec unfreeze / freeze (attack) at selection percent `p`.
fn sweep_point_rows(c: &mut Comparison<'_>, d: RefDataset, run: Option<&Run>, p: f64) {
    let rec = sweep_at(run, p);
    let attack = run
        .and_then(|r| r.attack.get())
        .and_then(|a| a.points.iter().find(|x| (x.percent - p).abs() < 1e-9));
    let sweep_note = match (run, rec) {
        (Some(r), None) => r
            .sweep
            .problem(&r.select_command("sweep"))
            .unwrap_or_else(|| format!("no {p} % point in select/sweep.json")),
        _ => String::new(),
    };
    let attack_note = match (run, attack) {
        (Some(r), None) => r
            .attack
            .stage_problem(&r.pipeline_command(), "attack")
            .unwrap_or_else(|| format!("no {p} % point in attack/metrics.json")),
        _ => String::new(),
    };
    let top5 = if d.top5() {
        "reference top-5, ours top-1"
    } else {
        ""
    };
    for (name, curve, ours) in [
        ("A_s", Curve::Separate, rec.map(|r| r.test.separate)),
        ("A_r", Curve::Removed, rec.map(|r| r.test.removed)),
    ] {
        c.row(
            d,
            Quantity::new(
                &format!("{name} at {p} % (%)"),
                ours,
                reference::curve_at(d, curve, p),
                2,
            ),
            join_notes(&sweep_note, top5),
        );
    }
    for curve in [Curve::RecoveredUnfreeze, Curve::RecoveredFreeze] {
        let ours = attack.and_then(|a| match curve {
            Curve::RecoveredUnfreeze => a.recovered_unfreeze,
            _ => a.recovered_freeze,
        });
        c.row(
            d,
            Quantity::new(
                &format!("{} at {p} % (%)", curve.name()),
                ours,
                reference::curve_at(d, curve, p),
                2,
            ),
            attack_note.clone(),
        );
    }
}

/// Why a run has no infer report: its stage problem, else `fallback`.
fn infer_note(run: Option<&Run>, report: Option<&ModeReport>, fallback: String) -> String {
    match (run, report) {
        (Some(r), None) => r
            .infer
            .stage_problem(&r.pipeline_command(), "infer")
            .unwrap_or(fallback),
        _ => String::new(),
    }
}

/// The report of HE seconds per image at selection percent `p`, with a note on its source: the
/// infer stage's separate mode at that percent (a report without a `percent` is the stage's own
/// run, on the pipeline's default percent); at 100 %, else the 100 %-encrypted block of the
/// infer stage or of its `full-block` variant (`cargo xtask full-block`).
fn he_report(run: &Run, p: f64) -> Option<(&ModeReport, String)> {
    let default_percent = run.config.pipeline.select.percent;
    let main = run.infer.get();
    let separate = main.and_then(|m| {
        m.reports.iter().find(|x| {
            let percent = x.percent.unwrap_or(default_percent);
            x.mode == "separate" && (percent - p).abs() < 1e-9
        })
    });
    if let Some(x) = separate {
        return Some((x, "reference: test-batch seconds / batch size".into()));
    }
    if (p - 100.0).abs() > 1e-9 {
        return None;
    }
    [
        (main, "infer".to_string()),
        (run.full_block.get(), format!("{FULL_BLOCK_VARIANT}/infer")),
    ]
    .into_iter()
    .find_map(|(m, at)| {
        let x = m?.mode("full-block")?;
        let images = x.images.map_or(NA.to_string(), |n| format!("{n:.0}"));
        Some((
            x,
            format!(
                "ours: the 100 %-encrypted block on {images} images (`{at}/metrics.json`); reference: test-batch seconds / batch size"
            ),
        ))
    })
}

/// HE seconds per image at selection percent `p` (see [`he_report`]).
fn he_time_row(c: &mut Comparison<'_>, d: RefDataset, run: Option<&Run>, p: f64) {
    let found = run.and_then(|r| he_report(r, p));
    let fallback = if (p - 100.0).abs() < 1e-9 {
        let profile = run
            .map(|r| r.config.profile.as_str())
            .filter(|&p| p != "default")
            .map_or(String::new(), |p| format!(" --profile {p}"));
        format!(
            "no 100 % report: run `cargo xtask full-block {}{profile}`",
            d.pipeline()
        )
    } else {
        format!("no separate-mode report at {p} %")
    };
    let note = match &found {
        Some((_, note)) => note.clone(),
        None => Some(infer_note(run, None, fallback))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "reference: test-batch seconds / batch size".into()),
    };
    c.row(
        d,
        Quantity::new(
            &format!("HE seconds per image at {p} %"),
            found.and_then(|(x, _)| x.per_image_s),
            reference::curve_at(d, Curve::HeSeconds, p).map(|s| s / reference::he_batch(d)),
            3,
        ),
        note,
    );
}

/// A_t: training from scratch on 1,000 samples (attack stage).
fn from_scratch_row(c: &mut Comparison<'_>, d: RefDataset, run: Option<&Run>) {
    let ours_t = run
        .and_then(|r| r.attack.get())
        .and_then(|a| a.from_scratch)
        .map(|x| x.1);
    let note = match run {
        Some(r) if ours_t.is_none() => r
            .attack
            .stage_problem(&r.pipeline_command(), "attack")
            .unwrap_or_default(),
        _ => String::new(),
    };
    c.row(
        d,
        Quantity::new(
            "A_t, 1,000 samples (%)",
            ours_t,
            reference::from_scratch(d),
            2,
        ),
        note,
    );
}

/// MNIST HE time per image for a (1, 1) selection in separate mode.
fn mnist_he_time_row(c: &mut Comparison<'_>) {
    let d = RefDataset::Mnist;
    let run = representative(c.runs, d);
    let infer = run
        .and_then(|r| r.infer.get())
        .and_then(|m| m.mode("separate"));
    let note = match infer {
        Some(x) => format!(
            "ours: selection {}; reference: README, about 50 s for the 5,000-image test batch of {{\"1\":[0],\"2\":[0]}}",
            x.selection.as_deref().unwrap_or(NA)
        ),
        None => infer_note(run, infer, "no separate-mode report".into()),
    };
    c.row(
        d,
        Quantity::new(
            "HE seconds per image, (1, 1) separate",
            infer.and_then(|r| r.per_image_s),
            Some(reference::MNIST_HE_SECONDS / reference::he_batch(d)),
            4,
        ),
        note,
    );
}
