//! `spnn naive`: the naive split network (no cryptography, `privdnn_spnn::naive`) with the same
//! settings as the SPNN roles, in one process, into `results/<run>/baselines/spnn/naive/`
//! `metrics.json`: per-epoch records (test accuracy, loss, seconds, holders' and server's
//! compute), seconds per epoch, encoded and analytic bytes per step and link.

use anyhow::{Context, Result, bail};
use privdnn_artifacts::write_json_atomic;
use privdnn_spnn::LinkBytes;
use privdnn_spnn::naive::{NAIVE_ROUNDS_PER_STEP, NaiveOutcome, NaiveRun};
use serde_json::{Value, json};

use crate::spnn_roles::SpnnArgs;

/// The file `spnn report` reads, under `baselines/spnn/naive/`.
pub const NAIVE_METRICS: &str = "metrics.json";

/// `spnn naive`.
pub fn naive(args: &SpnnArgs) -> Result<()> {
    if args.noise != 0.0 {
        bail!("the naive split has no SGLD noise: run `spnn naive` without --noise");
    }
    let (setup, train, test) = args.setup("naive")?;
    let settings = setup.settings.clone();
    let mut run = NaiveRun::new(setup.task.clone(), settings.clone())
        .context("setting up the naive split")?;
    let out = run
        .train(&train, &test)
        .context("training the naive split")?;
    for r in &out.history {
        eprintln!(
            "naive: epoch {}: {:.2} % test, loss {:.4}, {:.1} s",
            r.epoch, r.test_accuracy, r.train_loss, r.seconds
        );
    }
    let dir = args.spnn_dir()?.join("naive");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(NAIVE_METRICS);
    write_json_atomic(&path, &metrics(&settings, train.len(), test.len(), &out)?)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// `bytes` divided by the steps, link by link.
fn per_step(bytes: &LinkBytes, steps: u64) -> Result<Value> {
    let mut v = serde_json::to_value(bytes)?;
    if let Some(map) = v.as_object_mut() {
        for x in map.values_mut() {
            *x = json!(x.as_f64().unwrap_or(0.0) / steps.max(1) as f64);
        }
    }
    Ok(v)
}

/// The run's `metrics.json`.
fn metrics(
    settings: &privdnn_spnn::Settings,
    train: usize,
    test: usize,
    out: &NaiveOutcome,
) -> Result<Value> {
    let k = out.history.len().max(1) as f64;
    let mean =
        |f: fn(&privdnn_spnn::naive::NaiveEpoch) -> f64| out.history.iter().map(f).sum::<f64>() / k;
    Ok(json!({
        "system": "naive_split",
        "label": "naive split network, no cryptography",
        "design": "SPNN's vertical split without cryptography: each holder keeps its own conv1 in the clear (both from SPNN's initial conv1) and applies it to its own columns (the other holder's are zeros); holder A adds the bias; the server adds z_A + z_B and trains the middle; holder B keeps the last layer, the loss and the labels; each holder updates its own weights with δ and its own columns. Fixed-point ring as SPNN (plain arithmetic-shift truncation), one process; bytes are the encoded sizes of the messages the roles would send.",
        "settings": serde_json::to_value(settings)?,
        "train_images": train,
        "test_images": test,
        "steps": out.steps,
        "rounds_per_step": NAIVE_ROUNDS_PER_STEP,
        "test_accuracy": out.history.last().map(|r| r.test_accuracy),
        "seconds_per_epoch": mean(|r| r.seconds),
        "holder_seconds_per_epoch": mean(|r| r.holder_seconds),
        "server_seconds_per_epoch": mean(|r| r.server_seconds),
        "bytes_per_step": per_step(&out.bytes, out.steps)?,
        "analytic_bytes_per_step": per_step(&out.analytic, out.steps)?,
        "epochs": serde_json::to_value(&out.history)?,
    }))
}
