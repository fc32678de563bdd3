//! The roles as processes over TCP on `privdnn-net` frames: [`serve`] runs an edge (one device
//! connection at a time, until a device says [`EdgeMessage::Shutdown`]); [`TcpLink`] is the
//! device's [`EdgeLink`] to both edges (request to A, request to B, then both replies, so the two
//! edges compute in parallel).

use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use privdnn_net::{Channel, ErrorCode, Limits, NetError, Traffic};

use crate::device::EdgeLink;
use crate::edge::EdgeServer;
use crate::messages::{LayerReply, LayerRequest};
use crate::wire::{EdgeMessage, EdgeStats};
use crate::{EdgeError, Result};

fn net(e: NetError) -> EdgeError {
    EdgeError::Transport(e.to_string())
}

/// CPU seconds (user + system, all threads) of this process, from `/proc/self/stat`
/// (clock ticks of 10 ms; 0 where unavailable).
pub fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // fields after the parenthesised command name; utime and stime are fields 14 and 15
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

/// Serves one edge on `listener` until a device sends `Shutdown`; returns the final counters.
pub fn serve(listener: &TcpListener, mut edge: EdgeServer, limits: Limits) -> Result<EdgeStats> {
    let mut stats = EdgeStats::default();
    loop {
        let (stream, _) = listener
            .accept()
            .map_err(|e| EdgeError::Transport(format!("accept: {e}")))?;
        let _ = stream.set_nodelay(true);
        let mut ch: Channel<TcpStream, EdgeMessage> = Channel::new(stream, limits).map_err(net)?;
        match serve_connection(&mut ch, &mut edge, &mut stats) {
            Ok(true) => {
                ch.close();
                return Ok(stats);
            }
            Ok(false) => ch.close(),
            Err(e) => {
                let msg = e.to_string();
                ch.fail(ErrorCode::BadRequest, msg);
            }
        }
    }
}

/// Answers one connection; `Ok(true)` after a shutdown request.
fn serve_connection(
    ch: &mut Channel<TcpStream, EdgeMessage>,
    edge: &mut EdgeServer,
    stats: &mut EdgeStats,
) -> Result<bool> {
    while let Some(msg) = ch.recv().map_err(net)? {
        match msg {
            EdgeMessage::Request(req) => {
                let clock = Instant::now();
                let reply = edge.answer(&req)?;
                let frame = EdgeMessage::Reply(reply);
                stats.requests += 1;
                stats.items += req.items.len() as u64;
                stats.compute_seconds += clock.elapsed().as_secs_f64();
                ch.send(&frame).map_err(net)?;
            }
            EdgeMessage::StatsRequest => {
                stats.cpu_seconds = process_cpu_seconds();
                stats.peak_rss_bytes = privdnn_artifacts::peak_rss_bytes();
                stats.corrupted = edge.corrupted();
                ch.send(&EdgeMessage::Stats(stats.clone())).map_err(net)?;
            }
            EdgeMessage::Shutdown => return Ok(true),
            other => {
                return Err(EdgeError::protocol(format!(
                    "an edge does not accept a {} message",
                    privdnn_net::WireMessage::name(&other)
                )));
            }
        }
    }
    Ok(false)
}

/// The device's TCP connections to both edges.
pub struct TcpLink {
    a: Channel<TcpStream, EdgeMessage>,
    b: Channel<TcpStream, EdgeMessage>,
}

fn connect(addr: &str, limits: Limits) -> Result<Channel<TcpStream, EdgeMessage>> {
    let stream = TcpStream::connect(addr)
        .map_err(|e| EdgeError::Transport(format!("connect {addr}: {e}")))?;
    let _ = stream.set_nodelay(true);
    Channel::new(stream, limits).map_err(net)
}

fn expect_reply(ch: &mut Channel<TcpStream, EdgeMessage>, who: &str) -> Result<LayerReply> {
    match ch.recv().map_err(net)? {
        Some(EdgeMessage::Reply(r)) => Ok(r),
        Some(EdgeMessage::Error(e)) => {
            Err(EdgeError::Transport(format!("edge {who}: {}", e.message)))
        }
        Some(other) => Err(EdgeError::protocol(format!(
            "edge {who} sent a {} message instead of a reply",
            privdnn_net::WireMessage::name(&other)
        ))),
        None => Err(EdgeError::Transport(format!(
            "edge {who} closed the connection"
        ))),
    }
}

impl TcpLink {
    /// Connects to EdgeA at `addr_a` and EdgeB at `addr_b`.
    pub fn connect(addr_a: &str, addr_b: &str, limits: Limits) -> Result<Self> {
        Ok(Self {
            a: connect(addr_a, limits)?,
            b: connect(addr_b, limits)?,
        })
    }

    /// Bytes and frames on the links to A and B.
    pub fn traffic(&self) -> (Traffic, Traffic) {
        (self.a.traffic(), self.b.traffic())
    }

    /// Both edges' counters.
    pub fn stats(&mut self) -> Result<(EdgeStats, EdgeStats)> {
        let one = |ch: &mut Channel<TcpStream, EdgeMessage>| -> Result<EdgeStats> {
            match ch.call(&EdgeMessage::StatsRequest).map_err(net)? {
                EdgeMessage::Stats(s) => Ok(s),
                other => Err(EdgeError::protocol(format!(
                    "expected stats, got {}",
                    privdnn_net::WireMessage::name(&other)
                ))),
            }
        };
        Ok((one(&mut self.a)?, one(&mut self.b)?))
    }

    /// Tells both edges to exit and closes.
    pub fn shutdown(mut self) -> Result<()> {
        self.a.send(&EdgeMessage::Shutdown).map_err(net)?;
        self.b.send(&EdgeMessage::Shutdown).map_err(net)?;
        self.a.close();
        self.b.close();
        Ok(())
    }
}

impl EdgeLink for TcpLink {
    fn exchange(&mut self, a: LayerRequest, b: LayerRequest) -> Result<(LayerReply, LayerReply)> {
        self.a.send(&EdgeMessage::Request(a)).map_err(net)?;
        self.b.send(&EdgeMessage::Request(b)).map_err(net)?;
        Ok((
            expect_reply(&mut self.a, "A")?,
            expect_reply(&mut self.b, "B")?,
        ))
    }
}

/// CPU seconds of the calling thread (`/proc/thread-self/schedstat`, nanoseconds; 0 where
/// unavailable). Blocked time (waiting for an edge) is not counted.
pub fn thread_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |ns| ns * 1e-9)
}
