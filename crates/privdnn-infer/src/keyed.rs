//! The infer stage in user-keyed mode (`[he] mode = "user-keyed"`, files of
//! `privdnn-encrypt run` in that mode): the user (`privdnn_partial::keyed::KeyedUserSide`) and
//! the owner (`KeyedOwnerSide`) run in one process and pass only serialised messages
//! (`privdnn_artifacts::codec`). Images go in requests of at most `capacity()`; the decrypted
//! `z2` (and ResNet's layer-1 squares) enter `privdnn_model::RemainderNet` exactly as the
//! owner-keyed mode's unblinded outputs. The auditor reads the owner's block to compute the
//! integer shadow and counts the images whose outputs match it bit for bit.
//!
//! Every phase is measured alone ([`privdnn_artifacts::measure`]: wall, process CPU and the
//! phase's own peak memory, `VmHWM` reset before it), so owner and user costs are separate even
//! though both run here. The user's request phase includes serialising it, the owner's phase
//! decoding it, answering and serialising the reply, the user's finish decoding and decrypting.

use std::collections::BTreeMap;
use std::path::Path;

use privdnn_artifacts::{DatasetSplit, PhaseCost, RunLayout, measure, read_artifact};
use privdnn_he::engine::Layout;
use privdnn_model::RemainderNet;
use privdnn_model::burn::tensor::Device;
use privdnn_partial::SelectedOutputs;
use privdnn_partial::keyed::{
    KeyedModelFile, KeyedOwnerFile, KeyedOwnerSide, KeyedUserSide, UserKeyedReply, UserKeyedRequest,
};
use privdnn_partial::shadow_outputs;
use serde::Serialize;

use crate::InferError;
use crate::harness::accuracy_of;

/// Settings of one user-keyed run.
pub struct KeyedRun<'a> {
    /// Where the encrypt stage wrote the two files.
    pub paths: &'a RunLayout,
    /// Layout of the throughput run.
    pub layout: Layout,
    /// Measure one image end to end with the spatial layout (own keys for it).
    pub latency: bool,
    /// Burn device of the clear tail.
    pub device: Device,
}

/// Costs and accuracy of the user-keyed mode.
#[derive(Debug, Clone, Serialize)]
pub struct KeyedModeReport {
    /// `user-keyed`.
    pub mode: String,
    /// Layout of the throughput run.
    pub layout: Layout,
    /// Selected conv1 channels / conv2 filters.
    pub selection: (Vec<usize>, Vec<usize>),
    /// Images evaluated.
    pub images: usize,
    /// Images one request holds.
    pub capacity: usize,
    /// Requests of the throughput run.
    pub calls: usize,
    /// Top-1 accuracy (%) with the decrypted outputs.
    pub accuracy: f64,
    /// Accuracy (%) with the integer shadow's outputs.
    pub quantised_accuracy: f64,
    /// Fraction of images whose decrypted outputs equal the shadow exactly.
    pub exact_match_rate: f64,
    /// Images whose prediction equals the shadow's.
    pub same_predictions_as_shadow: usize,
    /// Every phase: `owner_load`, `user_keygen`, `user_request`, `owner_answer`,
    /// `user_finish`, `plain_tail` (and `latency_*` for the single-image run).
    pub phases: BTreeMap<String, PhaseCost>,
    /// Owner CPU seconds per image (answering, amortised).
    pub owner_cpu_per_image_s: f64,
    /// User CPU seconds per image (key generation, requests, decryption; amortised; no tail).
    pub user_cpu_per_image_s: f64,
    /// Wall seconds per image of key generation + requests + answers + decryption.
    pub per_image_s: f64,
    /// Wall seconds of both parties for the whole run (loads, keys, protocol, tail).
    pub total_s: f64,
    /// One image end to end with the spatial layout (request, answer, decryption, tail),
    /// without its one-off key generation (`phases.latency_keygen`).
    pub latency_s: Option<f64>,
    /// Bytes of the user's model file (no encrypted weight in it).
    pub model_bytes: u64,
    /// Encrypted weights shipped: none in this mode.
    pub encrypted_weight_bytes: usize,
    /// Request bytes, user → owner (serialised; keys included in every request).
    pub bytes_user_to_owner: usize,
    /// Of which the user's keys.
    pub request_key_bytes: usize,
    /// Of which ciphertexts.
    pub request_ciphertext_bytes: usize,
    /// Reply bytes, owner → user (serialised).
    pub bytes_owner_to_user: usize,
    /// Largest phase peak of the user's phases (bytes).
    pub user_peak_rss_bytes: u64,
    /// Largest phase peak of the owner's phases (bytes).
    pub owner_peak_rss_bytes: u64,
}

/// Byte totals of the throughput run.
#[derive(Default)]
struct Traffic {
    up: usize,
    keys: usize,
    ciphertexts: usize,
    down: usize,
    calls: usize,
}

/// Accuracy and audit of the throughput run, and the single-image latency.
struct Quality {
    accuracy: f64,
    quantised: f64,
    exact: usize,
    same: usize,
    latency_s: Option<f64>,
}

fn add(phases: &mut BTreeMap<String, PhaseCost>, name: &str, cost: PhaseCost) {
    phases.entry(name.to_string()).or_default().add(cost);
}

/// One request through both roles as bytes; the costs go to `phases` under `prefix`.
fn round_trip(
    user: &KeyedUserSide,
    owner: &KeyedOwnerSide,
    raw: &[&[u8]],
    phases: &mut BTreeMap<String, PhaseCost>,
    prefix: &str,
    traffic: &mut Traffic,
) -> Result<SelectedOutputs, InferError> {
    let mut rng = rand::rng();
    let (sent, cost) = measure(|| -> Result<_, InferError> {
        let (request, pending) = user.request(raw, &mut rng)?;
        traffic.keys += request.key_bytes();
        traffic.ciphertexts += request.ciphertext_bytes();
        Ok((privdnn_artifacts::codec::encode(&request)?, pending))
    });
    add(phases, &format!("{prefix}user_request"), cost);
    let (bytes, pending) = sent?;
    traffic.up += bytes.len();
    // The owner frees the received bytes once decoded, as a server would.
    let (reply, cost) = measure(move || -> Result<Vec<u8>, InferError> {
        let request: UserKeyedRequest = privdnn_artifacts::codec::decode(&bytes, "keyed request")?;
        drop(bytes);
        let reply = owner.answer(&request, &mut rand::rng())?;
        Ok(privdnn_artifacts::codec::encode(&reply)?)
    });
    add(phases, &format!("{prefix}owner_answer"), cost);
    let reply = reply?;
    traffic.down += reply.len();
    traffic.calls += 1;
    let (out, cost) = measure(|| -> Result<SelectedOutputs, InferError> {
        let reply: UserKeyedReply = privdnn_artifacts::codec::decode(&reply, "keyed reply")?;
        Ok(user.finish(&pending, &reply)?)
    });
    add(phases, &format!("{prefix}user_finish"), cost);
    out
}

/// One image end to end with the spatial layout (its own keys), checked against the shadow.
fn latency(
    run: &KeyedRun<'_>,
    owner: &KeyedOwnerSide,
    tail: &RemainderNet,
    test: &DatasetSplit,
    index: usize,
    shadow_first: &SelectedOutputs,
    phases: &mut BTreeMap<String, PhaseCost>,
) -> Result<f64, InferError> {
    let file: KeyedModelFile = read_artifact(&run.paths.keyed_model())?;
    let (user, cost) = measure(|| KeyedUserSide::new(file, Layout::Spatial, &mut rand::rng()));
    add(phases, "latency_keygen", cost);
    let user = user?;
    let mut traffic = Traffic::default();
    let out = round_trip(
        &user,
        owner,
        &[test.image(index)],
        phases,
        "latency_",
        &mut traffic,
    )?;
    let (logits, cost) = measure(|| tail.logits(test, &[index], &user.injection(&out)));
    add(phases, "latency_plain_tail", cost);
    logits?;
    if out.z.first() != shadow_first.z.first() || out.a1.first() != shadow_first.a1.first() {
        return Err(InferError::Mismatch(
            "single-image spatial run differs from the shadow".into(),
        ));
    }
    Ok(
        ["user_request", "owner_answer", "user_finish", "plain_tail"]
            .iter()
            .filter_map(|k| phases.get(&format!("latency_{k}")))
            .map(|c| c.wall_s)
            .sum(),
    )
}

/// Runs the user-keyed mode over `indices` of `test`.
pub fn run_keyed(
    run: &KeyedRun<'_>,
    test: &DatasetSplit,
    indices: &[usize],
) -> Result<KeyedModeReport, InferError> {
    let mut phases = BTreeMap::new();
    let (owner, cost) = measure(|| KeyedOwnerSide::load(&run.paths.keyed_owner_block()));
    add(&mut phases, "owner_load", cost);
    let owner = owner?;
    let (user, cost) = measure(|| -> Result<_, InferError> {
        let user = KeyedUserSide::load(&run.paths.keyed_model(), run.layout, &mut rand::rng())?;
        let tail = RemainderNet::new(&user.remainder, run.device.clone())?;
        Ok((user, tail))
    });
    add(&mut phases, "user_keygen", cost);
    let (user, tail) = user?;
    let capacity = user.capacity()?;
    let mut traffic = Traffic::default();
    let mut he = SelectedOutputs::default();
    for chunk in indices.chunks(capacity) {
        let raw: Vec<&[u8]> = chunk.iter().map(|&i| test.image(i)).collect();
        he.extend(round_trip(
            &user,
            &owner,
            &raw,
            &mut phases,
            "",
            &mut traffic,
        )?);
        log::info!("user-keyed: {} / {} images", he.z.len(), indices.len());
    }
    let labels: Vec<u16> = indices.iter().map(|&i| test.labels[i]).collect();
    let (logits, cost) = measure(|| tail.logits(test, indices, &user.injection(&he)));
    add(&mut phases, "plain_tail", cost);
    let (ev, preds) = accuracy_of(&logits?, &labels, test.num_classes());
    // Auditor: the shadow from the owner's block (outside the protocol).
    let block: KeyedOwnerFile = read_artifact(&run.paths.keyed_owner_block())?;
    let raw: Vec<&[u8]> = indices.iter().map(|&i| test.image(i)).collect();
    let shadow = shadow_outputs(&block.block, &user.selection, &raw, block.layer1);
    let exact = (0..indices.len())
        .filter(|&n| he.z[n] == shadow.z[n] && (he.a1.is_empty() || he.a1[n] == shadow.a1[n]))
        .count();
    let shadow_logits = tail.logits(test, indices, &user.injection(&shadow))?;
    let (shadow_ev, shadow_preds) = accuracy_of(&shadow_logits, &labels, test.num_classes());
    let same = preds
        .iter()
        .zip(&shadow_preds)
        .filter(|(a, b)| a == b)
        .count();
    let latency_s = match indices.first() {
        Some(&first) if run.latency => {
            let first_shadow = SelectedOutputs {
                z: shadow.z.iter().take(1).cloned().collect(),
                a1: shadow.a1.iter().take(1).cloned().collect(),
            };
            Some(latency(
                run,
                &owner,
                &tail,
                test,
                first,
                &first_shadow,
                &mut phases,
            )?)
        }
        _ => None,
    };
    let quality = Quality {
        accuracy: ev.accuracy(),
        quantised: shadow_ev.accuracy(),
        exact,
        same,
        latency_s,
    };
    Ok(report(
        run,
        &user,
        indices.len(),
        capacity,
        phases,
        traffic,
        quality,
    ))
}

/// Assembles the report from the measured phases.
fn report(
    run: &KeyedRun<'_>,
    user: &KeyedUserSide,
    n: usize,
    capacity: usize,
    phases: BTreeMap<String, PhaseCost>,
    traffic: Traffic,
    q: Quality,
) -> KeyedModeReport {
    let get = |k: &str| phases.get(k).copied().unwrap_or_default();
    let user_phases = ["user_keygen", "user_request", "user_finish"].map(get);
    let owner_phases = ["owner_load", "owner_answer"].map(get);
    let per = n.max(1) as f64;
    let protocol_wall: f64 =
        user_phases.iter().map(|c| c.wall_s).sum::<f64>() + get("owner_answer").wall_s;
    let file_len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    KeyedModeReport {
        mode: "user-keyed".to_string(),
        layout: run.layout,
        selection: (user.selection.layer1.clone(), user.selection.layer2.clone()),
        images: n,
        capacity,
        calls: traffic.calls,
        accuracy: q.accuracy,
        quantised_accuracy: q.quantised,
        exact_match_rate: q.exact as f64 / per,
        same_predictions_as_shadow: q.same,
        owner_cpu_per_image_s: get("owner_answer").cpu_s / per,
        user_cpu_per_image_s: user_phases.iter().map(|c| c.cpu_s).sum::<f64>() / per,
        per_image_s: protocol_wall / per,
        total_s: protocol_wall + get("owner_load").wall_s + get("plain_tail").wall_s,
        latency_s: q.latency_s,
        model_bytes: file_len(&run.paths.keyed_model()),
        encrypted_weight_bytes: 0,
        bytes_user_to_owner: traffic.up,
        request_key_bytes: traffic.keys,
        request_ciphertext_bytes: traffic.ciphertexts,
        bytes_owner_to_user: traffic.down,
        user_peak_rss_bytes: user_phases
            .iter()
            .map(|c| c.peak_rss_bytes)
            .max()
            .unwrap_or(0),
        owner_peak_rss_bytes: owner_phases
            .iter()
            .map(|c| c.peak_rss_bytes)
            .max()
            .unwrap_or(0),
        phases,
    }
}

/// The infer stage's `metrics.json` in user-keyed mode.
#[derive(Debug, Serialize)]
pub struct KeyedInferReport {
    /// Pipeline.
    pub pipeline: String,
    /// Profile.
    pub profile: String,
    /// Threads rayon used.
    pub threads: usize,
    /// The user-keyed mode's report (a list, like the owner-keyed report's `mode_reports`).
    pub mode_reports: Vec<KeyedModeReport>,
    /// The owner-keyed `separate` record of the same run (`<run>/infer/metrics.json`), when it
    /// exists, for the side-by-side table.
    pub owner_keyed: Option<serde_json::Value>,
    /// Peak resident memory of the whole run (both parties in one process): the largest phase
    /// peak (the phases reset `VmHWM`, so the kernel's own process peak is not kept).
    pub peak_rss_bytes: u64,
    /// Wall time of the stage.
    pub wall_s: f64,
}

/// `privdnn-infer run` when `he.mode = "user-keyed"`: writes `<out>/infer/{metrics.json,
/// summary.md}` (`<out>` = the run folder or its `--variant` folder).
pub fn run_stage(
    common: &crate::cli::Common,
    cfg: &privdnn_config::ResolvedConfig,
    started: std::time::Instant,
) -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context as _;
    let run_dir = cfg.results_dir(&common.target.root.join("results"));
    let paths = RunLayout::new(&run_dir).with_variant(common.variant.as_deref());
    let file: KeyedModelFile = read_artifact(&paths.keyed_model())?;
    let layout = privdnn_partial::keyed::layout_for(file.remainder.spec.architecture);
    drop(file);
    let (splits, _) = privdnn_data::load_splits(&common.target.root, &cfg.pipeline)?;
    let wanted = common.images.unwrap_or(cfg.pipeline.he.images);
    let n = match wanted {
        0 => splits.test.len(),
        w => w.min(splits.test.len()),
    };
    let indices: Vec<usize> = (0..n).collect();
    log::info!(
        "infer {} (user-keyed, {layout:?}): {n} test images",
        cfg.pipeline.name
    );
    let run = KeyedRun {
        paths: &paths,
        layout,
        latency: cfg.pipeline.he.latency,
        device: privdnn_model::backend_device(cfg.pipeline.train.backend, false)?,
    };
    let keyed = run_keyed(&run, &splits.test, &indices).context("user-keyed mode")?;
    let keyed_peaks: Vec<u64> = keyed.phases.values().map(|c| c.peak_rss_bytes).collect();
    let owner_keyed =
        std::fs::read_to_string(RunLayout::new(&run_dir).infer_dir().join("metrics.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| {
                v.get("mode_reports")?
                    .as_array()?
                    .iter()
                    .find(|m| m.get("mode").and_then(|s| s.as_str()) == Some("separate"))
                    .cloned()
            });
    let report = KeyedInferReport {
        pipeline: cfg.pipeline.name.clone(),
        profile: cfg.profile.clone(),
        threads: rayon::current_num_threads(),
        mode_reports: vec![keyed],
        owner_keyed,
        peak_rss_bytes: report_peak(&keyed_peaks),
        wall_s: started.elapsed().as_secs_f64(),
    };
    let metrics = paths.infer_dir().join("metrics.json");
    privdnn_artifacts::write_json_atomic(&metrics, &report)?;
    let text = summary(&report);
    privdnn_artifacts::write_bytes_atomic(&paths.infer_dir().join("summary.md"), text.as_bytes())?;
    println!("{text}");
    Ok(metrics)
}

fn report_peak(phases: &[u64]) -> u64 {
    phases.iter().copied().max().unwrap_or(0)
}

fn mb(b: f64) -> String {
    format!("{:.2}", b / 1e6)
}

/// Markdown summary: the user-keyed phases and, when the owner-keyed report exists, both modes
/// side by side.
pub fn summary(r: &KeyedInferReport) -> String {
    let mut s = format!(
        "# Encrypted inference, user-keyed mode: {} ({})\n\n{} threads; both parties in one \
         process, peak memory {} MB (per party below: each phase's own peak).\n\n",
        r.pipeline,
        r.profile,
        r.threads,
        mb(r.peak_rss_bytes as f64)
    );
    s += "| mode | images | accuracy % | exact | per image s | owner CPU/img s | user CPU/img s | \
          latency s | user→owner MB | owner→user MB | user peak MB | owner peak MB |\n";
    s += "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    if let Some(o) = &r.owner_keyed {
        let f = |k: &str| o.get(k).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
        let phase = |k: &str| {
            o.get("phases_s")
                .and_then(|p| p.get(k))
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0)
        };
        let n = f("images").max(1.0);
        s += &format!(
            "| owner-keyed (separate) | {} | {:.2} | {:.2}% | {:.5} | {:.5} (decrypt, wall) | \
             {:.5} (HE eval + unblind, wall) | {:.2} | {} | {} | {} (process) | – |\n",
            f("images"),
            f("accuracy"),
            100.0 * f("exact_match_rate"),
            f("per_image_s"),
            phase("owner_decrypt") / n,
            (phase("user_he_eval") + phase("user_unblind")) / n,
            f("latency_s"),
            mb(f("bytes_user_to_owner")),
            mb(f("bytes_owner_to_user")),
            mb(f("peak_rss_bytes")),
        );
    }
    for m in &r.mode_reports {
        s += &format!(
            "| user-keyed ({:?}) | {} | {:.2} | {:.2}% | {:.5} | {:.5} | {:.5} | {} | {} | {} | {} \
             | {} |\n",
            m.layout,
            m.images,
            m.accuracy,
            100.0 * m.exact_match_rate,
            m.per_image_s,
            m.owner_cpu_per_image_s,
            m.user_cpu_per_image_s,
            m.latency_s.map_or("–".into(), |v| format!("{v:.2}")),
            mb(m.bytes_user_to_owner as f64),
            mb(m.bytes_owner_to_user as f64),
            mb(m.user_peak_rss_bytes as f64),
            mb(m.owner_peak_rss_bytes as f64),
        );
    }
    for m in &r.mode_reports {
        s += &format!(
            "\n## user-keyed phases\n\n{} requests of at most {} images; request keys {} MB, \
             ciphertexts {} MB; model file {} MB, no encrypted weight; total both parties {:.2} s.\n\n\
             | phase | wall s | CPU s | peak MB |\n|---|---|---|---|\n",
            m.calls,
            m.capacity,
            mb(m.request_key_bytes as f64),
            mb(m.request_ciphertext_bytes as f64),
            mb(m.model_bytes as f64),
            m.total_s
        );
        for (k, c) in &m.phases {
            s += &format!(
                "| {k} | {:.2} | {:.2} | {} |\n",
                c.wall_s,
                c.cpu_s,
                mb(c.peak_rss_bytes as f64)
            );
        }
    }
    s
}
