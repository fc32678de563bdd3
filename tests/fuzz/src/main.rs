//! `privdnn-fuzz`: fuzzes every bounded decoder for a while (`cargo xtask fuzz --minutes N`)
//! and exits non-zero when a decoder panicked or allocated beyond its bound.

use std::time::Duration;

use anyhow::{Result, bail};
use clap::Parser;

/// Fuzz the frame reader, codec, envelope, compact ciphertext, packed-slot and wire decoders.
#[derive(Parser, Debug)]
#[command(name = "privdnn-fuzz", about)]
struct Args {
    /// Minutes to run (default 1).
    #[arg(long)]
    minutes: Option<f64>,
    /// Stop after this many executions instead (or as well: whichever comes first).
    #[arg(long)]
    iterations: Option<u64>,
    /// Seed of the input generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Worker threads (default: available cores).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let minutes = match (args.minutes, args.iterations) {
        (None, None) => Some(1.0),
        (m, _) => m,
    };
    let config = privdnn_fuzz::Config {
        duration: minutes.map(|m| Duration::from_secs_f64(m * 60.0)),
        iterations: args.iterations,
        seed: args.seed,
        threads: args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
    };
    eprintln!(
        "privdnn-fuzz: {} thread(s), seed {}, {}",
        config.threads,
        config.seed,
        match (minutes, args.iterations) {
            (Some(m), _) => format!("{m} minute(s)"),
            (None, Some(n)) => format!("{n} executions"),
            (None, None) => String::new(),
        }
    );
    let report = privdnn_fuzz::run(&config)?;
    print!("{}", report.render());
    if report.panics() > 0 || report.over_limit() > 0 {
        bail!(
            "{} panics and {} allocations beyond the limits",
            report.panics(),
            report.over_limit()
        );
    }
    Ok(())
}
