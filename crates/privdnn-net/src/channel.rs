//! A [`Channel`]: one connection of one protocol over any [`Transport`] (a `Read + Write`
//! stream whose blocking calls can be bounded in time).
//!
//! A reader checks, in this order: magic (byte by byte, so garbage is named at once), version,
//! kind, and the payload length against [`Limits::max_frame`] — all before a single payload
//! byte is read or allocated — then reads the payload in bounded chunks (memory grows only as
//! bytes arrive) under one frame deadline. Every frame in and out is counted ([`Traffic`]).
//! A connection that fails is ended with [`Channel::fail`]: an error frame, a half-close and a
//! bounded drain, so the peer reads the error instead of a reset.

use std::io::{ErrorKind, Read, Write};
use std::marker::PhantomData;
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::frame::{ErrorFrame, HEADER_LEN, RawFrame, WireMessage};
use crate::{ErrorCode, NetError};

/// Default largest payload accepted (256 MiB: a full-block MNIST batch request is 147 MB).
pub const DEFAULT_MAX_FRAME: u32 = 256 << 20;
/// Largest `max_frame` a command line may ask for (1 GiB).
pub const MAX_FRAME_CEILING: u32 = 1 << 30;
/// The payload is read in chunks of at most this many bytes.
const READ_CHUNK: usize = 1 << 20;

/// A byte stream a [`Channel`] can run on: reads and writes whose blocking can be bounded.
/// Implemented for `TcpStream`; a TLS stream wraps its socket the same way.
pub trait Transport: Read + Write {
    /// Bounds every following blocking read (`None`: wait forever).
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> std::io::Result<()>;
    /// Bounds every following blocking write.
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> std::io::Result<()>;
    /// The current write bound.
    fn write_timeout(&self) -> Option<Duration>;
    /// Half-closes the stream (no more writes; the peer reads end of stream).
    fn shutdown_write(&mut self) -> std::io::Result<()>;
}

impl Transport for TcpStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> std::io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> std::io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }

    fn write_timeout(&self) -> Option<Duration> {
        TcpStream::write_timeout(self).ok().flatten()
    }

    fn shutdown_write(&mut self) -> std::io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

/// Size and time limits of one side of a connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest payload accepted; a header announcing more is rejected before reading it.
    pub max_frame: u32,
    /// Longest wait for the first byte of the next frame (idle connection, or the answer).
    pub idle_timeout: Duration,
    /// Longest time for the rest of a frame once its first byte arrived (slow senders).
    pub frame_timeout: Duration,
    /// Longest a single blocking write may wait (a peer that stops reading).
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame: DEFAULT_MAX_FRAME,
            idle_timeout: Duration::from_secs(300),
            frame_timeout: Duration::from_secs(120),
            write_timeout: Duration::from_secs(60),
        }
    }
}

/// Frames and bytes (whole frames, header included) on one connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Traffic {
    /// Bytes written.
    pub bytes_sent: u64,
    /// Bytes read.
    pub bytes_received: u64,
    /// Request/answer exchanges ([`Channel::call`]).
    pub round_trips: u64,
    /// Frames written.
    pub frames_sent: u64,
    /// Frames read.
    pub frames_received: u64,
}

impl Traffic {
    /// Traffic since `earlier` (a snapshot of the same connection).
    pub fn since(&self, earlier: &Traffic) -> Traffic {
        Traffic {
            bytes_sent: self.bytes_sent.saturating_sub(earlier.bytes_sent),
            bytes_received: self.bytes_received.saturating_sub(earlier.bytes_received),
            round_trips: self.round_trips.saturating_sub(earlier.round_trips),
            frames_sent: self.frames_sent.saturating_sub(earlier.frames_sent),
            frames_received: self.frames_received.saturating_sub(earlier.frames_received),
        }
    }
}

/// One connection speaking protocol `M`.
pub struct Channel<S, M> {
    stream: S,
    limits: Limits,
    traffic: Traffic,
    transcript: Option<Vec<Vec<u8>>>,
    _protocol: PhantomData<fn() -> M>,
}

impl<S: Transport, M: WireMessage> Channel<S, M> {
    /// Wraps a connected stream; sets its write timeout from `limits`.
    pub fn new(mut stream: S, limits: Limits) -> Result<Self, NetError> {
        stream
            .set_write_timeout(Some(limits.write_timeout))
            .map_err(|e| NetError::io("setting the write timeout", e))?;
        Ok(Self {
            stream,
            limits,
            traffic: Traffic::default(),
            transcript: None,
            _protocol: PhantomData,
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Traffic so far.
    pub fn traffic(&self) -> Traffic {
        self.traffic
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// Keeps a copy of every frame received from now on (tests: what did this side see?).
    pub fn record_transcript(&mut self) {
        self.transcript.get_or_insert_with(Vec::new);
    }

    /// The frames received since [`Channel::record_transcript`].
    pub fn transcript(&self) -> &[Vec<u8>] {
        self.transcript.as_deref().unwrap_or(&[])
    }

    /// Reads one frame without decoding it; `Ok(None)` when the peer closed the connection
    /// cleanly between frames. Waits at most `idle_timeout` for the first byte, then
    /// `frame_timeout` for the rest.
    pub fn read_frame(&mut self) -> Result<Option<RawFrame>, NetError> {
        let frame = read_frame::<S, M>(&mut self.stream, &self.limits)?;
        if let Some(f) = &frame {
            self.traffic.frames_received += 1;
            self.traffic.bytes_received += f.wire_len() as u64;
            if let Some(t) = self.transcript.as_mut() {
                t.push(f.to_bytes(&M::PROTOCOL)?);
            }
        }
        Ok(frame)
    }

    /// Reads and decodes one message (`Ok(None)`: clean close between frames).
    pub fn recv(&mut self) -> Result<Option<M>, NetError> {
        self.read_frame()?.map(|f| f.decode::<M>()).transpose()
    }

    /// Writes pre-encoded frame bytes (e.g. a frame built once and sent to many peers).
    pub fn write_frame(&mut self, frame: &[u8]) -> Result<(), NetError> {
        write_all(&mut self.stream, frame)?;
        self.traffic.frames_sent += 1;
        self.traffic.bytes_sent += frame.len() as u64;
        Ok(())
    }

    /// Encodes and writes one message; returns the bytes written.
    pub fn send(&mut self, msg: &M) -> Result<usize, NetError> {
        let frame = msg.to_frame()?;
        self.write_frame(&frame)?;
        Ok(frame.len())
    }

    /// Sends one message and returns the answer; an error frame becomes [`NetError::Remote`].
    /// When the write fails, the answer is still read: the peer may have said why it closed.
    pub fn call(&mut self, msg: &M) -> Result<M, NetError> {
        let sent = msg.to_frame().and_then(|f| self.write_frame(&f));
        let answer = self.read_frame();
        let raw = match (answer, sent) {
            (Ok(Some(raw)), _) => raw,
            (Ok(None), Err(e)) | (Err(_), Err(e)) => return Err(e),
            (Ok(None), Ok(())) => return Err(NetError::Closed("waiting for an answer")),
            (Err(e), Ok(())) => return Err(e),
        };
        self.traffic.round_trips += 1;
        let answer = raw.decode::<M>()?;
        match answer.as_error() {
            Some(e) => Err(NetError::Remote {
                code: e.code,
                message: e.message.clone(),
            }),
            None => Ok(answer),
        }
    }

    /// Ends the connection because of an error: sends an error frame (best effort, at most a
    /// few seconds), half-closes and drains what the peer still sends (bounded), so it reads
    /// the error and a FIN instead of a reset.
    pub fn fail(mut self, code: ErrorCode, message: String) {
        let wait = self.limits.write_timeout.min(Duration::from_secs(5));
        let _ = self.stream.set_write_timeout(Some(wait));
        let msg = M::error(ErrorFrame {
            code: code.code(),
            message,
        });
        let _ = self.send(&msg);
        self.close();
    }

    /// Refuses a connection at once (e.g. too many open): sends an error frame with a short
    /// write bound and half-closes, without draining (the caller is the accept loop).
    pub fn refuse(mut self, code: ErrorCode, message: String) {
        let _ = self.stream.set_write_timeout(Some(Duration::from_secs(1)));
        let msg = M::error(ErrorFrame {
            code: code.code(),
            message,
        });
        let _ = self.send(&msg);
        let _ = self.stream.shutdown_write();
    }

    /// Half-closes, then drains (at most 500 ms and 4 MiB) what the peer still sends.
    pub fn close(mut self) {
        let _ = self.stream.shutdown_write();
        let deadline = Instant::now() + Duration::from_millis(500);
        let mut budget: usize = 4 << 20;
        let mut buf = [0u8; 16 << 10];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stream.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match self.stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) if n >= budget => break,
                Ok(n) => budget -= n,
            }
        }
    }
}

fn timeout(what: &'static str, budget: Duration) -> NetError {
    NetError::Timeout {
        what,
        seconds: budget.as_secs_f64(),
    }
}

/// Fills `buf` from `stream` before `deadline`; returns the bytes read (short only at end of
/// stream).
fn read_until<S: Transport>(
    stream: &mut S,
    buf: &mut [u8],
    deadline: Instant,
    what: &'static str,
    budget: Duration,
) -> Result<usize, NetError> {
    let mut got = 0;
    while got < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timeout(what, budget));
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| NetError::io("setting the read timeout", e))?;
        match stream.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(timeout(what, budget));
            }
            Err(e) => return Err(NetError::io(format!("reading {what}"), e)),
        }
    }
    Ok(got)
}

/// Reads the 12 header bytes (the first one already in `h[0]`), checking the magic byte by
/// byte as it arrives.
fn read_header<S: Transport, M: WireMessage>(
    stream: &mut S,
    h: &mut [u8; HEADER_LEN],
    deadline: Instant,
    budget: Duration,
) -> Result<(), NetError> {
    let magic = M::PROTOCOL.magic;
    let bad_magic = |h: &[u8; HEADER_LEN], got: usize| {
        let mut found = [0u8; 4];
        found[..got].copy_from_slice(&h[..got]);
        NetError::BadMagic {
            protocol: M::PROTOCOL.name,
            expected: M::PROTOCOL.magic_text(),
            found,
        }
    };
    let truncated = |got| NetError::Truncated {
        what: "frame header",
        expected: HEADER_LEN,
        got,
    };
    let mut got = 1;
    loop {
        if h[got - 1] != magic[got - 1] {
            return Err(bad_magic(h, got));
        }
        if got == magic.len() {
            break;
        }
        if read_until(
            stream,
            &mut h[got..got + 1],
            deadline,
            "a frame header",
            budget,
        )? == 0
        {
            return Err(truncated(got));
        }
        got += 1;
    }
    got += read_until(stream, &mut h[got..], deadline, "a frame header", budget)?;
    if got < HEADER_LEN {
        return Err(truncated(got));
    }
    Ok(())
}

/// Reads one frame of protocol `M` (see [`Channel::read_frame`]).
fn read_frame<S: Transport, M: WireMessage>(
    stream: &mut S,
    limits: &Limits,
) -> Result<Option<RawFrame>, NetError> {
    let mut h = [0u8; HEADER_LEN];
    let idle_deadline = Instant::now() + limits.idle_timeout;
    let first = read_until(
        stream,
        &mut h[..1],
        idle_deadline,
        "the next frame",
        limits.idle_timeout,
    )?;
    if first == 0 {
        return Ok(None);
    }
    let deadline = Instant::now() + limits.frame_timeout;
    read_header::<S, M>(stream, &mut h, deadline, limits.frame_timeout)?;
    let version = u16::from_le_bytes([h[4], h[5]]);
    if version != M::PROTOCOL.version {
        return Err(NetError::WrongVersion {
            protocol: M::PROTOCOL.name,
            found: version,
            supported: M::PROTOCOL.version,
        });
    }
    let kind = u16::from_le_bytes([h[6], h[7]]);
    if M::kind_name(kind).is_none() {
        return Err(NetError::UnknownKind {
            protocol: M::PROTOCOL.name,
            kind,
        });
    }
    let len = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if len > limits.max_frame {
        return Err(NetError::Oversized {
            len: u64::from(len),
            max: u64::from(limits.max_frame),
        });
    }
    let len = len as usize;
    let mut payload = Vec::with_capacity(len.min(READ_CHUNK));
    while payload.len() < len {
        let start = payload.len();
        let n = (len - start).min(READ_CHUNK);
        // Grow geometrically but never past the announced length: `resize` alone doubles the
        // capacity, so a frame just over a power of two allocated up to twice the frame limit.
        let target = payload.capacity().saturating_mul(2).clamp(start + n, len);
        payload.reserve_exact(target - start);
        payload.resize(start + n, 0);
        let got = read_until(
            stream,
            &mut payload[start..],
            deadline,
            "a frame payload",
            limits.frame_timeout,
        )?;
        if got < n {
            return Err(NetError::Truncated {
                what: "frame payload",
                expected: len,
                got: start + got,
            });
        }
    }
    Ok(Some(RawFrame { kind, payload }))
}

/// Writes all of `bytes` (the stream's write timeout bounds every blocking write) and flushes.
fn write_all<S: Transport>(stream: &mut S, bytes: &[u8]) -> Result<(), NetError> {
    stream.write_all(bytes).map_err(|e| {
        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
            let seconds = stream.write_timeout().map_or(0.0, |d| d.as_secs_f64());
            NetError::Timeout {
                what: "the peer to read a frame",
                seconds,
            }
        } else {
            NetError::io("writing a frame", e)
        }
    })?;
    stream
        .flush()
        .map_err(|e| NetError::io("flushing a frame", e))
}
