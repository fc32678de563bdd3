//! `cargo xtask estimate <pipeline> --compare`: the predictions against what the stages
//! recorded in `results/<run>/` (manifests beside train/select/encrypt artifacts: wall seconds
//! and peak memory; `infer/metrics.json`: stage wall time, peak memory, bytes sent;
//! `attack/metrics.json`: its experiments' seconds), printed
//! and written to `results/tables/estimate_<run>.md`. Missing reports show as "–".

use std::path::Path;

use anyhow::Result;
use privdnn_artifacts::{Manifest, RunLayout, manifest_path};
use privdnn_config::{HeMode, ResolvedConfig};

use crate::estimate_stages::StageEstimate;

/// What one stage recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Measured {
    /// Wall seconds.
    pub seconds: Option<f64>,
    /// Peak resident bytes.
    pub peak_bytes: Option<u64>,
    /// Bytes written (files) or sent (infer).
    pub bytes: Option<u64>,
}

fn manifest(artifact: &Path) -> Option<Manifest> {
    let text = std::fs::read_to_string(manifest_path(artifact)).ok()?;
    serde_json::from_str(&text).ok()
}

fn file_bytes(paths: &[std::path::PathBuf]) -> Option<u64> {
    let sizes: Vec<u64> = paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok().map(|m| m.len()))
        .collect();
    (!sizes.is_empty()).then(|| sizes.iter().sum())
}

fn from_manifest(artifact: &Path, files: &[std::path::PathBuf]) -> Measured {
    let m = manifest(artifact);
    Measured {
        seconds: m.as_ref().map(|m| m.wall_seconds),
        peak_bytes: m.as_ref().map(|m| m.peak_rss_bytes).filter(|&b| b > 0),
        bytes: file_bytes(files),
    }
}

fn infer_measured(layout: &RunLayout) -> Measured {
    let path = layout.infer_dir().join("metrics.json");
    let Some(v) = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    else {
        return Measured::default();
    };
    let sent: u64 = v["mode_reports"]
        .as_array()
        .map(|modes| {
            modes
                .iter()
                .map(|m| {
                    m["bytes_user_to_owner"].as_u64().unwrap_or(0)
                        + m["bytes_owner_to_user"].as_u64().unwrap_or(0)
                })
                .sum()
        })
        .unwrap_or(0);
    Measured {
        seconds: v["wall_s"].as_f64(),
        peak_bytes: v["peak_rss_bytes"].as_u64(),
        bytes: Some(sent),
    }
}

/// The attack stage: the seconds its experiments recorded in `attack/metrics.json`, summed (a
/// stage stopped and resumed counts each experiment once; no peak memory is recorded). None
/// until every experiment of `experiments` has finished: a partial sum is no stage time.
fn attack_measured(layout: &RunLayout, experiments: &[String]) -> Measured {
    let path = layout.stage_dir("attack").join("metrics.json");
    let seconds = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| {
            let parts = v.get("seconds")?.as_object()?;
            experiments
                .iter()
                .map(|e| parts.get(e).and_then(serde_json::Value::as_f64))
                .sum::<Option<f64>>()
        });
    Measured {
        seconds,
        ..Measured::default()
    }
}

/// What `stage` of the run at `layout` recorded.
pub fn measured(layout: &RunLayout, cfg: &ResolvedConfig, stage: &str) -> Measured {
    match stage {
        "train" => {
            let files = [
                layout.trained_model(),
                layout.train_checkpoint(),
                layout.train_metrics(),
            ];
            from_manifest(&layout.trained_model(), &files)
        }
        "select" => {
            let dir = layout.stage_dir("select");
            let files = [
                layout.selection(),
                dir.join("selection.json"),
                layout.select_metrics(),
            ];
            from_manifest(&layout.selection(), &files)
        }
        "encrypt" if cfg.pipeline.he.mode == HeMode::UserKeyed => {
            from_manifest(&layout.keyed_model(), &[layout.keyed_model()])
        }
        "encrypt" => {
            let files = [
                layout.encrypted_model(),
                layout.evaluation_keys(),
                layout.owner_secret(),
            ];
            from_manifest(&layout.encrypted_model(), &files)
        }
        "infer" => infer_measured(layout),
        "attack" => attack_measured(layout, &cfg.pipeline.attack.experiments),
        _ => Measured::default(),
    }
}

/// `measured / predicted`, formatted.
pub fn ratio(predicted: f64, measured: Option<f64>) -> String {
    match measured {
        Some(m) if predicted > 0.0 => format!("{:.2}", m / predicted),
        _ => "–".into(),
    }
}

fn opt(v: Option<f64>, scale: f64, digits: usize) -> String {
    v.map_or("–".into(), |v| format!("{:.*}", digits, v / scale))
}

/// The Markdown table of predictions against measurements.
pub fn table(rows: &[(StageEstimate, Measured)]) -> String {
    let mut s = String::from(
        "| stage | predicted s | measured s | measured/predicted | predicted peak MB | measured peak MB | measured/predicted | predicted MB written/sent | measured MB | measured/predicted |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (p, m) in rows {
        let peak = m.peak_bytes.map(|b| b as f64);
        let bytes = m.bytes.map(|b| b as f64);
        s += &format!(
            "| {} | {:.1} | {} | {} | {:.1} | {} | {} | {:.2} | {} | {} |\n",
            p.stage,
            p.seconds,
            opt(m.seconds, 1.0, 1),
            ratio(p.seconds, m.seconds),
            p.peak_bytes as f64 / 1e6,
            opt(peak, 1e6, 1),
            ratio(p.peak_bytes as f64, peak),
            p.bytes as f64 / 1e6,
            opt(bytes, 1e6, 2),
            ratio(p.bytes as f64, bytes),
        );
    }
    s
}

/// Prints the comparison and writes `results/tables/estimate_<run>.md`.
pub fn compare(
    root: &Path,
    run_dir: &Path,
    cfg: &ResolvedConfig,
    predictions: &[StageEstimate],
    load: f64,
) -> Result<()> {
    let layout = RunLayout::new(run_dir);
    let rows: Vec<(StageEstimate, Measured)> = predictions
        .iter()
        .map(|p| (p.clone(), measured(&layout, cfg, p.stage)))
        .collect();
    let run = run_dir
        .file_name()
        .map_or("run".into(), |n| n.to_string_lossy().into_owned());
    let md = format!(
        "# Estimate vs measured: {run}\n\nPredicted for a load average of {load:.1} (other processes) on {} cores; measured from the stages' manifests and `infer/metrics.json` under `{}` (the data stage records no time; the attack stage's time is the sum of its experiments' seconds in `attack/metrics.json` once every experiment has finished, without its peak memory). Regenerate: `cargo xtask estimate {} {}--compare`.\n\n{}",
        std::thread::available_parallelism().map_or(1, usize::from),
        run_dir.strip_prefix(root).unwrap_or(run_dir).display(),
        cfg.pipeline.name,
        if cfg.profile == "default" {
            String::new()
        } else {
            format!("--profile {} ", cfg.profile)
        },
        table(&rows)
    );
    println!("\n{md}");
    let out = root
        .join("results")
        .join("tables")
        .join(format!("estimate_{run}.md"));
    privdnn_artifacts::write_bytes_atomic(&out, md.as_bytes())?;
    println!("wrote {}", out.display());
    Ok(())
}
