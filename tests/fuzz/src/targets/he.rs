//! The HE protocol's byte messages and their inner decoders, on a small parameter set (N =
//! 2048, one 50-bit prime, 16-bit t) so that each execution is cheap: the owner-keyed
//! request (codec, then every compact ciphertext decompressed as the owner does), the reply
//! (codec, then the packed slots: the user's checked path and the announced-count path), the
//! user-keyed reply (codec + decompression) and request (codec).

use std::sync::OnceLock;

use privdnn_he::compact::{
    CompactCiphertext, MAX_SLOTS, PackedSlots, decompress, drop_bits, slot_width,
};
use privdnn_he::engine::Layout;
use privdnn_he::params::HeParams;
use privdnn_he::protocol::{Reply, Request, from_wire, to_wire};
use privdnn_he::user_keyed::{ResidueKeys, ResidueRequest, UserKeyedReply, UserKeyedRequest};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_bytes::ByteBuf;

use super::{Target, codec_bound};
use crate::Exec;

/// Largest single allocation a decompression may make: a few polynomials of the fixed ring
/// degree (8 bytes per coefficient), whatever the input.
pub const WORK_BOUND: usize = 16 * 8 * DEGREE;

const DEGREE: usize = 2048;
/// Ciphertexts decompressed per input at most (the codec decode covers the rest).
const MAX_DECOMPRESS: usize = 4;

/// The parameter set every HE target uses.
pub fn params() -> &'static HeParams {
    static PARAMS: OnceLock<HeParams> = OnceLock::new();
    PARAMS.get_or_init(|| {
        HeParams::generate(DEGREE, &[50], 16).unwrap_or_else(|e| panic!("fuzz parameters: {e}"))
    })
}

/// A structurally valid compact ciphertext of [`params`] (random coefficient bits).
fn compact(rng: &mut ChaCha8Rng) -> CompactCiphertext {
    let hp = params();
    let q = hp.moduli[0];
    let dropped = drop_bits(q, hp.plaintext, hp.degree);
    let bits: usize = dropped
        .iter()
        .map(|&k| (64 - (q >> k).leading_zeros() + 1) as usize * hp.degree)
        .sum();
    let mut bytes = vec![0u8; bits.div_ceil(8)];
    rng.fill_bytes(&mut bytes);
    CompactCiphertext {
        level: 0,
        dropped,
        bits: bytes,
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    to_wire(value).unwrap_or_else(|e| panic!("encoding a fuzz seed: {e}"))
}

/// An encoded owner-keyed request with `count` ciphertexts.
pub fn request_seed(count: usize) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(count as u64);
    encode(&Request {
        cts: vec![(0..count).map(|_| compact(&mut rng)).collect()],
    })
}

/// An encoded reply with `count` ciphertexts of packed slots.
pub fn reply_seed(count: usize) -> Vec<u8> {
    let hp = params();
    let mut rng = ChaCha8Rng::seed_from_u64(count as u64 + 100);
    let values = (0..count)
        .map(|_| {
            let slots: Vec<u64> = (0..hp.degree)
                .map(|_| rng.next_u64() % hp.plaintext)
                .collect();
            PackedSlots::pack(&slots, slot_width(hp.plaintext))
        })
        .collect();
    encode(&Reply {
        values: vec![values],
    })
}

/// An encoded user-keyed reply with two ciphertexts.
pub fn keyed_reply_seed() -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    encode(&UserKeyedReply {
        residues: vec![vec![compact(&mut rng), compact(&mut rng)]],
    })
}

fn keyed_request_seed() -> Vec<u8> {
    let blob = |n: usize| ByteBuf::from((0..n).map(|i| i as u8).collect::<Vec<_>>());
    encode(&UserKeyedRequest {
        layout: Layout::Spatial,
        images: 1,
        residues: vec![ResidueRequest {
            keys: ResidueKeys {
                public_key: blob(40),
                relin_key: blob(24),
                rotation_key: Some(blob(8)),
            },
            inputs: vec![blob(32), blob(16)],
            a1: vec![blob(4)],
        }],
    })
}

/// The HE targets.
pub fn targets() -> anyhow::Result<Vec<Target>> {
    let par = params().build()?;
    let keyed_par = par.clone();
    Ok(vec![
        Target {
            name: "he-request",
            weight: 16,
            seeds: vec![request_seed(1), request_seed(2)],
            run: Box::new(move |input: &[u8], cx: &mut Exec| {
                let request = cx.bounded(codec_bound(input.len()), || {
                    from_wire::<Request>(input, "request")
                });
                let Ok(request) = request else {
                    return false;
                };
                let cts = request.cts.iter().flatten().take(MAX_DECOMPRESS);
                let decoded: Vec<bool> = cts
                    .map(|c| cx.bounded(WORK_BOUND, || decompress(c, &par).is_ok()))
                    .collect();
                decoded.iter().all(|&ok| ok)
            }),
            fixup: None,
        },
        Target {
            name: "he-reply",
            weight: 24,
            seeds: vec![reply_seed(1), reply_seed(2)],
            run: Box::new(|input: &[u8], cx: &mut Exec| {
                let reply = cx.bounded(codec_bound(input.len()), || {
                    from_wire::<Reply>(input, "reply")
                });
                let Ok(reply) = reply else {
                    return false;
                };
                let count = reply.values.first().map_or(0, Vec::len);
                let hp = std::slice::from_ref(params());
                let bound = codec_bound(input.len()).max(8 * DEGREE);
                let checked = cx.bounded(bound, || reply.slots_checked(hp, count).is_ok());
                // The announced-count path (`Reply::slots`): at most MAX_SLOTS values each.
                let announced = codec_bound(input.len()).max(8 * MAX_SLOTS as usize);
                let _ = cx.bounded(announced, || reply.slots());
                checked
            }),
            fixup: None,
        },
        Target {
            name: "keyed-reply",
            weight: 8,
            seeds: vec![keyed_reply_seed()],
            run: Box::new(move |input: &[u8], cx: &mut Exec| {
                let reply = cx.bounded(codec_bound(input.len()), || {
                    from_wire::<UserKeyedReply>(input, "keyed reply")
                });
                let Ok(reply) = reply else {
                    return false;
                };
                let cts = reply.residues.iter().flatten().take(MAX_DECOMPRESS);
                let decoded: Vec<bool> = cts
                    .map(|c| cx.bounded(WORK_BOUND, || decompress(c, &keyed_par).is_ok()))
                    .collect();
                decoded.iter().all(|&ok| ok)
            }),
            fixup: None,
        },
        Target {
            name: "keyed-request",
            weight: 16,
            seeds: vec![keyed_request_seed()],
            run: Box::new(|input: &[u8], cx: &mut Exec| {
                cx.bounded(codec_bound(input.len()), || {
                    from_wire::<UserKeyedRequest>(input, "keyed request").is_ok()
                })
            }),
            fixup: None,
        },
    ])
}
