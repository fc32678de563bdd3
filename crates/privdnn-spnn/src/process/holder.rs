//! A data holder's loop over TCP: keys at setup (holder A's pair key to B, the dealer's seed to
//! each), then per step input shares, triple, openings with the other holder, z1 share to the
//! server, (holder B: top layer on the server's features with its own labels), δ, update.
//! Holder A's code reads only its own columns of the images, never a label.

use std::net::TcpListener;
use std::time::Instant;

use privdnn_artifacts::DatasetSplit;
use privdnn_model::{TopNet, TopState};
use privdnn_mpc::{MaskKey, RingVec};
use serde::{Deserialize, Serialize};

use super::{
    Link, RoleEpoch, RoleStats, RunSetup, accept, dial, epoch_file, finish, last_epoch,
    payload_sent, read_state, recv_as, send, take, write_state,
};
use crate::error::SpnnError;
use crate::fixed::{Geometry, columns_of, encode_pixels};
use crate::holder::{Holder, HolderKeys, HolderState};
use crate::messages::{Activations, Correction, Features, Gradient, Opening};
use crate::top::top_step;
use crate::wire::{KeyGift, Msg, Role};

/// A holder's state after an epoch (`epoch-NNN.bin`, secret).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HolderFile {
    /// Settings digest of the run.
    pub digest: u64,
    /// Epochs finished.
    pub epochs_done: usize,
    /// Global steps finished.
    pub steps_done: u64,
    /// Pair key, dealer seed, own key.
    pub keys: [MaskKey; 3],
    /// The weight and bias shares.
    pub state: HolderState,
    /// Holder B's top layer.
    pub top: Option<TopState>,
    /// This role's epochs.
    pub history: Vec<RoleEpoch>,
    /// Audit trail: this holder's weight ++ bias share before every step of the epoch.
    pub audit: Vec<RingVec>,
}

/// Where a holder's peers are: holder A dials holder B; holder B listens for holder A.
pub enum PeerHolder<'a> {
    /// Holder A: holder B's address.
    Dial(&'a str),
    /// Holder B: its listener.
    Listen(&'a TcpListener),
}

struct Links {
    server: Link,
    dealer: Link,
    peer: Link,
}

struct Running {
    party: usize,
    holder: Holder,
    top: Option<TopNet>,
    geometry: Geometry,
    steps_done: u64,
    history: Vec<RoleEpoch>,
}

fn role(party: usize) -> Role {
    if party == 0 {
        Role::HolderA
    } else {
        Role::HolderB
    }
}

/// Runs holder `party` (0 = A, 1 = B) to the end of the run (or `max_epochs` more epochs).
pub fn run_holder(
    setup: &RunSetup,
    party: usize,
    train: &DatasetSplit,
    server: &str,
    dealer: &str,
    peer: PeerHolder<'_>,
) -> Result<RoleStats, SpnnError> {
    std::fs::create_dir_all(&setup.dir)
        .map_err(|e| SpnnError::config(format!("{}: {e}", setup.dir.display())))?;
    let done = last_epoch(&setup.dir);
    let saved: Option<HolderFile> = match done {
        0 => None,
        e => Some(read_state(&epoch_file(&setup.dir, e), "spnn holder state")?),
    };
    let me = role(party);
    let (server, _) = dial(setup, server, me, done)?;
    let (mut dealer, _) = dial(setup, dealer, me, done)?;
    let mut peer = match peer {
        PeerHolder::Dial(addr) => dial(setup, addr, me, done)?.0,
        PeerHolder::Listen(l) => take(
            &mut accept(setup, l, me, &[Role::HolderA], Some(done))?,
            Role::HolderA,
        )?,
    };
    let keys = exchange_keys(setup, party, saved.as_ref(), &mut dealer, &mut peer)?;
    let mut run = start(setup, party, keys, saved)?;
    let mut links = Links {
        server,
        dealer,
        peer,
    };
    for epoch in setup.epochs(done) {
        run_epoch(setup, &mut run, &mut links, train, epoch)?;
    }
    for l in [&mut links.server, &mut links.dealer, &mut links.peer] {
        finish(l);
    }
    let stats = RoleStats::now(me, run.history.clone());
    stats.write(&setup.dir)?;
    Ok(stats)
}

/// Keys: the dealer's seed arrives from the dealer; holder A draws the pair key and hands it to
/// holder B; a resumed holder checks that both match its checkpoint.
fn exchange_keys(
    setup: &RunSetup,
    party: usize,
    saved: Option<&HolderFile>,
    dealer: &mut Link,
    peer: &mut Link,
) -> Result<HolderKeys, SpnnError> {
    let dealer_key = recv_as::<KeyGift>(dealer, "dealer")?.key;
    let pair = if party == 0 {
        let k = saved.map_or_else(|| setup.key("pair"), |f| f.keys[0].clone());
        send(peer, Msg::Key(KeyGift { key: k.clone() }), Role::HolderB)?;
        k
    } else {
        recv_as::<KeyGift>(peer, "holder-a")?.key
    };
    let own = saved.map_or_else(
        || setup.key(if party == 0 { "own-a" } else { "own-b" }),
        |f| f.keys[2].clone(),
    );
    if let Some(f) = saved
        && (f.keys[0] != pair || f.keys[1] != dealer_key)
    {
        return Err(SpnnError::config(format!(
            "{}: the keys of the peers do not match this checkpoint (another run's dealer or \
             holder?); start every role of the run from its own directory",
            setup.dir.display()
        )));
    }
    Ok(HolderKeys {
        pair,
        dealer: dealer_key,
        own,
    })
}

fn start(
    setup: &RunSetup,
    party: usize,
    keys: HolderKeys,
    saved: Option<HolderFile>,
) -> Result<Running, SpnnError> {
    let (s, task) = (&setup.settings, &setup.task);
    let (_, top, w0, b0) = crate::session::initial(task, s)?;
    let geometry = crate::session::geometry(&task.spec, b0.len(), None)?;
    let mut holder = Holder::new(party, geometry, s.encoding, keys, &w0, &b0)?;
    holder.noise_sigma = s.noise_sigma;
    let mut top = (party == 1).then_some(top);
    let (mut steps_done, mut history) = (0, Vec::new());
    if let Some(f) = saved {
        holder.state = f.state;
        if let (Some(t), Some(state)) = (top.as_mut(), f.top.as_ref()) {
            *t = TopNet::restore(&task.spec, s.optimizer, s.weight_decay, state)?;
        }
        steps_done = f.steps_done;
        history = f.history;
    }
    Ok(Running {
        party,
        holder,
        top,
        geometry,
        steps_done,
        history,
    })
}

fn run_epoch(
    setup: &RunSetup,
    run: &mut Running,
    links: &mut Links,
    train: &DatasetSplit,
    epoch: usize,
) -> Result<(), SpnnError> {
    let started = Instant::now();
    let before = [&links.server, &links.dealer, &links.peer].map(|l| l.traffic());
    let (lr, lr1) = setup.settings.rates(epoch);
    let order = privdnn_data::epoch_order(train.len(), epoch, setup.settings.seed);
    let mut rec = RoleEpoch {
        epoch,
        ..Default::default()
    };
    let mut audit = Vec::new();
    for chunk in order.chunks(setup.settings.batch_size.max(1)) {
        let st = &run.holder.state;
        audit.push(
            [st.weights.0.as_slice(), st.bias.0.as_slice()]
                .concat()
                .into(),
        );
        step(setup, run, links, train, chunk, (lr, lr1), &mut rec)?;
        run.steps_done += 1;
        rec.steps += 1;
    }
    rec.wall_seconds = started.elapsed().as_secs_f64();
    let names = [Role::Server, Role::Dealer, role(1 - run.party)];
    for ((l, b), r) in [&links.server, &links.dealer, &links.peer]
        .iter()
        .zip(&before)
        .zip(names)
    {
        rec.sent.push((r.name().to_string(), payload_sent(l, b)));
    }
    run.history.push(rec);
    let file = HolderFile {
        digest: setup.digest()?,
        epochs_done: epoch,
        steps_done: run.steps_done,
        keys: [
            run.holder.keys().pair.clone(),
            run.holder.keys().dealer.clone(),
            run.holder.keys().own.clone(),
        ],
        state: run.holder.state.clone(),
        top: run.top.as_ref().map(|t| t.state()).transpose()?,
        history: run.history.clone(),
        audit,
    };
    write_state(&epoch_file(&setup.dir, epoch), &file)
}

/// One step of the protocol at this holder.
fn step(
    setup: &RunSetup,
    run: &mut Running,
    links: &mut Links,
    train: &DatasetSplit,
    chunk: &[usize],
    (lr, lr1): (f64, f64),
    rec: &mut RoleEpoch,
) -> Result<(), SpnnError> {
    let (p, g, n, s) = (run.party, run.geometry, chunk.len(), run.steps_done);
    let mut t = Instant::now();
    let correction = if p == 1 {
        Some(recv_as::<Correction>(&mut links.dealer, "dealer")?)
    } else {
        None
    };
    let raw = columns_of(&g, p, train, chunk);
    let own = encode_pixels(
        &g,
        p,
        &raw,
        &setup.task.normalization,
        setup.settings.encoding.input_bits,
    );
    let x = run.holder.share_images(s, &own, n)?;
    let triple = run.holder.triple(s, n, correction.as_ref())?;
    let mine = run.holder.open(s, &x, &triple)?;
    rec.compute_seconds += t.elapsed().as_secs_f64();
    let theirs: Opening = if p == 0 {
        send(&mut links.peer, Msg::Opening(mine.clone()), Role::HolderB)?;
        recv_as(&mut links.peer, "holder-b")?
    } else {
        let o = recv_as(&mut links.peer, "holder-a")?;
        send(&mut links.peer, Msg::Opening(mine.clone()), Role::HolderA)?;
        o
    };
    t = Instant::now();
    let z = run.holder.forward(&triple, &mine, &theirs)?;
    rec.compute_seconds += t.elapsed().as_secs_f64();
    send(
        &mut links.server,
        Msg::Activations(Activations {
            step: s,
            z: z.into(),
        }),
        Role::Server,
    )?;
    if let Some(top) = run.top.as_mut() {
        let f: Features = recv_as(&mut links.server, "server")?;
        t = Instant::now();
        let labels: Vec<u16> = chunk.iter().map(|&i| train.labels[i]).collect();
        let out = top_step(top, &f, &labels, lr)?;
        rec.top_seconds += t.elapsed().as_secs_f64();
        rec.loss_sum += out.loss * n as f64;
        rec.correct += out.correct as u64;
        send(&mut links.server, Msg::FeatureGrad(out.grad), Role::Server)?;
    }
    let grad: Gradient = recv_as(&mut links.server, "server")?;
    if grad.step != s {
        return Err(SpnnError::protocol(format!(
            "gradient of step {} at step {s}",
            grad.step
        )));
    }
    t = Instant::now();
    run.holder.update(s, &x, &grad.delta.0, lr1)?;
    rec.compute_seconds += t.elapsed().as_secs_f64();
    Ok(())
}
