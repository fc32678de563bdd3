//! The owner, dealer and client as processes over TCP ([`crate::wire`] frames); the servers are
//! in [`crate::serve`]. The owner connects to both servers, hands over the shares and leaves; the
//! dealer connects to both, sends the seeds and then each query's material in order (TCP flow
//! control keeps it a few queries ahead at most, so its memory stays flat); the client connects to
//! both, says hello, and sends its queries — one at a time or pipelined ([`TcpClient::classify`]).

use std::net::TcpStream;
use std::time::Instant;

use privdnn_mpc::IntModel;
use privdnn_net::{Channel, Limits, WireMessage};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::dealer::Dealer;
use crate::owner::OwnerSetup;
use crate::wire::{Expect, LinkTraffic, Msg, ServerStats};
use crate::{Result, TwoServerError};

/// One connection of the two-server protocol.
pub type Link = Channel<TcpStream, Msg>;

/// Connects to `addr` (no Nagle: the protocol's flights are small and sequential).
pub fn connect(addr: &str, limits: Limits) -> Result<Link> {
    let stream = TcpStream::connect(addr)
        .map_err(|e| privdnn_net::NetError::io(format!("connecting to {addr}"), e))?;
    let _ = stream.set_nodelay(true);
    Ok(Channel::new(stream, limits)?)
}

/// Receives the next message as `T`; an error frame, another kind or a close is an error.
pub fn recv_as<T: Expect>(link: &mut Link, from: &str) -> Result<T> {
    match link.recv()? {
        Some(Msg::Error(e)) => Err(TwoServerError::protocol(format!(
            "{from} failed: {}",
            e.message
        ))),
        Some(m) => T::pick(m).map_err(|other| {
            TwoServerError::protocol(format!(
                "{from} sent a {} message instead of a {}",
                other.name(),
                T::WHAT
            ))
        }),
        None => Err(TwoServerError::protocol(format!(
            "{from} closed the connection while a {} was expected",
            T::WHAT
        ))),
    }
}

/// Adds the seconds `f` takes to `acc`.
pub(crate) fn timed<T>(acc: &mut f64, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let t = Instant::now();
    let out = f();
    *acc += t.elapsed().as_secs_f64();
    out
}

/// What the owner's two connections carried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerTraffic {
    /// To server 1.
    pub s1: LinkTraffic,
    /// To server 2.
    pub s2: LinkTraffic,
}

/// The owner: sends each server its shares, waits for both acknowledgements, disconnects.
pub fn send_shares(setup: &OwnerSetup, s1: &str, s2: &str, limits: Limits) -> Result<OwnerTraffic> {
    let mut out = OwnerTraffic::default();
    for (addr, share, slot) in [(s1, &setup.s1, &mut out.s1), (s2, &setup.s2, &mut out.s2)] {
        let mut link = connect(addr, limits)?;
        match link.call(&Msg::ModelShare(share.clone()))? {
            Msg::Ack => {}
            other => {
                return Err(TwoServerError::protocol(format!(
                    "server {} answered the shares with a {} message",
                    share.server,
                    other.name()
                )));
            }
        }
        *slot = link.traffic().into();
        link.close();
    }
    Ok(out)
}

/// What the dealer did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DealerReport {
    /// Queries dealt.
    pub queries: u64,
    /// Seconds computing the material (not sending).
    pub deal_seconds: f64,
    /// Setup (the seed) to server 1.
    pub seed_s1: LinkTraffic,
    /// Setup (the seed) to server 2.
    pub seed_s2: LinkTraffic,
    /// All traffic to server 1 (seed included).
    pub s1: LinkTraffic,
    /// All traffic to server 2 (seed included).
    pub s2: LinkTraffic,
}

/// The dealer: seeds to both servers, then the material of queries `0..queries` in order.
pub fn run_dealer(
    dealer: &mut Dealer,
    s1: &str,
    s2: &str,
    queries: u64,
    limits: Limits,
) -> Result<DealerReport> {
    let (mut l1, mut l2) = (connect(s1, limits)?, connect(s2, limits)?);
    let (d1, d2) = dealer.seeds();
    l1.send(&d1.into())?;
    l2.send(&d2.into())?;
    let mut r = DealerReport {
        seed_s1: l1.traffic().into(),
        seed_s2: l2.traffic().into(),
        ..DealerReport::default()
    };
    for q in 0..queries {
        let (t1, t2) = timed(&mut r.deal_seconds, || dealer.deal(q))?;
        l1.send(&t1.into())?;
        l2.send(&t2.into())?;
        r.queries += 1;
    }
    (r.s1, r.s2) = (l1.traffic().into(), l2.traffic().into());
    l1.close();
    l2.close();
    Ok(r)
}

/// The client's connections to both servers.
pub struct TcpClient {
    client: Client,
    s1: Link,
    s2: Link,
    next_query: u64,
    /// Seconds in the client role's own calls (sharing, reconstruction).
    pub compute_seconds: f64,
}

impl TcpClient {
    /// Connects to server 1 at `s1` and server 2 at `s2` and says hello; `public` is the
    /// architecture the owner published.
    pub fn connect(public: IntModel, s1: &str, s2: &str, limits: Limits) -> Result<Self> {
        let (mut a, mut b) = (connect(s1, limits)?, connect(s2, limits)?);
        a.send(&Msg::Hello)?;
        b.send(&Msg::Hello)?;
        Ok(TcpClient {
            client: Client::new(public),
            s1: a,
            s2: b,
            next_query: 0,
            compute_seconds: 0.0,
        })
    }

    /// Traffic on the links to server 1 and server 2.
    pub fn traffic(&self) -> (LinkTraffic, LinkTraffic) {
        (self.s1.traffic().into(), self.s2.traffic().into())
    }

    /// Shares `raw` and sends it as the next query; returns its number.
    pub fn submit<R: Rng + ?Sized>(&mut self, raw: &[u8], rng: &mut R) -> Result<u64> {
        let q = self.next_query;
        let client = &self.client;
        let (c1, c2) = timed(&mut self.compute_seconds, || client.query(q, raw, rng))?;
        self.s1.send(&c1.into())?;
        self.s2.send(&c2.into())?;
        self.next_query += 1;
        Ok(q)
    }

    /// Waits for both logit shares of query `q` and reconstructs the logits.
    pub fn collect(&mut self, q: u64) -> Result<Vec<i64>> {
        let a = recv_as(&mut self.s1, "server 1")?;
        let b = recv_as(&mut self.s2, "server 2")?;
        let client = &self.client;
        timed(&mut self.compute_seconds, || client.finish(q, &a, &b))
    }

    /// Classifies `images` with up to `window` queries in flight (1: one at a time); the servers
    /// answer in order.
    pub fn classify<R: Rng + ?Sized>(
        &mut self,
        images: &[&[u8]],
        window: usize,
        rng: &mut R,
    ) -> Result<Vec<Vec<i64>>> {
        let mut pending = std::collections::VecDeque::new();
        let mut out = Vec::with_capacity(images.len());
        for raw in images {
            if pending.len() >= window.max(1)
                && let Some(q) = pending.pop_front()
            {
                out.push(self.collect(q)?);
            }
            pending.push_back(self.submit(raw, rng)?);
        }
        while let Some(q) = pending.pop_front() {
            out.push(self.collect(q)?);
        }
        Ok(out)
    }

    /// Both servers' counters.
    pub fn stats(&mut self) -> Result<(ServerStats, ServerStats)> {
        let one = |link: &mut Link, who: &str| -> Result<ServerStats> {
            link.send(&Msg::StatsRequest)?;
            recv_as(link, who)
        };
        Ok((
            one(&mut self.s1, "server 1")?,
            one(&mut self.s2, "server 2")?,
        ))
    }

    /// Tells both servers to exit and closes.
    pub fn shutdown(mut self) -> Result<()> {
        self.s1.send(&Msg::Shutdown)?;
        self.s2.send(&Msg::Shutdown)?;
        self.s1.close();
        self.s2.close();
        Ok(())
    }
}
