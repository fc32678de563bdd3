//! The roles as processes over TCP on `privdnn-net` frames: [`serve`] runs an edge (one device
//! connection at a time, until a device says [`EdgeMessage::Shutdown`]); [`EdgeConn`] is the
//! device's [`EdgeLink`] to one edge and [`TcpLink`] its [`EdgePair`] (EdgeA online, EdgeB for
//! the offline pads; the two connections can be used from two threads, so both edges compute at
//! once).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use privdnn_net::{
    Channel, ErrorCode, HEADER_LEN, Limits, NetError, RawFrame, Traffic, WireMessage,
};

use crate::device::{EdgeLink, EdgePair};
use crate::edge::EdgeServer;
use crate::wire::{EdgeMessage, EdgeStats, REPLY_KIND};
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

/// The device's TCP connection to one edge. Replies are read into one reused buffer (no
/// allocation or zero fill per frame) with the same checks as `privdnn-net`'s frame reader:
/// magic, version, kind, length bound; any other kind is decoded through the channel's codec.
pub struct EdgeConn {
    ch: Channel<TcpStream, EdgeMessage>,
    who: &'static str,
    reply: Vec<u8>,
    /// Reply frames and their bytes read here (beside the channel's own counters).
    replies: (u64, u64),
    /// Request bytes sent here as leading parts of a frame (beside the channel's counters).
    parts: u64,
}

impl EdgeConn {
    /// Connects to the edge `who` (`"A"` or `"B"`, for messages) at `addr`.
    pub fn connect(addr: &str, limits: Limits, who: &'static str) -> Result<Self> {
        let stream = TcpStream::connect(addr)
            .map_err(|e| EdgeError::Transport(format!("connect {addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        Ok(Self {
            ch: Channel::new(stream, limits).map_err(net)?,
            who,
            reply: Vec::new(),
            replies: (0, 0),
            parts: 0,
        })
    }

    /// Bytes and frames on this link.
    pub fn traffic(&self) -> Traffic {
        let mut t = self.ch.traffic();
        t.frames_received += self.replies.0;
        t.bytes_received += self.replies.1;
        t.round_trips += self.replies.0;
        t.bytes_sent += self.parts;
        t
    }

    /// Reads one frame's header and payload into the reply buffer; returns its kind and length.
    fn read_reply(&mut self) -> Result<(u16, usize)> {
        let limits = *self.ch.limits();
        let mut stream: &TcpStream = self.ch.get_ref();
        let io = |e: std::io::Error| EdgeError::Transport(format!("reading a reply: {e}"));
        stream
            .set_read_timeout(Some(limits.idle_timeout.max(limits.frame_timeout)))
            .map_err(io)?;
        let mut h = [0u8; HEADER_LEN];
        stream.read_exact(&mut h).map_err(io)?;
        let p = EdgeMessage::PROTOCOL;
        let kind = u16::from_le_bytes([h[6], h[7]]);
        let len = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
        if h[..4] != p.magic || u16::from_le_bytes([h[4], h[5]]) != p.version {
            return Err(EdgeError::protocol(format!(
                "edge {}: not a {} v{} frame",
                self.who, p.name, p.version
            )));
        }
        if len > limits.max_frame {
            return Err(EdgeError::protocol(format!(
                "edge {}: frame of {len} bytes over the limit {}",
                self.who, limits.max_frame
            )));
        }
        let len = len as usize;
        if self.reply.len() < len {
            self.reply.resize(len, 0);
        }
        stream.read_exact(&mut self.reply[..len]).map_err(io)?;
        self.replies.0 += 1;
        self.replies.1 += (HEADER_LEN + len) as u64;
        Ok((kind, len))
    }

    /// The edge's counters.
    pub fn stats(&mut self) -> Result<EdgeStats> {
        match self.ch.call(&EdgeMessage::StatsRequest).map_err(net)? {
            EdgeMessage::Stats(s) => Ok(s),
            other => Err(EdgeError::protocol(format!(
                "expected stats from edge {}, got {}",
                self.who,
                privdnn_net::WireMessage::name(&other)
            ))),
        }
    }

    /// Tells the edge to exit and closes.
    pub fn shutdown(mut self) -> Result<()> {
        self.ch.send(&EdgeMessage::Shutdown).map_err(net)?;
        self.ch.close();
        Ok(())
    }
}

impl EdgeLink for EdgeConn {
    fn send_part(&mut self, part: &[u8]) -> Result<()> {
        let mut stream: &TcpStream = self.ch.get_ref();
        stream.write_all(part).map_err(|e| {
            EdgeError::Transport(format!("edge {}: writing a request: {e}", self.who))
        })?;
        self.parts += part.len() as u64;
        Ok(())
    }

    fn round_trip(&mut self, frame: &[u8]) -> Result<&[u8]> {
        self.ch.write_frame(frame).map_err(net)?;
        let who = self.who;
        let (kind, len) = self.read_reply()?;
        if kind == REPLY_KIND {
            return Ok(&self.reply[..len]);
        }
        let other = RawFrame {
            kind,
            payload: self.reply[..len].to_vec(),
        };
        match other.decode::<EdgeMessage>().map_err(net)? {
            EdgeMessage::Error(e) => {
                Err(EdgeError::Transport(format!("edge {who}: {}", e.message)))
            }
            other => Err(EdgeError::protocol(format!(
                "edge {who} sent a {} message instead of a reply",
                privdnn_net::WireMessage::name(&other)
            ))),
        }
    }
}

/// The device's TCP connections to both edges.
pub struct TcpLink {
    /// To EdgeA (online).
    pub a: EdgeConn,
    /// To EdgeB (offline: pads).
    pub b: EdgeConn,
}

impl TcpLink {
    /// Connects to EdgeA at `addr_a` and EdgeB at `addr_b`.
    pub fn connect(addr_a: &str, addr_b: &str, limits: Limits) -> Result<Self> {
        Ok(Self {
            a: EdgeConn::connect(addr_a, limits, "A")?,
            b: EdgeConn::connect(addr_b, limits, "B")?,
        })
    }

    /// Bytes and frames on the links to A and B.
    pub fn traffic(&self) -> (Traffic, Traffic) {
        (self.a.traffic(), self.b.traffic())
    }

    /// Both edges' counters.
    pub fn stats(&mut self) -> Result<(EdgeStats, EdgeStats)> {
        Ok((self.a.stats()?, self.b.stats()?))
    }

    /// Tells both edges to exit and closes.
    pub fn shutdown(self) -> Result<()> {
        self.a.shutdown()?;
        self.b.shutdown()
    }
}

impl EdgePair for TcpLink {
    fn a(&mut self) -> &mut dyn EdgeLink {
        &mut self.a
    }

    fn b(&mut self) -> &mut dyn EdgeLink {
        &mut self.b
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
