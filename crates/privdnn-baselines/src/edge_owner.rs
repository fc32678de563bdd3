//! The owner's commands: `setup` (integer model, key pairs, the three bundles) and `reference`
//! (evaluation only: burn's float predictions and the integer shadow on the same test images,
//! with the shadow's CPU time — "the device running the whole model alone").

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use privdnn_artifacts::{TrainedModel, read_artifact, write_bytes_atomic, write_json_atomic};
use privdnn_edge::messages::{IntegrityConfig, to_bytes};
use privdnn_edge::net::thread_cpu_seconds;
use privdnn_model::burn::tensor::{Device, Tensor, TensorData};
use privdnn_model::{Network, import_tensors};
use privdnn_mpc::shadow::{argmax, logits, op_counts};
use privdnn_mpc::{IntModel, QuantConfig, import_model};
use serde_json::json;

use crate::files::{self, RunArgs};

/// Options of `edge setup`.
#[derive(Args, Debug)]
pub struct SetupArgs {
    /// Pipeline and images.
    #[command(flatten)]
    pub run: RunArgs,
    /// Probability per image and layer of a hidden test item.
    #[arg(long, default_value_t = 0.1)]
    pub test_probability: f64,
    /// Known-answer test pairs per layer.
    #[arg(long, default_value_t = 4)]
    pub tests_per_layer: usize,
}

/// Options of `edge reference`.
#[derive(Args, Debug)]
pub struct ReferenceArgs {
    /// Pipeline and images.
    #[command(flatten)]
    pub run: RunArgs,
}

fn trained(run: &RunArgs) -> Result<(TrainedModel, PathBuf)> {
    let path = run.run_dir()?.join("train").join("model.bin");
    let model = read_artifact(&path).with_context(|| {
        format!(
            "reading {} (train it first: cargo xtask pipeline {} --only train)",
            path.display(),
            run.target.pipeline
        )
    })?;
    Ok((model, path))
}

pub(crate) fn int_model(run: &RunArgs) -> Result<(IntModel, TrainedModel)> {
    let (model, path) = trained(run)?;
    let im = import_model(&model, &QuantConfig::default())
        .with_context(|| format!("integer model of {}", path.display()))?;
    Ok((im, model))
}

/// `edge setup`.
pub fn setup(args: &SetupArgs) -> Result<()> {
    let dir = args.run.edge_dir()?;
    let (model, _) = int_model(&args.run)?;
    let integrity = IntegrityConfig {
        test_probability: args.test_probability,
        tests_per_layer: args.tests_per_layer,
    };
    let s = privdnn_edge::owner::setup(&model, &integrity, &mut rand::rng())?;
    let device = to_bytes(&s.device)?;
    let (a, b) = (to_bytes(&s.edge_a)?, to_bytes(&s.edge_b)?);
    write_bytes_atomic(&files::device_bundle(&dir), &device)?;
    write_bytes_atomic(&files::edge_bundle(&dir, "a"), &a)?;
    write_bytes_atomic(&files::edge_bundle(&dir, "b"), &b)?;
    let summary = json!({
        "architecture": model.spec.architecture.name(),
        "quant": QuantConfig::default(),
        "block_weight_bits": model.block.bits,
        "integrity": integrity,
        "op_counts": op_counts(&model),
        "owner_seconds": s.cost.owner_seconds,
        "key_elements": s.cost.key_elements,
        "key_bytes": s.cost.key_elements * 8,
        "test_elements": s.cost.test_elements,
        "device_bundle_bytes": device.len(),
        "edge_bundle_bytes": a.len(),
    });
    write_json_atomic(&files::setup_json(&dir), &summary)?;
    println!("edge setup: bundles in {}", dir.display());
    Ok(())
}

/// burn's float predictions of every image of `split`, in batches of 100.
pub(crate) fn float_predictions(
    model: &TrainedModel,
    split: &privdnn_artifacts::DatasetSplit,
) -> Result<Vec<usize>> {
    let device = Device::flex();
    let net = import_tensors(Network::new(&model.spec, &device)?, &model.tensors, None)?;
    let norm = &model.normalization;
    let plane = split.height * split.width;
    let mut out = Vec::with_capacity(split.len());
    for start in (0..split.len()).step_by(100) {
        let end = (start + 100).min(split.len());
        let mut values = Vec::with_capacity((end - start) * split.image_len());
        for i in start..end {
            for (j, &p) in split.image(i).iter().enumerate() {
                let c = (j / plane) % norm.mean.len();
                values.push((p as f32 / 255.0 - norm.mean[c]) / norm.std[c]);
            }
        }
        let x = Tensor::<4>::from_data(
            TensorData::new(
                values,
                [end - start, split.channels, split.height, split.width],
            ),
            &device,
        );
        let l: Vec<f32> = net
            .forward(x)
            .to_data()
            .try_into_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("logits: {e:?}"))?;
        let classes = l.len() / (end - start);
        out.extend(l.chunks(classes).map(|row| {
            row.iter()
                .enumerate()
                .fold(0, |best, (k, v)| if *v > row[best] { k } else { best })
        }));
    }
    Ok(out)
}

/// `edge reference`.
pub fn reference(args: &ReferenceArgs) -> Result<()> {
    let dir = args.run.edge_dir()?;
    let summary = reference_summary(&args.run)?;
    write_json_atomic(&files::reference_json(&dir), &summary)?;
    let pct = |key: &str| summary[key].as_f64().unwrap_or(0.0);
    println!(
        "edge reference: float {:.2} %, integer {:.2} %, agreement {:.2} % on {} images; shadow {:.3} ms/image",
        pct("float_accuracy"),
        pct("integer_accuracy"),
        pct("float_integer_agreement"),
        summary["images"],
        1e3 * pct("shadow_cpu_seconds_per_image")
    );
    Ok(())
}

/// The float and integer-shadow reference on `run`'s test images, shared by the edge and
/// two-server baselines: labels, float / integer accuracy and their agreement, the float
/// predictions, the shadow's logits and its CPU seconds per image (the "alone" cost).
pub(crate) fn reference_summary(run: &RunArgs) -> Result<serde_json::Value> {
    let (model, trained) = int_model(run)?;
    let test = run.test_images()?;
    let float = privdnn_model::with_flushed_denormals(|| float_predictions(&trained, &test))?;
    let cpu = thread_cpu_seconds();
    let shadow = (0..test.len())
        .map(|i| logits(&model, test.image(i)))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let shadow_cpu = thread_cpu_seconds() - cpu;
    let n = test.len().max(1) as f64;
    let labels: Vec<usize> = test.labels.iter().map(|&l| l as usize).collect();
    let int_pred: Vec<usize> = shadow.iter().map(|l| argmax(l)).collect();
    let hits = |p: &[usize]| p.iter().zip(&labels).filter(|(a, b)| a == b).count() as f64;
    let agree = float.iter().zip(&int_pred).filter(|(a, b)| a == b).count() as f64;
    Ok(json!({
        "images": test.len(),
        "labels": labels,
        "float_accuracy": 100.0 * hits(&float) / n,
        "integer_accuracy": 100.0 * hits(&int_pred) / n,
        "float_integer_agreement": 100.0 * agree / n,
        "float_predictions": float,
        "integer_logits": shadow,
        "shadow_cpu_seconds_per_image": shadow_cpu / n,
        "peak_rss_bytes": privdnn_artifacts::peak_rss_bytes(),
    }))
}
