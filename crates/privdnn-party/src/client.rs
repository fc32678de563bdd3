//! The user client: connects to the owner, downloads the encrypted model and the public
//! evaluation keys once (cached, verified by size, SHA-256 and artifact kind), evaluates the
//! encrypted block on local images, sends the blinded results for decryption, unblinds the reply
//! and finishes the network in clear. Every byte on the connection is counted.
//!
//! This module never names the owner's key material; the protocol has no message that could
//! carry it, and the cache only ever holds the two user files (a test checks both, and greps
//! this file).

use std::collections::BTreeMap;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use privdnn_artifacts::{DatasetSplit, write_bytes_atomic};
use privdnn_he::engine::Layout;
use privdnn_he::ops::OpCounter;
use privdnn_he::protocol::Reply;
use privdnn_infer::user::UserSide;
use privdnn_model::burn::tensor::Device;
use serde::Serialize;

use crate::PartyError;
use crate::wire::{
    DecryptReply, DecryptRequest, FileId, Limits, Message, ServerStats, ServiceInfo,
    decode_bounded, has_artifact_kind, read_frame, sha256_hex, write_bytes,
};

/// Bytes and round trips on one connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Traffic {
    /// Bytes written (whole frames).
    pub bytes_sent: u64,
    /// Bytes read (whole frames).
    pub bytes_received: u64,
    /// Request/answer exchanges.
    pub round_trips: u64,
}

impl Traffic {
    /// Traffic since `earlier`.
    pub fn since(&self, earlier: &Traffic) -> Traffic {
        Traffic {
            bytes_sent: self.bytes_sent - earlier.bytes_sent,
            bytes_received: self.bytes_received - earlier.bytes_received,
            round_trips: self.round_trips - earlier.round_trips,
        }
    }
}

/// A connection to the owner service.
pub struct Client {
    stream: TcpStream,
    limits: Limits,
    traffic: Traffic,
    transcript: Option<Vec<Vec<u8>>>,
    next_id: u64,
}

impl Client {
    /// Connects to `addr` (`host:port`); `limits.idle_timeout` bounds the wait for each answer.
    pub fn connect(
        addr: &str,
        limits: Limits,
        connect_timeout: Duration,
    ) -> Result<Self, PartyError> {
        let addrs = addr
            .to_socket_addrs()
            .map_err(|e| PartyError::io(format!("resolving {addr}"), e))?;
        let mut last = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, connect_timeout) {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    stream
                        .set_write_timeout(Some(limits.write_timeout))
                        .map_err(|e| PartyError::io("setting the write timeout", e))?;
                    return Ok(Self {
                        stream,
                        limits,
                        traffic: Traffic::default(),
                        transcript: None,
                        next_id: 1,
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) => PartyError::io(
                format!("connecting to the owner at {addr} (is `privdnn-party serve` running?)"),
                e,
            ),
            None => PartyError::Usage(format!("{addr} resolves to no address")),
        })
    }

    /// Keeps a copy of every frame received from now on (tests: what did the user see?).
    pub fn record_transcript(&mut self) {
        self.transcript.get_or_insert_with(Vec::new);
    }

    /// The frames received since [`Client::record_transcript`].
    pub fn transcript(&self) -> &[Vec<u8>] {
        self.transcript.as_deref().unwrap_or(&[])
    }

    /// Traffic so far.
    pub fn traffic(&self) -> Traffic {
        self.traffic
    }

    /// Sends one message and returns the answer; an error frame becomes [`PartyError::Remote`].
    pub fn call(&mut self, msg: &Message) -> Result<Message, PartyError> {
        let frame = msg.to_frame()?;
        let sent = write_bytes(&mut self.stream, &frame);
        if sent.is_ok() {
            self.traffic.bytes_sent += frame.len() as u64;
        }
        // Even when the write failed, the owner may have explained why before closing.
        let answer = read_frame(&mut self.stream, &self.limits);
        let raw = match (answer, sent) {
            (Ok(Some(raw)), _) => raw,
            (Ok(None), Err(e)) | (Err(_), Err(e)) => return Err(e),
            (Ok(None), Ok(())) => return Err(PartyError::Closed("waiting for an answer")),
            (Err(e), Ok(())) => return Err(e),
        };
        self.traffic.bytes_received += raw.wire_len() as u64;
        self.traffic.round_trips += 1;
        if let Some(t) = self.transcript.as_mut() {
            let mut bytes = crate::wire::header(raw.kind, raw.payload.len() as u32).to_vec();
            bytes.extend_from_slice(&raw.payload);
            t.push(bytes);
        }
        match raw.message()? {
            Message::Error(e) => Err(PartyError::Remote {
                code: e.code,
                message: e.message,
            }),
            m => Ok(m),
        }
    }

    /// The service description.
    pub fn info(&mut self) -> Result<ServiceInfo, PartyError> {
        match self.call(&Message::GetInfo)? {
            Message::Info(i) => Ok(i),
            other => Err(PartyError::Unexpected {
                got: other.name(),
                expected: "info",
            }),
        }
    }

    /// One file's bytes.
    pub fn file(&mut self, id: FileId) -> Result<Vec<u8>, PartyError> {
        match self.call(&Message::GetFile(id))? {
            Message::File(f) if f.id == id => Ok(f.bytes),
            Message::File(_) => Err(PartyError::Unexpected {
                got: "file (another one)",
                expected: id.file_name(),
            }),
            other => Err(PartyError::Unexpected {
                got: other.name(),
                expected: "file",
            }),
        }
    }

    /// Sends a blinded request (bytes of `UserSide::request`) and returns the owner's answer.
    pub fn decrypt(&mut self, request: Vec<u8>) -> Result<DecryptReply, PartyError> {
        let id = self.next_id;
        self.next_id += 1;
        match self.call(&Message::Decrypt(DecryptRequest { id, request }))? {
            Message::Decrypted(r) if r.id == id => Ok(r),
            Message::Decrypted(r) => Err(PartyError::Unexpected {
                got: if r.id < id {
                    "stale answer"
                } else {
                    "answer to another request"
                },
                expected: "decrypted",
            }),
            other => Err(PartyError::Unexpected {
                got: other.name(),
                expected: "decrypted",
            }),
        }
    }

    /// The owner's counters.
    pub fn stats(&mut self) -> Result<ServerStats, PartyError> {
        match self.call(&Message::GetStats)? {
            Message::Stats(s) => Ok(s),
            other => Err(PartyError::Unexpected {
                got: other.name(),
                expected: "stats",
            }),
        }
    }
}

/// The two user files, in the cache.
#[derive(Debug, Clone, Serialize)]
pub struct Download {
    /// Cached encrypted model.
    pub model: PathBuf,
    /// Cached evaluation keys.
    pub keys: PathBuf,
    /// Label of the owner's model.
    pub label: String,
    /// Files fetched now (the others were already cached).
    pub downloaded: Vec<&'static str>,
    /// Bytes of the fetched files.
    pub file_bytes: u64,
    /// Traffic of the info request and the downloads.
    pub traffic: Traffic,
    /// Seconds.
    pub seconds: f64,
}

/// Fetches the files the cache does not already hold (same size and SHA-256) into `cache`.
pub fn fetch_model(client: &mut Client, cache: &Path) -> Result<Download, PartyError> {
    let clock = Instant::now();
    let before = client.traffic();
    let info = client.info()?;
    std::fs::create_dir_all(cache)
        .map_err(|e| PartyError::io(format!("creating {}", cache.display()), e))?;
    let mut downloaded = Vec::new();
    let mut file_bytes = 0;
    for id in FileId::ALL {
        let entry =
            info.files
                .iter()
                .find(|f| f.id == id)
                .ok_or_else(|| PartyError::Integrity {
                    file: id.file_name().into(),
                    reason: "the owner does not offer this file".into(),
                })?;
        let path = cache.join(id.file_name());
        if let Ok(bytes) = std::fs::read(&path)
            && bytes.len() as u64 == entry.bytes
            && sha256_hex(&bytes) == entry.sha256
        {
            continue;
        }
        let bytes = client.file(id)?;
        let bad = |reason: String| PartyError::Integrity {
            file: id.file_name().into(),
            reason,
        };
        if bytes.len() as u64 != entry.bytes {
            return Err(bad(format!(
                "{} bytes received, {} announced",
                bytes.len(),
                entry.bytes
            )));
        }
        if sha256_hex(&bytes) != entry.sha256 {
            return Err(bad("SHA-256 differs from the announced one".into()));
        }
        if !has_artifact_kind(&bytes, id.artifact_kind()) {
            return Err(bad(format!("not a {} artifact", id.artifact_kind().name())));
        }
        write_bytes_atomic(&path, &bytes)?;
        downloaded.push(id.file_name());
        file_bytes += bytes.len() as u64;
    }
    Ok(Download {
        model: cache.join(FileId::EncryptedModel.file_name()),
        keys: cache.join(FileId::EvaluationKeys.file_name()),
        label: info.model,
        downloaded,
        file_bytes,
        traffic: client.traffic().since(&before),
        seconds: clock.elapsed().as_secs_f64(),
    })
}

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
    let user = UserSide::load(
        &download.model,
        &download.keys,
        cfg.headroom_bits,
        &ops,
        device,
    )?;
    phases.insert(
        "user_load_expand".to_string(),
        clock.elapsed().as_secs_f64(),
    );
    let spec = &user.file.remainder.spec;
    let images = load_images(source, spec.image_size, spec.in_channels, spec.num_classes)?;
    let split = &images.split;
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
    let indices: Vec<usize> = (cfg.offset..end).collect();
    let n = indices.len();
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
    let classes = spec.num_classes;
    let inference_start = client.traffic();
    let mut rng = rand::rng();
    let (mut predictions, mut all_logits, mut batches) =
        (Vec::with_capacity(n), Vec::new(), Vec::new());
    for chunk in indices.chunks(batch) {
        let before = client.traffic();
        let t0 = Instant::now();
        let raw: Vec<&[u8]> = chunk.iter().map(|&i| split.image(i)).collect();
        let (request, pending) = user.request(layout, &raw, &ops, &|_| {}, &mut rng)?;
        let request_bytes = request.len();
        let t1 = Instant::now();
        let reply = client.decrypt(request)?;
        let t2 = Instant::now();
        // Bounded decode first: the reply parser of privdnn-he has no size limit.
        let _: Reply = decode_bounded(&reply.reply, "decryption reply")?;
        let outputs = user.finish(&reply.reply, pending)?;
        let t3 = Instant::now();
        let logits = user.logits(split, chunk, &outputs);
        if logits.len() != chunk.len() * classes {
            return Err(PartyError::Internal(format!(
                "{} logits for {} images",
                logits.len(),
                chunk.len()
            )));
        }
        let t4 = Instant::now();
        predictions.extend(argmax_rows(&logits, classes));
        if cfg.keep_logits {
            all_logits.extend_from_slice(&logits);
        }
        let b = BatchReport {
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
            b.images,
            b.traffic.bytes_sent,
            b.traffic.bytes_received,
            b.he_eval_s,
            b.round_trip_s,
            b.owner_decrypt_s,
            b.latency_s
        );
        batches.push(b);
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
