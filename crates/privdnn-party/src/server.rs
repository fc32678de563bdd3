//! The owner service: holds the secret key, serves the two user files (encrypted model and public
//! evaluation keys) and answers blinded decryption requests.
//!
//! One thread per connection, at most `max_connections` at once (more are answered with a
//! `busy` error and closed). Every connection is isolated: a malformed, oversized, truncated,
//! wrong-version or slow frame closes *that* connection with an error frame and a lingering close
//! (FIN, not a reset), a panic inside a decryption is caught and reported, and nothing is shared
//! between connections except the read-only owner state and atomic counters. Requests from
//! different users are decrypted concurrently (each request is itself decrypted in parallel by
//! rayon inside `OwnerSide::answer_request`). Each request is decoded exactly once, its
//! allocations bounded by its own length, and handed typed to the owner role.
//!
//! Before any of that, every connection passes the [`crate::gate`]: TLS 1.3 with a client
//! certificate of an allowed user (plain TCP only on loopback), a per-peer connection cap, a
//! ciphertext cap per request and per-user quotas; every request is written to the audit log.
//!
//! The user files are read once at start and must carry the encrypted-model and evaluation-keys
//! artifact kinds: the service refuses to start if either is the owner's secret (or anything
//! else), so a misconfiguration can never hand the secret to a user.

use std::borrow::Cow;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use privdnn_config::ServiceConfig;
use privdnn_he::protocol::Request;
use privdnn_net::{NetStream, TlsServer};
use privdnn_partial::keyed::{KeyedOwnerSide, UserKeyedRequest};
use privdnn_partial::owner::OwnerSide;

use crate::PartyError;
use crate::audit_log::{AuditLog, AuditRecord};
use crate::gate::{Gate, ciphertexts_needed};
use crate::policy::Access;
use crate::wire::{
    DecryptReply, FileData, FileEntry, FileId, Limits, Message, PartyChannel, ServerStats,
    ServiceInfo, WireMessage, has_artifact_kind, sha256_hex,
};

/// The owner's three files.
#[derive(Debug, Clone)]
pub struct OwnerFiles {
    /// Encrypted model (served to users).
    pub model: PathBuf,
    /// Public evaluation keys (served to users).
    pub keys: PathBuf,
    /// Secret key (never served).
    pub secret: PathBuf,
}

impl OwnerFiles {
    /// The files of a run folder (`<run>/encrypt/…`, `<run>/owner/secret_key.bin`).
    pub fn of_run(run_dir: &Path) -> Self {
        let p = privdnn_artifacts::RunLayout::new(run_dir);
        Self {
            model: p.encrypted_model(),
            keys: p.evaluation_keys(),
            secret: p.owner_secret(),
        }
    }
}

/// Settings of the service.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: String,
    /// Connections served at once.
    pub max_connections: usize,
    /// Frame size and time limits.
    pub limits: Limits,
    /// Label of the model, reported to clients.
    pub label: String,
    /// TLS 1.3 with client certificates; `None`: plain TCP, refused on non-loopback addresses.
    pub tls: Option<TlsServer>,
    /// Allowed users and their quotas (`[service]`); required with TLS. `None`: no user checks.
    pub access: Option<ServiceConfig>,
    /// Connections one peer address may hold open.
    pub max_connections_per_peer: usize,
    /// JSON-lines audit log (`None`: none).
    pub audit_log: Option<PathBuf>,
    /// Longest TLS handshake.
    pub handshake_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7447".into(),
            max_connections: 64,
            limits: Limits::default(),
            label: "model".into(),
            tls: None,
            access: None,
            max_connections_per_peer: 64,
            audit_log: None,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    active: AtomicU64,
    busy: AtomicU64,
    frames_in: AtomicU64,
    frames_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    decrypts: AtomicU64,
    files: AtomicU64,
    errors: AtomicU64,
    decrypt_nanos: AtomicU64,
}

fn add(c: &AtomicU64, v: u64) {
    c.fetch_add(v, Ordering::Relaxed);
}

/// The owner role a service runs: owner-keyed (secret key, decrypts blinded requests) or
/// user-keyed (plaintext block, no key, no decryption; [`crate::keyed`]).
enum Owner {
    Secret(OwnerSide),
    Keyed(Box<KeyedOwnerSide>),
}

struct Shared {
    owner: Owner,
    gate: Gate,
    info: ServiceInfo,
    /// Pre-encoded `File` frames of the served files.
    file_frames: Vec<(FileId, Vec<u8>)>,
    limits: Limits,
    max_connections: usize,
    counters: Counters,
    started: Instant,
    stop: AtomicBool,
}

impl Shared {
    fn stats(&self) -> ServerStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ServerStats {
            connections: get(&c.connections),
            active: get(&c.active),
            busy: get(&c.busy),
            frames_in: get(&c.frames_in),
            frames_out: get(&c.frames_out),
            bytes_in: get(&c.bytes_in),
            bytes_out: get(&c.bytes_out),
            decrypts: get(&c.decrypts),
            files: get(&c.files),
            errors: get(&c.errors),
            decrypt_seconds: get(&c.decrypt_nanos) as f64 * 1e-9,
            uptime_s: self.started.elapsed().as_secs_f64(),
        }
    }
}

fn read_user_file(path: &Path, id: FileId) -> Result<Vec<u8>, PartyError> {
    let bytes = std::fs::read(path).map_err(|e| {
        PartyError::io(
            format!(
                "reading {} (written by `cargo xtask pipeline <name> --only encrypt`)",
                path.display()
            ),
            e,
        )
    })?;
    if !has_artifact_kind(&bytes, id.artifact_kind()) {
        return Err(PartyError::Integrity {
            file: path.display().to_string(),
            reason: format!(
                "not a {} artifact; refusing to serve it to users (only the encrypted model and the \
                 evaluation keys may leave the owner)",
                id.artifact_kind().name()
            ),
        });
    }
    Ok(bytes)
}

/// A bound, ready owner service.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl Server {
    /// Loads the secret and the user files and binds the listening socket.
    pub fn bind(files: &OwnerFiles, config: &ServerConfig) -> Result<Self, PartyError> {
        let served = [
            (FileId::EncryptedModel, files.model.as_path()),
            (FileId::EvaluationKeys, files.keys.as_path()),
        ];
        crate::gate::check_private(&files.secret, "the secret key file");
        let owner = Owner::Secret(OwnerSide::load(&files.secret)?);
        let cap = ciphertexts_needed(&files.model)?;
        Self::bind_owner(owner, &served, config, Some(cap))
    }

    /// User-keyed mode: serves `model` (`RunLayout::keyed_model`) and answers keyed requests
    /// with the plaintext block of `owner_block` (`RunLayout::keyed_owner_block`); no key, no
    /// decryption.
    pub fn bind_keyed(
        model: &Path,
        owner_block: &Path,
        config: &ServerConfig,
    ) -> Result<Self, PartyError> {
        crate::gate::check_private(owner_block, "the owner's plaintext block");
        let owner = Owner::Keyed(Box::new(KeyedOwnerSide::load(owner_block)?));
        Self::bind_owner(owner, &[(FileId::KeyedModel, model)], config, None)
    }

    fn bind_owner(
        owner: Owner,
        served: &[(FileId, &Path)],
        config: &ServerConfig,
        max_ciphertexts: Option<usize>,
    ) -> Result<Self, PartyError> {
        let mut entries = Vec::new();
        let mut file_frames = Vec::new();
        for &(id, path) in served {
            let bytes = read_user_file(path, id)?;
            entries.push(FileEntry {
                id,
                bytes: bytes.len() as u64,
                sha256: sha256_hex(&bytes),
            });
            file_frames.push((id, Message::File(FileData { id, bytes }).to_frame()?));
        }
        let listener = TcpListener::bind(&config.listen)
            .map_err(|e| PartyError::io(format!("listening on {}", config.listen), e))?;
        let bound = listener
            .local_addr()
            .map_err(|e| PartyError::io("reading the bound address", e))?;
        if config.tls.is_none() && !bound.ip().is_loopback() {
            return Err(PartyError::Usage(format!(
                "plain TCP (--insecure) is only allowed on a loopback address, not {bound}: \
                 configure TLS ([service] ca/cert/key, `privdnn-party certs`)"
            )));
        }
        let gate = Gate::new(
            config.tls.clone(),
            config.access.clone().map(Access::new),
            AuditLog::open(config.audit_log.as_deref())?,
            config.max_connections_per_peer,
            max_ciphertexts,
            config.handshake_timeout,
        )?;
        let info = ServiceInfo {
            server: format!("privdnn-party {}", env!("CARGO_PKG_VERSION")),
            model: config.label.clone(),
            max_frame: config.limits.max_frame,
            files: entries,
        };
        let shared = Arc::new(Shared {
            owner,
            gate,
            info,
            file_frames,
            limits: config.limits,
            max_connections: config.max_connections.max(1),
            counters: Counters::default(),
            started: Instant::now(),
            stop: AtomicBool::new(false),
        });
        Ok(Self { listener, shared })
    }

    /// The address actually bound (with the port chosen for `:0`).
    pub fn local_addr(&self) -> Result<SocketAddr, PartyError> {
        self.listener
            .local_addr()
            .map_err(|e| PartyError::io("reading the bound address", e))
    }

    /// Counters so far.
    pub fn stats(&self) -> ServerStats {
        self.shared.stats()
    }

    /// Accepts connections until [`ServerHandle::shutdown`] (or forever).
    pub fn run(&self) -> Result<(), PartyError> {
        let mut next = 0u64;
        for conn in self.listener.incoming() {
            if self.shared.stop.load(Ordering::SeqCst) {
                break;
            }
            let stream = match conn {
                Ok(s) => s,
                Err(e) => {
                    // e.g. out of file descriptors: keep serving the open connections.
                    log::warn!("accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            next += 1;
            add(&self.shared.counters.connections, 1);
            let peer_addr = stream.peer_addr().ok();
            let peer = peer_addr.map_or_else(|| "?".to_string(), |a| a.to_string());
            let active = self.shared.counters.active.load(Ordering::SeqCst) as usize;
            if active >= self.shared.max_connections {
                add(&self.shared.counters.busy, 1);
                log::warn!("{peer}: refused, {active} connections open");
                self.shared
                    .refuse_busy(stream, &peer, PartyError::Busy(active));
                continue;
            }
            let slot = match peer_addr.map(|a| self.shared.gate.peers.take(a.ip())) {
                Some(Ok(slot)) => Some(slot),
                Some(Err(held)) => {
                    add(&self.shared.counters.busy, 1);
                    let err = PartyError::Busy(held);
                    log::warn!("{peer}: refused, this address holds {held} connections");
                    self.shared.refuse_busy(stream, &peer, err);
                    continue;
                }
                None => None,
            };
            add(&self.shared.counters.active, 1);
            let guard = ActiveGuard(self.shared.clone());
            let shared = self.shared.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("conn-{next}"))
                .spawn(move || {
                    let _guard = (guard, slot);
                    if let Some((stream, user)) = shared.gate.open(stream, &peer) {
                        serve_connection(&shared, stream, &peer, &user);
                    }
                });
            if let Err(e) = spawned {
                log::error!("cannot start a connection thread: {e}");
            }
        }
        Ok(())
    }

    /// Runs the service on a background thread.
    pub fn spawn(self) -> Result<ServerHandle, PartyError> {
        let addr = self.local_addr()?;
        let shared = self.shared.clone();
        let thread = std::thread::Builder::new()
            .name("privdnn-owner".into())
            .spawn(move || {
                if let Err(e) = self.run() {
                    log::error!("owner service stopped: {e}");
                }
            })
            .map_err(|e| PartyError::io("starting the service thread", e))?;
        Ok(ServerHandle {
            addr,
            shared,
            thread: Some(thread),
        })
    }
}

/// A service running on a background thread.
pub struct ServerHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// Listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Counters so far.
    pub fn stats(&self) -> ServerStats {
        self.shared.stats()
    }

    /// Stops accepting connections (open ones finish on their own) and joins the accept thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop();
        }
    }
}

struct ActiveGuard(Arc<Shared>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.counters.active.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shared {
    /// Refuses a connection over the limits: an error frame on plain TCP; over TLS the socket
    /// is closed before the handshake (no thread is spent on it).
    fn refuse_busy(&self, stream: TcpStream, peer: &str, err: PartyError) {
        self.gate
            .audit
            .write(&AuditRecord::new(peer, "-", "connect").failed(&err));
        if self.gate.is_tls() {
            return;
        }
        if let Ok(chan) = PartyChannel::new(NetStream::from(stream), Limits::default()) {
            chan.refuse(err.code(), err.to_string());
        }
    }
}

fn serve_connection(shared: &Shared, stream: NetStream, peer: &str, user: &str) {
    let _ = stream.tcp().set_nodelay(true);
    let mut chan = match PartyChannel::new(stream, shared.limits) {
        Ok(c) => c,
        Err(e) => {
            log::warn!("{peer}: {e}");
            return;
        }
    };
    log::debug!("{peer}: connected");
    let mut keyed = None;
    loop {
        let frame = match chan.read_frame() {
            Ok(Some(f)) => f,
            Ok(None) => {
                log::debug!("{peer}: closed by the client");
                return;
            }
            Err(e) if closed_between_frames(&e) => {
                log::debug!("{peer}: TLS closed by the client without close_notify");
                return;
            }
            Err(e) => return fail(shared, chan, peer, e.into()),
        };
        add(&shared.counters.frames_in, 1);
        add(&shared.counters.bytes_in, frame.wire_len() as u64);
        let kind = crate::wire::kind_name(frame.kind).unwrap_or("?");
        let mut rec = AuditRecord::new(peer, user, kind);
        rec.bytes_in = frame.wire_len() as u64;
        let answer = frame
            .decode::<Message>()
            .map_err(PartyError::from)
            .and_then(|m| respond(shared, m, peer, user, &mut keyed, &mut rec));
        let bytes = match answer {
            Ok(b) => b,
            Err(e) => {
                shared.gate.audit.write(&rec.failed(&e));
                return fail(shared, chan, peer, e);
            }
        };
        // Logged before the answer leaves, so a client holding its answer finds the line.
        rec.bytes_out = bytes.len() as u64;
        shared.gate.audit.write(&rec);
        if let Err(e) = chan.write_frame(&bytes) {
            add(&shared.counters.errors, 1);
            log::warn!("{peer}: closing the connection: {e}");
            rec.bytes_out = 0;
            shared.gate.audit.write(&rec.failed(&PartyError::Net(e)));
            return;
        }
        add(&shared.counters.frames_out, 1);
        add(&shared.counters.bytes_out, bytes.len() as u64);
    }
}

fn respond<'a>(
    shared: &'a Shared,
    msg: Message,
    peer: &str,
    user: &str,
    keyed: &mut Option<crate::keyed::Assembly>,
    rec: &mut AuditRecord,
) -> Result<Cow<'a, [u8]>, PartyError> {
    match msg {
        Message::GetInfo => Ok(Cow::Owned(Message::Info(shared.info.clone()).to_frame()?)),
        Message::GetStats => Ok(Cow::Owned(Message::Stats(shared.stats()).to_frame()?)),
        Message::GetFile(id) => {
            let frame = shared
                .file_frames
                .iter()
                .find(|(f, _)| *f == id)
                .map(|(_, frame)| frame)
                .ok_or_else(|| {
                    PartyError::BadRequest(format!(
                        "this service does not serve {}",
                        id.file_name()
                    ))
                })?;
            add(&shared.counters.files, 1);
            log::info!("{peer}: sent {} ({} bytes)", id.file_name(), frame.len());
            Ok(Cow::Borrowed(frame.as_slice()))
        }
        Message::Decrypt(req) => {
            let clock = Instant::now();
            let reply = decrypt(shared, &req.request, user, rec)?;
            let owner_seconds = clock.elapsed().as_secs_f64();
            add(&shared.counters.decrypts, 1);
            add(&shared.counters.decrypt_nanos, (owner_seconds * 1e9) as u64);
            log::info!(
                "{peer}: request {} decrypted ({} → {} bytes) in {owner_seconds:.3} s",
                req.id,
                req.request.len(),
                reply.len()
            );
            Ok(Cow::Owned(
                Message::Decrypted(DecryptReply {
                    id: req.id,
                    owner_seconds,
                    reply,
                })
                .to_frame()?,
            ))
        }
        Message::KeyedPart(part) => {
            let Owner::Keyed(owner) = &shared.owner else {
                return Err(PartyError::BadRequest(
                    "this service runs the owner-keyed mode; it has no keyed requests".into(),
                ));
            };
            let (id, last) = (part.id, part.offset + part.bytes.len() as u64 == part.total);
            if part.offset == 0 {
                shared.gate.charge(user, 0)?;
            }
            let mut admit = |request: &UserKeyedRequest| {
                rec.ciphertexts = crate::gate::keyed_ciphertexts(request);
                shared.gate.admit_keyed(user, rec.ciphertexts)
            };
            let answer = crate::keyed::on_part(owner, keyed, part, &mut admit)?;
            if last {
                add(&shared.counters.decrypts, 1);
                log::info!("{peer}: keyed request {id} answered");
            }
            Ok(Cow::Owned(answer.to_frame()?))
        }
        other => Err(PartyError::Net(privdnn_net::NetError::Unexpected {
            got: other.name(),
            expected: "get-info, get-file, decrypt, keyed-request or get-stats",
        })),
    }
}

/// Decodes the request once (its allocations bounded by its own length) and answers it; a
/// panic inside the decryption is caught and reported as an internal error.
fn decrypt(
    shared: &Shared,
    request: &[u8],
    user: &str,
    rec: &mut AuditRecord,
) -> Result<Vec<u8>, PartyError> {
    let Owner::Secret(owner) = &shared.owner else {
        return Err(PartyError::BadRequest(
            "this service runs the user-keyed mode: it holds no secret key and decrypts nothing \
             (send keyed-request frames)"
                .into(),
        ));
    };
    let request: Request = privdnn_net::decode_bounded(request, "decryption request")
        .map_err(|e| PartyError::BadRequest(e.to_string()))?;
    rec.ciphertexts = request.cts.iter().map(Vec::len).sum::<usize>() as u64;
    shared.gate.admit_decrypt(user, &request)?;
    let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        owner.answer_request(&request)
    }));
    match answered {
        Ok(Ok(reply)) => Ok(privdnn_net::encode(&reply)?),
        Ok(Err(e)) => Err(PartyError::BadRequest(e.to_string())),
        Err(_) => Err(PartyError::Internal(
            "decryption panicked on this request".into(),
        )),
    }
}

/// A TLS peer that closed its socket without `close_notify` before the first byte of a frame
/// (a dropped client): nothing is lost, frames delimit themselves; a clean close, not an error.
fn closed_between_frames(err: &privdnn_net::NetError) -> bool {
    matches!(
        err,
        privdnn_net::NetError::Io { context, source }
            if source.kind() == std::io::ErrorKind::UnexpectedEof
                && context == "reading the next frame"
    )
}

/// Reports `err` to the peer (best effort) and closes the connection cleanly.
fn fail(shared: &Shared, chan: PartyChannel, peer: &str, err: PartyError) {
    add(&shared.counters.errors, 1);
    log::warn!("{peer}: closing the connection: {err}");
    if matches!(
        err,
        PartyError::Io { .. } | PartyError::Net(privdnn_net::NetError::Io { .. })
    ) {
        chan.close();
    } else {
        chan.fail(err.code(), err.to_string());
    }
}
