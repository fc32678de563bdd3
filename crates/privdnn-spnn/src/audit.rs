//! The offline audit of a TCP run: for every step of an epoch, the integer shadow
//! conv(W, X) + b — W and b opened from both holders' audit trails, X the fixed-point images the
//! holders shared (recomputed from the dataset and the public epoch order) — must have the digest
//! of the z1 the server reconstructed. An evaluation step outside the protocol (it opens the
//! weights), run by `privdnn-baseline spnn report`.

use privdnn_artifacts::{DatasetSplit, TrainedModel};
use privdnn_model::UpperNet;
use privdnn_mpc::ring;

use crate::error::SpnnError;
use crate::fixed::{columns_of, encode_pixels, scatter_add};
use crate::process::RunSetup;
use crate::process::holder::HolderFile;
use crate::process::server::{ServerFile, z1_digest};
use crate::session::open_weights;

/// The model of one epoch opened from the three roles' state files: conv1 from both holders'
/// shares, the middle from the server, the top layer from holder B.
pub fn open_model(
    setup: &RunSetup,
    a: &HolderFile,
    b: &HolderFile,
    server: &ServerFile,
) -> Result<TrainedModel, SpnnError> {
    let s = &setup.settings;
    let upper = UpperNet::restore(&setup.task.spec, s.optimizer, s.weight_decay, &server.upper)?;
    let top = b
        .top
        .as_ref()
        .ok_or_else(|| SpnnError::config("holder B's state has no top layer"))?;
    let (w, bias) = open_weights(&s.encoding, &a.state, &b.state);
    let t = &setup.task;
    Ok(upper.export_with_head(&t.dataset, &t.normalization, &w, &bias, &top.tensors)?)
}

/// Forwards checked and forwards equal to the shadow in one epoch.
pub fn audit_epoch(
    setup: &RunSetup,
    train: &DatasetSplit,
    epoch: usize,
    a: &HolderFile,
    b: &HolderFile,
    server: &ServerFile,
) -> Result<(u64, u64), SpnnError> {
    let g = setup.geometry()?;
    let bits = setup.settings.encoding.input_bits;
    let order = privdnn_data::epoch_order(train.len(), epoch, setup.settings.seed);
    let chunks: Vec<&[usize]> = order.chunks(setup.settings.batch_size.max(1)).collect();
    if a.audit.len() != chunks.len()
        || b.audit.len() != chunks.len()
        || server.z1_digests.len() != chunks.len()
    {
        return Err(SpnnError::config(format!(
            "epoch {epoch}: audit trails of {} / {} steps and {} digests for {} steps",
            a.audit.len(),
            b.audit.len(),
            server.z1_digests.len(),
            chunks.len()
        )));
    }
    let (mut checked, mut exact) = (0, 0);
    for (i, chunk) in chunks.iter().enumerate() {
        let wb = ring::add(&a.audit[i].0, &b.audit[i].0);
        let (w, bias) = wb.split_at(g.weights());
        let mut x = vec![0u64; chunk.len() * g.image()];
        for p in 0..2 {
            let own = encode_pixels(
                &g,
                p,
                &columns_of(&g, p, train, chunk),
                &setup.task.normalization,
                bits,
            );
            scatter_add(&g, p, &own, &mut x);
        }
        let z = g.conv(w, Some(bias), &x)?;
        checked += 1;
        exact += u64::from(z1_digest(&z) == server.z1_digests[i]);
    }
    Ok((checked, exact))
}
