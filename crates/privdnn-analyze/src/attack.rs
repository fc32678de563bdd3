//! Reader of the attack stage's `results/<run>/attack/metrics.json` (written by
//! `crates/privdnn-attack/src/cli.rs`). The parts read here (spec §4: model recovery with the
//! plaintext part frozen or fine-tuned → A_rec, training from scratch → A_t):
//!
//! ```json
//! {"points": [{"percent": 50.0, "recovered_freeze": 82.7, "recovered_unfreeze": 83.6,
//!              "separate": 90.8, "removed": 55.9, "reinitialized": 12.0, ...}],
//!  "from_scratch": {"samples": 1000, "accuracy": 49.9},
//!  "sample_curve": [{"samples": 100, "recovered_unfreeze": .., "recovered_freeze": .., "from_scratch": ..}],
//!  "recovery": {..}, "extraction": {..}, "inversion": {..}, "settings": {..},
//!  "key_recovery": {"variants": {"direct": {"requests": 1, "key_fraction": 1.0, ..}, "stealth": {..}}}}
//! ```
//!
//! Aliases are accepted (`a_rec_freeze`, `a_rec_unfreeze`, `a_t`, `a_s`, `a_r`); every field but
//! `percent` / `samples` is optional, other keys are ignored. Kept in this one module so it is
//! easy to adapt.

use std::path::Path;

use crate::error::AnalyzeError;
use crate::json::{Node, parse_value};

/// Recovery accuracies at one selection percent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecoveryPoint {
    /// Selection percent.
    pub percent: f64,
    /// A_s measured by the attack stage (optional; the select sweep also has it).
    pub separate: Option<f64>,
    /// A_r measured by the attack stage.
    pub removed: Option<f64>,
    /// A_rec with the plaintext part frozen.
    pub recovered_freeze: Option<f64>,
    /// A_rec with the plaintext part fine-tuned too.
    pub recovered_unfreeze: Option<f64>,
}

/// Accuracies after an attack with `samples` stolen labelled samples.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SamplePoint {
    /// Number of samples the attacker has.
    pub samples: f64,
    /// A_rec (freeze).
    pub recovered_freeze: Option<f64>,
    /// A_rec (unfreeze).
    pub recovered_unfreeze: Option<f64>,
    /// A_t (training from scratch).
    pub from_scratch: Option<f64>,
}

/// The whole file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AttackMetrics {
    /// Recovery per selection percent.
    pub points: Vec<RecoveryPoint>,
    /// (samples, A_t) of training from scratch.
    pub from_scratch: Option<(Option<f64>, f64)>,
    /// Accuracy versus number of attack samples.
    pub sample_curve: Vec<SamplePoint>,
    /// The malicious user's key-recovery attack against the owner service, per variant.
    pub key_recovery: Vec<KeyRecovery>,
}

/// One variant of the key-recovery attack (`key_recovery.variants.<name>`, written by
/// `crates/privdnn-attack/src/key_recovery.rs`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeyRecovery {
    /// `direct` or `stealth`.
    pub variant: String,
    /// Protocol mode of the attacked service (`owner-keyed`, `user-keyed`).
    pub mode: Option<String>,
    /// Requests the attacker sent for this variant.
    pub requests: Option<f64>,
    /// Requests the owner decrypted.
    pub requests_decrypted: Option<f64>,
    /// Bytes the attacker sent / received.
    pub bytes_sent: Option<f64>,
    /// Bytes received.
    pub bytes_received: Option<f64>,
    /// Wall seconds of the attack (download excluded).
    pub seconds: Option<f64>,
    /// Share of secret-key coefficients recovered (0–1).
    pub key_fraction: Option<f64>,
    /// Share of the encrypted weights recovered exactly (0–1).
    pub weights_fraction: Option<f64>,
    /// Number of encrypted weights in the shipped model.
    pub encrypted_weights: Option<f64>,
}

fn key_recovery(root: &Node) -> Result<Vec<KeyRecovery>, AnalyzeError> {
    let Some(variants) = root.get("key_recovery").and_then(|k| k.get("variants")) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for name in ["direct", "stealth"] {
        let Some(v) = variants.get(name) else {
            continue;
        };
        let at = format!("/key_recovery/variants/{name}");
        let f = |key: &str| v.opt_f64(&at, &[key]);
        out.push(KeyRecovery {
            variant: name.to_string(),
            mode: v.opt_str(&at, "mode")?.map(str::to_string),
            requests: f("requests")?,
            requests_decrypted: f("requests_decrypted")?,
            bytes_sent: f("bytes_sent")?,
            bytes_received: f("bytes_received")?,
            seconds: f("seconds")?,
            key_fraction: f("key_fraction")?,
            weights_fraction: f("weights_fraction")?,
            encrypted_weights: f("encrypted_weights")?,
        });
    }
    Ok(out)
}

/// Parses the text of an attack `metrics.json`.
pub fn parse(path: &Path, text: &str) -> Result<AttackMetrics, AnalyzeError> {
    let value = parse_value(path, text)?;
    let root = Node::root(&value, path);
    let required = |n: &Node, at: &str, key: &str| -> Result<f64, AnalyzeError> {
        n.opt_f64(at, &[key])?.ok_or_else(|| {
            AnalyzeError::malformed(path, format!("`{at}/{key}`: missing (expected a number)"))
        })
    };
    let mut points = Vec::new();
    for (i, p) in root
        .opt_array("", &["points"])?
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let at = format!("/points/{i}");
        points.push(RecoveryPoint {
            percent: required(&p, &at, "percent")?,
            separate: p.opt_f64(&at, &["separate", "a_s"])?,
            removed: p.opt_f64(&at, &["removed", "a_r"])?,
            recovered_freeze: p.opt_f64(&at, &["recovered_freeze", "a_rec_freeze"])?,
            recovered_unfreeze: p.opt_f64(&at, &["recovered_unfreeze", "a_rec_unfreeze"])?,
        });
    }
    points.sort_by(|a, b| a.percent.total_cmp(&b.percent));
    let from_scratch = match root.get_any(&["from_scratch"]) {
        None => root.opt_f64("", &["a_t"])?.map(|a| (None, a)),
        Some(n) => {
            let accuracy = n.opt_f64("/from_scratch", &["accuracy", "a_t"])?;
            let samples = n.opt_f64("/from_scratch", &["samples"])?;
            accuracy.map(|a| (samples, a))
        }
    };
    let mut sample_curve = Vec::new();
    for (i, p) in root
        .opt_array("", &["sample_curve"])?
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let at = format!("/sample_curve/{i}");
        sample_curve.push(SamplePoint {
            samples: required(&p, &at, "samples")?,
            recovered_freeze: p.opt_f64(&at, &["recovered_freeze", "a_rec_freeze"])?,
            recovered_unfreeze: p.opt_f64(&at, &["recovered_unfreeze", "a_rec_unfreeze"])?,
            from_scratch: p.opt_f64(&at, &["from_scratch", "a_t"])?,
        });
    }
    sample_curve.sort_by(|a, b| a.samples.total_cmp(&b.samples));
    Ok(AttackMetrics {
        points,
        from_scratch,
        sample_curve,
        key_recovery: key_recovery(&root)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_points_aliases_and_curve() {
        let text = r#"{"points": [{"percent": 100, "a_rec_unfreeze": 30.2},
                                   {"percent": 50, "recovered_freeze": 82.7, "a_s": 90.8}],
                       "from_scratch": {"samples": 1000, "accuracy": 49.9},
                       "sample_curve": [{"samples": 10, "a_t": 11.0}]}"#;
        let m = parse(Path::new("a.json"), text).expect("parse");
        assert_eq!(m.points[0].percent, 50.0);
        assert_eq!(m.points[0].separate, Some(90.8));
        assert_eq!(m.points[1].recovered_unfreeze, Some(30.2));
        assert_eq!(m.from_scratch, Some((Some(1000.0), 49.9)));
        assert_eq!(m.sample_curve[0].from_scratch, Some(11.0));
    }

    #[test]
    fn parses_key_recovery_variants() {
        let text = r#"{"key_recovery": {"variants": {
            "stealth": {"requests": 1, "key_fraction": 1.0, "mode": "owner-keyed"},
            "direct": {"requests": 1, "bytes_sent": 143397, "weights_fraction": 0.5}}}}"#;
        let m = parse(Path::new("a.json"), text).expect("parse");
        assert_eq!(m.key_recovery.len(), 2);
        assert_eq!(m.key_recovery[0].variant, "direct");
        assert_eq!(m.key_recovery[0].bytes_sent, Some(143397.0));
        assert_eq!(m.key_recovery[0].weights_fraction, Some(0.5));
        assert_eq!(m.key_recovery[1].mode.as_deref(), Some("owner-keyed"));
        assert_eq!(m.key_recovery[1].key_fraction, Some(1.0));
    }

    #[test]
    fn missing_percent_is_named() {
        let err = parse(Path::new("a.json"), r#"{"points": [{"a_s": 1}]}"#).expect_err("percent");
        assert_eq!(
            err.to_string(),
            "a.json: `/points/0/percent`: missing (expected a number)"
        );
    }
}
