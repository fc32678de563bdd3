//! Reader of the HE inference stage's `results/<run>/infer/metrics.json`.
//!
//! PROVISIONAL: the infer stage is not built yet; this is the agreed draft schema, kept in this
//! one module so it is easy to adapt:
//!
//! ```json
//! {"mode_reports": [{
//!    "mode": "separate" | "full-block" | "remove" | "plaintext", "selection": [[0], [0]],
//!    "accuracy": 97.8, "exact_match_rate": 1.0, "images": 100, "percent": 50.0,
//!    "phases_s": {"keygen": .., "encrypt_model": .., "user_eval": .., "owner_decrypt": .., "plain_tail": ..},
//!    "per_image_s": .., "latency_s": .., "peak_rss_bytes": .., "model_bytes": .., "eval_key_bytes": ..,
//!    "bytes_user_to_owner": .., "bytes_owner_to_user": ..,
//!    "ops": {"ct_pt_mul": .., "ct_ct_mul": .., "relin": .., ...}}]}
//! ```
//!
//! Every field but `mode` is optional (shown as "–"); `images` and `percent` are optional
//! extras (`percent` lets a sweep of infer runs feed the Fig. 7 time curve). A present field of
//! the wrong type is an error naming the file and the JSON pointer.

use std::path::Path;

use crate::error::AnalyzeError;
use crate::json::{Node, parse_value};

/// Phases in display (protocol) order; others found in a file follow, sorted by name.
pub const PHASES: [&str; 10] = [
    "keygen",
    "encrypt_model",
    "owner_load",
    "user_load_expand",
    "user_eval",
    "user_he_eval",
    "user_unblind",
    "owner_decrypt",
    "plain_tail",
    "plain_inference",
];

/// One mode's measurements.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModeReport {
    /// `separate`, `full-block`, `remove`, `plaintext`, ….
    pub mode: String,
    /// Accuracy of the decrypted predictions, percent.
    pub accuracy: Option<f64>,
    /// Fraction of images whose HE prediction equals the plaintext one.
    pub exact_match_rate: Option<f64>,
    /// Images evaluated.
    pub images: Option<f64>,
    /// Selection percent, when the run is a point of a percent sweep.
    pub percent: Option<f64>,
    /// The selection, as reference JSON (`{"1":[..],"2":[..]}`; `[[..],[..]]` is converted).
    pub selection: Option<String>,
    /// Seconds per phase (name, seconds).
    pub phases: Vec<(String, f64)>,
    /// Amortised seconds per image.
    pub per_image_s: Option<f64>,
    /// Wall seconds of one query end to end.
    pub latency_s: Option<f64>,
    /// Peak resident memory, bytes.
    pub peak_rss_bytes: Option<f64>,
    /// Size of the (partly) encrypted model, bytes.
    pub model_bytes: Option<f64>,
    /// Size of the evaluation (relinearisation) keys, bytes.
    pub eval_key_bytes: Option<f64>,
    /// Bytes sent by the user to the owner.
    pub bytes_user_to_owner: Option<f64>,
    /// Bytes sent by the owner to the user.
    pub bytes_owner_to_user: Option<f64>,
    /// Homomorphic operation counts (name, count).
    pub ops: Vec<(String, f64)>,
}

impl ModeReport {
    /// Seconds of phase `name`.
    pub fn phase(&self, name: &str) -> Option<f64> {
        self.phases.iter().find(|(n, _)| n == name).map(|(_, s)| *s)
    }

    /// Count of operation `name`.
    pub fn op(&self, name: &str) -> Option<f64> {
        self.ops.iter().find(|(n, _)| n == name).map(|(_, c)| *c)
    }

    /// Sum of all phases (the whole batch), when any phase was recorded.
    pub fn total_seconds(&self) -> Option<f64> {
        (!self.phases.is_empty()).then(|| self.phases.iter().map(|(_, s)| s).sum())
    }
}

/// The whole file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InferMetrics {
    /// One report per mode, in file order.
    pub reports: Vec<ModeReport>,
}

impl InferMetrics {
    /// The report of `mode`.
    pub fn mode(&self, mode: &str) -> Option<&ModeReport> {
        self.reports.iter().find(|r| r.mode == mode)
    }
}

/// A selection as compact reference JSON; a pair of index lists becomes `{"1":..,"2":..}`.
fn selection_text(v: &serde_json::Value) -> String {
    match v.as_array() {
        Some(layers) if layers.len() == 2 && layers.iter().all(|l| l.is_array()) => {
            serde_json::json!({"1": layers[0], "2": layers[1]}).to_string()
        }
        _ => v.to_string(),
    }
}

/// Parses the text of an infer `metrics.json`.
pub fn parse(path: &Path, text: &str) -> Result<InferMetrics, AnalyzeError> {
    let value = parse_value(path, text)?;
    let root = Node::root(&value, path);
    let mut reports = Vec::new();
    for (i, r) in root.array("", &["mode_reports"])?.into_iter().enumerate() {
        let at = format!("/mode_reports/{i}");
        let mode = r.opt_str(&at, "mode")?.ok_or_else(|| {
            AnalyzeError::malformed(path, format!("`{at}/mode`: missing (expected a string)"))
        })?;
        let mut phases = r.number_map(&at, "phases_s")?;
        phases.sort_by_key(|(name, _)| {
            (
                PHASES
                    .iter()
                    .position(|p| p == name)
                    .unwrap_or(PHASES.len()),
                name.clone(),
            )
        });
        reports.push(ModeReport {
            mode: mode.to_string(),
            accuracy: r.opt_f64(&at, &["accuracy"])?,
            exact_match_rate: r.opt_f64(&at, &["exact_match_rate"])?,
            images: r.opt_f64(&at, &["images"])?,
            percent: r.opt_f64(&at, &["percent"])?,
            selection: r.get("selection").map(|n| selection_text(n.value)),
            phases,
            per_image_s: r.opt_f64(&at, &["per_image_s"])?,
            latency_s: r.opt_f64(&at, &["latency_s"])?,
            peak_rss_bytes: r.opt_f64(&at, &["peak_rss_bytes"])?,
            model_bytes: r.opt_f64(&at, &["model_bytes"])?,
            eval_key_bytes: r.opt_f64(&at, &["eval_key_bytes"])?,
            bytes_user_to_owner: r.opt_f64(&at, &["bytes_user_to_owner"])?,
            bytes_owner_to_user: r.opt_f64(&at, &["bytes_owner_to_user"])?,
            ops: r.number_map(&at, "ops")?,
        });
    }
    Ok(InferMetrics { reports })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_draft_schema_and_orders_phases() {
        let text = r#"{"mode_reports": [{"mode": "separate", "accuracy": 97.5, "selection": [[0], [1, 2]],
            "phases_s": {"user_eval": 3.0, "keygen": 1.0, "zeta": 0.5},
            "ops": {"ct_pt_mul": 10, "relin": 2}, "model_bytes": 1048576}]}"#;
        let m = parse(Path::new("m.json"), text).expect("parse");
        let r = m.mode("separate").expect("separate");
        assert_eq!(r.accuracy, Some(97.5));
        let names: Vec<&str> = r.phases.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["keygen", "user_eval", "zeta"]);
        assert_eq!(r.total_seconds(), Some(4.5));
        assert_eq!(r.op("relin"), Some(2.0));
        assert_eq!(r.latency_s, None);
        assert_eq!(r.selection.as_deref(), Some(r#"{"1":[0],"2":[1,2]}"#));
    }

    #[test]
    fn malformed_fields_are_named() {
        let err = parse(Path::new("m.json"), r#"{"reports": []}"#).expect_err("no mode_reports");
        assert_eq!(
            err.to_string(),
            "m.json: `/mode_reports`: missing (expected an array)"
        );
        let err = parse(
            Path::new("m.json"),
            r#"{"mode_reports": [{"mode": "remove", "phases_s": {"keygen": "fast"}}]}"#,
        )
        .expect_err("string phase");
        assert_eq!(
            err.to_string(),
            "m.json: `/mode_reports/0/phases_s/keygen`: expected a number, found a string"
        );
        let err = parse(Path::new("m.json"), r#"{"mode_reports": [{}]}"#).expect_err("no mode");
        assert!(err.to_string().contains("`/mode_reports/0/mode`: missing"));
    }
}
