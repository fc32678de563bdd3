//! The cost figure of the four-system comparison (`systems_cost`): modelled WAN and LAN latency
//! per image of every measured system on each model, on a log scale.

use std::path::Path;

use super::{LAN, Link, MODELS, System, WAN, measured};
use crate::error::AnalyzeError;
use crate::figures::{FigureLog, draw};
use crate::plot::{Chart, Legend, Series, Style};
use crate::runs::Run;

/// (system number, log10 ms) of every system measured on the run `folder`.
fn points(runs: &[Run], folder: &str, link: Link) -> Vec<(f64, f64)> {
    let Some(run) = runs.iter().find(|r| r.name == folder) else {
        return Vec::new();
    };
    System::ALL
        .iter()
        .enumerate()
        .filter_map(|(i, system)| {
            let seconds = measured(*system, run)?.modelled_latency(link)?;
            (seconds > 0.0).then(|| ((i + 1) as f64, (1e3 * seconds).log10()))
        })
        .collect()
}

/// Draws `systems_cost` (skipped, with a note, while no system has a modelled latency).
pub fn costs(runs: &[Run], dir: &Path, log: &mut FigureLog) -> Result<(), AnalyzeError> {
    let mut series = Vec::new();
    for (i, (label, folder)) in MODELS.into_iter().enumerate() {
        for (k, link) in [WAN, LAN].into_iter().enumerate() {
            let p = points(runs, folder, link);
            if !p.is_empty() {
                series.push(Series::new(
                    format!("{label}, {}", link.name),
                    p,
                    2 * i + k,
                    Style::Line,
                ));
            }
        }
    }
    if series.is_empty() {
        log.skip(
            "systems_cost: no system has a modelled latency yet (see systems_comparison)".into(),
        );
        return Ok(());
    }
    let systems: Vec<String> = System::ALL
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{} {}", i + 1, s.short_name()))
        .collect();
    draw(
        &Chart {
            title: "Four systems — modelled latency per image (LAN and WAN)".into(),
            x_label: format!("system: {}", systems.join(", ")),
            y_label: "log10 modelled latency (ms)".into(),
            series,
            y_range: None,
            legend: Legend::UpperLeft,
        },
        dir,
        "systems_cost",
        "modelled LAN / WAN latency per image of every measured system and model (rounds × RTT + bytes ÷ bandwidth + CPU; log10 ms)".into(),
        log,
    )
}
