//! The user's connection to the owner ([`Client`]: one request, one answer, every byte
//! counted by its `privdnn-net` channel) and the download of the user files of the mode the
//! owner serves ([`fetch`]: the encrypted model and the public evaluation keys, or the keyed
//! model; cached, verified by size, SHA-256 and artifact kind). Classification is in
//! [`crate::classify`] (re-exported here).
//!
//! This module never names the owner's key material; the protocol has no message that could
//! carry it, and the cache only ever holds the two user files (a test checks both, and greps
//! this file).

use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use privdnn_artifacts::write_bytes_atomic;
use privdnn_config::HeMode;
use privdnn_net::NetError;
use serde::Serialize;

use crate::PartyError;
use crate::wire::{
    DecryptReply, DecryptRequest, FileId, Limits, Message, PartyChannel, ServerStats, ServiceInfo,
    WireMessage, has_artifact_kind, sha256_hex,
};

pub use crate::classify::{
    BatchReport, ClientConfig, ClientReport, ImageSource, InferenceTraffic, LayoutChoice,
    argmax_rows, classify, summary,
};
pub use crate::wire::Traffic;

/// A connection to the owner service.
pub struct Client {
    channel: PartyChannel,
    next_id: u64,
    peer: String,
}

fn unexpected(got: &'static str, expected: &'static str) -> PartyError {
    PartyError::Net(NetError::Unexpected { got, expected })
}

impl Client {
    /// Connects to `addr` (`host:port`) over plain TCP (an owner started with `--insecure`);
    /// `limits.idle_timeout` bounds the wait for each answer.
    pub fn connect(
        addr: &str,
        limits: Limits,
        connect_timeout: Duration,
    ) -> Result<Self, PartyError> {
        Self::connect_with(addr, limits, connect_timeout, None)
    }

    /// Connects over TLS 1.3, presenting the user's certificate (`tls`), or plain TCP (`None`).
    pub fn connect_with(
        addr: &str,
        limits: Limits,
        connect_timeout: Duration,
        tls: Option<&privdnn_net::TlsClient>,
    ) -> Result<Self, PartyError> {
        let addrs = addr
            .to_socket_addrs()
            .map_err(|e| PartyError::io(format!("resolving {addr}"), e))?;
        let mut last = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, connect_timeout) {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    let stream = match tls {
                        Some(t) => t.connect(stream, connect_timeout)?,
                        None => privdnn_net::NetStream::from(stream),
                    };
                    return Ok(Self {
                        channel: PartyChannel::new(stream, limits)?,
                        next_id: 1,
                        peer: addr.to_string(),
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
        self.channel.record_transcript();
    }

    /// The frames received since [`Client::record_transcript`].
    pub fn transcript(&self) -> &[Vec<u8>] {
        self.channel.transcript()
    }

    /// Traffic so far.
    pub fn traffic(&self) -> Traffic {
        self.channel.traffic()
    }

    /// Sends one message and returns the answer; an error frame becomes `NetError::Remote`.
    pub fn call(&mut self, msg: &Message) -> Result<Message, PartyError> {
        Ok(self.channel.call(msg)?)
    }

    /// The service description.
    pub fn info(&mut self) -> Result<ServiceInfo, PartyError> {
        match self.call(&Message::GetInfo)? {
            Message::Info(i) => Ok(i),
            other => Err(unexpected(other.name(), "info")),
        }
    }

    /// One file's bytes.
    pub fn file(&mut self, id: FileId) -> Result<Vec<u8>, PartyError> {
        match self.call(&Message::GetFile(id))? {
            Message::File(f) if f.id == id => Ok(f.bytes),
            Message::File(_) => Err(unexpected("file (another one)", id.file_name())),
            other => Err(unexpected(other.name(), "file")),
        }
    }

    /// Sends a blinded request (bytes of `UserSide::request`) and returns the owner's answer.
    pub fn decrypt(&mut self, request: Vec<u8>) -> Result<DecryptReply, PartyError> {
        let id = self.next_id;
        self.next_id += 1;
        match self.call(&Message::Decrypt(DecryptRequest { id, request }))? {
            Message::Decrypted(r) if r.id == id => Ok(r),
            Message::Decrypted(r) => Err(unexpected(
                if r.id < id {
                    "stale answer"
                } else {
                    "answer to another request"
                },
                "decrypted",
            )),
            other => Err(unexpected(other.name(), "decrypted")),
        }
    }

    /// The owner's counters.
    pub fn stats(&mut self) -> Result<ServerStats, PartyError> {
        match self.call(&Message::GetStats)? {
            Message::Stats(s) => Ok(s),
            other => Err(unexpected(other.name(), "stats")),
        }
    }
}

/// The user files of the mode the owner serves, in the cache.
#[derive(Debug, Clone, Serialize)]
pub struct Download {
    /// The mode the owner serves (read from the files it offers).
    pub mode: HeMode,
    /// Cached model: the encrypted model (owner-keyed) or the keyed model (user-keyed).
    pub model: PathBuf,
    /// Cached evaluation keys (owner-keyed only: a user-keyed user makes its own keys).
    pub keys: Option<PathBuf>,
    /// Label of the owner's model.
    pub label: String,
    /// Largest frame payload the owner accepts.
    pub owner_max_frame: u32,
    /// Files fetched now (the others were already cached).
    pub downloaded: Vec<&'static str>,
    /// Bytes of the fetched files.
    pub file_bytes: u64,
    /// Traffic of the info request and the downloads.
    pub traffic: Traffic,
    /// Seconds.
    pub seconds: f64,
}

/// The mode a service runs, read from the files it offers: the keyed model (user-keyed) or the
/// encrypted model and the evaluation keys (owner-keyed).
pub fn served_mode(info: &ServiceInfo) -> Result<HeMode, PartyError> {
    let offers = |id: FileId| info.files.iter().any(|f| f.id == id);
    if offers(FileId::KeyedModel) {
        Ok(HeMode::UserKeyed)
    } else if FileId::ALL.into_iter().all(offers) {
        Ok(HeMode::OwnerKeyed)
    } else {
        Err(PartyError::Integrity {
            file: "service info".into(),
            reason: "the owner offers neither the keyed model nor the encrypted model and keys"
                .into(),
        })
    }
}

/// Fetches the owner-keyed user files (the encrypted model and the evaluation keys); an owner
/// in user-keyed mode is a [`PartyError::Mode`] error.
pub fn fetch_model(client: &mut Client, cache: &Path) -> Result<Download, PartyError> {
    fetch(client, cache, Some(HeMode::OwnerKeyed))
}

/// Asks the owner what it serves, checks the mode against `expect` (`None`: any), and fetches
/// the files of that mode the cache does not already hold (same size and SHA-256) into `cache`.
pub fn fetch(
    client: &mut Client,
    cache: &Path,
    expect: Option<HeMode>,
) -> Result<Download, PartyError> {
    let clock = Instant::now();
    let before = client.traffic();
    let info = client.info()?;
    let mode = served_mode(&info)?;
    if let Some(expected) = expect.filter(|&e| e != mode) {
        return Err(PartyError::Mode {
            server: client.peer.clone(),
            served: mode,
            expected,
        });
    }
    let ids: &[FileId] = match mode {
        HeMode::OwnerKeyed => &FileId::ALL,
        HeMode::UserKeyed => &FileId::KEYED,
    };
    std::fs::create_dir_all(cache)
        .map_err(|e| PartyError::io(format!("creating {}", cache.display()), e))?;
    let mut downloaded = Vec::new();
    let mut file_bytes = 0;
    for &id in ids {
        if let Some(len) = fetch_one(client, &info, id, cache)? {
            downloaded.push(id.file_name());
            file_bytes += len;
        }
    }
    Ok(Download {
        mode,
        model: cache.join(ids[0].file_name()),
        keys: (mode == HeMode::OwnerKeyed).then(|| cache.join(FileId::EvaluationKeys.file_name())),
        label: info.model,
        owner_max_frame: info.max_frame,
        downloaded,
        file_bytes,
        traffic: client.traffic().since(&before),
        seconds: clock.elapsed().as_secs_f64(),
    })
}

/// Fetches one announced file unless the cache holds it; returns the bytes fetched.
fn fetch_one(
    client: &mut Client,
    info: &ServiceInfo,
    id: FileId,
    cache: &Path,
) -> Result<Option<u64>, PartyError> {
    let bad = |reason: String| PartyError::Integrity {
        file: id.file_name().into(),
        reason,
    };
    let entry = info
        .files
        .iter()
        .find(|f| f.id == id)
        .ok_or_else(|| bad("the owner does not offer this file".into()))?;
    let path = cache.join(id.file_name());
    if let Ok(bytes) = std::fs::read(&path)
        && bytes.len() as u64 == entry.bytes
        && sha256_hex(&bytes) == entry.sha256
    {
        return Ok(None);
    }
    let bytes = client.file(id)?;
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
    Ok(Some(bytes.len() as u64))
}
