//! The encrypt stage in user-keyed mode (`[he] mode = "user-keyed"`): no key is generated and no
//! weight is encrypted. It writes the user's public model (`RunLayout::keyed_model`) and the
//! owner's plaintext block (`RunLayout::keyed_owner_block`), and `encrypt/metrics.json` with the
//! circuit-privacy bound per residue (`privdnn_partial::keyed`).

use std::path::Path;

use anyhow::{Context as _, Result};
use privdnn_artifacts::{NeuronSelection, RunLayout, TrainedModel, write_json_atomic};
use privdnn_config::ResolvedConfig;
use privdnn_partial::keyed::{setup, write_setup};
use privdnn_partial::setup::Provenance;

/// Builds and writes the two files of the user-keyed mode and the stage metrics.
pub fn run(
    cfg: &ResolvedConfig,
    layout: &RunLayout,
    model: &TrainedModel,
    sel: &NeuronSelection,
    inputs: &[&Path],
    started: std::time::Instant,
) -> Result<()> {
    let out = setup(model, sel, &cfg.pipeline.he).context("user-keyed setup")?;
    let hash = cfg.stage_hash("encrypt");
    let provenance = Provenance {
        producer: concat!("privdnn-encrypt ", env!("CARGO_PKG_VERSION")),
        config_hash: &hash,
        inputs,
        seconds: started.elapsed().as_secs_f64(),
    };
    write_setup(layout, &out, Some(&provenance))?;
    write_json_atomic(&layout.encrypt_metrics(), &out.report)?;
    let r = &out.report;
    let margin = r
        .noise
        .iter()
        .map(|b| b.margin_bits)
        .fold(f64::INFINITY, f64::min);
    println!(
        "user-keyed: no key, no encrypted weight; {}/{}-bit weights, |Z| ≤ 2^{:.1} < 2^{:.1}, \
         smudging margin {:.1} bits; wrote {} and {}, {:.1} s",
        r.weight_bits.0,
        r.weight_bits.1,
        r.log_bound,
        r.log_plaintext_space - 1.0,
        margin,
        layout.keyed_model().display(),
        layout.keyed_owner_block().display(),
        r.seconds
    );
    Ok(())
}
