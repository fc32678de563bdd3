//! Measurement harness: runs the user and the owner in one process, passing only serialised
//! byte messages between them, and measures everything the report needs. It also plays the
//! *auditor*: it reads the owner's quantised block to compute the integer shadow and checks the
//! decrypted outputs against it bit for bit — a check outside the protocol, so the user's role
//! (`privdnn_partial::user`) still never touches the secret file.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use privdnn_artifacts::{
    DatasetSplit, NeuronSelection, Normalization, RunLayout, TrainedModel, read_artifact,
};
use privdnn_he::engine::{Layout, Residency};
use privdnn_he::files::OwnerSecretFile;
use privdnn_he::ops::{OpCounter, OpCounts};
use privdnn_model::burn::tensor::Device;
use privdnn_model::{ChannelMasks, Evaluation, Network, RemainderNet, evaluate, import_tensors};
use privdnn_partial::SelectedOutputs;
use privdnn_partial::owner::OwnerSide;
pub use privdnn_partial::shadow_outputs;
use privdnn_partial::user::UserSide;
use serde::Serialize;

use crate::InferError;

/// Costs and accuracy of one mode.
#[derive(Debug, Clone, Serialize)]
pub struct ModeReport {
    /// `separate`, `full-block`, `remove` or `plaintext`.
    pub mode: String,
    /// Selected conv1 channels / conv2 filters.
    pub selection: (Vec<usize>, Vec<usize>),
    /// Images evaluated.
    pub images: usize,
    /// Top-1 accuracy (%) of this mode's predictions.
    pub accuracy: f64,
    /// Accuracy of the quantised integer shadow (HE modes).
    pub quantised_accuracy: Option<f64>,
    /// Accuracy of the float model the mode stands for (A_s for separate).
    pub float_accuracy: Option<f64>,
    /// Fraction of images whose decrypted outputs equal the shadow exactly (HE modes).
    pub exact_match_rate: Option<f64>,
    /// Images whose HE predictions equal the shadow's predictions.
    pub same_predictions_as_shadow: Option<usize>,
    /// Seconds per phase.
    pub phases_s: BTreeMap<String, f64>,
    /// User HE evaluation + owner decryption + unblinding, per image (amortised over the run).
    pub per_image_s: f64,
    /// One image end to end with the spatial layout (HE modes, when measured).
    pub latency_s: Option<f64>,
    /// Layout of the throughput run.
    pub layout: Option<Layout>,
    /// Calls (ciphertext batches) of the throughput run.
    pub calls: usize,
    /// Bytes of the encrypted model file shipped to the user.
    pub model_bytes: u64,
    /// Bytes of the encrypted weights inside it.
    pub encrypted_weight_bytes: usize,
    /// Bytes of the public evaluation keys.
    pub eval_key_bytes: u64,
    /// Request bytes, user → owner.
    pub bytes_user_to_owner: usize,
    /// Reply bytes, owner → user.
    pub bytes_owner_to_user: usize,
    /// HE operation counts.
    pub ops: Option<OpCounts>,
    /// Peak resident memory of the process when this mode finished (modes run in report order,
    /// so for the first mode this is its own peak).
    pub peak_rss_bytes: u64,
    /// Peak resident memory of this mode alone (the process's high-water mark reset when the
    /// mode started, where the kernel allows it; else None).
    pub mode_peak_rss_bytes: Option<u64>,
    /// User-side memory budget the HE evaluation planned for (bytes; HE modes).
    pub memory_budget_bytes: Option<u64>,
    /// How the user held the selected weights within that budget (HE modes).
    pub residency: Option<Residency>,
    /// The memory plan's estimate for that residency (bytes; HE modes): weights plus one call's
    /// working set, above the budget when even packed weights do not fit it.
    #[serde(default)]
    pub planned_bytes: Option<u64>,
}

impl ModeReport {
    fn plain(
        mode: &str,
        selection: (Vec<usize>, Vec<usize>),
        ev: &Evaluation,
        seconds: f64,
    ) -> Self {
        let mut phases = BTreeMap::new();
        phases.insert("plain_inference".to_string(), seconds);
        Self {
            mode: mode.to_string(),
            selection,
            images: ev.total,
            accuracy: ev.accuracy(),
            quantised_accuracy: None,
            float_accuracy: Some(ev.accuracy()),
            exact_match_rate: None,
            same_predictions_as_shadow: None,
            phases_s: phases,
            per_image_s: seconds / ev.total.max(1) as f64,
            latency_s: None,
            layout: None,
            calls: 0,
            model_bytes: 0,
            encrypted_weight_bytes: 0,
            eval_key_bytes: 0,
            bytes_user_to_owner: 0,
            bytes_owner_to_user: 0,
            ops: None,
            peak_rss_bytes: process_peak_rss(),
            mode_peak_rss_bytes: None,
            memory_budget_bytes: None,
            residency: None,
            planned_bytes: None,
        }
    }
}

/// Settings of one HE run.
pub struct HeRun<'a> {
    /// Label of the mode.
    pub mode: &'a str,
    /// Where the encrypt stage (or the harness, for the full-block baseline) wrote the files.
    pub paths: &'a RunLayout,
    /// Layout of the throughput run.
    pub layout: Layout,
    /// Headroom for the output level.
    pub headroom_bits: f64,
    /// Measure single-image latency.
    pub latency: bool,
    /// User-side memory budget (bytes).
    pub memory_budget: u64,
    /// Burn device for the plaintext tail.
    pub device: Device,
}

pub(crate) fn accuracy_of(
    logits: &[f32],
    labels: &[u16],
    classes: usize,
) -> (Evaluation, Vec<usize>) {
    let mut ev = Evaluation::default();
    let labels_i64: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    ev.add_logits(logits, &labels_i64, classes);
    let preds = logits
        .chunks(classes)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold(0, |best, (i, v)| if *v > row[best] { i } else { best })
        })
        .collect();
    (ev, preds)
}

/// What the auditor found: the shadow's accuracy and how often HE equals it.
struct Audit {
    /// Images whose decrypted outputs equal the shadow's exactly.
    exact: usize,
    /// Accuracy with the shadow's outputs injected.
    shadow_eval: Evaluation,
    /// Images whose HE prediction equals the shadow's.
    same_predictions: usize,
    /// The shadow's layer-2 outputs of the first image (for the latency run's check).
    shadow_first: Vec<Vec<i64>>,
}

/// Auditor: the shadow from the owner's block, compared with the decrypted outputs `he`.
fn audit(
    run: &HeRun<'_>,
    user: &UserSide,
    tail: &RemainderNet,
    test: &DatasetSplit,
    indices: &[usize],
    he: &SelectedOutputs,
    he_preds: &[usize],
) -> Result<Audit, InferError> {
    let secret: OwnerSecretFile = read_artifact(&run.paths.owner_secret())?;
    let raw: Vec<&[u8]> = indices.iter().map(|&i| test.image(i)).collect();
    let shadow = shadow_outputs(
        &secret.block,
        &user.file.selection,
        &raw,
        user.file.layer1_outputs,
    );
    let exact = (0..indices.len())
        .filter(|&n| he.z[n] == shadow.z[n] && (he.a1.is_empty() || he.a1[n] == shadow.a1[n]))
        .count();
    let labels: Vec<u16> = indices.iter().map(|&i| test.labels[i]).collect();
    let shadow_logits = tail.logits(test, indices, &user.injection(&shadow))?;
    let (shadow_eval, q_preds) = accuracy_of(&shadow_logits, &labels, test.num_classes());
    let same_predictions = he_preds
        .iter()
        .zip(&q_preds)
        .filter(|(a, b)| a == b)
        .count();
    Ok(Audit {
        exact,
        shadow_eval,
        same_predictions,
        shadow_first: shadow.z.into_iter().next().unwrap_or_default(),
    })
}

/// One image end to end with the spatial layout (seconds), checked against the shadow.
fn latency(
    user: &UserSide,
    owner: &OwnerSide,
    tail: &RemainderNet,
    test: &DatasetSplit,
    index: usize,
    shadow_first: &[Vec<i64>],
) -> Result<f64, InferError> {
    let start = Instant::now();
    let ops = OpCounter::default();
    let raw = [test.image(index)];
    let (request, pending) =
        user.request(Layout::Spatial, &raw, &ops, &|_| {}, &mut rand::rng())?;
    let reply = owner.answer(&request)?;
    let out = user.finish(&reply, pending)?;
    tail.logits(test, &[index], &user.injection(&out))?;
    if out.z.first().map(Vec::as_slice) != Some(shadow_first) {
        return Err(InferError::Mismatch(
            "single-image spatial run differs from the shadow".into(),
        ));
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Runs one HE mode over `indices` of `test`.
pub fn run_he(
    run: &HeRun<'_>,
    test: &DatasetSplit,
    indices: &[usize],
    total: &dyn Fn(u64),
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ModeReport, InferError> {
    let ops = OpCounter::default();
    // Earlier modes' freed memory back to the system, so that this mode's peak is its own.
    privdnn_artifacts::release_free_heap();
    let mode_peak = reset_peak_rss();
    let mut phases = BTreeMap::new();
    let mut clock = Instant::now();
    let mut lap = |phases: &mut BTreeMap<String, f64>, name: &str| {
        *phases.entry(name.to_string()).or_insert(0.0) += clock.elapsed().as_secs_f64();
        clock = Instant::now();
    };
    let user = UserSide::load_within(
        &run.paths.encrypted_model(),
        &run.paths.evaluation_keys(),
        run.headroom_bits,
        (run.memory_budget, Some(run.layout)),
        &ops,
    )?;
    let residency = user.session.residues.first().map(|r| r.block.residency());
    let planned_bytes = Some(user.session.planned_bytes);
    let tail = RemainderNet::new(user.remainder(), run.device.clone())?;
    lap(&mut phases, "user_load_expand");
    let owner = OwnerSide::load(&run.paths.owner_secret())?;
    lap(&mut phases, "owner_load");
    let mut rng = rand::rng();
    let cap = user.capacity(run.layout)?;
    let shape = &user.session.plain().shape;
    let groups = match run.layout {
        Layout::Batch => shape.h2 * shape.w2,
        Layout::Spatial => 1,
    };
    total(
        (indices.len().div_ceil(cap)
            * groups
            * user.file.block.s2.len()
            * user.session.residues.len()) as u64,
    );
    let (mut up, mut down, mut calls) = (0usize, 0usize, 0usize);
    let mut he = SelectedOutputs::default();
    for chunk in indices.chunks(cap) {
        let raw: Vec<&[u8]> = chunk.iter().map(|&i| test.image(i)).collect();
        let (request, pending) = user.request(run.layout, &raw, &ops, progress, &mut rng)?;
        lap(&mut phases, "user_he_eval");
        let reply = owner.answer(&request)?;
        lap(&mut phases, "owner_decrypt");
        let out = user.finish(&reply, pending)?;
        lap(&mut phases, "user_unblind");
        up += request.len();
        down += reply.len();
        calls += 1;
        he.extend(out);
    }
    let he_seconds: f64 = ["user_he_eval", "owner_decrypt", "user_unblind"]
        .iter()
        .map(|k| phases.get(*k).copied().unwrap_or(0.0))
        .sum();
    let classes = test.num_classes();
    let labels: Vec<u16> = indices.iter().map(|&i| test.labels[i]).collect();
    let logits = tail.logits(test, indices, &user.injection(&he))?;
    lap(&mut phases, "plain_tail");
    let (ev, he_preds) = accuracy_of(&logits, &labels, classes);
    let audit = audit(run, &user, &tail, test, indices, &he, &he_preds)?;
    let latency_s = match indices.first() {
        Some(&first) if run.latency => Some(latency(
            &user,
            &owner,
            &tail,
            test,
            first,
            &audit.shadow_first,
        )?),
        _ => None,
    };
    let file_len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    Ok(ModeReport {
        mode: run.mode.to_string(),
        selection: (
            user.file.selection.layer1.clone(),
            user.file.selection.layer2.clone(),
        ),
        images: indices.len(),
        accuracy: ev.accuracy(),
        quantised_accuracy: Some(audit.shadow_eval.accuracy()),
        float_accuracy: None,
        exact_match_rate: Some(audit.exact as f64 / indices.len().max(1) as f64),
        same_predictions_as_shadow: Some(audit.same_predictions),
        phases_s: phases,
        per_image_s: he_seconds / indices.len().max(1) as f64,
        latency_s,
        layout: Some(run.layout),
        calls,
        model_bytes: file_len(&run.paths.encrypted_model()),
        encrypted_weight_bytes: user.session.shipped_bytes,
        eval_key_bytes: file_len(&run.paths.evaluation_keys()),
        bytes_user_to_owner: up,
        bytes_owner_to_user: down,
        ops: Some(ops.snapshot()),
        peak_rss_bytes: process_peak_rss(),
        mode_peak_rss_bytes: mode_peak.then(privdnn_artifacts::peak_rss_bytes),
        memory_budget_bytes: Some(run.memory_budget),
        residency,
        planned_bytes,
    })
}

/// The highest peak-memory mark seen before the last reset ([`reset_peak_rss`]).
static EARLIER_PEAK: AtomicU64 = AtomicU64::new(0);

/// Peak resident memory of the whole process so far, across the per-mode resets.
pub fn process_peak_rss() -> u64 {
    EARLIER_PEAK
        .load(Ordering::Relaxed)
        .max(privdnn_artifacts::peak_rss_bytes())
}

/// Resets the process's peak-memory mark (`VmHWM`, remembering it for [`process_peak_rss`]) so
/// that the next reading is this mode's own peak; false where the kernel refuses (then only the
/// process-wide peak is known).
fn reset_peak_rss() -> bool {
    EARLIER_PEAK.fetch_max(privdnn_artifacts::peak_rss_bytes(), Ordering::Relaxed);
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The separated float model (A_s): non-selected conv2 filters lose the selected channels.
pub fn separated(model: &TrainedModel, sel: &NeuronSelection) -> TrainedModel {
    let mut out = model.clone();
    if let Some(t) = out.tensors.iter_mut().find(|t| t.name == "conv2.weight") {
        let (c2, c1, taps) = (t.shape[0], t.shape[1], t.shape[2] * t.shape[3]);
        for j in (0..c2).filter(|j| !sel.layer2.contains(j)) {
            for &c in &sel.layer1 {
                t.values[(j * c1 + c) * taps..(j * c1 + c + 1) * taps].fill(0.0);
            }
        }
    }
    out
}

/// Float evaluations of the original (timed: the plaintext baseline), separated and removed models.
pub fn float_modes(
    model: &TrainedModel,
    sel: &NeuronSelection,
    test: &DatasetSplit,
    norm: &Normalization,
    batch: usize,
    device: &Device,
) -> Result<(ModeReport, Evaluation, ModeReport), InferError> {
    let net = |m: &TrainedModel| -> Result<Network, InferError> {
        Ok(import_tensors(
            Network::new(&m.spec, device)?,
            &m.tensors,
            None,
        )?)
    };
    let original = net(model)?;
    let clock = Instant::now();
    let ev_o = evaluate(&original, test, norm, batch, None, device)?;
    let plain = ModeReport::plain(
        "plaintext",
        (vec![], vec![]),
        &ev_o,
        clock.elapsed().as_secs_f64(),
    );
    let ev_s = evaluate(
        &net(&separated(model, sel))?,
        test,
        norm,
        batch,
        None,
        device,
    )?;
    let [c1, c2] = sel.channels;
    let masks = ChannelMasks::removing(c1, &sel.layer1, c2, &sel.layer2, device);
    let clock = Instant::now();
    let ev_r = evaluate(&original, test, norm, batch, Some(&masks), device)?;
    let removed = ModeReport::plain(
        "remove",
        (sel.layer1.clone(), sel.layer2.clone()),
        &ev_r,
        clock.elapsed().as_secs_f64(),
    );
    Ok((plain, ev_s, removed))
}
