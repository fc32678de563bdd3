//! The user-keyed mode over TCP (`[he] mode = "user-keyed"`): the owner serves only the public
//! model file (`keyed_model.bin`) and answers `keyed-request`s with
//! `privdnn_partial::keyed::KeyedOwnerSide::answer`; it has no decryption (a `decrypt` frame is
//! refused with an error frame). The user builds requests with `KeyedUserSide` under its own
//! keys.
//!
//! A request carries the user's keys and, in the batch layout, one ciphertext per input pixel
//! and per plaintext layer-1 value whatever the number of images (MNIST: ~668 MB), so it is
//! larger than a frame. The client sends it in parts of at most its frame limit
//! ([`KeyedPart`]; the payload types are `privdnn_partial::wire`'s); the owner acknowledges each part ([`KeyedAck`], one request, one answer)
//! and answers the last one with [`KeyedReplyFrame`]. The owner assembles at most
//! [`MAX_KEYED_REQUEST`] bytes per connection, parts in order, then decodes the request once
//! (allocations bounded by its length).

use std::time::Instant;

use privdnn_artifacts::codec;
use privdnn_partial::keyed::{KeyedOwnerSide, UserKeyedReply, UserKeyedRequest};
use serde::Serialize;

use crate::PartyError;
use crate::client::Client;
use crate::wire::{Message, WireMessage};

pub use privdnn_partial::wire::{KeyedAck, KeyedPart, KeyedReplyFrame};

/// Largest request the owner assembles (bytes).
pub const MAX_KEYED_REQUEST: u64 = 2 << 30;

/// A request being assembled on one connection.
#[derive(Debug, Default)]
pub struct Assembly {
    id: u64,
    total: u64,
    bytes: Vec<u8>,
}

/// Owner side: takes one part; returns the ack, or the reply once the request is complete.
/// `admit` sees the complete, decoded request before the evaluation (the gate charges its
/// ciphertexts to the user's quota there); an error refuses it.
pub fn on_part(
    owner: &KeyedOwnerSide,
    pending: &mut Option<Assembly>,
    part: KeyedPart,
    admit: &mut dyn FnMut(&UserKeyedRequest) -> Result<(), PartyError>,
) -> Result<Message, PartyError> {
    let bad = |m: String| PartyError::BadRequest(m);
    if part.offset == 0 {
        if part.total == 0 || part.total > MAX_KEYED_REQUEST {
            return Err(bad(format!(
                "a keyed request of {} bytes (at most {MAX_KEYED_REQUEST})",
                part.total
            )));
        }
        *pending = Some(Assembly {
            id: part.id,
            total: part.total,
            bytes: Vec::new(),
        });
    }
    let asm = pending
        .as_mut()
        .ok_or_else(|| bad("a keyed part without its first part".into()))?;
    if part.id != asm.id || part.total != asm.total || part.offset != asm.bytes.len() as u64 {
        return Err(bad(format!(
            "part at {} of request {} does not continue request {} ({} of {} bytes received)",
            part.offset,
            part.id,
            asm.id,
            asm.bytes.len(),
            asm.total
        )));
    }
    if asm.bytes.len() as u64 + part.bytes.len() as u64 > asm.total {
        return Err(bad("keyed parts exceed the announced size".into()));
    }
    asm.bytes.extend_from_slice(&part.bytes);
    let received = asm.bytes.len() as u64;
    if received < asm.total {
        return Ok(Message::KeyedAck(KeyedAck {
            id: asm.id,
            received,
        }));
    }
    let done = pending.take().unwrap_or_default();
    let clock = Instant::now();
    let reply = answer(owner, done.bytes, admit)?;
    Ok(Message::KeyedReply(KeyedReplyFrame {
        id: done.id,
        owner_seconds: clock.elapsed().as_secs_f64(),
        reply,
    }))
}

/// Decodes the request once (its bytes freed before the evaluation), lets `admit` refuse it,
/// and answers it; a panic inside is reported, not propagated.
fn answer(
    owner: &KeyedOwnerSide,
    bytes: Vec<u8>,
    admit: &mut dyn FnMut(&UserKeyedRequest) -> Result<(), PartyError>,
) -> Result<Vec<u8>, PartyError> {
    let request: UserKeyedRequest = codec::decode(&bytes, "keyed request")
        .map_err(|e| PartyError::BadRequest(e.to_string()))?;
    drop(bytes);
    admit(&request)?;
    let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        owner.answer(&request, &mut rand::rng())
    }));
    match answered {
        Ok(Ok(reply)) => Ok(codec::encode(&reply)?),
        Ok(Err(e)) => Err(PartyError::BadRequest(e.to_string())),
        Err(_) => Err(PartyError::Internal(
            "the keyed evaluation panicked on this request".into(),
        )),
    }
}

/// What one keyed round trip cost the client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct KeyedCall {
    /// Frames sent for the request.
    pub parts: usize,
    /// Seconds the owner reported.
    pub owner_seconds: f64,
    /// Bytes of the serialised reply.
    pub reply_bytes: usize,
}

impl Client {
    /// Sends a serialised `UserKeyedRequest` in parts of at most `max_part` bytes and returns
    /// the decoded reply.
    pub fn keyed(
        &mut self,
        id: u64,
        request: &[u8],
        max_part: usize,
    ) -> Result<(UserKeyedReply, KeyedCall), PartyError> {
        let unexpected = |got: &'static str| {
            PartyError::Net(privdnn_net::NetError::Unexpected {
                got,
                expected: "keyed-ack or keyed-reply",
            })
        };
        let total = request.len() as u64;
        let mut call = KeyedCall::default();
        let mut chunks = request.chunks(max_part.max(1)).peekable();
        let mut offset = 0u64;
        while let Some(bytes) = chunks.next() {
            let part = KeyedPart {
                id,
                total,
                offset,
                bytes: bytes.to_vec(),
            };
            offset += bytes.len() as u64;
            call.parts += 1;
            match (self.call(&Message::KeyedPart(part))?, chunks.peek()) {
                (Message::KeyedAck(a), Some(_)) if a.id == id && a.received == offset => {}
                (Message::KeyedReply(r), None) if r.id == id => {
                    call.owner_seconds = r.owner_seconds;
                    call.reply_bytes = r.reply.len();
                    let reply = codec::decode(&r.reply, "keyed reply")?;
                    return Ok((reply, call));
                }
                (other, _) => return Err(unexpected(other.name())),
            }
        }
        Err(unexpected("nothing (empty request)"))
    }
}
