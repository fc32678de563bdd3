//! The device's allocation-free encoding of [`LayerRequest`] frames and decoding of
//! [`LayerReply`] payloads: byte for byte the project's bincode encoding of those messages (varint
//! integers, each ring vector as a length-prefixed run of little-endian 8-byte words), written
//! straight from the masking loop into one reused buffer and read straight into the unmasking
//! loop, so no `Vec<RingVec>` is built and no intermediate copy is made on the device.
//!
//! [`LayerRequest`]: crate::messages::LayerRequest
//! [`LayerReply`]: crate::messages::LayerReply

use privdnn_net::{HEADER_LEN, WireMessage};

use crate::wire::EdgeMessage;
use crate::{EdgeError, Result};

/// bincode's varint markers (`bincode::varint`): values up to 250 in one byte, else a marker
/// byte and the value in 2, 4 or 8 little-endian bytes.
const SINGLE_BYTE_MAX: u64 = 250;
const U16_BYTE: u8 = 251;
const U32_BYTE: u8 = 252;
const U64_BYTE: u8 = 253;

/// `v` as a bincode varint: the bytes and how many of them are used.
fn varint_bytes(v: u64) -> ([u8; 9], usize) {
    let mut b = [0u8; 9];
    let (marker, width) = if v <= SINGLE_BYTE_MAX {
        b[0] = v as u8;
        return (b, 1);
    } else if v <= u64::from(u16::MAX) {
        (U16_BYTE, 2)
    } else if v <= u64::from(u32::MAX) {
        (U32_BYTE, 4)
    } else {
        (U64_BYTE, 8)
    };
    b[0] = marker;
    b[1..=width].copy_from_slice(&v.to_le_bytes()[..width]);
    (b, width + 1)
}

/// A request frame (header + payload) built in place. The buffer only grows: its bytes are
/// overwritten frame after frame (no zero fill per frame), `len` marks the frame's end.
///
/// A frame begun with [`FrameWriter::begin_sized`] declares its length up front and can be sent
/// in parts ([`FrameWriter::part`], [`FrameWriter::part_sent`]): the buffer then holds only the
/// part not sent yet, so it stays in cache while the kernel copies it.
#[derive(Default)]
pub struct FrameWriter {
    buf: Vec<u8>,
    len: usize,
    /// Frame bytes declared in the header (sized frames) and already sent.
    sized: Option<(usize, usize)>,
}

/// Bytes of a frame part worth a write of its own (half of a 2 MiB L2 cache).
pub const PART_BYTES: usize = 1 << 20;

/// Length of `v` as a bincode varint.
fn varint_len(v: u64) -> usize {
    varint_bytes(v).1
}

impl FrameWriter {
    /// Room for `n` more bytes at the end of the frame; returns them.
    fn grow(&mut self, n: usize) -> &mut [u8] {
        let end = self.len + n;
        if self.buf.len() < end {
            self.buf.resize(end.max(2 * self.buf.len()), 0);
        }
        let start = self.len;
        self.len = end;
        &mut self.buf[start..end]
    }

    fn varint(&mut self, v: u64) {
        let (bytes, n) = varint_bytes(v);
        self.grow(n).copy_from_slice(&bytes[..n]);
    }

    /// Starts a request frame for `layer` of `batch` with `items` items.
    pub fn begin(&mut self, batch: u64, layer: u32, items: usize) {
        self.len = 0;
        self.sized = None;
        self.grow(HEADER_LEN);
        self.varint(batch);
        self.varint(u64::from(layer));
        self.varint(items as u64);
    }

    /// Starts a request frame of `items` items of `len` ring elements each, its header written
    /// at once (so the frame can leave in parts).
    pub fn begin_sized(&mut self, batch: u64, layer: u32, items: usize, len: usize) -> Result<()> {
        let item = varint_len((len * 8) as u64) + len * 8;
        let payload = [batch, u64::from(layer), items as u64]
            .iter()
            .map(|&v| varint_len(v))
            .sum::<usize>()
            + items * item;
        let declared = u32::try_from(payload)
            .map_err(|_| EdgeError::protocol("request frame longer than 4 GiB"))?;
        self.begin(batch, layer, items);
        let header = EdgeMessage::PROTOCOL.header(crate::wire::REQUEST_KIND, declared);
        self.buf[..HEADER_LEN].copy_from_slice(&header);
        self.sized = Some((HEADER_LEN + payload, 0));
        Ok(())
    }

    /// The bytes written and not sent yet (sized frames: a part to send now).
    pub fn part(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Marks [`FrameWriter::part`] as sent (sized frames); the next bytes start a new part.
    pub fn part_sent(&mut self) {
        if let Some((_, sent)) = self.sized.as_mut() {
            *sent += self.len;
            self.len = 0;
        }
    }

    /// Appends one item of `len` ring elements, the `k`-th being `f(k)`.
    pub fn item(&mut self, len: usize, f: impl Fn(usize) -> u64) {
        self.varint((len * 8) as u64);
        for (k, dst) in self.grow(len * 8).chunks_exact_mut(8).enumerate() {
            dst.copy_from_slice(&f(k).to_le_bytes());
        }
    }

    /// Appends one item of `len` ring elements and returns its bytes to be written.
    pub fn item_bytes(&mut self, len: usize) -> &mut [u8] {
        self.varint((len * 8) as u64);
        self.grow(len * 8)
    }

    /// Appends one item `a[k] op b[k]` (`add`: wrapping sum, else wrapping difference).
    pub fn item_zip(&mut self, a: &[u64], b: &[u64], add: bool) {
        self.varint((a.len() * 8) as u64);
        let dst = self.grow(a.len() * 8).chunks_exact_mut(8);
        if add {
            for ((d, x), y) in dst.zip(a).zip(b) {
                d.copy_from_slice(&x.wrapping_add(*y).to_le_bytes());
            }
        } else {
            for ((d, x), y) in dst.zip(a).zip(b) {
                d.copy_from_slice(&x.wrapping_sub(*y).to_le_bytes());
            }
        }
    }

    /// The finished frame: header (magic, version, request kind, payload length) + payload;
    /// for a sized frame, the part not sent yet (an error unless the items written add up to
    /// the declared length).
    pub fn finish(&mut self) -> Result<&[u8]> {
        if let Some((declared, sent)) = self.sized {
            if sent + self.len != declared {
                return Err(EdgeError::protocol(format!(
                    "request frame of {} bytes, {declared} declared",
                    sent + self.len
                )));
            }
            return Ok(&self.buf[..self.len]);
        }
        let len = u32::try_from(self.len - HEADER_LEN)
            .map_err(|_| EdgeError::protocol("request frame longer than 4 GiB"))?;
        let header = EdgeMessage::PROTOCOL.header(crate::wire::REQUEST_KIND, len);
        self.buf[..HEADER_LEN].copy_from_slice(&header);
        Ok(&self.buf[..self.len])
    }

    /// The payload written so far (after the header).
    pub fn payload(&self) -> &[u8] {
        self.buf.get(HEADER_LEN..self.len).unwrap_or(&[])
    }
}

/// Reads a reply payload: header fields, then each item's words.
pub struct ReplyReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> ReplyReader<'a> {
    /// A reader over one reply payload.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| EdgeError::protocol("reply payload truncated"))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn varint(&mut self) -> Result<u64> {
        let first = self.take(1)?[0];
        let wide = |s: &[u8]| {
            s.iter()
                .rev()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
        };
        Ok(match first {
            U16_BYTE => wide(self.take(2)?),
            U32_BYTE => wide(self.take(4)?),
            U64_BYTE => wide(self.take(8)?),
            b if u64::from(b) <= SINGLE_BYTE_MAX => u64::from(b),
            b => {
                return Err(EdgeError::protocol(format!(
                    "reply: invalid varint marker {b}"
                )));
            }
        })
    }

    /// `(batch, layer, items)` of the reply.
    pub fn header(&mut self) -> Result<(u64, u64, u64)> {
        Ok((self.varint()?, self.varint()?, self.varint()?))
    }

    /// The next item's raw bytes, which must hold exactly `len` ring elements.
    pub fn item(&mut self, len: usize) -> Result<&'a [u8]> {
        let bytes = self.varint()?;
        if bytes != (len * 8) as u64 {
            return Err(EdgeError::protocol(format!(
                "reply item of {bytes} bytes, expected {len} elements"
            )));
        }
        self.take(len * 8)
    }

    /// Checks that nothing is left.
    pub fn finish(&self) -> Result<()> {
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(EdgeError::protocol(format!(
                "{} trailing reply bytes",
                self.bytes.len() - self.pos
            )))
        }
    }
}

/// The ring elements of an item's raw bytes.
pub fn words(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    bytes.chunks_exact(8).map(|c| {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        u64::from_le_bytes(b)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{LayerReply, LayerRequest, to_bytes};
    use privdnn_mpc::RingVec;

    #[test]
    fn frames_are_the_bincode_encoding() {
        for (batch, layer, lens) in [
            (0u64, 0u32, vec![0usize]),
            (250, 250, vec![3, 31]),
            (251, 70_000, vec![40]),
            (u64::MAX, u32::MAX, vec![1, 2, 9000]),
        ] {
            let items: Vec<RingVec> = lens
                .iter()
                .map(|&n| {
                    RingVec(
                        (0..n as u64)
                            .map(|k| k.wrapping_mul(u64::MAX / 7))
                            .collect(),
                    )
                })
                .collect();
            let mut w = FrameWriter::default();
            w.begin(batch, layer, items.len());
            for it in &items {
                w.item(it.len(), |k| it.0[k]);
            }
            let frame = w.finish().expect("frame").to_vec();
            if lens.iter().all(|&n| n == lens[0]) {
                let mut parts = FrameWriter::default();
                parts
                    .begin_sized(batch, layer, items.len(), lens[0])
                    .expect("sized");
                let mut sent = Vec::new();
                for it in &items {
                    parts.item(it.len(), |k| it.0[k]);
                    sent.extend_from_slice(parts.part());
                    parts.part_sent();
                }
                sent.extend_from_slice(parts.finish().expect("rest"));
                assert_eq!(sent, frame, "a sized frame sent in parts");
            }
            let req = LayerRequest {
                batch,
                layer,
                items: items.clone(),
            };
            let msg = EdgeMessage::Request(req.clone()).to_frame().expect("frame");
            assert_eq!(frame, msg);
            assert_eq!(w.payload(), to_bytes(&req).expect("bytes"));
            // and the reader parses the same layout of a reply
            let reply = to_bytes(&LayerReply {
                batch,
                layer,
                items: items.clone(),
            })
            .expect("reply");
            let mut r = ReplyReader::new(&reply);
            assert_eq!(
                r.header().expect("header"),
                (batch, u64::from(layer), items.len() as u64)
            );
            for it in &items {
                let got: Vec<u64> = words(r.item(it.len()).expect("item")).collect();
                assert_eq!(got, it.0);
            }
            r.finish().expect("no trailing bytes");
            let mut short = ReplyReader::new(&reply[..reply.len() - 1]);
            short.header().expect("header");
            let failed = items.iter().any(|it| short.item(it.len()).is_err());
            assert!(failed, "a truncated reply is an error");
        }
    }
}
