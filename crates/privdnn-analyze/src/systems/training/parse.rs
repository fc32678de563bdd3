//! Readers of the two split-training files (schema in the [module docs](super)): every field is
//! optional; a present field of the wrong type is an error naming the file and the JSON pointer.

use std::path::Path;

use super::{Attacker, Epoch, Leakage, LeakageVariant, TrainingMetrics, Variant};
use crate::error::AnalyzeError;
use crate::json::{Node, parse_value};

/// A required string member (`name`), with the error naming the pointer.
fn name(n: &Node, at: &str) -> Result<String, AnalyzeError> {
    n.opt_str(at, "name")?.map(str::to_string).ok_or_else(|| {
        AnalyzeError::malformed(n.path, format!("`{at}/name`: missing (expected a string)"))
    })
}

/// Number members of an object, `[]` when absent (the `"...same keys..."` placeholder of the
/// schema's example is not a link: keys starting with "." are skipped).
fn links(n: &Node, at: &str, key: &str) -> Result<Vec<(String, f64)>, AnalyzeError> {
    if n.get(key).is_none() {
        return Ok(Vec::new());
    }
    Ok(n.number_map(at, key)?
        .into_iter()
        .filter(|(k, _)| !k.starts_with('.'))
        .collect())
}

fn epoch(n: &Node, at: &str) -> Result<Epoch, AnalyzeError> {
    Ok(Epoch {
        epoch: n.opt_f64(at, &["epoch"])?,
        test_accuracy: n.opt_f64(at, &["test_accuracy"])?,
        train_loss: n.opt_f64(at, &["train_loss"])?,
        seconds: n.opt_f64(at, &["seconds"])?,
    })
}

fn variant(n: &Node, at: &str) -> Result<Variant, AnalyzeError> {
    let mut epochs = Vec::new();
    for (i, e) in n
        .opt_array(at, &["epochs"])?
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        epochs.push(epoch(e, &format!("{at}/epochs/{i}"))?);
    }
    Ok(Variant {
        name: name(n, at)?,
        noise_sigma: n.opt_f64(at, &["noise_sigma"])?,
        test_accuracy: n.opt_f64(at, &["test_accuracy"])?,
        seconds_per_epoch: n.opt_f64(at, &["seconds_per_epoch"])?,
        crypto_seconds: n.opt_f64(at, &["crypto_seconds_per_epoch"])?,
        server_seconds: n.opt_f64(at, &["server_seconds_per_epoch"])?,
        transfer_seconds: n.opt_f64(at, &["transfer_seconds_per_epoch"])?,
        forwards_checked: n.opt_f64(at, &["forwards_checked"])?,
        forwards_exact: n.opt_f64(at, &["forwards_exact"])?,
        bytes: links(n, at, "bytes_per_step")?,
        analytic_bytes: links(n, at, "analytic_bytes_per_step")?,
        rounds_per_step: n.opt_f64(at, &["rounds_per_step"])?,
        epochs,
    })
}

/// Parses the text of `baselines/spnn/metrics.json`.
pub fn parse_metrics(path: &Path, text: &str) -> Result<TrainingMetrics, AnalyzeError> {
    let value = parse_value(path, text)?;
    let root = Node::root(&value, path);
    let mut variants = Vec::new();
    for (i, v) in root
        .opt_array("", &["variants"])?
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        variants.push(variant(v, &format!("/variants/{i}"))?);
    }
    let mut learns = Vec::new();
    if let Some(l) = root.get("learns") {
        let Some(map) = l.value.as_object() else {
            return Err(AnalyzeError::malformed(
                path,
                "`/learns`: expected an object",
            ));
        };
        for (party, text) in map {
            if let Some(text) = text.as_str() {
                learns.push((party.clone(), text.to_string()));
            }
        }
    }
    Ok(TrainingMetrics {
        dataset: root.opt_str("", "dataset")?.map(str::to_string),
        variants,
        learns,
    })
}

fn attacker(n: &Node, at: &str) -> Result<Attacker, AnalyzeError> {
    Ok(Attacker {
        name: n.opt_str(at, "name")?.unwrap_or_default().to_string(),
        psnr_db: n.opt_f64(at, &["psnr_db"])?,
        ssim: n.opt_f64(at, &["ssim"])?,
    })
}

/// Parses the text of `attack/spnn_leakage.json`.
pub fn parse_leakage(path: &Path, text: &str) -> Result<Leakage, AnalyzeError> {
    let value = parse_value(path, text)?;
    let root = Node::root(&value, path);
    let mut variants = Vec::new();
    for (i, v) in root
        .opt_array("", &["variants"])?
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let at = format!("/variants/{i}");
        let mut attackers = Vec::new();
        for (j, a) in v
            .opt_array(&at, &["attackers"])?
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            attackers.push(attacker(a, &format!("{at}/attackers/{j}"))?);
        }
        variants.push(LeakageVariant {
            name: name(v, &at)?,
            attackers,
        });
    }
    Ok(Leakage {
        images: root.opt_f64("", &["images"])?,
        variants,
        reference: match root.get("reference") {
            Some(r) => Some(attacker(&r, "/reference")?),
            None => None,
        },
    })
}
