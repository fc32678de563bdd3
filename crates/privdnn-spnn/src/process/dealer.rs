//! The dealer's loop over TCP: a seed to each holder at setup (kept in `keys.bin`, secret, so a
//! resumed run deals the same triples), then holder B's correction for every step, ahead of the
//! holders (TCP flow control keeps it a few steps ahead). It sees no data, weight or activation.

use std::net::TcpListener;
use std::time::Instant;

use privdnn_mpc::MaskKey;

use super::{
    RoleEpoch, RoleStats, RunSetup, accept, finish, payload_sent, read_state, send, take,
    write_state,
};
use crate::dealer::Dealer;
use crate::error::SpnnError;
use crate::wire::{KeyGift, Msg, Role};

/// Runs the dealer: accepts both holders on `listener`, deals to the end of the run.
pub fn run_dealer(setup: &RunSetup, listener: &TcpListener) -> Result<RoleStats, SpnnError> {
    std::fs::create_dir_all(&setup.dir)
        .map_err(|e| SpnnError::config(format!("{}: {e}", setup.dir.display())))?;
    let mut links = accept(
        setup,
        listener,
        Role::Dealer,
        &[Role::HolderA, Role::HolderB],
        None,
    )?;
    let done: Vec<u64> = links.iter().map(|(_, _, h)| h.epochs_done).collect();
    if done[0] != done[1] {
        return Err(SpnnError::config(format!(
            "the holders have finished {} and {} epochs: their checkpoints disagree",
            done[0], done[1]
        )));
    }
    let done = done[0] as usize;
    let mut a = take(&mut links, Role::HolderA)?;
    let mut b = take(&mut links, Role::HolderB)?;
    let keys = seeds(setup)?;
    send(
        &mut a,
        Msg::Key(KeyGift {
            key: keys[0].clone(),
        }),
        Role::HolderA,
    )?;
    send(
        &mut b,
        Msg::Key(KeyGift {
            key: keys[1].clone(),
        }),
        Role::HolderB,
    )?;
    let dealer = Dealer::new(setup.geometry()?, keys[0].clone(), keys[1].clone());
    let batches = setup.batches();
    let mut step = (done * batches.len()) as u64;
    let mut history = Vec::new();
    for epoch in setup.epochs(done) {
        let (started, before) = (Instant::now(), b.traffic());
        let mut rec = RoleEpoch {
            epoch,
            ..Default::default()
        };
        for &n in &batches {
            let t = Instant::now();
            let c = dealer.correction(step, n)?;
            rec.compute_seconds += t.elapsed().as_secs_f64();
            send(&mut b, Msg::Correction(c), Role::HolderB)?;
            step += 1;
            rec.steps += 1;
        }
        rec.wall_seconds = started.elapsed().as_secs_f64();
        rec.sent
            .push((Role::HolderB.name().to_string(), payload_sent(&b, &before)));
        history.push(rec);
    }
    finish(&mut a);
    finish(&mut b);
    let stats = RoleStats::now(Role::Dealer, history);
    stats.write(&setup.dir)?;
    Ok(stats)
}

/// The two holders' dealer seeds: from `keys.bin`, or fresh (and saved, mode 0600).
fn seeds(setup: &RunSetup) -> Result<[MaskKey; 2], SpnnError> {
    let path = setup.dir.join("keys.bin");
    if path.exists() {
        return read_state(&path, "spnn dealer keys");
    }
    let keys = [setup.key("dealer-a"), setup.key("dealer-b")];
    write_state(&path, &keys)?;
    Ok(keys)
}
