//! Classification through the owner: the user's images (a split, a split file or an image
//! folder) go in requests of at most one call's capacity over a [`Client`] connection and are
//! finished in clear; the report counts every byte and times every phase
//! (`results/<run>/party/client.json`). The mode is the one the owner serves (or `--mode`):
//! owner-keyed here (the user evaluates under HE, the owner decrypts blinded outputs),
//! user-keyed in [`crate::classify_keyed`] (the user encrypts under its own keys, the owner
//! evaluates). Both build the same [`ClientReport`] through [`Run`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use privdnn_artifacts::DatasetSplit;
use privdnn_config::HeMode;
use privdnn_he::engine::Layout;
use privdnn_he::ops::OpCounter;
use privdnn_he::protocol::Reply;
use privdnn_model::RemainderNet;
use privdnn_model::burn::tensor::Device;
use privdnn_partial::user::UserSide;

use crate::PartyError;
use crate::client::{Client, Download, Traffic, fetch};
pub use crate::report::{BatchReport, ClientReport, InferenceTraffic, ShadowCheck, summary};
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
    /// TLS 1.3 with this user's certificate (`--ca/--cert/--key`); `None`: plain TCP (only an
    /// owner started with `--insecure` answers).
    pub tls: Option<privdnn_net::TlsClient>,
    /// Keep the logits in the report.
    pub keep_logits: bool,
    /// The mode the owner must serve (`None`: whichever it serves).
    pub mode: Option<HeMode>,
    /// Measurement only, user-keyed mode: the owner's `keyed_block.bin`, to compare the
    /// decrypted outputs and the predictions with the integer shadow (a real user never has it).
    pub audit_owner_block: Option<PathBuf>,
}

/// The images of a run.
pub(crate) struct Images {
    pub(crate) split: DatasetSplit,
    pub(crate) labelled: bool,
    pub(crate) source: String,
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
pub(crate) struct Batch {
    pub(crate) report: BatchReport,
    pub(crate) logits: Vec<f32>,
}

/// The user's clear remainder on `chunk` with the block's outputs injected: `classes` logits
/// per image, checked.
pub(crate) fn clear_tail(
    tail: &RemainderNet,
    split: &DatasetSplit,
    chunk: &[usize],
    injection: &privdnn_he::block::Injection<'_>,
    classes: usize,
) -> Result<Vec<f32>, PartyError> {
    let logits = tail.logits(split, chunk, injection)?;
    if logits.len() != chunk.len() * classes {
        return Err(PartyError::Internal(format!(
            "{} logits for {} images",
            logits.len(),
            chunk.len()
        )));
    }
    Ok(logits)
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
    let logits = clear_tail(tail, split, chunk, &user.injection(&outputs), classes)?;
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
pub(crate) fn select_images(
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

/// Downloads the model if needed and classifies the images through the owner, in the mode
/// the owner serves ([`ClientConfig::mode`] to insist on one).
pub fn classify(
    cfg: &ClientConfig,
    source: &ImageSource,
    device: Device,
) -> Result<ClientReport, PartyError> {
    let mut run = Run::start(cfg)?;
    match run.download.mode {
        HeMode::OwnerKeyed => owner_keyed(&mut run, source, device),
        HeMode::UserKeyed => crate::classify_keyed::classify_keyed(&mut run, source, device),
    }
}

/// The owner-keyed classification: HE evaluation here, blinded decryption at the owner.
fn owner_keyed(
    run: &mut Run<'_>,
    source: &ImageSource,
    device: Device,
) -> Result<ClientReport, PartyError> {
    let clock = Instant::now();
    let ops = OpCounter::default();
    let keys = run.download.keys.clone().ok_or_else(|| {
        PartyError::Internal("an owner-keyed download without evaluation keys".into())
    })?;
    let user = UserSide::load(&run.download.model, &keys, run.cfg.headroom_bits, &ops)?;
    let tail = RemainderNet::new(user.remainder(), device)?;
    run.phase("user_load_expand", clock);
    let spec = user.file.remainder.spec.clone();
    let (images, indices) = run.images(source, &spec)?;
    let (layout, batch) = choose_layout(run.cfg, &user, indices.len())?;
    let mut batches = Vec::new();
    for chunk in indices.chunks(batch) {
        batches.push(run_batch(
            &mut run.client,
            (&user, &tail),
            &images.split,
            chunk,
            layout,
            &ops,
        )?);
    }
    Ok(run.report(&images, &indices, (layout, batch), batches, None))
}

/// A classification run of either mode: the connection, the download, the phase clocks.
pub(crate) struct Run<'a> {
    pub(crate) cfg: &'a ClientConfig,
    pub(crate) client: Client,
    pub(crate) download: Download,
    started: Instant,
    phases: BTreeMap<String, f64>,
    inference_start: Traffic,
    classes: usize,
}

impl<'a> Run<'a> {
    /// Connects and fetches the files of the mode the owner serves.
    fn start(cfg: &'a ClientConfig) -> Result<Self, PartyError> {
        let started = Instant::now();
        let mut client = Client::connect_with(
            &cfg.server,
            cfg.limits,
            cfg.connect_timeout,
            cfg.tls.as_ref(),
        )?;
        let download = fetch(&mut client, &cfg.cache_dir, cfg.mode)?;
        log::info!(
            "model `{}` ({}): {} (downloaded {} bytes)",
            download.label,
            download.mode.name(),
            if download.downloaded.is_empty() {
                "cached"
            } else {
                "downloaded"
            },
            download.file_bytes
        );
        let mut run = Self {
            cfg,
            client,
            download,
            started,
            phases: BTreeMap::new(),
            inference_start: Traffic::default(),
            classes: 1,
        };
        run.phase("connect_download", started);
        Ok(run)
    }

    /// Records the seconds since `since` as phase `name`.
    pub(crate) fn phase(&mut self, name: &str, since: Instant) {
        self.phases
            .insert(name.to_string(), since.elapsed().as_secs_f64());
    }

    /// The images and the indices the config asks for; inference traffic counts from here.
    pub(crate) fn images(
        &mut self,
        source: &ImageSource,
        spec: &privdnn_artifacts::ModelSpec,
    ) -> Result<(Images, Vec<usize>), PartyError> {
        let images = load_images(source, spec.image_size, spec.in_channels, spec.num_classes)?;
        let indices = select_images(self.cfg, &images.split, spec)?;
        self.inference_start = self.client.traffic();
        self.classes = spec.num_classes;
        Ok((images, indices))
    }

    /// The report of the finished batches.
    pub(crate) fn report(
        &mut self,
        images: &Images,
        indices: &[usize],
        (layout, batch_size): (Layout, usize),
        done: Vec<Batch>,
        shadow: Option<ShadowCheck>,
    ) -> ClientReport {
        let (mut predictions, mut logits, mut batches) = (Vec::new(), Vec::new(), Vec::new());
        for b in done {
            predictions.extend(argmax_rows(&b.logits, self.classes));
            if self.cfg.keep_logits {
                logits.extend_from_slice(&b.logits);
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
            self.phases.insert(name.to_string(), sum(f));
        }
        let n = indices.len();
        let inference = self.client.traffic().since(&self.inference_start);
        let latency_total = sum(|b| b.latency_s);
        let labels: Option<Vec<u16>> = images
            .labelled
            .then(|| indices.iter().map(|&i| images.split.labels[i]).collect());
        let correct = labels.as_ref().map(|l| {
            l.iter()
                .zip(&predictions)
                .filter(|(a, b)| **a as usize == **b)
                .count()
        });
        let nb = batches.len().max(1) as f64;
        ClientReport {
            server: self.cfg.server.clone(),
            model: self.download.label.clone(),
            mode: self.download.mode,
            source: images.source.clone(),
            images: n,
            layout,
            batch_size,
            accuracy: correct.map(|c| 100.0 * c as f64 / n as f64),
            correct,
            labels,
            predictions,
            logits: self.cfg.keep_logits.then_some(logits),
            download: self.download.clone(),
            inference: InferenceTraffic {
                traffic: inference,
                bytes_sent_per_image: inference.bytes_sent as f64 / n as f64,
                bytes_received_per_image: inference.bytes_received as f64 / n as f64,
                bytes_sent_per_batch: inference.bytes_sent as f64 / nb,
                bytes_received_per_batch: inference.bytes_received as f64 / nb,
            },
            total: self.client.traffic(),
            mean_batch_latency_s: latency_total / nb,
            per_image_s: latency_total / n as f64,
            batches,
            phases_s: self.phases.clone(),
            end_to_end_s: self.started.elapsed().as_secs_f64(),
            peak_rss_bytes: privdnn_artifacts::peak_rss_bytes(),
            shadow,
        }
    }
}
