//! The same malicious user against a user-keyed owner service (`[he] mode = "user-keyed"`),
//! which holds no secret key, ships no encrypted weight and has no decryption path. The
//! attacker downloads the public keyed model, generates BFV keys of its own and sends what it
//! can craft in this mode:
//!
//! * `direct` and `stealth`: the owner-keyed attack's crafted decryption requests (built with
//!   [`privdnn_he::key_recovery::craft_request`] on the service's parameters; the stealth one
//!   under the attacker's own public key, the only one there is). The owner refuses them: it
//!   has nothing to decrypt with.
//! * `keyed`: a crafted keyed request, encryptions under the attacker's key of a chosen probe
//!   image (every pixel at the folded mean, one pixel at 255). The owner evaluates it with its
//!   plaintext weights and returns sanitised ciphertexts; the attacker decrypts them with its
//!   own key and learns the selected outputs on its chosen input — what any user learns, and
//!   the input of the weight-extraction attack — and nothing about a key.
//!
//! Each is reported like the owner-keyed variants: requests, requests decrypted by the owner
//! (0), key coefficients recovered (0: there is no owner key), encrypted weights (none
//! shipped), bytes, seconds.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use privdnn_artifacts::read_artifact;
use privdnn_he::engine::Layout;
use privdnn_he::key_recovery::{CraftVariant, craft_request};
use privdnn_he::protocol::{KeySet, PublicKeys};
use privdnn_net::NetError;
use privdnn_partial::SelectedOutputs;
use privdnn_partial::keyed::{
    KeyedModelFile, KeyedOwnerFile, KeyedUserSide, UserKeyedReply, UserKeyedRequest,
};
use rand::rngs::ThreadRng;
use serde::Serialize;

use super::wire::{DecryptRequest, FileId, KeyedPart, Message};
use super::{OwnerChannel, ServiceAttack, connect, download};

/// Name of the crafted keyed request in the record.
pub const KEYED_PROBE: &str = "keyed";

/// One crafted request against a user-keyed service, measured like the owner-keyed variants
/// (same field names in the attack metrics).
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    /// Always `user-keyed`.
    pub mode: &'static str,
    /// `direct`, `stealth` (crafted decryption requests) or `keyed` (crafted keyed request).
    pub variant: &'static str,
    /// Requests sent.
    pub requests: usize,
    /// Requests the owner decrypted (there is no decryption on this service).
    pub requests_decrypted: usize,
    /// The owner's error message when it refused the request.
    pub refused: Option<String>,
    /// Bytes sent for the request (whole frames).
    pub bytes_sent: u64,
    /// Bytes received with the answer.
    pub bytes_received: u64,
    /// Crafting (keyed probe: encrypting), exchange and reading the answer (keyed probe:
    /// decrypting); the attacker's key generation is reported apart.
    pub seconds: f64,
    /// Owner key coefficients (the owner holds no key).
    pub key_coefficients: usize,
    /// Owner key coefficients recovered.
    pub key_coefficients_recovered: Option<usize>,
    /// Fraction of the owner's key recovered (0: there is none).
    pub key_fraction: Option<f64>,
    /// Encrypted weights shipped (none in this mode).
    pub encrypted_weights: usize,
    /// Encrypted weights recovered.
    pub weights_recovered_exactly: Option<usize>,
    /// Fraction of the encrypted weights recovered (none shipped: not applicable).
    pub weights_fraction: Option<f64>,
    /// Selected output values the attacker decrypted with its own key (keyed probe only).
    pub outputs_learned: usize,
    /// Scoring (owner's block): the decrypted values equal the integer shadow of the probe
    /// image, i.e. the attacker learned exactly what an honest user learns on that input.
    pub outputs_equal_shadow: Option<bool>,
    /// The probe image and what the attacker decrypted (for scoring; not written).
    #[serde(skip)]
    pub learned: Option<(Vec<u8>, SelectedOutputs)>,
}

impl ProbeReport {
    fn new(variant: &'static str) -> Self {
        Self {
            mode: "user-keyed",
            variant,
            requests: 1,
            requests_decrypted: 0,
            refused: None,
            bytes_sent: 0,
            bytes_received: 0,
            seconds: 0.0,
            key_coefficients: 0,
            key_coefficients_recovered: Some(0),
            key_fraction: Some(0.0),
            encrypted_weights: 0,
            weights_recovered_exactly: Some(0),
            weights_fraction: None,
            outputs_learned: 0,
            outputs_equal_shadow: None,
            learned: None,
        }
    }
}

/// The chosen probe image: centred value 0 everywhere (raw = the folded mean), one pixel at 255
/// in the middle of every channel.
fn probe_image(file: &KeyedModelFile) -> Vec<u8> {
    let b = &file.model.plain;
    let s = &b.shape;
    let hw = s.height * s.width;
    let mut raw = vec![0u8; s.input_len()];
    for (i, px) in raw.iter_mut().enumerate() {
        let offset = b.input_offset.get(i / hw).copied().unwrap_or(0);
        *px = offset.clamp(0, 255) as u8;
    }
    for c in 0..s.cin {
        raw[c * hw + (s.height / 2) * s.width + s.width / 2] = 255;
    }
    raw
}

/// The attacker's own public keys in the owner-keyed key format, for `craft_request` (only the
/// public key is read, by the stealth variant).
fn own_public_keys(file: &KeyedModelFile, request: &UserKeyedRequest) -> PublicKeys {
    PublicKeys {
        params: file.model.params.clone(),
        sets: request
            .residues
            .iter()
            .map(|r| KeySet {
                public_key: r.keys.public_key.to_vec(),
                relin_key: Vec::new(),
                expansion_key: Vec::new(),
                rotation_key: None,
            })
            .collect(),
    }
}

/// Sends one crafted decryption request; the connection is re-opened after a refusal (the
/// owner closes it with an error frame).
fn crafted_decrypt(
    ch: &mut OwnerChannel,
    addr: &str,
    keys: &PublicKeys,
    variant: CraftVariant,
    id: u64,
    rng: &mut ThreadRng,
) -> Result<ProbeReport> {
    let clock = Instant::now();
    let mut report = ProbeReport::new(variant.name());
    let crafted = craft_request(keys, variant, rng)?;
    let request = privdnn_he::protocol::to_wire(&crafted.request)?;
    let before = ch.traffic();
    let answer = ch.call(&Message::Decrypt(DecryptRequest { id, request }));
    let t = ch.traffic().since(&before);
    report.bytes_sent = t.bytes_sent;
    report.bytes_received = t.bytes_received;
    match answer {
        Ok(Message::Decrypted(_)) => report.requests_decrypted = 1,
        Ok(other) => bail!("sent a decryption request, got {other:?}"),
        Err(NetError::Remote { message, .. }) => {
            report.refused = Some(message);
            *ch = connect(addr)?;
        }
        Err(e) => return Err(e).context("sending the crafted decryption request"),
    }
    report.seconds = clock.elapsed().as_secs_f64();
    Ok(report)
}

/// Sends a serialised keyed request in parts of at most `max_part` bytes; returns the owner's
/// serialised reply.
fn keyed_call(ch: &mut OwnerChannel, id: u64, request: &[u8], max_part: usize) -> Result<Vec<u8>> {
    let total = request.len() as u64;
    let mut offset = 0u64;
    let mut chunks = request.chunks(max_part.max(1)).peekable();
    while let Some(bytes) = chunks.next() {
        let part = KeyedPart {
            id,
            total,
            offset,
            bytes: bytes.to_vec(),
        };
        offset += bytes.len() as u64;
        match (ch.call(&Message::KeyedPart(part))?, chunks.peek()) {
            (Message::KeyedAck(a), Some(_)) if a.id == id && a.received == offset => {}
            (Message::KeyedReply(r), None) if r.id == id => return Ok(r.reply),
            (other, _) => bail!("sent part of a keyed request, got {other:?}"),
        }
    }
    bail!("empty keyed request")
}

/// The crafted keyed request: the probe image under the attacker's key, answered by the
/// owner's plaintext evaluation and decrypted by the attacker.
fn keyed_probe(
    ch: &mut OwnerChannel,
    user: &KeyedUserSide,
    probe: (&UserKeyedRequest, &privdnn_partial::keyed::Pending, Vec<u8>),
    max_frame: u32,
    encrypt_seconds: f64,
) -> Result<ProbeReport> {
    let clock = Instant::now();
    let (request, pending, raw) = probe;
    let mut report = ProbeReport::new(KEYED_PROBE);
    let bytes = privdnn_artifacts::codec::encode(request)?;
    let before = ch.traffic();
    let max_part = (max_frame as usize).saturating_sub(4096).max(4096);
    let reply = keyed_call(ch, 3, &bytes, max_part)?;
    let t = ch.traffic().since(&before);
    let reply: UserKeyedReply = privdnn_artifacts::codec::decode(&reply, "keyed reply")?;
    let outputs = user.finish(pending, &reply)?;
    report.bytes_sent = t.bytes_sent;
    report.bytes_received = t.bytes_received;
    report.outputs_learned = outputs.z.iter().flatten().map(Vec::len).sum::<usize>()
        + outputs.a1.iter().flatten().map(Vec::len).sum::<usize>();
    report.learned = Some((raw, outputs));
    report.seconds = encrypt_seconds + clock.elapsed().as_secs_f64();
    Ok(report)
}

/// The attacker's path against a user-keyed service: download the keyed model into `cache`,
/// make keys, send the crafted decryption requests (`variants`) and the crafted keyed request;
/// fills `attack`.
pub(super) fn attack_keyed(
    ch: &mut OwnerChannel,
    addr: &str,
    max_frame: u32,
    cache: &Path,
    variants: &[CraftVariant],
    connected: Instant,
    attack: &mut ServiceAttack,
) -> Result<()> {
    let (path, download_bytes) = download(ch, FileId::KeyedModel, cache)?;
    let file: KeyedModelFile = read_artifact(&path)?;
    attack.download_bytes = download_bytes;
    attack.download_seconds = connected.elapsed().as_secs_f64();
    let mut rng = rand::rng();
    let raw = probe_image(&file);
    // one image: the spatial layout keeps the request small
    let clock = Instant::now();
    let user = KeyedUserSide::new(file.clone(), Layout::Spatial, &mut rng)?;
    attack.key_generation_seconds = Some(clock.elapsed().as_secs_f64());
    let clock = Instant::now();
    let (request, pending) = user.request(&[raw.as_slice()], &mut rng)?;
    let encrypt = clock.elapsed().as_secs_f64();
    let keys = own_public_keys(&file, &request);
    let probes = &mut attack.probes;
    for (i, &variant) in variants.iter().enumerate() {
        probes.push(crafted_decrypt(
            ch,
            addr,
            &keys,
            variant,
            i as u64 + 1,
            &mut rng,
        )?);
    }
    probes.push(keyed_probe(
        ch,
        &user,
        (&request, &pending, raw),
        max_frame,
        encrypt,
    )?);
    for p in probes.iter() {
        log::info!(
            "key recovery against the user-keyed service ({}): 1 request, {} B sent, {} B \
             received, {:.2} s; decrypted by the owner: {}; {}",
            p.variant,
            p.bytes_sent,
            p.bytes_received,
            p.seconds,
            p.requests_decrypted,
            match &p.refused {
                Some(m) => format!("refused: {m}"),
                None => format!(
                    "{} selected output values decrypted with the attacker's own key",
                    p.outputs_learned
                ),
            }
        );
    }
    Ok(())
}

/// Scoring only: whether the keyed probe's decrypted values equal the integer shadow of the
/// owner's block on the probe image. `Ok(false)` when `owner_block` does not exist.
pub(super) fn score_probes(owner_block: &Path, probes: &mut [ProbeReport]) -> Result<bool> {
    if !owner_block.exists() {
        return Ok(false);
    }
    let owner: KeyedOwnerFile = read_artifact(owner_block)?;
    for p in probes {
        if let Some((raw, got)) = &p.learned {
            let shadow = privdnn_partial::shadow_outputs(
                &owner.block,
                &owner.selection,
                &[raw.as_slice()],
                owner.layer1,
            );
            p.outputs_equal_shadow = Some(shadow == *got);
        }
    }
    Ok(true)
}
