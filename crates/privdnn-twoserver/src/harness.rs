//! All five roles in one process with only serialised bytes passing between them: every message
//! is encoded by its sender, counted on its link, and decoded by its receiver. Counts bytes per
//! link (setup, offline, online), sequential flights, and each party's compute seconds; can record
//! the words each server receives (its view) for the privacy tests.

use std::time::Instant;

use privdnn_mpc::IntModel;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha12Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::cost::LinkBytes;
use crate::dealer::Dealer;
use crate::messages::{from_bytes, to_bytes};
use crate::owner::share_model;
use crate::plan::Step;
use crate::server1::ServerOne;
use crate::server2::ServerTwo;
use crate::{Result, TwoServerError};

/// One-time setup traffic (per model).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupBytes {
    /// Owner → S1 (architecture + weight shares).
    pub owner_s1: u64,
    /// Owner → S2.
    pub owner_s2: u64,
    /// Dealer → S1 and S2 (seeds).
    pub dealer: u64,
    /// S1 ↔ S2 (`W − B` openings, both directions).
    pub servers: u64,
}

/// Offline (dealer) traffic of one query.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineBytes {
    /// Dealer → S1 (OT seed).
    pub dealer_s1: u64,
    /// Dealer → S2 (corrections, OT corrections).
    pub dealer_s2: u64,
}

/// Compute seconds of each party for one query (in-process: wall time inside its calls).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PartySeconds {
    /// Client (sharing, reconstruction).
    pub client: f64,
    /// Server 1 (garbler).
    pub s1: f64,
    /// Server 2 (evaluator).
    pub s2: f64,
    /// Dealer (offline).
    pub dealer: f64,
}

/// What one query produced and cost.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryOutcome {
    /// Integer logits the client reconstructed.
    pub logits: Vec<i64>,
    /// Online bytes per link.
    pub online: LinkBytes,
    /// Offline bytes.
    pub offline: OfflineBytes,
    /// Sequential online flights.
    pub rounds: u64,
    /// Seconds per party.
    pub seconds: PartySeconds,
    /// Words S1 received (openings, flip bytes), when recording.
    pub view_s1: Vec<u64>,
    /// Words S2 received (input share, openings, garbled chunks), when recording.
    pub view_s2: Vec<u64>,
}

/// All roles of one deployment in this process.
pub struct Harness {
    client: Client,
    dealer: Dealer,
    s1: ServerOne,
    s2: ServerTwo,
    rng: ChaCha12Rng,
    next_query: u64,
    /// Setup traffic.
    pub setup: SetupBytes,
    /// Whether queries record the servers' views.
    pub record: bool,
}

/// Encodes `msg`, adds its size to `counter`, decodes it on the receiving side.
fn send<T: Serialize + DeserializeOwned>(msg: &T, counter: &mut u64) -> Result<T> {
    let bytes = to_bytes(msg)?;
    *counter += bytes.len() as u64;
    from_bytes(&bytes)
}

/// Appends `bytes` as little-endian words (a trailing partial word is dropped).
fn words_of(bytes: &[u8], out: &mut Vec<u64>) {
    out.extend(bytes.chunks_exact(8).map(|c| {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        u64::from_le_bytes(b)
    }));
}

fn timed<T>(acc: &mut f64, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let t = Instant::now();
    let out = f();
    *acc += t.elapsed().as_secs_f64();
    out
}

impl Harness {
    /// Owner, dealer, both servers and the client for `model`; every role's randomness derives
    /// from `seed` (tests; a deployment seeds each role from the OS).
    pub fn new(model: &IntModel, seed: u64) -> Result<Self> {
        let mut rng = ChaCha12Rng::seed_from_u64(seed);
        let owner = share_model(model, &mut rng)?;
        let dealer = Dealer::new(owner.public.clone(), &mut rng)?;
        let mut setup = SetupBytes::default();
        let (d1, d2) = dealer.seeds();
        let (d1, d2) = (send(&d1, &mut setup.dealer)?, send(&d2, &mut setup.dealer)?);
        let mut s1_seed = [0u8; 32];
        rng.fill_bytes(&mut s1_seed);
        let mut s1 = ServerOne::new(send(&owner.s1, &mut setup.owner_s1)?, &d1, s1_seed)?;
        let mut s2 = ServerTwo::new(send(&owner.s2, &mut setup.owner_s2)?, &d2)?;
        let o1 = send(&s1.weight_opening(), &mut setup.servers)?;
        let o2 = send(&s2.weight_opening(), &mut setup.servers)?;
        s1.finish_setup(&o2)?;
        s2.finish_setup(&o1)?;
        Ok(Harness {
            client: Client::new(owner.public),
            dealer,
            s1,
            s2,
            rng,
            next_query: 0,
            setup,
            record: false,
        })
    }

    /// Runs one query on a raw image.
    pub fn infer(&mut self, raw: &[u8]) -> Result<QueryOutcome> {
        let q = self.next_query;
        self.next_query += 1;
        let mut out = QueryOutcome::default();
        let sec = &mut out.seconds;
        let (c1, c2) = timed(&mut sec.client, || self.client.query(q, raw, &mut self.rng))?;
        let (t1, t2) = timed(&mut sec.dealer, || self.dealer.deal(q))?;
        let (t1, t2) = (
            send(&t1, &mut out.offline.dealer_s1)?,
            send(&t2, &mut out.offline.dealer_s2)?,
        );
        let (c1, c2) = (
            send(&c1, &mut out.online.client_s1)?,
            send(&c2, &mut out.online.client_s2)?,
        );
        if self.record {
            out.view_s2.extend_from_slice(&c2.share.0);
        }
        timed(&mut sec.s1, || self.s1.start(&c1, &t1))?;
        timed(&mut sec.s2, || self.s2.start(c2, t2))?;
        out.rounds = 1;
        while let Some(step) = self.s1.current().cloned() {
            if self.s2.current() != Some(&step) {
                return Err(TwoServerError::protocol("servers at different steps"));
            }
            match step {
                Step::Gadget { .. } => self.gadget(&mut out)?,
                _ => self.opening(&mut out)?,
            }
        }
        let l1 = timed(&mut out.seconds.s1, || self.s1.output())?;
        let l2 = timed(&mut out.seconds.s2, || self.s2.output())?;
        let (l1, l2) = (
            send(&l1, &mut out.online.s1_client)?,
            send(&l2, &mut out.online.s2_client)?,
        );
        out.rounds += 1;
        out.logits = timed(&mut out.seconds.client, || self.client.finish(q, &l1, &l2))?;
        Ok(out)
    }

    /// One simultaneous exchange of openings (linear or square step).
    fn opening(&mut self, out: &mut QueryOutcome) -> Result<()> {
        let o1 = timed(&mut out.seconds.s1, || self.s1.open())?;
        let o2 = timed(&mut out.seconds.s2, || self.s2.open())?;
        let o1 = send(&o1, &mut out.online.s1_s2)?;
        let o2 = send(&o2, &mut out.online.s2_s1)?;
        if self.record {
            out.view_s1.extend_from_slice(&o2.words.0);
            out.view_s2.extend_from_slice(&o1.words.0);
        }
        timed(&mut out.seconds.s1, || self.s1.close(&o2))?;
        timed(&mut out.seconds.s2, || self.s2.close(&o1))?;
        out.rounds += 1;
        Ok(())
    }

    /// One gadget: flips S2 → S1, then the garbled chunks S1 → S2 (streamed).
    fn gadget(&mut self, out: &mut QueryOutcome) -> Result<()> {
        let f = timed(&mut out.seconds.s2, || self.s2.flips())?;
        let f = send(&f, &mut out.online.s2_s1)?;
        if self.record {
            words_of(&f.bits, &mut out.view_s1);
        }
        timed(&mut out.seconds.s1, || self.s1.accept_flips(&f))?;
        let mut done = false;
        while !done {
            let Some(c) = timed(&mut out.seconds.s1, || self.s1.next_chunk())? else {
                return Err(TwoServerError::protocol(
                    "garbler stopped before the evaluator",
                ));
            };
            let c = send(&c, &mut out.online.s1_s2)?;
            if self.record {
                for b in [
                    &c.chunk.tables,
                    &c.chunk.garbler_labels,
                    &c.chunk.ot_replies,
                ] {
                    words_of(b, &mut out.view_s2);
                }
            }
            done = timed(&mut out.seconds.s2, || self.s2.receive(&c))?;
        }
        out.rounds += 2;
        Ok(())
    }
}
