//! Accuracy tables: Table 1 (A_o, A_s, A_r per run) and Table 7 (model recovery per selection
//! percent).

use super::{missing_note, model_name};
use crate::runs::Run;
use crate::stages::{SelectionRecord, selection_text};
use crate::table::{NA, Table, acc, count, num};

/// Table 1: A_o, A_s, A_r of every run (test split).
pub fn table1(runs: &[Run]) -> Table {
    let mut t = Table::new(
        "table1_accuracy",
        "Table 1 — A_o, A_s, A_r per run (test split, %)",
        &[
            "run",
            "dataset",
            "model",
            "A_o",
            "A_s",
            "A_r",
            "A_s − A_r",
            "selection",
            "algorithm",
            "validation A_o / A_s / A_r",
            "note",
        ],
    );
    for run in runs {
        let train = run.train.get();
        let sel = run.select.get();
        let mut note = Vec::new();
        if let Some(p) = run.train.problem(&run.pipeline_command()) {
            note.push(p);
        }
        if let Some(p) = run
            .select
            .problem(&format!("{} --only select", run.pipeline_command()))
        {
            note.push(p);
        }
        if !run.is_canonical() {
            note.push("variant folder".to_string());
        }
        t.push(vec![
            run.name.clone(),
            run.dataset().to_string(),
            model_name(run),
            acc(train.map(|m| m.test_accuracy)),
            acc(sel.map(|s| s.test.separate)),
            acc(sel.map(|s| s.test.removed)),
            acc(sel.map(|s| s.test.separate - s.test.removed)),
            sel.map(|s| selection_text(&s.selection))
                .unwrap_or_else(|| NA.to_string()),
            sel.map(|s| s.algorithm.clone())
                .unwrap_or_else(|| NA.to_string()),
            match sel {
                Some(s) => format!(
                    "{} / {} / {}",
                    acc(Some(s.validation.original)),
                    acc(Some(s.validation.separate)),
                    acc(Some(s.validation.removed))
                ),
                None => NA.to_string(),
            },
            note.join("; "),
        ]);
    }
    t.note("A_o: test accuracy of the trained model (`train/metrics.json`). A_s / A_r: test accuracy of the separated / removed model (spec §3.1) for the run's default selection (`select/metrics.json`), chosen on the validation split.");
    t.note("Runs whose folder is not `<pipeline>[-<profile>]` are renamed variants kept for comparison (e.g. without augmentation).");
    if runs.is_empty() {
        t.note("no runs under results/: run `cargo xtask pipeline mnist`");
    }
    t
}

fn percent_records(run: &Run) -> Vec<&SelectionRecord> {
    let mut out: Vec<&SelectionRecord> = run
        .sweep
        .get()
        .map(|s| s.iter().filter(|r| r.percent > 0.0).collect())
        .unwrap_or_default();
    out.sort_by(|a, b| a.percent.total_cmp(&b.percent));
    out
}

/// Table 7: recovery attack (A_rec frozen / fine-tuned) and training from scratch (A_t) per
/// selection percent, beside A_s / A_r.
pub fn recovery(runs: &[Run]) -> Table {
    let mut t = Table::new(
        "table7_recovery",
        "Table 7 — model recovery per selection percent (test split, %)",
        &[
            "run",
            "percent",
            "A_s",
            "A_r",
            "A_rec (freeze)",
            "A_rec (unfreeze)",
            "A_t (from scratch)",
        ],
    );
    t.note("A_s / A_r: `select/sweep.json` percent points (nested greedy), else the attack stage's own (`attack.sweep_algorithm`); A_rec: the attacker re-initialises the encrypted filters and fine-tunes with the plaintext part frozen or trained (10× rate on the re-initialised values), on its labelled validation samples; A_t: training the whole model from scratch on the same samples (spec §4). Source: `attack/metrics.json` (`crates/privdnn-attack`, read by `crates/privdnn-analyze/src/attack.rs`).");
    for run in runs {
        let sweep = percent_records(run);
        let attack = run.attack.get();
        let mut percents: Vec<f64> = sweep.iter().map(|r| r.percent).collect();
        if let Some(a) = attack {
            percents.extend(a.points.iter().map(|p| p.percent));
        }
        percents.sort_by(f64::total_cmp);
        percents.dedup();
        for p in percents {
            let s = sweep.iter().find(|r| (r.percent - p).abs() < 1e-9);
            let a = attack.and_then(|a| a.points.iter().find(|x| (x.percent - p).abs() < 1e-9));
            t.push(vec![
                run.name.clone(),
                num(Some(p), 0),
                acc(s.map(|r| r.test.separate).or(a.and_then(|x| x.separate))),
                acc(s.map(|r| r.test.removed).or(a.and_then(|x| x.removed))),
                acc(a.and_then(|x| x.recovered_freeze)),
                acc(a.and_then(|x| x.recovered_unfreeze)),
                NA.to_string(),
            ]);
        }
        if let Some((samples, a_t)) = attack.and_then(|a| a.from_scratch) {
            t.push(vec![
                run.name.clone(),
                match samples {
                    Some(n) => format!("from scratch, {} samples", count(Some(n))),
                    None => "from scratch".to_string(),
                },
                NA.into(),
                NA.into(),
                NA.into(),
                NA.into(),
                acc(Some(a_t)),
            ]);
        }
        missing_note(
            &mut t,
            run,
            &run.attack,
            &run.pipeline_command(),
            Some("attack"),
        );
        if run.architecture() != "lenet5" {
            missing_note(&mut t, run, &run.sweep, &run.select_command("sweep"), None);
        }
    }
    t
}
