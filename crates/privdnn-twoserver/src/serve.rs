//! Both servers as processes over TCP. Each listens on one port and tells its connections apart
//! by their first message: the owner's shares (answered, then the owner leaves), the dealer's seed
//! (its connection then carries the per-query material), server 1's weight opening (server 2
//! only: server 1 dials server 2 once it has its shares and seed), and the client's hello (kept
//! until setup is done). Then queries are answered in order until the client says shutdown.
//!
//! In an opening exchange server 1 writes first and server 2 reads first, so neither blocks on a
//! full socket buffer; garbled chunks are sent as they are made (memory stays one chunk).

use std::net::TcpListener;
use std::time::Instant;

use privdnn_net::{Channel, ErrorCode, Limits, WireMessage};

use crate::messages::{DealerSeed, DealerToS1, DealerToS2, Flips, Garbled, ModelShare, Opening};
use crate::net::{Link, connect, recv_as, timed};
use crate::plan::Step;
use crate::wire::{LinkTraffic, Msg, ServerStats};
use crate::{Result, ServerOne, ServerTwo, TwoServerError};

/// The connections a server collects before its first query.
#[derive(Default)]
struct Accepted {
    share: Option<ModelShare>,
    seed: Option<DealerSeed>,
    dealer: Option<Link>,
    peer: Option<(Link, crate::messages::WeightOpening)>,
    client: Option<Link>,
    owner: LinkTraffic,
}

fn accept(listener: &TcpListener, limits: Limits) -> Result<Link> {
    let (stream, _) = listener
        .accept()
        .map_err(|e| privdnn_net::NetError::io("accepting a connection", e))?;
    let _ = stream.set_nodelay(true);
    Ok(Channel::new(stream, limits)?)
}

/// Accepts connections until `done`; a connection this server does not expect is refused.
fn accept_until(
    listener: &TcpListener,
    server: u8,
    limits: Limits,
    acc: &mut Accepted,
    done: impl Fn(&Accepted) -> bool,
) -> Result<()> {
    while !done(acc) {
        let mut link = accept(listener, limits)?;
        match link.recv()? {
            Some(Msg::ModelShare(s)) if s.server == server && acc.share.is_none() => {
                link.send(&Msg::Ack)?;
                acc.owner = link.traffic().into();
                acc.share = Some(s);
                link.close();
            }
            Some(Msg::DealerSeed(d)) if d.server == server && acc.dealer.is_none() => {
                acc.seed = Some(d);
                acc.dealer = Some(link);
            }
            Some(Msg::WeightOpening(w)) if server == 2 && acc.peer.is_none() => {
                acc.peer = Some((link, w));
            }
            Some(Msg::Hello) if acc.client.is_none() => acc.client = Some(link),
            Some(other) => link.fail(
                ErrorCode::Unexpected,
                format!(
                    "server {server} does not accept a {} message now",
                    other.name()
                ),
            ),
            None => link.close(),
        }
    }
    Ok(())
}

/// A server's connections once set up.
struct Links {
    dealer: Link,
    peer: Link,
    peer_setup: LinkTraffic,
}

/// What the two server roles do differently per query.
trait Role {
    const ID: u8;
    /// Answers one query whose first client message is `first`.
    fn query(&mut self, first: Msg, links: &mut Links, secs: &mut f64) -> Result<Msg>;
}

impl Role for ServerOne {
    const ID: u8 = 1;

    fn query(&mut self, first: Msg, l: &mut Links, secs: &mut f64) -> Result<Msg> {
        let Msg::InputSeed(input) = first else {
            return Err(unexpected(1, &first));
        };
        let d: DealerToS1 = recv_as(&mut l.dealer, "the dealer")?;
        timed(secs, || self.start(&input, &d))?;
        while let Some(gadget) = self.current().map(|s| matches!(s, Step::Gadget { .. })) {
            if gadget {
                let f: Flips = recv_as(&mut l.peer, "server 2")?;
                timed(secs, || self.accept_flips(&f))?;
                while let Some(g) = timed(secs, || self.next_chunk())? {
                    l.peer.send(&g.into())?;
                }
            } else {
                let o = timed(secs, || self.open())?;
                l.peer.send(&o.into())?;
                let other: Opening = recv_as(&mut l.peer, "server 2")?;
                timed(secs, || self.close(&other))?;
            }
        }
        Ok(self.output()?.into())
    }
}

impl Role for ServerTwo {
    const ID: u8 = 2;

    fn query(&mut self, first: Msg, l: &mut Links, secs: &mut f64) -> Result<Msg> {
        let Msg::InputShare(input) = first else {
            return Err(unexpected(2, &first));
        };
        let d: DealerToS2 = recv_as(&mut l.dealer, "the dealer")?;
        timed(secs, || self.start(input, d))?;
        while let Some(gadget) = self.current().map(|s| matches!(s, Step::Gadget { .. })) {
            if gadget {
                let f = timed(secs, || self.flips())?;
                l.peer.send(&f.into())?;
                loop {
                    let g: Garbled = recv_as(&mut l.peer, "server 1")?;
                    if timed(secs, || self.receive(&g))? {
                        break;
                    }
                }
            } else {
                let o = timed(secs, || self.open())?;
                let other: Opening = recv_as(&mut l.peer, "server 1")?;
                l.peer.send(&o.into())?;
                timed(secs, || self.close(&other))?;
            }
        }
        Ok(self.output()?.into())
    }
}

fn unexpected(server: u8, m: &Msg) -> TwoServerError {
    TwoServerError::protocol(format!(
        "server {server}: a {} message is not a query",
        m.name()
    ))
}

/// Answers the client's connection until shutdown (`Ok(true)`) or close (`Ok(false)`).
fn serve_client<R: Role>(
    role: &mut R,
    client: &mut Link,
    links: &mut Links,
    st: &mut ServerStats,
    client_before: LinkTraffic,
) -> Result<bool> {
    let fill = |st: &mut ServerStats, links: &Links, client: &Link| {
        st.cpu_seconds = privdnn_artifacts::process_cpu_seconds();
        st.peak_rss_bytes = privdnn_artifacts::peak_rss_bytes();
        st.dealer = links.dealer.traffic().into();
        st.peer = links.peer.traffic().into();
        st.peer_setup = links.peer_setup;
        let now: LinkTraffic = client.traffic().into();
        st.client = LinkTraffic {
            bytes_sent: client_before.bytes_sent + now.bytes_sent,
            bytes_received: client_before.bytes_received + now.bytes_received,
            frames_sent: client_before.frames_sent + now.frames_sent,
            frames_received: client_before.frames_received + now.frames_received,
        };
    };
    while let Some(msg) = client.recv()? {
        match msg {
            Msg::StatsRequest => {
                fill(st, links, client);
                client.send(&Msg::ServerStats(st.clone()))?;
            }
            Msg::Shutdown => {
                fill(st, links, client);
                return Ok(true);
            }
            first => {
                let reply = role.query(first, links, &mut st.compute_seconds)?;
                st.queries += 1;
                client.send(&reply)?;
            }
        }
    }
    fill(st, links, client);
    Ok(false)
}

/// A server whose setup is finished: its number, the clock started when its setup began, and
/// its links to the dealer and the other server.
struct Setup {
    server: u8,
    clock: Instant,
    dealer: Link,
    peer: Link,
}

/// Serves clients (one connection at a time) until one says shutdown.
fn serve_queries<R: Role>(
    listener: &TcpListener,
    limits: Limits,
    mut role: R,
    mut acc: Accepted,
    setup: Setup,
) -> Result<ServerStats> {
    let mut st = ServerStats {
        server: setup.server,
        setup_seconds: setup.clock.elapsed().as_secs_f64(),
        ..ServerStats::default()
    };
    let mut links = Links {
        dealer: setup.dealer,
        peer_setup: setup.peer.traffic().into(),
        peer: setup.peer,
    };
    st.owner = acc.owner;
    let mut client_total = LinkTraffic::default();
    loop {
        accept_until(listener, R::ID, limits, &mut acc, |a| a.client.is_some())?;
        let Some(mut client) = acc.client.take() else {
            continue;
        };
        match serve_client(&mut role, &mut client, &mut links, &mut st, client_total) {
            Ok(done) => {
                client_total = st.client;
                client.close();
                if done {
                    links.dealer.close();
                    links.peer.close();
                    return Ok(st);
                }
            }
            Err(e) => {
                client.fail(ErrorCode::BadRequest, e.to_string());
                return Err(e);
            }
        }
    }
}

/// Server 1 (garbler) on `listener`: collects its shares and the dealer's seed, dials server 2 at
/// `peer` for the weight opening, then answers queries until a client says shutdown. `seed` seeds
/// its own randomness.
pub fn serve_one(
    listener: &TcpListener,
    peer: &str,
    seed: [u8; 32],
    limits: Limits,
) -> Result<ServerStats> {
    let mut acc = Accepted::default();
    accept_until(listener, 1, limits, &mut acc, |a| {
        a.share.is_some() && a.dealer.is_some()
    })?;
    let clock = Instant::now();
    let (Some(share), Some(dseed), Some(dealer)) =
        (acc.share.take(), acc.seed.take(), acc.dealer.take())
    else {
        return Err(TwoServerError::protocol("setup incomplete"));
    };
    let mut s1 = ServerOne::new(share, &dseed, seed)?;
    let mut link: Link = connect(peer, limits)?;
    link.send(&s1.weight_opening().into())?;
    let other = recv_as(&mut link, "server 2")?;
    s1.finish_setup(&other)?;
    let setup = Setup {
        server: 1,
        clock,
        dealer,
        peer: link,
    };
    serve_queries(listener, limits, s1, acc, setup)
}

/// Server 2 (evaluator) on `listener`: collects its shares, the dealer's seed and server 1's
/// weight opening, answers it, then answers queries until a client says shutdown.
pub fn serve_two(listener: &TcpListener, limits: Limits) -> Result<ServerStats> {
    let mut acc = Accepted::default();
    accept_until(listener, 2, limits, &mut acc, |a| {
        a.share.is_some() && a.dealer.is_some() && a.peer.is_some()
    })?;
    let clock = Instant::now();
    let (Some(share), Some(dseed), Some(dealer), Some((mut link, other))) = (
        acc.share.take(),
        acc.seed.take(),
        acc.dealer.take(),
        acc.peer.take(),
    ) else {
        return Err(TwoServerError::protocol("setup incomplete"));
    };
    let mut s2 = ServerTwo::new(share, &dseed)?;
    link.send(&s2.weight_opening().into())?;
    s2.finish_setup(&other)?;
    let setup = Setup {
        server: 2,
        clock,
        dealer,
        peer: link,
    };
    serve_queries(listener, limits, s2, acc, setup)
}
