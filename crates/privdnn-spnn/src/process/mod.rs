//! Each role of a run as a loop over TCP ([`crate::wire`] frames), the same computations as the
//! in-process [`crate::harness`]: [`holder`] (A and B), [`server`], [`dealer`].
//!
//! Topology: the server and the dealer listen (both holders dial them), holder B listens (holder
//! A dials it). Every connection opens with a [`Hello`] both ways: the settings digest and the
//! epochs each side has finished must agree, so a resumed run continues from one common
//! checkpoint or stops with an error naming the directories. Each role keeps its own state in
//! its directory: `epoch-NNN.bin` after every epoch (holders' files are secret, mode 0600: they
//! hold keys and weight shares), `stats.json` at the end (CPU, peak memory, bytes per link).

pub mod dealer;
pub mod holder;
pub mod server;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use privdnn_artifacts::{codec, peak_rss_bytes, process_cpu_seconds, write_private_atomic};
use privdnn_mpc::MaskKey;
use privdnn_net::{Channel, Limits, Traffic};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::SpnnError;
use crate::fixed::Geometry;
use crate::session::{Settings, Task};
use crate::wire::{Expect, Hello, Msg, Role};

/// One connection of the protocol.
pub type Link = Channel<TcpStream, Msg>;

/// What every role of one run agrees on.
#[derive(Clone, Debug)]
pub struct RunSetup {
    /// The model and data description.
    pub task: Task,
    /// Training settings.
    pub settings: Settings,
    /// Training images (public: the dealer and the server schedule steps by it).
    pub train_len: usize,
    /// This role's state directory.
    pub dir: PathBuf,
    /// Keys derived from the seed instead of drawn at random (reproducible runs and tests only:
    /// anyone who knows the seed knows the masks).
    pub derived_keys: bool,
    /// Stop after this many more epochs (a run interrupted on purpose); `usize::MAX` = all.
    pub max_epochs: usize,
    /// Frame and time limits of every connection.
    pub limits: Limits,
}

impl RunSetup {
    /// Digest of everything both ends of a connection must share.
    pub fn digest(&self) -> Result<u64, SpnnError> {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        codec::encode(&(&self.settings, self.train_len, &self.task.spec))?.hash(&mut h);
        Ok(h.finish())
    }

    /// conv1's geometry (its channel count from the network the seed builds).
    pub fn geometry(&self) -> Result<Geometry, SpnnError> {
        let s = &self.settings;
        let net = privdnn_model::UpperNet::new(&self.task.spec, s.seed, s.optimizer, 0.0)?;
        crate::session::geometry(&self.task.spec, net.z1_shape()?[0], None)
    }

    /// Batch sizes of one epoch, in order.
    pub fn batches(&self) -> Vec<usize> {
        let b = self.settings.batch_size.max(1);
        let full = self.train_len / b;
        let mut v = vec![b; full];
        if !self.train_len.is_multiple_of(b) {
            v.push(self.train_len % b);
        }
        v
    }

    /// The epochs this call trains, after `done` finished ones.
    pub fn epochs(&self, done: usize) -> std::ops::RangeInclusive<usize> {
        let first = done + 1;
        let last = self
            .settings
            .epochs
            .min(first.saturating_add(self.max_epochs.saturating_sub(1)));
        first..=last
    }

    /// A fresh random key, or one derived from the seed for `label`.
    pub fn key(&self, label: &str) -> MaskKey {
        if self.derived_keys {
            crate::session::derive_key(&crate::session::root_key(self.settings.seed), label)
        } else {
            MaskKey(rand::random())
        }
    }
}

/// What a role measured in one epoch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RoleEpoch {
    /// 1-based epoch.
    pub epoch: usize,
    /// Steps run.
    pub steps: u64,
    /// Wall seconds of the epoch's steps.
    pub wall_seconds: f64,
    /// Seconds computing the protocol's cryptography (holders, dealer) or the network (server).
    pub compute_seconds: f64,
    /// Holder B: seconds in the top layer (plaintext network compute).
    pub top_seconds: f64,
    /// Holder B: summed loss × images and hits of the epoch.
    pub loss_sum: f64,
    /// Holder B: top-1 hits.
    pub correct: u64,
    /// Payload bytes sent per peer (role name → bytes).
    pub sent: Vec<(String, u64)>,
}

/// A role's end-of-run measurements (`stats.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RoleStats {
    /// Role name.
    pub role: String,
    /// Process CPU seconds (user + system).
    pub cpu_seconds: f64,
    /// Peak resident memory (bytes).
    pub peak_rss_bytes: u64,
    /// Epochs this process trained.
    pub epochs: Vec<RoleEpoch>,
}

impl RoleStats {
    /// The stats of this process now.
    pub fn now(role: Role, epochs: Vec<RoleEpoch>) -> Self {
        Self {
            role: role.name().to_string(),
            cpu_seconds: process_cpu_seconds(),
            peak_rss_bytes: peak_rss_bytes(),
            epochs,
        }
    }

    /// Writes `stats.json` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), SpnnError> {
        let path = dir.join("stats.json");
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| SpnnError::config(format!("{}: {e}", path.display())))?;
        std::fs::write(&path, text)
            .map_err(|e| SpnnError::config(format!("{}: {e}", path.display())))
    }
}

/// Payload bytes sent on a link since `before` (frame headers off).
pub fn payload_sent(link: &Link, before: &Traffic) -> u64 {
    let t = link.traffic().since(before);
    t.bytes_sent - t.frames_sent * privdnn_net::HEADER_LEN as u64
}

/// Connects to `addr` as `me` and exchanges hellos; returns the link and the peer's hello.
pub fn dial(
    setup: &RunSetup,
    addr: &str,
    me: Role,
    done: usize,
) -> Result<(Link, Hello), SpnnError> {
    let stream = connect_retrying(addr)?;
    let _ = stream.set_nodelay(true);
    let mut link = Channel::new(stream, setup.limits).map_err(transport(addr))?;
    link.send(&Msg::Hello(hello(setup, me, done)?))
        .map_err(transport(addr))?;
    let peer: Hello = recv_as(&mut link, addr)?;
    check_hello(setup, &peer, done)?;
    Ok((link, peer))
}

/// Dials, retrying for up to 60 s while the listener starts.
fn connect_retrying(addr: &str) -> Result<TcpStream, SpnnError> {
    let start = std::time::Instant::now();
    loop {
        match TcpStream::connect(addr) {
            Ok(s) => return Ok(s),
            Err(e) if start.elapsed() > Duration::from_secs(60) => {
                return Err(SpnnError::Transport(format!("connecting to {addr}: {e}")));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Accepts one connection per role in `expect` (any order), answering each hello with ours.
pub fn accept(
    setup: &RunSetup,
    listener: &TcpListener,
    me: Role,
    expect: &[Role],
    done: Option<usize>,
) -> Result<Vec<(Role, Link, Hello)>, SpnnError> {
    let mut out: Vec<(Role, Link, Hello)> = Vec::new();
    while out.len() < expect.len() {
        let (stream, peer_addr) = listener
            .accept()
            .map_err(|e| SpnnError::Transport(format!("accepting a peer: {e}")))?;
        let _ = stream.set_nodelay(true);
        let from = peer_addr.to_string();
        let mut link = Channel::new(stream, setup.limits).map_err(transport(&from))?;
        let peer: Hello = recv_as(&mut link, &from)?;
        if !expect.contains(&peer.role) || out.iter().any(|(r, _, _)| *r == peer.role) {
            link.fail(
                privdnn_net::ErrorCode::Unexpected,
                format!("{} does not expect {}", me.name(), peer.role.name()),
            );
            continue;
        }
        let ours = done.unwrap_or(peer.epochs_done as usize);
        link.send(&Msg::Hello(hello(setup, me, ours)?))
            .map_err(transport(&from))?;
        check_hello(setup, &peer, ours)?;
        out.push((peer.role, link, peer));
    }
    Ok(out)
}

/// Takes the link of `role` out of an [`accept`] result.
pub fn take(links: &mut Vec<(Role, Link, Hello)>, role: Role) -> Result<Link, SpnnError> {
    let i = links
        .iter()
        .position(|(r, _, _)| *r == role)
        .ok_or_else(|| SpnnError::protocol(format!("no connection from {}", role.name())))?;
    Ok(links.swap_remove(i).1)
}

fn hello(setup: &RunSetup, me: Role, done: usize) -> Result<Hello, SpnnError> {
    Ok(Hello {
        role: me,
        settings: setup.digest()?,
        epochs_done: done as u64,
    })
}

fn check_hello(setup: &RunSetup, peer: &Hello, done: usize) -> Result<(), SpnnError> {
    if peer.settings != setup.digest()? {
        return Err(SpnnError::config(format!(
            "{} trains with other settings (model, epochs, batch, seed, data size): start every \
             role from the same pipeline, profile and options",
            peer.role.name()
        )));
    }
    if peer.epochs_done as usize != done {
        return Err(SpnnError::config(format!(
            "{} has finished {} epochs and this role {done}: the checkpoints disagree; remove \
             the run's role directories (or restore matching epoch-NNN.bin files) and start again",
            peer.role.name(),
            peer.epochs_done
        )));
    }
    Ok(())
}

fn transport(peer: &str) -> impl Fn(privdnn_net::NetError) -> SpnnError + '_ {
    move |e| SpnnError::Transport(format!("{peer}: {e}"))
}

/// Sends `m` to `peer`.
pub fn send(link: &mut Link, m: Msg, peer: Role) -> Result<(), SpnnError> {
    link.send(&m).map_err(transport(peer.name()))?;
    Ok(())
}

/// Receives the next message as `T`; an error frame, another kind or a close is an error.
pub fn recv_as<T: Expect>(link: &mut Link, from: &str) -> Result<T, SpnnError> {
    match link.recv().map_err(transport(from))? {
        Some(Msg::Error(e)) => Err(SpnnError::protocol(format!("{from} failed: {}", e.message))),
        Some(m) => T::pick(m).map_err(|other| {
            SpnnError::protocol(format!(
                "{from} sent a {} message instead of a {}",
                privdnn_net::WireMessage::name(&*other),
                T::WHAT
            ))
        }),
        None => Err(SpnnError::protocol(format!(
            "{from} closed the connection while a {} was expected",
            T::WHAT
        ))),
    }
}

/// Waits for the peer's [`Msg::Done`] (or its close) at the end of a run.
pub fn finish(link: &mut Link) {
    let _ = link.send(&Msg::Done);
    let _ = link.recv();
}

/// Path of the state file after `epoch`.
pub fn epoch_file(dir: &Path, epoch: usize) -> PathBuf {
    dir.join(format!("epoch-{epoch:03}.bin"))
}

/// The highest epoch with a state file in `dir` (0 when none).
pub fn last_epoch(dir: &Path) -> usize {
    (1..=100_000)
        .take_while(|e| epoch_file(dir, *e).exists())
        .last()
        .unwrap_or(0)
}

/// Writes a state file (secret: mode 0600).
pub fn write_state<T: Serialize>(path: &Path, value: &T) -> Result<(), SpnnError> {
    write_private_atomic(path, &codec::encode(value)?).map_err(SpnnError::from)
}

/// Reads a state file.
pub fn read_state<T: DeserializeOwned>(path: &Path, what: &'static str) -> Result<T, SpnnError> {
    let bytes =
        std::fs::read(path).map_err(|e| SpnnError::config(format!("{}: {e}", path.display())))?;
    codec::decode(&bytes, what).map_err(|e| SpnnError::config(format!("{}: {e}", path.display())))
}
