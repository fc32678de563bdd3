//! Frame reader and wire messages: a byte stream read frame by frame through
//! `privdnn_net::Channel` over an in-memory transport (PrivDNN's `PDNP` and the edge protocol's
//! `PDEG`), every frame's payload decoded once as the receiver does, nested request/reply bytes
//! included; and `Message::decode` on a kind + payload directly.

use std::io::{Read, Write};
use std::time::Duration;

use privdnn_edge::messages::{LayerReply, LayerRequest};
use privdnn_edge::wire::{EdgeMessage, EdgeStats};
use privdnn_he::protocol::{Reply, Request, from_wire};
use privdnn_mpc::ring::RingVec;
use privdnn_net::{Channel, ErrorFrame, Limits, Transport, WireMessage};
use privdnn_partial::wire::{
    DecryptReply, DecryptRequest, FileData, FileEntry, FileId, KeyedAck, KeyedPart,
    KeyedReplyFrame, Message, ServerStats, ServiceInfo,
};
use privdnn_spnn::messages::{Activations, FeatureGrad, Features, Gradient, Opening};
use privdnn_spnn::wire::{Hello, Msg as SpnnMessage, Role};

use super::{Target, codec_bound, he};
use crate::Exec;

/// Frame limit of the fuzzed channels (a header announcing more is refused before reading).
pub const MAX_FRAME: u32 = 1 << 16;

/// An in-memory stream: reads the fuzz input, discards writes.
struct Mem<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Read for Mem<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Mem<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Transport for Mem<'_> {
    fn set_read_timeout(&mut self, _: Option<Duration>) -> std::io::Result<()> {
        Ok(())
    }

    fn set_write_timeout(&mut self, _: Option<Duration>) -> std::io::Result<()> {
        Ok(())
    }

    fn write_timeout(&self) -> Option<Duration> {
        None
    }

    fn shutdown_write(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn limits() -> Limits {
    Limits {
        max_frame: MAX_FRAME,
        idle_timeout: Duration::from_secs(3600),
        frame_timeout: Duration::from_secs(3600),
        write_timeout: Duration::from_secs(3600),
    }
}

/// Reads every frame of `input` and decodes each with `decode`; `true` when the whole stream
/// was read and decoded.
fn read_stream<M: WireMessage>(
    input: &[u8],
    cx: &mut Exec,
    nested: impl Fn(&M, &mut Exec) -> bool,
) -> bool {
    let stream = Mem {
        data: input,
        pos: 0,
    };
    let Ok(mut channel) = Channel::<_, M>::new(stream, limits()) else {
        return false;
    };
    loop {
        let frame = match cx.bounded(MAX_FRAME as usize, || channel.read_frame()) {
            Ok(Some(f)) => f,
            Ok(None) => return true,
            Err(_) => return false,
        };
        let msg = cx.bounded(codec_bound(frame.payload.len()), || frame.decode::<M>());
        match msg {
            Ok(m) if nested(&m, cx) => {}
            _ => return false,
        }
    }
}

/// The owner-keyed request and reply bytes inside PDNP frames, decoded as owner and user do.
fn pdnp_nested(msg: &Message, cx: &mut Exec) -> bool {
    match msg {
        Message::Decrypt(r) => cx
            .bounded(codec_bound(r.request.len()), || {
                from_wire::<Request>(&r.request, "request")
            })
            .is_ok(),
        Message::Decrypted(r) => cx
            .bounded(codec_bound(r.reply.len()), || {
                from_wire::<Reply>(&r.reply, "reply")
            })
            .is_ok(),
        _ => true,
    }
}

fn pdnp_messages() -> Vec<Message> {
    vec![
        Message::GetInfo,
        Message::GetFile(FileId::EncryptedModel),
        Message::GetFile(FileId::KeyedModel),
        Message::Decrypt(DecryptRequest {
            id: 7,
            request: he::request_seed(2),
        }),
        Message::GetStats,
        Message::KeyedPart(KeyedPart {
            id: 3,
            total: 40,
            offset: 8,
            bytes: (0u8..32).collect(),
        }),
        Message::KeyedAck(KeyedAck { id: 3, received: 8 }),
        Message::KeyedReply(KeyedReplyFrame {
            id: 3,
            owner_seconds: 0.25,
            reply: he::keyed_reply_seed(),
        }),
        Message::Info(ServiceInfo {
            server: "privdnn-party 0.1".into(),
            model: "mnist".into(),
            max_frame: 1 << 28,
            files: vec![FileEntry {
                id: FileId::EvaluationKeys,
                bytes: 124,
                sha256: "ab".repeat(32),
            }],
        }),
        Message::File(FileData {
            id: FileId::EncryptedModel,
            bytes: super::artifacts::GOLDEN[1].1.to_vec(),
        }),
        Message::Decrypted(DecryptReply {
            id: 7,
            owner_seconds: 0.5,
            reply: he::reply_seed(2),
        }),
        Message::Stats(ServerStats {
            connections: 3,
            decrypts: 2,
            uptime_s: 1.5,
            ..Default::default()
        }),
        Message::Error(ErrorFrame {
            code: 4,
            message: "busy".into(),
        }),
    ]
}

fn edge_messages() -> Vec<EdgeMessage> {
    let items = vec![RingVec(vec![1, u64::MAX, 3]), RingVec(vec![])];
    vec![
        EdgeMessage::Request(LayerRequest {
            batch: 9,
            layer: 1,
            items: items.clone(),
        }),
        EdgeMessage::Reply(LayerReply {
            batch: 9,
            layer: 1,
            items,
        }),
        EdgeMessage::StatsRequest,
        EdgeMessage::Stats(EdgeStats {
            requests: 4,
            items: 8,
            compute_seconds: 0.5,
            cpu_seconds: 0.25,
            peak_rss_bytes: 1 << 20,
            corrupted: 0,
        }),
        EdgeMessage::Shutdown,
        EdgeMessage::Error(ErrorFrame {
            code: 2,
            message: "bad".into(),
        }),
    ]
}

/// One message of each SPNN kind (PDSP).
fn spnn_messages() -> Vec<SpnnMessage> {
    let v = RingVec(vec![1, u64::MAX, 3]);
    vec![
        SpnnMessage::Hello(Hello {
            role: Role::HolderB,
            settings: 7,
            epochs_done: 2,
        }),
        SpnnMessage::Opening(Opening {
            step: 3,
            e: v.clone(),
            f: v.clone(),
        }),
        SpnnMessage::Activations(Activations {
            step: 3,
            z: v.clone(),
        }),
        SpnnMessage::Features(Features {
            step: 3,
            h: vec![0.5, -1.0],
        }),
        SpnnMessage::FeatureGrad(FeatureGrad {
            step: 3,
            grad: vec![0.25],
        }),
        SpnnMessage::Gradient(Gradient { step: 3, delta: v }),
        SpnnMessage::Done,
    ]
}

/// Seeds for a stream target: every message alone, and each next to the following one.
fn stream_seeds<M: WireMessage>(msgs: &[M]) -> anyhow::Result<Vec<Vec<u8>>> {
    let frames = msgs
        .iter()
        .map(|m| m.to_frame())
        .collect::<Result<Vec<_>, _>>()?;
    let mut seeds = frames.clone();
    for pair in frames.windows(2) {
        seeds.push([pair[0].clone(), pair[1].clone()].concat());
    }
    Ok(seeds)
}

/// `[kind u16 LE | payload]` inputs for [`Message::decode`].
fn message_seeds(msgs: &[Message]) -> anyhow::Result<Vec<Vec<u8>>> {
    msgs.iter()
        .map(|m| Ok([m.kind().to_le_bytes().to_vec(), m.payload()?].concat()))
        .collect()
}

/// The frame and message targets.
pub fn targets() -> anyhow::Result<Vec<Target>> {
    let pdnp = pdnp_messages();
    Ok(vec![
        Target {
            name: "pdnp-frames",
            weight: 48,
            seeds: stream_seeds(&pdnp)?,
            run: Box::new(|input: &[u8], cx: &mut Exec| {
                read_stream::<Message>(input, cx, pdnp_nested)
            }),
            fixup: None,
        },
        Target {
            name: "pdeg-frames",
            weight: 32,
            seeds: stream_seeds(&edge_messages())?,
            run: Box::new(|input: &[u8], cx: &mut Exec| {
                read_stream::<EdgeMessage>(input, cx, |_: &EdgeMessage, _: &mut Exec| true)
            }),
            fixup: None,
        },
        Target {
            name: "pdsp-frames",
            weight: 32,
            seeds: stream_seeds(&spnn_messages())?,
            run: Box::new(|input: &[u8], cx: &mut Exec| {
                read_stream::<SpnnMessage>(input, cx, |_: &SpnnMessage, _: &mut Exec| true)
            }),
            fixup: None,
        },
        Target {
            name: "pdnp-messages",
            weight: 48,
            seeds: message_seeds(&pdnp)?,
            run: Box::new(|input: &[u8], cx: &mut Exec| {
                let Some((kind, payload)) = input.split_first_chunk::<2>() else {
                    return false;
                };
                let kind = u16::from_le_bytes(*kind);
                cx.bounded(codec_bound(payload.len()), || {
                    Message::decode(kind, payload)
                })
                .is_ok()
            }),
            fixup: None,
        },
    ])
}
