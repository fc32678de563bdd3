//! `spnn report`: evaluation outside the protocol. For every SPNN variant present it opens each
//! epoch's model from the three roles' state files (test accuracy per epoch), audits every
//! first-layer forward against the integer shadow, sums each role's time, bytes per link and
//! memory, writes the variant's final `model.bin` (an ordinary trained-model artifact: select,
//! encrypt and infer run on it), and merges everything with the plaintext run into
//! `results/<run>/baselines/spnn/metrics.json`.

use std::path::Path;

use anyhow::{Context, Result};
use privdnn_artifacts::{DatasetSplit, write_artifact, write_json_atomic};
use privdnn_spnn::LinkBytes;
use privdnn_spnn::audit::{audit_epoch, open_model};
use privdnn_spnn::harness::{ROUNDS_PER_STEP, accuracy};
use privdnn_spnn::process::holder::HolderFile;
use privdnn_spnn::process::server::ServerFile;
use privdnn_spnn::process::{RoleEpoch, RoleStats, RunSetup, epoch_file, last_epoch, read_state};
use serde_json::{Value, json};

use crate::files::read_json;
use crate::spnn_roles::SpnnArgs;

/// The variants a run may hold: directory, metrics name, label.
const VARIANTS: [(&str, &str, &str); 2] = [
    ("spnn", "spnn", "SPNN, secret-shared conv1"),
    (
        "spnn-noise",
        "spnn_noise",
        "SPNN with SGLD noise on conv1's updates",
    ),
];

/// The roles of a variant, by directory.
const ROLES: [&str; 4] = ["holder-a", "holder-b", "server", "dealer"];

/// What each party learns (fixed text).
fn learns() -> Value {
    json!({
        "server": "z1 = conv1(x) + b of every training image (inputs are recoverable from it), the top features h and ∂loss/∂h, its own layers; no label, pixel or conv1 weight",
        "holder_a": "its own pixel columns, δ = ∂L/∂z1 (public to the holders), uniform shares and openings; no label, no pixel of holder B, no conv1 weight",
        "holder_b": "its own pixel columns and the labels, h, its top layer's logits, δ, uniform shares and openings; no pixel of holder A, no conv1 weight",
        "dealer": "nothing (random triples only)"
    })
}

/// `spnn report`.
pub fn report(args: &SpnnArgs) -> Result<()> {
    let dir = args.spnn_dir()?;
    let cfg = args.config()?;
    let (train, test) = args.train_split(&cfg)?;
    let mut variants = Vec::new();
    if let Some(p) = plaintext(&dir.join("plaintext"))? {
        variants.push(p);
    }
    for (sub, name, label) in VARIANTS {
        let vdir = dir.join(sub);
        if last_epoch(&vdir.join("server")) == 0 {
            continue;
        }
        let unfinished: Vec<&str> = ROLES
            .into_iter()
            .filter(|r| !vdir.join(r).join("stats.json").exists())
            .collect();
        if !unfinished.is_empty() {
            eprintln!(
                "{}: skipped, {} not finished (resume with `cargo xtask baseline spnn`)",
                vdir.display(),
                unfinished.join(", ")
            );
            continue;
        }
        let mut v = variant(args, &vdir, &train, &test)
            .with_context(|| format!("reporting {}", vdir.display()))?;
        v["name"] = json!(name);
        v["label"] = json!(label);
        variants.push(v);
    }
    if let Some(v) = naive(&dir.join("naive"))? {
        variants.push(v);
    }
    let find = |n: &str| variants.iter().find(|v| v["name"] == n);
    let acc = |n: &str| find(n).and_then(|v| v["test_accuracy"].as_f64());
    let secs = |n: &str| find(n).and_then(|v| v["seconds_per_epoch"].as_f64());
    let diff = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a - b);
    let t = &cfg.pipeline.train;
    let metrics = json!({
        "system": "spnn",
        "label": "split training (SPNN, as reconstructed)",
        "as_reconstructed": "SPNN's algorithms and parameters were not readable (abstract and a third-party summary only): vertical split by pixel columns, conv1 on additively shared weights and inputs with Beaver triples from a dealer (SS variant; no HE variant), the server runs the middle of the network in the clear, holder B keeps the last layer, the loss and the labels; conv1 is trained with plain SGD on the shares (Adam is not linear), SGLD as Gaussian noise on conv1's updates only; no augmentation.",
        "pipeline": args.target.pipeline,
        "profile": args.target.profile.clone().unwrap_or_default(),
        "run": dir.parent().and_then(|p| p.parent()).and_then(|p| p.file_name()).map(|s| s.to_string_lossy().to_string()),
        "dataset": cfg.pipeline.data.dataset,
        "architecture": cfg.pipeline.model.architecture.name(),
        "settings": {
            "epochs": t.epochs, "batch_size": t.batch_size, "seed": cfg.pipeline.seed,
            "optimizer": format!("{:?}", t.optimizer).to_lowercase(), "learning_rate": t.learning_rate,
            "conv1_learning_rate": args.conv1_lr, "schedule": format!("{:?}", t.schedule).to_lowercase(),
            "augmentation": "none", "train_images": train.len(), "test_images": test.len(),
            "encoding": serde_json::to_value(privdnn_spnn::fixed::Encoding::default())?,
        },
        "variants": variants,
        "comparison": {
            "epoch_time_ratio": secs("spnn").zip(secs("plaintext")).map(|(a, b)| a / b),
            "accuracy_gap_points": diff(acc("spnn"), acc("plaintext")),
            "noise_accuracy_cost_points": diff(acc("spnn"), acc("spnn_noise")),
            "naive_accuracy_gap_points": diff(acc("naive_split"), acc("plaintext")),
        },
        "learns": learns(),
    });
    let path = dir.join("metrics.json");
    write_json_atomic(&path, &metrics)?;
    println!("{}", serde_json::to_string_pretty(&metrics["comparison"])?);
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// The plaintext run's row (None when it was not run).
fn plaintext(dir: &Path) -> Result<Option<Value>> {
    let path = dir.join("metrics.json");
    if !path.exists() {
        return Ok(None);
    }
    let m = read_json(&path)?;
    let epochs: Vec<Value> = m["history"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|r| json!({"epoch": r["epoch"], "validation_accuracy": r["val_accuracy"], "train_loss": r["train_loss"], "train_accuracy": r["train_accuracy"], "seconds": r["seconds"]}))
        .collect();
    let run = m["epochs_run"].as_f64().unwrap_or(1.0).max(1.0);
    Ok(Some(json!({
        "name": "plaintext",
        "label": "plaintext training (train stage, same settings)",
        "noise_sigma": 0.0,
        "test_accuracy": m["test_accuracy"],
        "best_epoch": m["best_epoch"],
        "seconds_per_epoch": m["train_seconds"].as_f64().map(|s| s / run),
        "epochs": epochs,
    })))
}

/// The naive split's row from `naive/metrics.json` (`spnn naive`; None when it was not run):
/// no cryptography and nothing shared, so crypto seconds and checked forwards are 0; one
/// process, so no transfer time (its bytes are the encoded sizes of the messages).
fn naive(dir: &Path) -> Result<Option<Value>> {
    let path = dir.join(crate::spnn_naive::NAIVE_METRICS);
    if !path.exists() {
        return Ok(None);
    }
    let m = read_json(&path)?;
    let epochs: Vec<Value> = m["epochs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|r| json!({"epoch": r["epoch"], "test_accuracy": r["test_accuracy"], "train_loss": r["train_loss"], "train_accuracy": r["train_accuracy"], "seconds": r["seconds"], "crypto_seconds": 0.0, "server_seconds": r["server_seconds"], "holder_seconds": r["holder_seconds"], "transfer_seconds": 0.0, "forwards_checked": 0, "forwards_exact": 0}))
        .collect();
    Ok(Some(json!({
        "name": "naive_split",
        "label": "naive split network, no cryptography",
        "noise_sigma": 0.0,
        "test_accuracy": m["test_accuracy"],
        "seconds_per_epoch": m["seconds_per_epoch"],
        "crypto_seconds_per_epoch": 0.0,
        "server_seconds_per_epoch": m["server_seconds_per_epoch"],
        "holder_seconds_per_epoch": m["holder_seconds_per_epoch"],
        "transfer_seconds_per_epoch": 0.0,
        "forwards_checked": 0,
        "forwards_exact": 0,
        "steps": m["steps"],
        "bytes_per_step": m["bytes_per_step"],
        "analytic_bytes_per_step": m["analytic_bytes_per_step"],
        "rounds_per_step": m["rounds_per_step"],
        "epochs": epochs,
    })))
}

fn read_stats(dir: &Path) -> Result<RoleStats> {
    let v = read_json(&dir.join("stats.json"))?;
    Ok(serde_json::from_value(v)?)
}

fn sent(e: &RoleEpoch, to: &str) -> u64 {
    e.sent.iter().filter(|(r, _)| r == to).map(|(_, b)| b).sum()
}

/// One SPNN variant's row.
fn variant(
    args: &SpnnArgs,
    vdir: &Path,
    train: &DatasetSplit,
    test: &DatasetSplit,
) -> Result<Value> {
    let last = last_epoch(&vdir.join("server"));
    let first: ServerFile =
        read_state(&epoch_file(&vdir.join("server"), last), "spnn server state")?;
    let (mut setup, _, _) = args.setup("report")?;
    setup.settings = first.settings.clone();
    setup.train_len = first.train_len;
    let mut epochs = Vec::new();
    let (mut checked, mut exact) = (0u64, 0u64);
    let mut model = None;
    for e in 1..=last {
        let a: HolderFile =
            read_state(&epoch_file(&vdir.join("holder-a"), e), "spnn holder state")?;
        let b: HolderFile =
            read_state(&epoch_file(&vdir.join("holder-b"), e), "spnn holder state")?;
        let s: ServerFile = read_state(&epoch_file(&vdir.join("server"), e), "spnn server state")?;
        let (c, x) = audit_epoch(&setup, train, e, &a, &b, &s)?;
        checked += c;
        exact += x;
        let m = open_model(&setup, &a, &b, &s)?;
        let acc = accuracy(&m, test)?;
        epochs.push(epoch_row(
            e,
            acc,
            train.len(),
            (c, x),
            [&a.history, &b.history, &s.history],
        ));
        eprintln!(
            "{}: epoch {e}: {acc:.2} % test, {x}/{c} forwards exact",
            vdir.display()
        );
        model = Some(m);
    }
    if let Some(m) = &model {
        write_artifact(&vdir.join("model.bin"), m)?;
    }
    let mean = |k: &str| {
        epochs.iter().filter_map(|r| r[k].as_f64()).sum::<f64>() / epochs.len().max(1) as f64
    };
    let roles = ROLES
        .iter()
        .map(|r| Ok((r.replace('-', "_"), read_stats(&vdir.join(r))?)))
        .collect::<Result<Vec<_>>>()?;
    let (bytes, analytic, steps) = link_bytes(&setup, &roles)?;
    Ok(json!({
        "noise_sigma": setup.settings.noise_sigma,
        "test_accuracy": epochs.last().map(|r| r["test_accuracy"].clone()),
        "seconds_per_epoch": mean("seconds"),
        "crypto_seconds_per_epoch": mean("crypto_seconds"),
        "server_seconds_per_epoch": mean("server_seconds"),
        "transfer_seconds_per_epoch": mean("transfer_seconds"),
        "forwards_checked": checked,
        "forwards_exact": exact,
        "steps": steps,
        "bytes_per_step": bytes,
        "analytic_bytes_per_step": analytic,
        "rounds_per_step": ROUNDS_PER_STEP,
        "roles": roles.iter().map(|(n, s)| (n.clone(), json!({"cpu_seconds": s.cpu_seconds, "peak_rss_bytes": s.peak_rss_bytes}))).collect::<serde_json::Map<_, _>>(),
        "epochs": epochs,
    }))
}

/// One epoch's row: accuracy, the holders' loss and hits, and the time split.
fn epoch_row(
    e: usize,
    acc: f64,
    n: usize,
    (c, x): (u64, u64),
    [a, b, s]: [&Vec<RoleEpoch>; 3],
) -> Value {
    let pick = |h: &Vec<RoleEpoch>| h.iter().find(|r| r.epoch == e).cloned().unwrap_or_default();
    let (a, b, s) = (pick(a), pick(b), pick(s));
    let crypto = a.compute_seconds.max(b.compute_seconds);
    let server = s.compute_seconds + b.top_seconds;
    json!({
        "epoch": e, "test_accuracy": acc,
        "train_loss": b.loss_sum / n.max(1) as f64,
        "train_accuracy": 100.0 * b.correct as f64 / n.max(1) as f64,
        "seconds": s.wall_seconds,
        "crypto_seconds": crypto, "server_seconds": server,
        "transfer_seconds": (s.wall_seconds - crypto - server).max(0.0),
        "forwards_checked": c, "forwards_exact": x,
    })
}

/// Measured and analytic payload bytes per step per link, and the steps.
fn link_bytes(setup: &RunSetup, roles: &[(String, RoleStats)]) -> Result<(Value, Value, u64)> {
    let get = |r: &str| roles.iter().find(|(n, _)| n == r).map(|(_, s)| s);
    let total =
        |r: &str, to: &str| get(r).map_or(0, |s| s.epochs.iter().map(|e| sent(e, to)).sum::<u64>());
    let steps: u64 = get("server").map_or(0, |s| s.epochs.iter().map(|e| e.steps).sum());
    let per = |v: u64| v as f64 / steps.max(1) as f64;
    let measured = json!({
        "a_to_b": per(total("holder_a", "holder-b")), "b_to_a": per(total("holder_b", "holder-a")),
        "a_to_server": per(total("holder_a", "server")), "b_to_server": per(total("holder_b", "server")),
        "server_to_a": per(total("server", "holder-a")), "server_to_b": per(total("server", "holder-b")),
        "dealer_to_b": per(total("dealer", "holder-b")),
    });
    let g = setup.geometry()?;
    let d = privdnn_model::UpperNet::new(&setup.task.spec, 0, setup.settings.optimizer, 0.0)?
        .feature_dim();
    let mut sum = LinkBytes::default();
    for n in setup.batches() {
        sum.add(&LinkBytes::analytic(&g, n, d));
    }
    let k = setup.batches().len().max(1) as f64;
    let analytic = json!({
        "a_to_b": sum.a_to_b as f64 / k, "b_to_a": sum.b_to_a as f64 / k,
        "a_to_server": sum.a_to_server as f64 / k, "b_to_server": sum.b_to_server as f64 / k,
        "server_to_a": sum.server_to_a as f64 / k, "server_to_b": sum.server_to_b as f64 / k,
        "dealer_to_b": sum.dealer_to_b as f64 / k,
    });
    Ok((measured, analytic, steps))
}
