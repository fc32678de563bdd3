//! Classification through an owner in user-keyed mode (`[he] mode = "user-keyed"`): the user
//! opens the downloaded keyed model (no selected weight in it), generates its own BFV keys,
//! encrypts its images into requests of at most one call's capacity, sends each in parts
//! ([`Client::keyed`]), decrypts the owner's sanitised reply and finishes the network in clear.
//! The owner never decrypts anything. The report is the owner-keyed one ([`ClientReport`]).
//!
//! Measurement only: with [`crate::classify::ClientConfig::audit_owner_block`] (the owner's `keyed_block.bin`,
//! which a real user never has) the decrypted outputs and the predictions are compared with the
//! integer shadow ([`crate::shadow_check`]).

use std::time::Instant;

use privdnn_artifacts::DatasetSplit;
use privdnn_he::engine::Layout;
use privdnn_model::RemainderNet;
use privdnn_model::burn::tensor::Device;
use privdnn_partial::SelectedOutputs;
use privdnn_partial::keyed::{KeyedUserSide, layout_for};

use crate::PartyError;
use crate::classify::{
    Batch, BatchReport, ClientReport, ImageSource, LayoutChoice, Run, clear_tail,
};
use crate::client::Client;

/// Frame bytes a keyed part needs beyond its request bytes (ids, offsets, length prefix).
const PART_OVERHEAD: usize = 1024;

/// Classifies `source` through an owner in user-keyed mode (the download is done).
pub(crate) fn classify_keyed(
    run: &mut Run<'_>,
    source: &ImageSource,
    device: Device,
) -> Result<ClientReport, PartyError> {
    let clock = Instant::now();
    let file: privdnn_partial::keyed::KeyedModelFile =
        privdnn_artifacts::read_artifact(&run.download.model)?;
    let layout = keyed_layout(run.cfg.layout, file.remainder.spec.architecture);
    let user = KeyedUserSide::new(file, layout, &mut rand::rng())?;
    let tail = RemainderNet::new(&user.remainder, device)?;
    run.phase("user_load_expand", clock);
    let spec = user.remainder.spec.clone();
    let (images, indices) = run.images(source, &spec)?;
    let capacity = user.capacity()?;
    let batch = match run.cfg.batch {
        0 => capacity,
        b => b.min(capacity),
    };
    let max_part = (run.download.owner_max_frame as usize)
        .min(run.cfg.limits.max_frame as usize)
        .saturating_sub(PART_OVERHEAD)
        .max(1);
    let mut auditor = match &run.cfg.audit_owner_block {
        Some(path) => Some(crate::shadow_check::Shadow::open(path)?),
        None => None,
    };
    let mut batches = Vec::new();
    for (k, chunk) in indices.chunks(batch).enumerate() {
        let (b, outputs) = keyed_batch(
            &mut run.client,
            (&user, &tail),
            &images.split,
            chunk,
            (k as u64 + 1, max_part),
        )?;
        if let Some(a) = auditor.as_mut() {
            a.compare((&user, &tail), &images.split, chunk, &outputs, &b.logits)?;
        }
        batches.push(b);
    }
    let shadow = auditor.map(crate::shadow_check::Shadow::check);
    Ok(run.report(&images, &indices, (layout, batch), batches, shadow))
}

/// Encrypts, sends in parts, decrypts and finishes one chunk of images.
fn keyed_batch(
    client: &mut Client,
    (user, tail): (&KeyedUserSide, &RemainderNet),
    split: &DatasetSplit,
    chunk: &[usize],
    (id, max_part): (u64, usize),
) -> Result<(Batch, SelectedOutputs), PartyError> {
    let classes = user.remainder.spec.num_classes;
    let before = client.traffic();
    let t0 = Instant::now();
    let raw: Vec<&[u8]> = chunk.iter().map(|&i| split.image(i)).collect();
    // Serialised at once and the typed request dropped: one copy of it in memory, not two.
    let (request, pending) = {
        let (typed, pending) = user.request(&raw, &mut rand::rng())?;
        (privdnn_artifacts::codec::encode(&typed)?, pending)
    };
    let t1 = Instant::now();
    let (reply, call) = client.keyed(id, &request, max_part)?;
    let t2 = Instant::now();
    let outputs = user.finish(&pending, &reply)?;
    let t3 = Instant::now();
    let logits = clear_tail(tail, split, chunk, &user.injection(&outputs), classes)?;
    let t4 = Instant::now();
    let report = BatchReport {
        images: chunk.len(),
        request_bytes: request.len(),
        reply_bytes: call.reply_bytes,
        traffic: client.traffic().since(&before),
        he_eval_s: (t1 - t0).as_secs_f64(),
        round_trip_s: (t2 - t1).as_secs_f64(),
        owner_decrypt_s: call.owner_seconds,
        unblind_s: (t3 - t2).as_secs_f64(),
        tail_s: (t4 - t3).as_secs_f64(),
        latency_s: (t4 - t0).as_secs_f64(),
    };
    log::info!(
        "keyed batch of {}: {} B up in {} parts, {} B down, encryption {:.2} s, round trip {:.2} s \
         (owner {:.2} s), decryption {:.2} s, latency {:.2} s",
        report.images,
        report.traffic.bytes_sent,
        call.parts,
        report.traffic.bytes_received,
        report.he_eval_s,
        report.round_trip_s,
        report.owner_decrypt_s,
        report.unblind_s,
        report.latency_s
    );
    Ok((Batch { report, logits }, outputs))
}

/// The layout a user-keyed client uses for `choice` on `architecture` (`auto`: the mode's
/// layout for the architecture, `privdnn_partial::keyed::layout_for`).
pub fn keyed_layout(choice: LayoutChoice, architecture: privdnn_artifacts::Architecture) -> Layout {
    match choice {
        LayoutChoice::Fixed(l) => l,
        LayoutChoice::Auto(_) => layout_for(architecture),
    }
}
