//! The extraction experiment of the attack stage: queries → solve → relative error and the
//! accuracy of the rebuilt model, per query count, plus the obfuscated variants.

use anyhow::Result;
use privdnn_artifacts::{NeuronSelection, TrainedModel};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::block::Block;
use super::solver::{Recovered, SolveSettings, random_queries, relative_error, solve};
use crate::experiment::Experiment;

/// Normalised test images as f64.
fn images(
    split: &privdnn_artifacts::DatasetSplit,
    model: &TrainedModel,
    n: usize,
) -> Vec<Vec<f64>> {
    let idx: Vec<usize> = (0..n.min(split.len())).collect();
    let (values, _) = privdnn_data::make_batch(split, &idx, &model.normalization, None);
    let len = split.image_len();
    values
        .chunks(len.max(1))
        .map(|c| c.iter().map(|v| f64::from(*v)).collect())
        .collect()
}

/// Accuracy of the user's model with the selected layer-2 outputs computed from the recovered
/// block (no owner involved), on the first `n` test images.
fn rebuilt_accuracy(
    exp: &Experiment<'_>,
    separated: &TrainedModel,
    block: &Block,
    rec: &Recovered,
    n: usize,
) -> Result<f64> {
    use privdnn_model::{Evaluation, Network, batch_tensor, import_tensors};
    let device = &exp.devices.eval;
    let net = import_tensors(
        Network::new(&separated.spec, device)?,
        &separated.tensors,
        None,
    )?;
    let split = &exp.eval;
    let idx: Vec<usize> = (0..n.min(split.len())).collect();
    let mut eval = Evaluation::default();
    let g = &block.geometry;
    let hw = g.h2 * g.h2;
    for chunk in idx.chunks(100) {
        let (values, labels) =
            privdnn_data::make_batch(split, chunk, &separated.normalization, None);
        let xs: Vec<Vec<f64>> = values
            .chunks(split.image_len())
            .map(|c| c.iter().map(|v| f64::from(*v)).collect())
            .collect();
        let x = batch_tensor(values, chunk.len(), split, device);
        let a1 = net.layer1(net.conv1(x));
        let z2 = net.conv2(a1.clone());
        let dims = z2.dims();
        let mut data = privdnn_model::data_values(z2.into_data(), "conv2 output")?;
        for (i, xi) in xs.iter().enumerate() {
            let zh = rec.predict(block, xi);
            for (k, &j) in block.s2.iter().enumerate() {
                let base = (i * dims[1] + j) * hw;
                for p in 0..hw {
                    data[base + p] = zh[k][p] as f32;
                }
            }
        }
        let z2 = privdnn_model::burn::tensor::Tensor::<4>::from_data(
            privdnn_model::burn::tensor::TensorData::new(data, dims),
            device,
        );
        let logits = privdnn_model::tensor_values(net.tail(a1, z2), "logits")?;
        eval.add_logits(&logits, &labels, split.num_classes());
    }
    Ok(eval.accuracy())
}

/// The extraction experiment of the attack stage: for each query count, solve and measure.
pub fn run_experiment(exp: &Experiment<'_>, sel: &NeuronSelection) -> Result<Value> {
    let a = &exp.attack;
    let separated = privdnn_model::partition::separate_weights(exp.model, sel)?;
    let block = Block::from_model(&separated, sel)?;
    let g = &block.geometry;
    let test = images(exp.eval, exp.model, 200);
    let settings = SolveSettings {
        iterations: a.extract_iterations,
        restarts: a.extract_restarts,
        seed: exp.seed,
        ..SolveSettings::default()
    };
    let unknowns_lifted = block.s1.len() * g.lifted();
    let unknowns_conv1 = block.s1.len() * (g.patch() + 1);
    let unknowns_linear = block.s2.len() * (g.c1 * g.k2 * g.k2 + 1);
    let equations_per_query = block.s2.len() * g.rows().len();
    log::info!(
        "extraction of {}: {} conv1 + {} conv2 unknowns, {} equations per query",
        sel.to_reference_json(),
        unknowns_conv1,
        unknowns_linear,
        equations_per_query
    );
    let baseline = {
        let exact = Recovered {
            w: block.s1.iter().map(|&c| block.w1[c].clone()).collect(),
            b: block.s1.iter().map(|&c| block.b1[c]).collect(),
            coef: block
                .s2
                .iter()
                .map(|&j| {
                    let mut v: Vec<f64> = block.w2[j].iter().flatten().copied().collect();
                    v.push(block.b2[j]);
                    v
                })
                .collect(),
            iterations: 0,
            restarts: 0,
            residual: 0.0,
        };
        rebuilt_accuracy(exp, &separated, &block, &exact, 1000)?
    };
    log::info!("A_s with the true block on the same 1000 images: {baseline:.2} %");
    let mut rows = Vec::new();
    let mut needed = None;
    let progress = crate::experiment::bar(a.extract_queries.len() as u64, "extraction");
    for &n in &a.extract_queries {
        let clock = std::time::Instant::now();
        let queries = random_queries(exp.model, n, exp.seed ^ n as u64);
        let rec = solve(&block, &queries, &settings);
        let row = match rec {
            Ok(rec) => {
                let err = relative_error(&block, &rec, &test);
                let acc = rebuilt_accuracy(exp, &separated, &block, &rec, 1000)?;
                if err < 0.01 && needed.is_none() {
                    needed = Some(n);
                }
                progress.suspend(|| {
                    log::info!(
                        "extraction, {n} queries: relative error {err:.3e}, rebuilt model {acc:.2} %, {} LM iterations, {} restarts, {:.1}s",
                        rec.iterations,
                        rec.restarts,
                        clock.elapsed().as_secs_f64()
                    )
                });
                json!({"queries": n, "relative_error": err, "rebuilt_accuracy": acc,
                       "iterations": rec.iterations, "restarts": rec.restarts, "query_residual": rec.residual,
                       "seconds": clock.elapsed().as_secs_f64()})
            }
            Err(e) => json!({"queries": n, "error": e.to_string()}),
        };
        rows.push(row);
        progress.inc(1);
    }
    progress.finish_and_clear();
    // polymorphic obfuscation: a fresh per-channel 3×3 kernel composed with conv2
    let obscure = obfuscation(exp, &block, &settings)?;
    Ok(json!({
        "selection": sel.to_reference_json(),
        "conv1_unknowns": unknowns_conv1,
        "lifted_unknowns_if_unstructured": unknowns_lifted,
        "conv2_unknowns": unknowns_linear,
        "equations_per_query": equations_per_query,
        "queries_for_1_percent": needed,
        "separate_same_images": baseline,
        "accuracy_images": 1000.min(exp.eval.len()),
        "curve": rows,
        "obfuscation": obscure,
        "oracle": "float block in f64 on normalised inputs (the decrypted integer block is the same function, quantised)",
    }))
}

fn obfuscation(exp: &Experiment<'_>, block: &Block, settings: &SolveSettings) -> Result<Value> {
    let a = &exp.attack;
    let mut rng = ChaCha8Rng::seed_from_u64(exp.seed ^ 0x0B5C);
    // at most two selected filters: the composed 5×5 kernels multiply the conv2 unknowns
    let mut block = block.clone();
    block.s2.truncate(2);
    let block = &block;
    let mut out = Vec::new();
    for variant in 0..2 {
        let kernels: Vec<Vec<f64>> = block
            .s2
            .iter()
            .map(|_| {
                (0..9)
                    .map(|_| rng.random_range(-1.0 / 3.0..1.0 / 3.0))
                    .collect()
            })
            .collect();
        let composed = block.compose_obscure(&kernels, 3);
        let test = images(exp.eval, exp.model, 100);
        let mut needed = None;
        let mut curve = Vec::new();
        for &n in &a.extract_queries {
            let queries = random_queries(exp.model, n, exp.seed ^ (n as u64) ^ 0x0B);
            match solve(&composed, &queries, settings) {
                Ok(rec) => {
                    let err = relative_error(&composed, &rec, &test);
                    log::info!(
                        "obfuscated variant {variant}, {n} queries: relative error {err:.3e}"
                    );
                    curve.push(json!({"queries": n, "relative_error": err}));
                    if err < 0.01 {
                        needed = Some(n);
                        break;
                    }
                }
                Err(e) => curve.push(json!({"queries": n, "error": e.to_string()})),
            }
        }
        out.push(json!({"variant": variant, "queries_for_1_percent": needed, "curve": curve}));
    }
    Ok(json!({
        "model": "the obscure per-channel 3×3 conv treated as secret (inside the encrypted block) and re-drawn per variant; the user receives O_j ∗ Z_j (interior positions)",
        "filters": block.s2,
        "variants": out,
    }))
}
