//! Result analysis: regenerates the paper's tables (Markdown + CSV under `results/tables/`) and
//! figures (SVG + PNG under `results/figures/`) from what the pipeline stages wrote under
//! `results/`, in seconds and without building burn or fhe (this crate depends on no other
//! privdnn crate; it parses the stage files with its own types).
//!
//! Inputs per run folder `results/<run>/` (a folder with `config.toml`): `train/metrics.json`,
//! `select/{metrics.json, sweep.json, exhaustive.json, exhaustive_points.csv}`,
//! `infer/metrics.json` and `attack/metrics.json` (provisional schemas: [`infer`], [`attack`]),
//! and the baseline systems' files of the comparison table ([`systems`]); split training's
//! `baselines/spnn/metrics.json` and `attack/spnn_leakage.json` feed the training table
//! ([`systems::training`], read from any run folder that has them, `config.toml` or not).
//! A missing file is not an error: the tables say what is missing and which command makes it.
//! An unreadable file is named in the error the command ends with, after everything else was
//! written.

pub mod attack;
pub mod error;
pub mod figures;
pub mod infer;
pub mod json;
pub mod ops;
pub mod plot;
pub mod reference;
pub mod runs;
pub mod security;
pub mod stages;
pub mod systems;
pub mod table;
pub mod tables;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use error::AnalyzeError;

use crate::figures::FigureLog;
use crate::table::{Table, write_text};

/// Where to read and write.
#[derive(Clone, Debug)]
pub struct Options {
    /// The results folder.
    pub results: PathBuf,
    /// Output folder of the tables.
    pub tables: PathBuf,
    /// Output folder of the figures.
    pub figures: PathBuf,
    /// Draw figures (tables only when false).
    pub draw: bool,
    /// Also copy the main figures and tables into this folder (e.g. `docs/results`, which git
    /// tracks, for the README).
    pub publish: Option<PathBuf>,
}

impl Options {
    /// Defaults for a results folder: `<results>/tables`, `<results>/figures`.
    pub fn new(results: impl Into<PathBuf>) -> Options {
        let results = results.into();
        Options {
            tables: results.join("tables"),
            figures: results.join("figures"),
            results,
            draw: true,
            publish: None,
        }
    }
}

/// What a run of the analysis did.
#[derive(Debug, Default)]
pub struct Report {
    /// Run folders found.
    pub runs: Vec<String>,
    /// Tables written (their Markdown files).
    pub tables: Vec<PathBuf>,
    /// Figures drawn and skipped.
    pub figures: FigureLog,
    /// Inputs that could not be read (everything else was still written).
    pub problems: Vec<AnalyzeError>,
}

impl Report {
    /// `Err` listing the unreadable inputs, if any.
    pub fn into_result(self) -> Result<Report, AnalyzeError> {
        if self.problems.is_empty() {
            Ok(self)
        } else {
            Err(AnalyzeError::InvalidInputs(self.problems))
        }
    }
}

fn create_dir(dir: &Path) -> Result<(), AnalyzeError> {
    std::fs::create_dir_all(dir).map_err(|e| AnalyzeError::io(dir, e))
}

/// Reads every run under `options.results`, writes every table and figure and an index
/// (`<tables>/README.md`).
pub fn run(options: &Options) -> Result<Report, AnalyzeError> {
    let mut report = Report::default();
    let runs = runs::discover(&options.results, &mut report.problems)?;
    report.runs = runs.iter().map(|r| r.name.clone()).collect();
    log::info!(
        "{} run(s) under {}: {}",
        runs.len(),
        options.results.display(),
        report.runs.join(", ")
    );
    let training = systems::training::discover(&options.results, &mut report.problems)?;
    create_dir(&options.tables)?;
    let mut tables = tables::all(&runs);
    tables.extend(systems::training::tables(&training));
    for t in &tables {
        let [md, _] = t.write(&options.tables)?;
        report.tables.push(md);
    }
    if options.draw {
        create_dir(&options.figures)?;
        figures::all(
            &runs,
            &options.figures,
            &mut report.figures,
            &mut report.problems,
        );
        if let Err(e) =
            systems::training::figure::accuracy(&training, &options.figures, &mut report.figures)
        {
            log::error!("{e}");
            report.problems.push(e);
        }
    }
    write_text(
        &options.tables.join("README.md"),
        &index(options, &report, &tables),
    )?;
    if let Some(dir) = &options.publish {
        publish(options, &report, dir)?;
    }
    Ok(report)
}

fn relative(from: &Path, to: &Path) -> String {
    // both folders usually sit in the same parent (results/tables, results/figures)
    match (from.parent(), to.parent(), to.file_name()) {
        (Some(a), Some(b), Some(name)) if a == b => {
            format!("../{}", name.to_string_lossy())
        }
        _ => to.display().to_string(),
    }
}

fn index(options: &Options, report: &Report, tables: &[Table]) -> String {
    let mut out = String::from("# Tables and figures\n\n");
    out.push_str(&format!(
        "Regenerated by `cargo xtask tables` (crate `privdnn-analyze`) from {} run folder(s) under `{}`: {}.\n\n## Tables\n\n",
        report.runs.len(),
        options.results.display(),
        if report.runs.is_empty() { "none".to_string() } else { report.runs.join(", ") }
    ));
    for t in tables {
        out.push_str(&format!(
            "- [{}]({}.md) ([csv]({}.csv)): {} row(s){}\n",
            t.title,
            t.id,
            t.id,
            t.rows.len(),
            if t.notes.iter().any(|n| n.contains("missing")) {
                ", some inputs missing (see its notes)"
            } else {
                ""
            }
        ));
    }
    if options.draw {
        let figs = relative(&options.tables, &options.figures);
        out.push_str("\n## Figures\n\n");
        for (stem, what) in &report.figures.made {
            out.push_str(&format!(
                "- [{stem}]({figs}/{stem}.svg) ([png]({figs}/{stem}.png)): {what}\n"
            ));
        }
        if !report.figures.skipped.is_empty() {
            out.push_str("\n## Not drawn\n\n");
            for s in &report.figures.skipped {
                out.push_str(&format!("- {s}\n"));
            }
        }
    }
    if !report.problems.is_empty() {
        out.push_str("\n## Unreadable inputs\n\n");
        for p in &report.problems {
            out.push_str(&format!("- {}\n", p.to_string().replace('\n', " ")));
        }
    }
    out
}

/// Copies the side-by-side table, Table 1, the four-system comparison, the split-training table
/// and the main figures (PNG) into `dir`.
fn publish(options: &Options, report: &Report, dir: &Path) -> Result<(), AnalyzeError> {
    create_dir(dir)?;
    let mut files: Vec<PathBuf> = [
        "reference_comparison.md",
        "table1_accuracy.md",
        "systems_comparison.md",
        "spnn_training.md",
    ]
    .iter()
    .map(|f| options.tables.join(f))
    .collect();
    for (stem, _) in &report.figures.made {
        if stem.starts_with("fig4_")
            || stem == "fig5_he_operations"
            || stem.starts_with("fig7_")
            || stem == "systems_cost"
            || stem.starts_with("spnn_accuracy_")
        {
            files.push(options.figures.join(format!("{stem}.png")));
        }
    }
    for f in files {
        let Some(name) = f.file_name() else { continue };
        let to = dir.join(name);
        std::fs::copy(&f, &to).map_err(|e| AnalyzeError::io(&to, e))?;
    }
    log::info!("published the main tables and figures to {}", dir.display());
    Ok(())
}
