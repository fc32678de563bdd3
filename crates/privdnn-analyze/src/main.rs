//! `privdnn-analyze`: regenerates every table and figure from `results/` (what `cargo xtask
//! tables` runs). Exits non-zero, naming the files, when some input was unreadable; everything
//! that could be made is written first.

use std::path::PathBuf;

use clap::Parser;

/// Regenerate the tables (Markdown + CSV) and figures (SVG + PNG) from results/.
#[derive(Parser, Debug)]
#[command(name = "privdnn-analyze", version, about)]
struct Cli {
    /// The results folder.
    #[arg(long, default_value = "results")]
    results: PathBuf,
    /// Output folder of the tables (default: <results>/tables).
    #[arg(long)]
    tables: Option<PathBuf>,
    /// Output folder of the figures (default: <results>/figures).
    #[arg(long)]
    figures: Option<PathBuf>,
    /// Tables only.
    #[arg(long)]
    no_figures: bool,
    /// Also copy the side-by-side table, Table 1 and the main figures here (e.g. docs/results).
    #[arg(long)]
    publish: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let started = std::time::Instant::now();
    let mut options = privdnn_analyze::Options::new(cli.results);
    if let Some(t) = cli.tables {
        options.tables = t;
    }
    if let Some(f) = cli.figures {
        options.figures = f;
    }
    options.draw = !cli.no_figures;
    options.publish = cli.publish;
    let report = privdnn_analyze::run(&options)?;
    println!(
        "{} tables in {}, {} figures in {} ({} skipped, see {}), {:.1}s",
        report.tables.len(),
        options.tables.display(),
        report.figures.made.len(),
        options.figures.display(),
        report.figures.skipped.len(),
        options.tables.join("README.md").display(),
        started.elapsed().as_secs_f64()
    );
    report.into_result()?;
    Ok(())
}
