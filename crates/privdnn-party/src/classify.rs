//! Classification through the owner: the user's images (a split, a split file or an image
//! folder) are evaluated under HE in requests of at most one call's capacity, each sent for
//! blinded decryption over a [`Client`] connection, unblinded and finished in clear; the
//! report counts every byte and times every phase (`results/<run>/party/client.json`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use privdnn_artifacts::DatasetSplit;
use privdnn_he::engine::Layout;
use privdnn_he::ops::OpCounter;
use privdnn_he::protocol::Reply;
use privdnn_model::RemainderNet;
use privdnn_model::burn::tensor::Device;
use privdnn_partial::user::UserSide;
use serde::Serialize;

use crate::PartyError;
use crate::client::{Client, Download, Traffic, fetch_model};
use crate::wire::Limits;

/// Where the images come from.
#[derive(Debug, Clone)]
pub enum ImageSource {
    /// An in-memory split (e.g. a pipeline's test split), with a label for the report.
    Split(DatasetSplit, String),
    /// A dataset split file (`data/<dataset>-<size>/test.bin`, a `DatasetSplit` artifact).
    File(PathBuf),
    /// An image folder `dir/<class>/*.png|jpg`; labels count when every class name is a number.
    Folder(PathBuf),
}

/// Which layout the client evaluates with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LayoutChoice {
    /// Spatial when all images fit in one spatial call (few images: small requests, low
    /// latency), otherwise the fallback.
    Auto(Layout),
    /// Always this one.
    Fixed(Layout),
}

/// Settings of a classification run.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Owner address.
    pub server: String,
    /// Cache folder of the two user files.
    pub cache_dir: PathBuf,
    /// Layout.
    pub layout: LayoutChoice,
    /// Images per request (0 = as many as one call holds).
    pub batch: usize,
    /// First image of the source.
    pub offset: usize,
    /// Images (0 = all from `offset`).
    pub count: usize,
    /// Headroom for the output level (`he.headroom_bits`).
    pub headroom_bits: f64,
    /// Frame limits; `idle_timeout` bounds the wait for each answer.
    pub limits: Limits,
    /// Connection timeout.
    pub connect_timeout: Duration,
    /// Keep the logits in the report.
    pub keep_logits: bool,
}

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
    /// User HE evaluation + blinding.
    pub he_eval_s: f64,
    /// Send, owner decryption, receive.
    pub round_trip_s: f64,
    /// The owner's own decryption time (reported by the owner).
    pub owner_decrypt_s: f64,
    /// Unblinding and CRT recombination.
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
    /// Seconds per phase.
    pub phases_s: BTreeMap<String, f64>,
    /// Mean batch latency (images in → predictions out).
    pub mean_batch_latency_s: f64,
    /// Inference seconds per image (batches only, amortised).
    pub per_image_s: f64,
    /// Whole run: connect, download, model load and expansion, every batch.
    pub end_to_end_s: f64,
    /// Peak resident memory of the client process.
    pub peak_rss_bytes: u64,
}

struct Images {
    split: DatasetSplit,
    labelled: bool,
    source: String,
}

fn load_images(
    source: &ImageSource,
    size: usize,
    channels: usize,
    classes: usize,
) -> Result<Images, PartyError> {
    Ok(match source {
        ImageSource::Split(split, label) => Images {
            split: split.clone(),
            labelled: true,
            source: label.clone(),
        },
        ImageSource::File(path) => Images {
            split: privdnn_artifacts::read_artifact(path)?,
            labelled: true,
            source: path.display().to_string(),
        },
        ImageSource::Folder(dir) => {
            let li = privdnn_data::read_image_folder(dir, size, channels)?;
            let numeric: Option<Vec<u16>> = li
                .class_names
                .iter()
                .map(|c| c.parse::<u16>().ok().filter(|&l| (l as usize) < classes))
                .collect();
            let labelled = numeric.is_some();
            let labels = match &numeric {
                Some(map) => li.labels.iter().map(|&l| map[l as usize]).collect(),
                None => li.labels.clone(),
            };
            let split = DatasetSplit {
                dataset: "folder".into(),
                split: dir.display().to_string(),
                channels,
                height: size,
                width: size,
                class_names: (0..classes).map(|c| c.to_string()).collect(),
                labels,
                images: li.images,
            };
            Images {
                split,
                labelled,
                source: dir.display().to_string(),
            }
        }
    })
}

/// Index of the largest value of each row.
pub fn argmax_rows(logits: &[f32], classes: usize) -> Vec<usize> {
    logits
        .chunks(classes.max(1))
        .map(|row| {
            row.iter()
                .enumerate()
                .fold(0, |best, (i, v)| if *v > row[best] { i } else { best })
        })
        .collect()
}

/// One request's worth of work, timed by phase.
struct Batch {
    report: BatchReport,
    logits: Vec<f32>,
}

/// Evaluates, sends, unblinds and finishes one chunk of images.
fn run_batch(
    client: &mut Client,
    (user, tail): (&UserSide, &RemainderNet),
    split: &DatasetSplit,
    chunk: &[usize],
    layout: Layout,
    ops: &OpCounter,
) -> Result<Batch, PartyError> {
    let classes = user.file.remainder.spec.num_classes;
    let before = client.traffic();
    let t0 = Instant::now();
    let raw: Vec<&[u8]> = chunk.iter().map(|&i| split.image(i)).collect();
    let (request, pending) = user.request(layout, &raw, ops, &|_| {}, &mut rand::rng())?;
    let request_bytes = request.len();
    let t1 = Instant::now();
    let reply = client.decrypt(request)?;
    let t2 = Instant::now();
    // Decoded once, its allocations bounded by its own length; the role takes it typed.
    let typed: Reply = privdnn_net::decode_bounded(&reply.reply, "decryption reply")?;
    let outputs = user.finish_reply(&typed, pending)?;
    let t3 = Instant::now();
    let logits = tail.logits(split, chunk, &user.injection(&outputs))?;
    if logits.len() != chunk.len() * classes {
        return Err(PartyError::Internal(format!(
            "{} logits for {} images",
            logits.len(),
            chunk.len()
        )));
    }
    let t4 = Instant::now();
    let report = BatchReport {
        images: chunk.len(),
        request_bytes,
        reply_bytes: reply.reply.len(),
        traffic: client.traffic().since(&before),
        he_eval_s: (t1 - t0).as_secs_f64(),
        round_trip_s: (t2 - t1).as_secs_f64(),
        owner_decrypt_s: reply.owner_seconds,
        unblind_s: (t3 - t2).as_secs_f64(),
        tail_s: (t4 - t3).as_secs_f64(),
        latency_s: (t4 - t0).as_secs_f64(),
    };
    log::info!(
        "batch of {}: {} B up, {} B down, HE {:.2} s, round trip {:.2} s (owner {:.2} s), latency {:.2} s",
        report.images,
        report.traffic.bytes_sent,
        report.traffic.bytes_received,
        report.he_eval_s,
        report.round_trip_s,
        report.owner_decrypt_s,
        report.latency_s
    );
    Ok(Batch { report, logits })
}

/// The image indices `cfg` asks for, checked against the split and the model's input shape.
fn select_images(
    cfg: &ClientConfig,
    split: &DatasetSplit,
    spec: &privdnn_artifacts::ModelSpec,
) -> Result<Vec<usize>, PartyError> {
    if split.channels != spec.in_channels
        || split.height != spec.image_size
        || split.width != spec.image_size
    {
        return Err(PartyError::Usage(format!(
            "images are {}×{}×{}, the model takes {}×{}×{}",
            split.channels,
            split.height,
            split.width,
            spec.in_channels,
            spec.image_size,
            spec.image_size
        )));
    }
    let end = if cfg.count == 0 {
        split.len()
    } else {
        (cfg.offset + cfg.count).min(split.len())
    };
    if cfg.offset >= end {
        return Err(PartyError::Usage(format!(
            "no image selected ({} images, offset {})",
            split.len(),
            cfg.offset
        )));
    }
    Ok((cfg.offset..end).collect())
}

/// The layout and the images per request.
fn choose_layout(
    cfg: &ClientConfig,
    user: &UserSide,
    n: usize,
) -> Result<(Layout, usize), PartyError> {
    let layout = match cfg.layout {
        LayoutChoice::Fixed(l) => l,
        LayoutChoice::Auto(fallback) => match user.capacity(Layout::Spatial) {
            Ok(cap) if n <= cap => Layout::Spatial,
            _ => fallback,
        },
    };
    let cap = user.capacity(layout)?;
    let batch = if cfg.batch == 0 {
        cap
    } else {
        cfg.batch.min(cap)
    };
    Ok((layout, batch))
}

/// Downloads the model if needed and classifies the images through the owner.
pub fn classify(
    cfg: &ClientConfig,
    source: &ImageSource,
    device: Device,
) -> Result<ClientReport, PartyError> {
    let started = Instant::now();
    let mut phases = BTreeMap::new();
    let mut client = Client::connect(&cfg.server, cfg.limits, cfg.connect_timeout)?;
    let download = fetch_model(&mut client, &cfg.cache_dir)?;
    phases.insert(
        "connect_download".to_string(),
        started.elapsed().as_secs_f64(),
    );
    log::info!(
        "model `{}`: {} (downloaded {} bytes)",
        download.label,
        if download.downloaded.is_empty() {
            "cached"
        } else {
            "downloaded"
        },
        download.file_bytes
    );
    let clock = Instant::now();
    let ops = OpCounter::default();
    let user = UserSide::load(&download.model, &download.keys, cfg.headroom_bits, &ops)?;
    let tail = RemainderNet::new(user.remainder(), device)?;
    phases.insert(
        "user_load_expand".to_string(),
        clock.elapsed().as_secs_f64(),
    );
    let spec = user.file.remainder.spec.clone();
    let images = load_images(source, spec.image_size, spec.in_channels, spec.num_classes)?;
    let split = &images.split;
    let indices = select_images(cfg, split, &spec)?;
    let n = indices.len();
    let (layout, batch) = choose_layout(cfg, &user, n)?;
    let inference_start = client.traffic();
    let (mut predictions, mut all_logits, mut batches) =
        (Vec::with_capacity(n), Vec::new(), Vec::new());
    for chunk in indices.chunks(batch) {
        let b = run_batch(&mut client, (&user, &tail), split, chunk, layout, &ops)?;
        predictions.extend(argmax_rows(&b.logits, spec.num_classes));
        if cfg.keep_logits {
            all_logits.extend_from_slice(&b.logits);
        }
        batches.push(b.report);
    }
    let sum = |f: fn(&BatchReport) -> f64| batches.iter().map(f).sum::<f64>();
    for (name, f) in [
        (
            "user_he_eval",
            (|b: &BatchReport| b.he_eval_s) as fn(&BatchReport) -> f64,
        ),
        ("round_trip", |b| b.round_trip_s),
        ("owner_decrypt", |b| b.owner_decrypt_s),
        ("user_unblind", |b| b.unblind_s),
        ("plain_tail", |b| b.tail_s),
    ] {
        phases.insert(name.to_string(), sum(f));
    }
    let inference = client.traffic().since(&inference_start);
    let latency_total = sum(|b| b.latency_s);
    let labels: Option<Vec<u16>> = images
        .labelled
        .then(|| indices.iter().map(|&i| split.labels[i]).collect());
    let correct = labels.as_ref().map(|l| {
        l.iter()
            .zip(&predictions)
            .filter(|(a, b)| **a as usize == **b)
            .count()
    });
    let nb = batches.len().max(1) as f64;
    Ok(ClientReport {
        server: cfg.server.clone(),
        model: download.label.clone(),
        source: images.source.clone(),
        images: n,
        layout,
        batch_size: batch,
        accuracy: correct.map(|c| 100.0 * c as f64 / n as f64),
        correct,
        labels,
        predictions,
        logits: cfg.keep_logits.then_some(all_logits),
        download,
        inference: InferenceTraffic {
            traffic: inference,
            bytes_sent_per_image: inference.bytes_sent as f64 / n as f64,
            bytes_received_per_image: inference.bytes_received as f64 / n as f64,
            bytes_sent_per_batch: inference.bytes_sent as f64 / nb,
            bytes_received_per_batch: inference.bytes_received as f64 / nb,
        },
        total: client.traffic(),
        mean_batch_latency_s: latency_total / nb,
        per_image_s: latency_total / n as f64,
        batches,
        phases_s: phases,
        end_to_end_s: started.elapsed().as_secs_f64(),
        peak_rss_bytes: privdnn_artifacts::peak_rss_bytes(),
    })
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
    let d = &r.download;
    s += &format!(
        "model `{}` from {}: {}, {} round trips, {} B sent, {} B received, {:.2} s\n",
        r.model,
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
        "latency: {:.2} s per batch (HE {:.2} s, round trip {:.2} s of which owner {:.2} s), {:.3} s per image; \
         end to end {:.2} s (model load + expansion {:.2} s)\n",
        r.mean_batch_latency_s,
        r.phases_s.get("user_he_eval").copied().unwrap_or(0.0) / r.batches.len().max(1) as f64,
        r.phases_s.get("round_trip").copied().unwrap_or(0.0) / r.batches.len().max(1) as f64,
        r.phases_s.get("owner_decrypt").copied().unwrap_or(0.0) / r.batches.len().max(1) as f64,
        r.per_image_s,
        r.end_to_end_s,
        r.phases_s.get("user_load_expand").copied().unwrap_or(0.0)
    );
    s
}
