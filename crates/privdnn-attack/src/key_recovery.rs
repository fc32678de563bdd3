//! Key recovery by a malicious user against the running owner service (issue 13): the attacker
//! connects like a client, downloads what a user downloads and sends crafted requests over the
//! real wire protocol (`privdnn_partial::wire`).
//!
//! * Owner-keyed service: one crafted decryption request per variant
//!   ([`privdnn_he::key_recovery`]); the attacker rebuilds the owner's secret keys from the
//!   reply, checks them against the public key and decrypts the shipped encrypted filters.
//! * User-keyed service ([`keyed`]): the owner holds no key and has no decryption; the same
//!   crafted decryption requests are refused, and a crafted keyed request under the attacker's
//!   own key yields only the selected outputs on the attacker's chosen input.
//!
//! Two clearly separate paths:
//! * the attacker ([`attack_service`]): an address and a cache folder of its own, nothing else
//!   (the mode is read from the files the service announces);
//! * the scorer ([`score_with_owner_files`]): opens the owner's files of the run
//!   (`owner/secret_key.bin`, or `owner/keyed_block.bin` in user-keyed mode) only to measure
//!   what the attacker got right.
//!
//! Without `--server`, [`run_experiment`] starts the owner service itself
//! ([`OwnerProcess`]: `privdnn-party serve` next to the current executable, on `127.0.0.1:0`)
//! and stops it after.

pub mod keyed;
mod owner_process;

use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use privdnn_artifacts::{RunLayout, read_artifact, write_bytes_atomic};
use privdnn_config::PipelineArgs;
use privdnn_he::files::{EncryptedModelFile, EvaluationKeysFile, OwnerSecretFile};
use privdnn_he::key_recovery::{AttackOutcome, CraftVariant, Exchanged, run_attack};
use privdnn_net::{Channel, Limits, Traffic};
use serde_json::{Value, json};

use crate::cli::Stage;
pub use keyed::ProbeReport;
pub use owner_process::OwnerProcess;
// the protocol's message types (defined by the protocol library, shared with privdnn-party)
use privdnn_partial::wire;
use wire::{DecryptRequest, FileId, Message};

/// What the attacker got from one owner service.
pub struct ServiceAttack {
    /// The owner's label of the model.
    pub model: String,
    /// Protocol mode the service runs (`owner-keyed` or `user-keyed`, from the files it serves).
    pub mode: &'static str,
    /// Bytes of the downloaded files.
    pub download_bytes: u64,
    /// Connect, describe and download.
    pub download_seconds: f64,
    /// Owner-keyed: one outcome per variant (one request each).
    pub outcomes: Vec<AttackOutcome>,
    /// User-keyed: one report per crafted request (decryption requests and the keyed probe).
    pub probes: Vec<ProbeReport>,
    /// User-keyed: the attacker's one-off generation of its own keys.
    pub key_generation_seconds: Option<f64>,
    /// Every byte and round trip of the connection.
    pub traffic: Traffic,
}

pub(crate) type OwnerChannel = Channel<TcpStream, Message>;

pub(crate) fn connect(addr: &str) -> Result<OwnerChannel> {
    let mut last = None;
    for a in addr
        .to_socket_addrs()
        .with_context(|| format!("resolving {addr}"))?
    {
        match TcpStream::connect_timeout(&a, Duration::from_secs(10)) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(Channel::new(stream, Limits::default())?);
            }
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e) => Err(e).with_context(|| format!("connecting to the owner at {addr}")),
        None => bail!("{addr} resolves to no address"),
    }
}

pub(crate) fn download(ch: &mut OwnerChannel, id: FileId, cache: &Path) -> Result<(PathBuf, u64)> {
    let bytes = match ch.call(&Message::GetFile(id))? {
        Message::File(f) if f.id == id => f.bytes,
        other => bail!("asked for {id:?}, the owner answered {other:?}"),
    };
    let path = cache.join(id.file_name());
    write_bytes_atomic(&path, &bytes)?;
    Ok((path, bytes.len() as u64))
}

/// Owner-keyed service: one crafted decryption request per variant, key recovery and the
/// decryption of the downloaded encrypted filters.
fn attack_owner_keyed(
    ch: &mut OwnerChannel,
    cache: &Path,
    variants: &[CraftVariant],
    clock: Instant,
    attack: &mut ServiceAttack,
) -> Result<()> {
    let (model_path, model_bytes) = download(ch, FileId::EncryptedModel, cache)?;
    let (keys_path, keys_bytes) = download(ch, FileId::EvaluationKeys, cache)?;
    let model: EncryptedModelFile = read_artifact(&model_path)?;
    let keys: EvaluationKeysFile = read_artifact(&keys_path)?;
    attack.download_bytes = model_bytes + keys_bytes;
    attack.download_seconds = clock.elapsed().as_secs_f64();
    let mut rng = rand::rng();
    for (i, &variant) in variants.iter().enumerate() {
        let outcome = run_attack(&model.block, &keys.keys, variant, &mut rng, |request| {
            let before = ch.traffic();
            let id = i as u64 + 1;
            let reply = match ch.call(&Message::Decrypt(DecryptRequest { id, request }))? {
                Message::Decrypted(r) if r.id == id => r.reply,
                other => bail!("sent a decryption request, got {other:?}"),
            };
            let t = ch.traffic().since(&before);
            Ok(Exchanged {
                reply,
                bytes_sent: t.bytes_sent,
                bytes_received: t.bytes_received,
            })
        })?;
        log::info!(
            "key recovery ({}): 1 request, {} B sent, {} B received, {:.2} s; key verified with the \
             public key: {}; {} encrypted weights decrypted",
            variant.name(),
            outcome.report.bytes_sent,
            outcome.report.bytes_received,
            outcome.report.seconds,
            outcome.report.key_verified_with_public_key,
            outcome.report.encrypted_weights
        );
        attack.outcomes.push(outcome);
    }
    Ok(())
}

/// The attacker's path: connect to `addr`, download the user files into `cache`, and run one
/// crafted request per variant (user-keyed service: the crafted decryption requests, then a
/// crafted keyed request). Uses nothing but the address and its own cache folder.
pub fn attack_service(
    addr: &str,
    cache: &Path,
    variants: &[CraftVariant],
) -> Result<ServiceAttack> {
    let clock = Instant::now();
    std::fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
    let mut ch = connect(addr)?;
    let info = match ch.call(&Message::GetInfo)? {
        Message::Info(i) => i,
        other => bail!("asked for the service description, got {other:?}"),
    };
    let mut attack = ServiceAttack {
        model: info.model,
        mode: "owner-keyed",
        download_bytes: 0,
        download_seconds: 0.0,
        outcomes: Vec::new(),
        probes: Vec::new(),
        key_generation_seconds: None,
        traffic: Traffic::default(),
    };
    if info.files.iter().any(|f| f.id == FileId::KeyedModel) {
        attack.mode = "user-keyed";
        keyed::attack_keyed(
            &mut ch,
            addr,
            info.max_frame,
            cache,
            variants,
            clock,
            &mut attack,
        )?;
    } else {
        attack_owner_keyed(&mut ch, cache, variants, clock, &mut attack)?;
    }
    attack.traffic = ch.traffic();
    Ok(attack)
}

/// Scoring only (never on the attacker's path): compares what the attacker got with the
/// owner's files in `out_dir` (the run folder, or its variant folder): the secret key and the
/// true block (owner-keyed), or the keyed owner block (user-keyed: the probe's decrypted values
/// against the integer shadow). `Ok(false)` when the folder has no such file (a remote owner).
pub fn score_with_owner_files(out_dir: &Path, attack: &mut ServiceAttack) -> Result<bool> {
    let layout = RunLayout::new(out_dir);
    if attack.mode == "user-keyed" {
        return keyed::score_probes(&layout.keyed_owner_block(), &mut attack.probes);
    }
    let path = layout.owner_secret();
    if !path.exists() {
        return Ok(false);
    }
    let truth: OwnerSecretFile = read_artifact(&path)?;
    for outcome in &mut attack.outcomes {
        let mut report = outcome.report.clone();
        report.score(outcome, &truth.secret, &truth.block)?;
        outcome.report = report;
    }
    Ok(true)
}

/// The `key_recovery` record of the attack metrics (same fields in both modes; a user-keyed
/// service adds the `keyed` variant).
pub fn record(attack: &ServiceAttack, server: &str, started_here: bool, scored: bool) -> Value {
    let reports: Vec<(String, Value)> = attack
        .outcomes
        .iter()
        .map(|o| {
            (
                o.report.variant.name().to_string(),
                serde_json::to_value(&o.report).unwrap_or(Value::Null),
            )
        })
        .chain(attack.probes.iter().map(|p| {
            (
                p.variant.to_string(),
                serde_json::to_value(p).unwrap_or(Value::Null),
            )
        }))
        .collect();
    let first = reports.first().map(|(_, v)| v);
    let pick = |key: &str| {
        first
            .and_then(|v| v.get(key))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let sum = |key: &str| -> u64 {
        reports
            .iter()
            .filter_map(|(_, v)| v.get(key).and_then(Value::as_u64))
            .sum()
    };
    json!({
        "mode": attack.mode,
        "server": server,
        "server_started_by_stage": started_here,
        "model": attack.model,
        "download_bytes": attack.download_bytes,
        "download_seconds": attack.download_seconds,
        "connection": attack.traffic,
        "scored_against_owner_files": scored,
        "requests": reports.len(),
        "requests_per_recovery": if attack.outcomes.is_empty() { Value::Null } else { pick("requests") },
        "requests_decrypted": sum("requests_decrypted"),
        "requests_refused": attack.probes.iter().filter(|p| p.refused.is_some()).count(),
        "attacker_key_generation_seconds": attack.key_generation_seconds,
        "bytes_sent": pick("bytes_sent"),
        "bytes_received": pick("bytes_received"),
        "seconds": pick("seconds"),
        "key_coefficients": pick("key_coefficients"),
        "key_fraction": pick("key_fraction"),
        "key_bytes_identical": pick("key_bytes_identical"),
        "encrypted_weights": pick("encrypted_weights"),
        "weights_fraction": pick("weights_fraction"),
        "variants": reports.into_iter().collect::<serde_json::Map<String, Value>>(),
    })
}

/// Key of the record in the attack metrics: `key_recovery` for an owner-keyed service,
/// `key_recovery_user_keyed` for a user-keyed one (both can sit side by side).
pub fn metrics_key(attack_mode: &str) -> &'static str {
    if attack_mode == "user-keyed" {
        "key_recovery_user_keyed"
    } else {
        "key_recovery"
    }
}

/// `key_recovery` experiment of the attack stage: against `server`, or against an owner
/// service started here for the run (`variant`: the encryption variant's folder, e.g.
/// `user-keyed`; the service's mode follows the pipeline's `[he] mode`). Returns the metrics
/// key and the record.
pub fn run_experiment(
    stage: &Stage,
    target: &PipelineArgs,
    server: Option<&str>,
    variant: Option<&str>,
) -> Result<(&'static str, Value)> {
    let owner = match server {
        Some(_) => None,
        None => Some(OwnerProcess::start(target, variant)?),
    };
    let addr = server
        .map(str::to_string)
        .or_else(|| owner.as_ref().map(|o| o.addr.clone()))
        .context("no owner address")?;
    let cache = stage.out.join("key_recovery_download");
    let mut attack = attack_service(&addr, &cache, &CraftVariant::ALL)?;
    drop(owner);
    let out_dir = RunLayout::new(&stage.run_dir).with_variant(variant);
    let scored = score_with_owner_files(out_dir.output_dir(), &mut attack)?;
    for o in &attack.outcomes {
        let r = &o.report;
        log::info!(
            "key recovery ({}) against {addr}: {} request(s), {} B sent, {} B received, {:.2} s; key \
             coefficients recovered {:?} of {}, weights recovered exactly {:?} of {}",
            r.variant.name(),
            r.requests,
            r.bytes_sent,
            r.bytes_received,
            r.seconds,
            r.key_coefficients_recovered,
            r.key_coefficients,
            r.weights_recovered_exactly,
            r.encrypted_weights
        );
    }
    for p in &attack.probes {
        log::info!(
            "key recovery ({}) against the user-keyed service at {addr}: {} request, {} reached a \
             decryption, {} B sent, {} B received, {:.2} s; key coefficients recovered 0 % (the \
             owner holds no key), encrypted weights: none shipped; outputs equal the shadow: {:?}",
            p.variant,
            p.requests,
            p.requests_decrypted,
            p.bytes_sent,
            p.bytes_received,
            p.seconds,
            p.outputs_equal_shadow
        );
    }
    Ok((
        metrics_key(attack.mode),
        record(&attack, &addr, server.is_none(), scored),
    ))
}
