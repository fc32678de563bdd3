//! Key recovery by a malicious user against the running owner service (issue 13): the attacker
//! connects like a client, downloads the encrypted model and the public keys, sends one crafted
//! decryption request per variant over the real wire protocol
//! ([`privdnn_he::key_recovery`]), rebuilds the owner's secret keys from the reply, checks
//! them against the public key and decrypts the shipped encrypted filters.
//!
//! Two clearly separate paths:
//! * the attacker ([`attack_service`]): an address and a cache folder of its own, nothing else;
//! * the scorer ([`score_with_owner_files`]): opens `results/<run>/owner/secret_key.bin` only
//!   to measure how much of the key and of the weights the attacker got right.
//!
//! Without `--server`, [`run_experiment`] starts the owner service itself
//! (`privdnn-party serve` next to the current executable, on `127.0.0.1:0`) and stops it after.

mod wire;

use std::io::{BufRead, BufReader};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use privdnn_artifacts::{read_artifact, write_bytes_atomic};
use privdnn_config::PipelineArgs;
use privdnn_he::files::{EncryptedModelFile, EvaluationKeysFile, OwnerSecretFile};
use privdnn_he::key_recovery::{AttackOutcome, CraftVariant, Exchanged, run_attack};
use privdnn_net::{Channel, Limits, Traffic};
use serde_json::{Value, json};

use crate::cli::Stage;
use wire::{DecryptRequest, FileId, Message};

/// What the attacker got from one owner service.
pub struct ServiceAttack {
    /// The owner's label of the model.
    pub model: String,
    /// Protocol mode the service runs.
    pub mode: &'static str,
    /// Bytes of the two downloaded files.
    pub download_bytes: u64,
    /// Connect, describe and download.
    pub download_seconds: f64,
    /// One outcome per variant (one request each).
    pub outcomes: Vec<AttackOutcome>,
    /// Every byte and round trip of the connection.
    pub traffic: Traffic,
}

type OwnerChannel = Channel<TcpStream, Message>;

fn connect(addr: &str) -> Result<OwnerChannel> {
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

fn download(ch: &mut OwnerChannel, id: FileId, cache: &Path) -> Result<(PathBuf, u64)> {
    let bytes = match ch.call(&Message::GetFile(id))? {
        Message::File(f) if f.id == id => f.bytes,
        other => bail!("asked for {id:?}, the owner answered {other:?}"),
    };
    let path = cache.join(id.file_name());
    write_bytes_atomic(&path, &bytes)?;
    Ok((path, bytes.len() as u64))
}

/// The attacker's path: connect to `addr`, download the user files into `cache`, and run one
/// crafted request per variant. Uses nothing but the address and its own cache folder.
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
    let (model_path, model_bytes) = download(&mut ch, FileId::EncryptedModel, cache)?;
    let (keys_path, keys_bytes) = download(&mut ch, FileId::EvaluationKeys, cache)?;
    let model: EncryptedModelFile = read_artifact(&model_path)?;
    let keys: EvaluationKeysFile = read_artifact(&keys_path)?;
    let download_seconds = clock.elapsed().as_secs_f64();
    let mut rng = rand::rng();
    let mut outcomes = Vec::new();
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
        outcomes.push(outcome);
    }
    Ok(ServiceAttack {
        model: info.model,
        mode: "owner-keyed",
        download_bytes: model_bytes + keys_bytes,
        download_seconds,
        outcomes,
        traffic: ch.traffic(),
    })
}

/// Scoring only (never on the attacker's path): compares the attacker's key and weights with
/// the owner's secret file of the run. `Ok(false)` when the run has no such file (a remote
/// owner).
pub fn score_with_owner_files(run_dir: &Path, attack: &mut ServiceAttack) -> Result<bool> {
    let path = privdnn_artifacts::RunLayout::new(run_dir).owner_secret();
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

/// The owner service as a child process; stopped when dropped.
pub struct OwnerProcess {
    child: Child,
    /// Address it listens on.
    pub addr: String,
    _stdout: BufReader<ChildStdout>,
}

/// `privdnn-party` next to the current executable (or in the folder above, for test binaries
/// under `target/<profile>/deps`), or `$PRIVDNN_PARTY_BIN`.
fn party_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("PRIVDNN_PARTY_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("locating the current executable")?;
    let name = format!("privdnn-party{}", std::env::consts::EXE_SUFFIX);
    let candidates: Vec<PathBuf> = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(|d| d.join(&name))
        .collect();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .with_context(|| {
            format!(
                "{name} not found next to {} (build it: `cargo build --release -p privdnn-party`, \
                 or pass --server ADDR of a running `cargo xtask serve`)",
                exe.display()
            )
        })
}

impl OwnerProcess {
    /// Starts `privdnn-party serve` for the pipeline on an ephemeral loopback port and waits for
    /// its `listening on ADDR` line.
    pub fn start(target: &PipelineArgs) -> Result<Self> {
        let bin = party_binary()?;
        let mut cmd = Command::new(&bin);
        cmd.args(["serve", "--pipeline", &target.pipeline])
            .arg("--root")
            .arg(&target.root)
            .args(["--listen", "127.0.0.1:0"]);
        if let Some(p) = &target.profile {
            cmd.args(["--profile", p]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            bail!("no stdout from the owner service");
        };
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let read = reader.read_line(&mut line);
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .map(str::to_string);
        match (read, addr) {
            (Ok(_), Some(addr)) => Ok(Self {
                child,
                addr,
                _stdout: reader,
            }),
            (read, _) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "the owner service did not start (first line {line:?}{}); run `cargo xtask \
                     pipeline {} --only encrypt` first",
                    read.err().map(|e| format!(", {e}")).unwrap_or_default(),
                    target.pipeline
                )
            }
        }
    }
}

impl Drop for OwnerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `key_recovery` record of the attack metrics.
pub fn record(attack: &ServiceAttack, server: &str, started_here: bool, scored: bool) -> Value {
    let variants: serde_json::Map<String, Value> = attack
        .outcomes
        .iter()
        .map(|o| {
            (
                o.report.variant.name().to_string(),
                serde_json::to_value(&o.report).unwrap_or(Value::Null),
            )
        })
        .collect();
    let first = attack.outcomes.first().map(|o| &o.report);
    let pick =
        |f: fn(&privdnn_he::key_recovery::KeyRecoveryReport) -> Value| first.map_or(Value::Null, f);
    json!({
        "mode": attack.mode,
        "server": server,
        "server_started_by_stage": started_here,
        "model": attack.model,
        "download_bytes": attack.download_bytes,
        "download_seconds": attack.download_seconds,
        "connection": attack.traffic,
        "scored_against_owner_files": scored,
        "requests": attack.outcomes.len(),
        "requests_per_recovery": pick(|r| json!(r.requests)),
        "requests_decrypted": attack.outcomes.iter().map(|o| o.report.requests_decrypted).sum::<usize>(),
        "bytes_sent": pick(|r| json!(r.bytes_sent)),
        "bytes_received": pick(|r| json!(r.bytes_received)),
        "seconds": pick(|r| json!(r.seconds)),
        "key_coefficients": pick(|r| json!(r.key_coefficients)),
        "key_fraction": pick(|r| json!(r.key_fraction)),
        "key_bytes_identical": pick(|r| json!(r.key_bytes_identical)),
        "encrypted_weights": pick(|r| json!(r.encrypted_weights)),
        "weights_fraction": pick(|r| json!(r.weights_fraction)),
        "variants": variants,
    })
}

/// `key_recovery` experiment of the attack stage: against `server`, or against an owner
/// service started here for the run.
pub fn run_experiment(stage: &Stage, target: &PipelineArgs, server: Option<&str>) -> Result<Value> {
    let mode = stage.cfg.pipeline.he.mode;
    if mode != privdnn_config::HeMode::OwnerKeyed {
        bail!(
            "key_recovery attacks the owner-keyed protocol; this run is {}, whose owner holds no \
             secret key, and privdnn-party does not serve that mode yet, so there is no service \
             to send requests to",
            mode.name()
        );
    }
    let owner = match server {
        Some(_) => None,
        None => Some(OwnerProcess::start(target)?),
    };
    let addr = server
        .map(str::to_string)
        .or_else(|| owner.as_ref().map(|o| o.addr.clone()))
        .context("no owner address")?;
    let cache = stage.out.join("key_recovery_download");
    let mut attack = attack_service(&addr, &cache, &CraftVariant::ALL)?;
    drop(owner);
    let scored = score_with_owner_files(&stage.run_dir, &mut attack)?;
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
    Ok(record(&attack, &addr, server.is_none(), scored))
}
