//! The server's loop over TCP: per step both holders' z1 shares, the forward to holder B's top
//! features, holder B's ∂loss/∂h, the backward and δ to both holders. It keeps a digest of every
//! z1 it reconstructed (the offline audit compares them with the integer shadow) and what it saw
//! of the first images of the last epoch ([`crate::view::ServerView`], for the leakage
//! experiment).

use std::net::TcpListener;
use std::time::Instant;

use privdnn_model::{UpperNet, UpperState};
use serde::{Deserialize, Serialize};

use super::{
    Link, RoleEpoch, RoleStats, RunSetup, accept, epoch_file, finish, last_epoch, payload_sent,
    read_state, recv_as, send, take, write_state,
};
use crate::error::SpnnError;
use crate::messages::{Activations, FeatureGrad};
use crate::server::Server;
use crate::session::Settings;
use crate::view::{SERVER_VIEW_FILE, ServerView};
use crate::wire::{Msg, Role};

/// Images of the server's view.
pub const VIEW_IMAGES: usize = 16;

/// The server's state after an epoch (`epoch-NNN.bin`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerFile {
    /// Settings digest of the run.
    pub digest: u64,
    /// The run's settings and training-set size (the report's audit needs them).
    pub settings: Settings,
    /// Training images.
    pub train_len: usize,
    /// Epochs finished.
    pub epochs_done: usize,
    /// Global steps finished.
    pub steps_done: u64,
    /// The network and optimiser.
    pub upper: UpperState,
    /// This role's epochs.
    pub history: Vec<RoleEpoch>,
    /// Digest of the z1 the server reconstructed at every step of the epoch.
    pub z1_digests: Vec<u64>,
}

/// Digest of a z1 batch (the audit compares digests, not megabytes).
pub fn z1_digest(z1: &[u64]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    z1.hash(&mut h);
    h.finish()
}

/// Runs the server: accepts both holders on `listener`, trains to the end of the run.
pub fn run_server(setup: &RunSetup, listener: &TcpListener) -> Result<RoleStats, SpnnError> {
    std::fs::create_dir_all(&setup.dir)
        .map_err(|e| SpnnError::config(format!("{}: {e}", setup.dir.display())))?;
    let done = last_epoch(&setup.dir);
    let s = &setup.settings;
    let upper = match done {
        0 => UpperNet::new(&setup.task.spec, s.seed, s.optimizer, s.weight_decay)?,
        e => {
            let f: ServerFile = read_state(&epoch_file(&setup.dir, e), "spnn server state")?;
            UpperNet::restore(&setup.task.spec, s.optimizer, s.weight_decay, &f.upper)?
        }
    };
    let mut history = match done {
        0 => Vec::new(),
        e => read_state::<ServerFile>(&epoch_file(&setup.dir, e), "spnn server state")?.history,
    };
    let mut links = accept(
        setup,
        listener,
        Role::Server,
        &[Role::HolderA, Role::HolderB],
        Some(done),
    )?;
    let mut a = take(&mut links, Role::HolderA)?;
    let mut b = take(&mut links, Role::HolderB)?;
    let mut server = Server::new(upper, s.encoding);
    let mut steps_done = (done * setup.batches().len()) as u64;
    let epochs = setup.epochs(done);
    let last = *epochs.end();
    for epoch in epochs {
        let (rec, digests) = run_epoch(
            setup,
            &mut server,
            [&mut a, &mut b],
            epoch,
            epoch == last,
            steps_done,
        )?;
        steps_done += rec.steps;
        history.push(rec);
        let file = ServerFile {
            digest: setup.digest()?,
            settings: setup.settings.clone(),
            train_len: setup.train_len,
            epochs_done: epoch,
            steps_done,
            upper: server.upper.state()?,
            history: history.clone(),
            z1_digests: digests,
        };
        write_state(&epoch_file(&setup.dir, epoch), &file)?;
    }
    finish(&mut a);
    finish(&mut b);
    let stats = RoleStats::now(Role::Server, history);
    stats.write(&setup.dir)?;
    Ok(stats)
}

fn run_epoch(
    setup: &RunSetup,
    server: &mut Server,
    [a, b]: [&mut Link; 2],
    epoch: usize,
    keep_view: bool,
    first_step: u64,
) -> Result<(RoleEpoch, Vec<u64>), SpnnError> {
    let started = Instant::now();
    let before = [a.traffic(), b.traffic()];
    let (lr, _) = setup.settings.rates(epoch);
    let mut rec = RoleEpoch {
        epoch,
        ..Default::default()
    };
    let mut digests = Vec::new();
    for (i, _) in setup.batches().iter().enumerate() {
        let za: Activations = recv_as(a, "holder-a")?;
        let zb: Activations = recv_as(b, "holder-b")?;
        let step = first_step + i as u64;
        if za.step != step {
            return Err(SpnnError::protocol(format!(
                "activations of step {} at step {step}",
                za.step
            )));
        }
        let t = Instant::now();
        let fwd = server.forward(&za, &zb)?;
        rec.compute_seconds += t.elapsed().as_secs_f64();
        digests.push(z1_digest(&fwd.z1));
        if keep_view && i == 0 {
            write_view(setup, server, &fwd.z1, epoch)?;
        }
        send(b, Msg::Features(fwd.features), Role::HolderB)?;
        let g: FeatureGrad = recv_as(b, "holder-b")?;
        let t = Instant::now();
        let grad = server.backward(&g, lr)?;
        rec.compute_seconds += t.elapsed().as_secs_f64();
        send(a, Msg::Gradient(grad.clone()), Role::HolderA)?;
        send(b, Msg::Gradient(grad), Role::HolderB)?;
        rec.steps += 1;
    }
    rec.wall_seconds = started.elapsed().as_secs_f64();
    for (l, (bf, r)) in [&*a, &*b]
        .iter()
        .zip(before.iter().zip([Role::HolderA, Role::HolderB]))
    {
        rec.sent.push((r.name().to_string(), payload_sent(l, bf)));
    }
    Ok((rec, digests))
}

/// Keeps the z1 of the first [`VIEW_IMAGES`] images of the epoch's first step (their indices in
/// the training split follow from the public seed and epoch order).
fn write_view(
    setup: &RunSetup,
    server: &Server,
    z1: &[u64],
    epoch: usize,
) -> Result<(), SpnnError> {
    let shape = server.upper.z1_shape()?;
    let per: usize = shape.iter().product();
    let n = (z1.len() / per.max(1)).min(VIEW_IMAGES);
    let order = privdnn_data::epoch_order(setup.train_len, epoch, setup.settings.seed);
    let view = ServerView {
        dataset: setup.task.dataset.clone(),
        noise_sigma: setup.settings.noise_sigma,
        epoch,
        indices: order[..n].to_vec(),
        shape,
        z1: server.decode(&z1[..n * per]),
    };
    view.write(&setup.dir.join(SERVER_VIEW_FILE))
}
