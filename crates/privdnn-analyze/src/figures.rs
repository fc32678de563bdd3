//! Builds the figures from the loaded runs: Fig. 4 (A_s and A_r versus rank over the largest
//! exhaustive group), Fig. 5 (share of HE operations versus selection size, analytic), Fig. 7
//! (accuracies and HE time versus selection percent, with the reference's curves dashed), the
//! attack-sample-count curves. A figure whose data does not exist yet is skipped with a note
//! saying what is missing and which command produces it.

use std::path::Path;

use crate::attack::RecoveryPoint;
use crate::error::AnalyzeError;
use crate::ops::{Arch, Encrypted, Network, Shape};
use crate::plot::{Chart, Legend, Series, Style, render};
use crate::reference::{self, Curve, PERCENTS};
use crate::runs::{RefDataset, Run};
use crate::stages::read_group_points;
use crate::tables::op_models;

/// What was drawn and what was skipped.
#[derive(Debug, Default)]
pub struct FigureLog {
    /// (file stem, description) of every figure written (as `.svg` and `.png`).
    pub made: Vec<(String, String)>,
    /// Why a figure was not drawn.
    pub skipped: Vec<String>,
}

impl FigureLog {
    pub(crate) fn skip(&mut self, note: String) {
        log::info!("figure skipped: {note}");
        self.skipped.push(note);
    }
}

/// Most points drawn per series of Fig. 4 (the reference sampled 100).
const MAX_POINTS: usize = 1500;

/// Draws every figure into `dir`; errors of one figure are collected and the others still drawn.
pub fn all(runs: &[Run], dir: &Path, log: &mut FigureLog, problems: &mut Vec<AnalyzeError>) {
    let mut attempt = |r: Result<(), AnalyzeError>| {
        if let Err(e) = r {
            log::error!("{e}");
            problems.push(e);
        }
    };
    for run in runs {
        attempt(fig4(run, dir, log));
    }
    attempt(fig5(runs, dir, log));
    for run in runs {
        attempt(fig7(run, dir, log));
    }
    attempt(attack_samples(runs, dir, log));
    attempt(inversion_grids(runs, dir, log));
    attempt(crate::systems::figure::costs(runs, dir, log));
}

/// The attack stage draws its input-recovery grids itself (`attack/inversion.png`: originals,
/// then the reconstructions from unblinded, scaled (fitted as is and scale-invariantly) and
/// blinded features); they are copied here as `inversion_<run>.png` (PNG only, so they are
/// listed with the skipped SVG figures).
fn inversion_grids(runs: &[Run], dir: &Path, log: &mut FigureLog) -> Result<(), AnalyzeError> {
    let mut any = false;
    for run in runs {
        let grid = run.dir.join("attack").join("inversion.png");
        if grid.exists() {
            let to = dir.join(format!("inversion_{}.png", run.name));
            std::fs::copy(&grid, &to).map_err(|e| AnalyzeError::io(&to, e))?;
            log.skip(format!(
                "inversion_{}: PNG only (copied from {}; rows: originals, unblinded, scaled, scaled with a scale-invariant attacker, blinded)",
                run.name,
                grid.display()
            ));
            any = true;
        }
    }
    if !any {
        log.skip("input-recovery picture grid: no run has `attack/inversion.png` (attack stage of `cargo xtask pipeline <name>`, spec §4.3)".into());
    }
    Ok(())
}

/// Renders `chart` as `<dir>/<stem>.{svg,png}` and records it.
pub(crate) fn draw(
    chart: &Chart,
    dir: &Path,
    stem: &str,
    what: String,
    log: &mut FigureLog,
) -> Result<(), AnalyzeError> {
    render(chart, &dir.join(stem))?;
    log.made.push((stem.to_string(), what));
    Ok(())
}

/// Fig. 4: A_s and A_r of every selection of the largest exhaustive group, best point first.
pub fn fig4(run: &Run, dir: &Path, log: &mut FigureLog) -> Result<(), AnalyzeError> {
    let Some(groups) = run.exhaustive.get() else {
        if run.architecture() == "lenet5" && run.is_canonical() {
            log.skip(format!(
                "fig4_{}: {}",
                run.name,
                run.exhaustive
                    .problem(&run.select_command("exhaustive"))
                    .unwrap_or_default()
            ));
        }
        return Ok(());
    };
    let Some(group) = groups.iter().max_by_key(|g| g.selections) else {
        return Ok(());
    };
    let csv = run.dir.join("select/exhaustive_points.csv");
    if !csv.is_file() {
        log.skip(format!(
            "fig4_{}: missing `{}`: run `{}`",
            run.name,
            csv.display(),
            run.select_command("exhaustive")
        ));
        return Ok(());
    }
    let points = read_group_points(&csv, group.sizes)?;
    if points.is_empty() {
        return Err(AnalyzeError::malformed(
            &csv,
            format!(
                "no rows of group {:?}, which exhaustive.json lists",
                group.sizes
            ),
        ));
    }
    let step = points.len().div_ceil(MAX_POINTS).max(1);
    let mut indices: Vec<usize> = (0..points.len()).step_by(step).collect();
    if indices.last() != Some(&(points.len() - 1)) {
        indices.push(points.len() - 1);
    }
    let sample = |f: &dyn Fn(usize) -> f64| -> Vec<(f64, f64)> {
        indices.iter().map(|&i| ((i + 1) as f64, f(i))).collect()
    };
    let mut series = vec![
        Series::new(
            "A_s (separate)",
            sample(&|i| points[i].separate),
            0,
            Style::Dots,
        ),
        Series::new(
            "A_r (removed)",
            sample(&|i| points[i].removed),
            1,
            Style::Dots,
        ),
    ];
    if let Some(a_o) = run.select.get().map(|s| s.validation.original) {
        series.push(Series::new(
            format!("A_o {a_o:.2}"),
            vec![(1.0, a_o), (points.len() as f64, a_o)],
            6,
            Style::Dashed,
        ));
    }
    let chart = Chart {
        title: format!(
            "Fig. 4 — {}: group ({}, {}), {} selections by rank",
            run.name,
            group.sizes[0],
            group.sizes[1],
            points.len()
        ),
        x_label: "rank by point (1 = best)".into(),
        y_label: "accuracy on the selection split (%)".into(),
        series,
        y_range: None,
        legend: Legend::LowerLeft,
    };
    draw(
        &chart,
        dir,
        &format!("fig4_{}", run.name),
        format!(
            "A_s and A_r versus rank over the exhaustive group ({}, {}) of `{}` ({} of {} points drawn)",
            group.sizes[0],
            group.sizes[1],
            run.name,
            indices.len(),
            points.len()
        ),
        log,
    )
}

/// Fig. 5: share of multiplications under HE versus selection size, for the reference's five
/// models at their paper shapes and for each distinct model shape among the runs.
pub fn fig5(runs: &[Run], dir: &Path, log: &mut FigureLog) -> Result<(), AnalyzeError> {
    let percents: Vec<f64> = (1..=20).map(|i| i as f64 * 5.0).collect();
    let models = op_models(runs);
    fig5_paper_shapes(&models, &percents, dir, log)?;
    for (label, names, shape, group) in models.iter() {
        let Some(first) = names.first() else { continue };
        let net = Network::new(shape);
        let (series, x_label) = if shape.arch == Arch::Lenet5 {
            (
                lenet_group_series(&net, *group),
                "|S2| (conv2 filters selected)".to_string(),
            )
        } else {
            (
                percent_series(&net, &percents),
                "filters selected in conv1 and conv2 (%)".to_string(),
            )
        };
        draw(
            &Chart {
                title: format!("Fig. 5 — {label}: work under HE"),
                x_label,
                y_label: "share of the whole network (%)".into(),
                series,
                y_range: None,
                legend: Legend::UpperLeft,
            },
            dir,
            &format!("fig5_{first}"),
            format!(
                "HE share of multiplications, additions and neurons for {label} (runs: {})",
                names.join(", ")
            ),
            log,
        )?;
    }
    Ok(())
}

/// Fig. 5 proper: % multiplications under HE versus percent for the reference's five models.
fn fig5_paper_shapes(
    models: &[(String, Vec<String>, Shape, [usize; 2])],
    percents: &[f64],
    dir: &Path,
    log: &mut FigureLog,
) -> Result<(), AnalyzeError> {
    let paper: Vec<Series> = models
        .iter()
        .take(RefDataset::ALL.len())
        .enumerate()
        .map(|(i, (label, _, shape, _))| {
            let net = Network::new(shape);
            let points = percents
                .iter()
                .map(|&p| {
                    let [a, b] = net.percent_sizes(p);
                    (p, net.encrypted(a, b).mult_percent)
                })
                .collect();
            Series::new(label.replace(" (paper shape)", ""), points, i, Style::Line)
        })
        .collect();
    draw(
        &Chart {
            title: "Fig. 5 — multiplications under HE vs selection (paper shapes)".into(),
            x_label: "filters selected in conv1 and conv2 (%)".into(),
            y_label: "HE multiplications / all multiplications (%)".into(),
            series: paper,
            y_range: None,
            legend: Legend::UpperLeft,
        },
        dir,
        "fig5_he_operations",
        "share of the network's multiplications under HE versus selection percent, the reference's five models at paper shape".into(),
        log,
    )
}

/// LeNet5: % mults and % neurons versus |S2|, one pair of curves per |S1| up to `group[0]`.
fn lenet_group_series(net: &Network, group: [usize; 2]) -> Vec<Series> {
    let mut s = Vec::new();
    for a in 1..=(group[0] as u64).min(net.channels[0]) {
        let points: Vec<(u64, _)> = (a..=net.channels[1])
            .map(|b| (b, net.encrypted(a, b)))
            .collect();
        s.push(Series::new(
            format!("% mults, |S1| = {a}"),
            points
                .iter()
                .map(|(b, e)| (*b as f64, e.mult_percent))
                .collect(),
            (a as usize - 1) * 2,
            Style::Line,
        ));
        s.push(Series::new(
            format!("% neurons, |S1| = {a}"),
            points
                .iter()
                .map(|(b, e)| (*b as f64, e.neuron_percent))
                .collect(),
            (a as usize - 1) * 2 + 1,
            Style::Dashed,
        ));
    }
    s
}

/// Large models: % mults, adds, ct×ct mults and neurons versus selection percent.
fn percent_series(net: &Network, percents: &[f64]) -> Vec<Series> {
    let at = |f: &dyn Fn(&Encrypted) -> f64| -> Vec<(f64, f64)> {
        percents
            .iter()
            .map(|&p| {
                let [a, b] = net.percent_sizes(p);
                (p, f(&net.encrypted(a, b)))
            })
            .collect()
    };
    let total = net.total.mults as f64;
    vec![
        Series::new("% mults", at(&|e| e.mult_percent), 0, Style::Line),
        Series::new("% adds", at(&|e| e.add_percent), 1, Style::Line),
        Series::new(
            "% ct×ct mults",
            at(&|e| 100.0 * e.ct_ct_mults as f64 / total),
            2,
            Style::Line,
        ),
        Series::new("% neurons", at(&|e| e.neuron_percent), 3, Style::Dashed),
    ]
}

fn reference_series(
    d: Option<RefDataset>,
    curve: Curve,
    color: usize,
    scale: f64,
) -> Option<Series> {
    let d = d?;
    let values = reference::curve(d, curve)?;
    let name = if curve == Curve::HeSeconds {
        "s per image: test-batch s / batch size"
    } else {
        curve.name()
    };
    Some(Series::new(
        format!("{name} (reference {})", d.name()),
        PERCENTS
            .iter()
            .zip(values)
            .map(|(p, v)| (*p, v * scale))
            .collect(),
        color,
        Style::Dashed,
    ))
}

/// Fig. 7: A_s, A_r, A_rec versus selection percent, and HE seconds per image versus percent.
pub fn fig7(run: &Run, dir: &Path, log: &mut FigureLog) -> Result<(), AnalyzeError> {
    if run.architecture() == "lenet5" {
        return Ok(()); // LeNet5 sweeps are (|S1|, |S2|) groups: Tables 2–5 and Fig. 4
    }
    let d = run.reference().map(|(d, _)| d);
    fig7_accuracy(run, d, dir, log)?;
    fig7_he_time(run, d, dir, log)
}

/// The measured accuracy curves of Fig. 7: A_s / A_r from the select sweep, A_rec from the attack.
fn accuracy_series(run: &Run) -> Vec<Series> {
    let mut sweep: Vec<(f64, f64, f64)> = run
        .sweep
        .get()
        .map(|s| {
            s.iter()
                .filter(|r| r.percent > 0.0)
                .map(|r| (r.percent, r.test.separate, r.test.removed))
                .collect()
        })
        .unwrap_or_default();
    sweep.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut series = Vec::new();
    if !sweep.is_empty() {
        series.push(Series::new(
            "A_s",
            sweep.iter().map(|x| (x.0, x.1)).collect(),
            0,
            Style::Line,
        ));
        series.push(Series::new(
            "A_r",
            sweep.iter().map(|x| (x.0, x.2)).collect(),
            1,
            Style::Line,
        ));
    }
    if let Some(a) = run.attack.get() {
        type Get = fn(&RecoveryPoint) -> Option<f64>;
        let curves: [(&str, usize, Get); 2] = [
            ("A_rec (unfreeze)", 2, |p| p.recovered_unfreeze),
            ("A_rec (freeze)", 3, |p| p.recovered_freeze),
        ];
        for (label, color, get) in curves {
            let points: Vec<(f64, f64)> = a
                .points
                .iter()
                .filter_map(|p| get(p).map(|v| (p.percent, v)))
                .collect();
            if !points.is_empty() {
                series.push(Series::new(label, points, color, Style::Line));
            }
        }
    }
    series
}

/// Fig. 7, accuracy versus selection percent (the reference's curves dashed).
fn fig7_accuracy(
    run: &Run,
    d: Option<RefDataset>,
    dir: &Path,
    log: &mut FigureLog,
) -> Result<(), AnalyzeError> {
    let mut series = accuracy_series(run);
    if series.is_empty() {
        if run.is_canonical() {
            log.skip(format!(
                "fig7_{}_accuracy: no percent points: run `{}` (A_s / A_r) and the attack stage of `{}` (A_rec)",
                run.name,
                run.select_command("sweep"),
                run.pipeline_command()
            ));
        }
        return Ok(());
    }
    for (curve, color) in [
        (Curve::Separate, 0),
        (Curve::Removed, 1),
        (Curve::RecoveredUnfreeze, 2),
        (Curve::RecoveredFreeze, 3),
    ] {
        series.extend(reference_series(d, curve, color, 1.0));
    }
    draw(
        &Chart {
            title: format!("Fig. 7 — {}: accuracy vs selection", run.name),
            x_label: "filters selected in conv1 and conv2 (%)".into(),
            y_label: "test accuracy (%)".into(),
            series,
            y_range: Some((0.0, 100.0)),
            legend: Legend::LowerLeft,
        },
        dir,
        &format!("fig7_{}_accuracy", run.name),
        format!(
            "A_s, A_r, A_rec versus selection percent for `{}` (dashed: reference)",
            run.name
        ),
        log,
    )
}

/// Fig. 7, HE seconds per image versus selection percent (separate-mode infer reports).
fn fig7_he_time(
    run: &Run,
    d: Option<RefDataset>,
    dir: &Path,
    log: &mut FigureLog,
) -> Result<(), AnalyzeError> {
    let mut times: Vec<(f64, f64)> = run
        .infer
        .get()
        .map(|m| {
            m.reports
                .iter()
                .filter(|r| r.mode == "separate")
                .filter_map(|r| Some((r.percent?, r.per_image_s?)))
                .collect()
        })
        .unwrap_or_default();
    times.sort_by(|a, b| a.0.total_cmp(&b.0));
    if times.len() < 2 {
        if run.is_canonical() {
            log.skip(format!(
                "fig7_{}_he_time: fewer than two separate-mode infer reports with a `percent`: {}",
                run.name,
                run.infer
                    .stage_problem(&run.pipeline_command(), "infer")
                    .unwrap_or_else(|| "the infer stage records one selection per run".into())
            ));
        }
        return Ok(());
    }
    let mut series = vec![Series::new("ours, s per image", times, 0, Style::Line)];
    if let Some(d) = d {
        series.extend(reference_series(
            Some(d),
            Curve::HeSeconds,
            1,
            1.0 / reference::he_batch(d),
        ));
    }
    draw(
        &Chart {
            title: format!("Fig. 7 — {}: HE time vs selection", run.name),
            x_label: "filters selected in conv1 and conv2 (%)".into(),
            y_label: "seconds per image".into(),
            series,
            y_range: None,
            legend: Legend::UpperLeft,
        },
        dir,
        &format!("fig7_{}_he_time", run.name),
        format!(
            "HE seconds per image versus selection percent for `{}`",
            run.name
        ),
        log,
    )
}

/// Accuracy after the attack versus the number of samples the attacker has.
pub fn attack_samples(runs: &[Run], dir: &Path, log: &mut FigureLog) -> Result<(), AnalyzeError> {
    let mut any = false;
    for run in runs {
        let Some(a) = run.attack.get() else { continue };
        if a.sample_curve.is_empty() {
            continue;
        }
        any = true;
        let curve = |f: &dyn Fn(&crate::attack::SamplePoint) -> Option<f64>| -> Vec<(f64, f64)> {
            a.sample_curve
                .iter()
                .filter_map(|p| f(p).map(|v| (p.samples, v)))
                .collect()
        };
        let series: Vec<Series> = [
            Series::new(
                "A_rec (unfreeze)",
                curve(&|p| p.recovered_unfreeze),
                2,
                Style::Line,
            ),
            Series::new(
                "A_rec (freeze)",
                curve(&|p| p.recovered_freeze),
                3,
                Style::Line,
            ),
            Series::new(
                "A_t (from scratch)",
                curve(&|p| p.from_scratch),
                4,
                Style::Line,
            ),
        ]
        .into_iter()
        .filter(|s| !s.points.is_empty())
        .collect();
        draw(
            &Chart {
                title: format!("Attack accuracy vs samples — {}", run.name),
                x_label: "labelled samples available to the attacker".into(),
                y_label: "test accuracy (%)".into(),
                series,
                y_range: Some((0.0, 100.0)),
                legend: Legend::LowerRight,
            },
            dir,
            &format!("attack_samples_{}", run.name),
            format!("attack accuracy versus sample count for `{}`", run.name),
            log,
        )?;
    }
    if !any {
        log.skip("attack-sample-count curves: no run has an `attack/metrics.json` with a `sample_curve` (attack stage of `cargo xtask pipeline <name>`)".into());
    }
    Ok(())
}
