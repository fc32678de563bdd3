//! What a classification run reports (`results/<run>/party/client.json`, [`ClientReport`]:
//! predictions, accuracy, every byte and round trip, seconds per phase, the optional shadow
//! check of the user-keyed mode) and its summary for people ([`summary`]).

use std::collections::BTreeMap;

use privdnn_config::HeMode;
use privdnn_he::engine::Layout;
use serde::Serialize;

use crate::client::{Download, Traffic};

/// One request/answer of a classification run.
#[derive(Debug, Clone, Serialize)]
pub struct BatchReport {
    /// Images in the request.
    pub images: usize,
    /// Serialised request bytes (user → owner).
    pub request_bytes: usize,
    /// Serialised reply bytes (owner → user).
    pub reply_bytes: usize,
    /// Whole frames sent / received for this batch.
    pub traffic: Traffic,
    /// The user's HE work before sending: evaluation + blinding (owner-keyed), encryption
    /// under its own keys + serialisation (user-keyed).
    pub he_eval_s: f64,
    /// Send, the owner's work, receive.
    pub round_trip_s: f64,
    /// The owner's own time as it reports it: decryption (owner-keyed), decoding and
    /// evaluating the selected filters (user-keyed).
    pub owner_decrypt_s: f64,
    /// Unblinding and CRT recombination (owner-keyed), decoding and decrypting (user-keyed).
    pub unblind_s: f64,
    /// The plaintext rest of the network.
    pub tail_s: f64,
    /// Images in → predictions out.
    pub latency_s: f64,
}

/// Bytes of the inference phase (after the model is cached).
#[derive(Debug, Clone, Serialize)]
pub struct InferenceTraffic {
    /// Whole frames, every batch.
    pub traffic: Traffic,
    /// User → owner bytes per image.
    pub bytes_sent_per_image: f64,
    /// Owner → user bytes per image.
    pub bytes_received_per_image: f64,
    /// User → owner bytes per batch (mean).
    pub bytes_sent_per_batch: f64,
    /// Owner → user bytes per batch (mean).
    pub bytes_received_per_batch: f64,
}

/// What a classification run reports (`results/<run>/party/client.json`).
#[derive(Debug, Clone, Serialize)]
pub struct ClientReport {
    /// Owner address.
    pub server: String,
    /// The owner's model label.
    pub model: String,
    /// The mode the owner serves.
    pub mode: HeMode,
    /// Where the images came from.
    pub source: String,
    /// Images classified.
    pub images: usize,
    /// Layout used.
    pub layout: Layout,
    /// Images per request.
    pub batch_size: usize,
    /// Predicted class per image.
    pub predictions: Vec<usize>,
    /// True labels, when known.
    pub labels: Option<Vec<u16>>,
    /// Correct predictions, when labels are known.
    pub correct: Option<usize>,
    /// Top-1 accuracy (%), when labels are known.
    pub accuracy: Option<f64>,
    /// Logits (`images × classes`), when asked for.
    pub logits: Option<Vec<f32>>,
    /// The model download (or cache check).
    pub download: Download,
    /// Every request.
    pub batches: Vec<BatchReport>,
    /// Bytes of the inference phase.
    pub inference: InferenceTraffic,
    /// Every byte and round trip of the connection (download included).
    pub total: Traffic,
    /// Seconds per phase (`user_load_expand`: opening the model and expanding the keys,
    /// owner-keyed, or generating the user's own keys, user-keyed).
    pub phases_s: BTreeMap<String, f64>,
    /// Mean batch latency (images in → predictions out).
    pub mean_batch_latency_s: f64,
    /// Inference seconds per image (batches only, amortised).
    pub per_image_s: f64,
    /// Whole run: connect, download, model load and expansion, every batch.
    pub end_to_end_s: f64,
    /// Peak resident memory of the client process.
    pub peak_rss_bytes: u64,
    /// User-keyed mode with `audit_owner_block`: the comparison with the integer shadow.
    pub shadow: Option<ShadowCheck>,
}

/// The decrypted outputs and predictions compared with the integer shadow (measurement only).
#[derive(Debug, Clone, Serialize)]
pub struct ShadowCheck {
    /// Images whose decrypted outputs equal the shadow's bit for bit.
    pub exact_images: usize,
    /// Images whose prediction equals the prediction with the shadow's outputs.
    pub same_predictions: usize,
    /// Images compared.
    pub images: usize,
}

/// The report for people.
pub fn summary(r: &ClientReport) -> String {
    let mut s = String::new();
    let shown = r.predictions.len().min(200);
    s += &format!("predictions ({} images from {}):\n", r.images, r.source);
    for row in r.predictions[..shown].chunks(40) {
        s += &format!(
            "  {}\n",
            row.iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    if shown < r.predictions.len() {
        s += &format!("  … ({} more in the report)\n", r.predictions.len() - shown);
    }
    if let (Some(c), Some(a)) = (r.correct, r.accuracy) {
        s += &format!("accuracy: {a:.2} % ({c}/{})\n", r.images);
    }
    if let Some(sh) = &r.shadow {
        s += &format!(
            "integer shadow: {} of {} images bit-exact, {} of {} predictions equal\n",
            sh.exact_images, sh.images, sh.same_predictions, sh.images
        );
    }
    let d = &r.download;
    s += &format!(
        "model `{}` ({}) from {}: {}, {} round trips, {} B sent, {} B received, {:.2} s\n",
        r.model,
        r.mode.name(),
        r.server,
        if d.downloaded.is_empty() {
            "cached".to_string()
        } else {
            format!("downloaded {}", d.downloaded.join(" + "))
        },
        d.traffic.round_trips,
        d.traffic.bytes_sent,
        d.traffic.bytes_received,
        d.seconds
    );
    let i = &r.inference;
    s += &format!(
        "inference: {:?} layout, {} batch(es) of ≤ {} images, {} round trips; user→owner {} B ({:.0} B/image, \
         {:.0} B/batch), owner→user {} B ({:.0} B/image, {:.0} B/batch)\n",
        r.layout,
        r.batches.len(),
        r.batch_size,
        i.traffic.round_trips,
        i.traffic.bytes_sent,
        i.bytes_sent_per_image,
        i.bytes_sent_per_batch,
        i.traffic.bytes_received,
        i.bytes_received_per_image,
        i.bytes_received_per_batch
    );
    s += &format!(
        "latency: {:.2} s per batch (user HE {:.2} s, round trip {:.2} s of which owner {:.2} s), {:.3} s per image; \
         end to end {:.2} s (model load + {} {:.2} s)\n",
        r.mean_batch_latency_s,
        r.phases_s.get("user_he_eval").copied().unwrap_or(0.0) / r.batches.len().max(1) as f64,
        r.phases_s.get("round_trip").copied().unwrap_or(0.0) / r.batches.len().max(1) as f64,
        r.phases_s.get("owner_decrypt").copied().unwrap_or(0.0) / r.batches.len().max(1) as f64,
        r.per_image_s,
        r.end_to_end_s,
        match r.mode {
            HeMode::OwnerKeyed => "key expansion",
            HeMode::UserKeyed => "key generation",
        },
        r.phases_s.get("user_load_expand").copied().unwrap_or(0.0)
    );
    s
}
