//! The per-epoch accuracy figure of split training (`spnn_accuracy_<run>`): test accuracy after
//! each epoch of every variant of one run (plaintext, SPNN, SPNN + noise, naive split).

use std::path::Path;

use super::table::{accuracy_at, epoch_numbers};
use super::{TrainingRun, VARIANTS};
use crate::error::AnalyzeError;
use crate::figures::{FigureLog, draw};
use crate::plot::{Chart, Legend, Series, Style};

/// The series of one run: one line per variant that has epochs.
fn series(run: &TrainingRun) -> Vec<Series> {
    let Some(m) = run.metrics.get() else {
        return Vec::new();
    };
    VARIANTS
        .iter()
        .enumerate()
        .filter_map(|(color, (name, label))| {
            let v = m.variant(name)?;
            let points: Vec<(f64, f64)> = epoch_numbers(&[Some(v)])
                .into_iter()
                .filter_map(|e| Some((e as f64, accuracy_at(v, e)?)))
                .collect();
            (!points.is_empty()).then(|| Series::new(*label, points, color, Style::Line))
        })
        .collect()
}

/// Draws `spnn_accuracy_<run>` for every run with epochs; the others are skipped with a note.
pub fn accuracy(runs: &[TrainingRun], dir: &Path, log: &mut FigureLog) -> Result<(), AnalyzeError> {
    for run in runs {
        let series = series(run);
        let stem = format!("spnn_accuracy_{}", run.name);
        if series.is_empty() {
            log.skip(format!(
                "{stem}: no per-epoch accuracy yet: {}",
                run.metrics
                    .problem(&run.metrics_command())
                    .unwrap_or_else(|| "the file has no `epochs`".into())
            ));
            continue;
        }
        draw(
            &Chart {
                title: format!(
                    "Split training (SPNN, as reconstructed) — {}: test accuracy per epoch",
                    run.name
                ),
                x_label: "epoch".into(),
                y_label: "test accuracy (%)".into(),
                series,
                y_range: None,
                legend: Legend::LowerRight,
            },
            dir,
            &stem,
            format!(
                "test accuracy per epoch of plaintext, SPNN, SPNN + noise and naive split training on `{}`",
                run.name
            ),
            log,
        )?;
    }
    Ok(())
}
