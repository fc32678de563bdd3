//! The selections the experiments need beyond the default one: chosen here with the
//! selection library when `select/sweep.json` lacks a sweep point ([`choose_selection`]), the
//! sweep's points ([`Stage::sweep_selections`]) and the extraction / inversion selection
//! ([`Stage::extraction_selection`]).

use anyhow::{Context as _, Result};
use privdnn_artifacts::{NeuronSelection, RunLayout, TrainedModel};
use privdnn_config::{ResolvedConfig, SelectAlgorithm, SelectConfig};
use privdnn_data::Splits;
use privdnn_model::partition::evaluator::Evaluator;
use privdnn_selection::choose::{Context, choose};
use serde_json::Value;

use crate::stage::Stage;

/// One sweep point: (percent, selection, test accuracies (separate, removed) when the sweep
/// recorded them).
pub(crate) type SweepPoint = (f64, NeuronSelection, Option<(f64, f64)>);

/// The selection-split evaluator and context helpers for choosing selections.
pub(crate) fn choose_selection(
    stage_model: &TrainedModel,
    splits: &Splits,
    cfg: &ResolvedConfig,
    algorithm: SelectAlgorithm,
    sizes_of: &[[usize; 2]],
    mut start: [Vec<usize>; 2],
) -> Result<Vec<NeuronSelection>> {
    let device = privdnn_model::backend_device(cfg.pipeline.train.backend, false)?;
    let s = &cfg.pipeline.select;
    let split = if s.eval_images > 0 && s.eval_images < splits.validation.len() {
        let mut keep =
            privdnn_data::sample_indices(splits.validation.len(), s.eval_images, cfg.pipeline.seed);
        keep.sort_unstable();
        splits.validation.subset(&keep, "validation")
    } else {
        splits.validation.clone()
    };
    let evaluator = Evaluator::new(
        stage_model,
        &split,
        cfg.pipeline.train.eval_batch_size,
        &device,
    )?;
    let ctx = Context {
        model: stage_model,
        evaluator: &evaluator,
        train: &splits.train,
        config: s,
        device: &device,
        seed: cfg.pipeline.seed,
    };
    let mut out = Vec::new();
    for &sizes in sizes_of {
        if start[0].len() > sizes[0] || start[1].len() > sizes[1] {
            start = [vec![], vec![]];
        }
        let budget = if s.random_seconds > 0.0 {
            s.random_seconds
        } else {
            10.0
        };
        let choice = choose(&ctx, algorithm, sizes, &start, budget)?;
        start = [
            choice.selection.layer1.clone(),
            choice.selection.layer2.clone(),
        ];
        log::info!(
            "chose {} with {} in {:.1}s",
            choice.selection.to_reference_json(),
            algorithm.name(),
            choice.seconds
        );
        out.push(choice.selection);
    }
    Ok(out)
}

impl Stage {
    /// The sweep's percents and selections: `select/sweep.json` where it has the point,
    /// otherwise chosen here (nested) with `attack.sweep_algorithm`.
    pub(crate) fn sweep_selections(&self) -> Result<Vec<SweepPoint>> {
        let a = &self.cfg.pipeline.attack;
        let percents = if a.percents.is_empty() {
            self.cfg.pipeline.select.sweep_percents.clone()
        } else {
            a.percents.clone()
        };
        let channels = privdnn_model::partition::channels(&self.model)?;
        let sweep: Vec<Value> = std::fs::read_to_string(RunLayout::new(&self.run_dir).sweep())
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let from_sweep = |p: f64| -> Option<(NeuronSelection, Option<(f64, f64)>)> {
            let r = sweep.iter().find(|r| {
                r.get("percent")
                    .and_then(Value::as_f64)
                    .is_some_and(|x| (x - p).abs() < 1e-9 && x > 0.0)
            })?;
            let algorithm = r
                .get("algorithm")
                .and_then(Value::as_str)
                .unwrap_or("sweep");
            let sel = NeuronSelection::from_reference_json(
                &r.get("selection")?.to_string(),
                channels,
                algorithm,
            )
            .ok()?;
            let test = r.get("test");
            let scores = test
                .and_then(|t| Some((t.get("separate")?.as_f64()?, t.get("removed")?.as_f64()?)));
            Some((sel, scores))
        };
        let missing: Vec<f64> = percents
            .iter()
            .copied()
            .filter(|p| from_sweep(*p).is_none())
            .collect();
        let sizes: Vec<[usize; 2]> = missing
            .iter()
            .map(|&percent| {
                SelectConfig {
                    percent,
                    ..self.cfg.pipeline.select.clone()
                }
                .sizes(channels)
            })
            .collect();
        // the default selection already is a point of a nested greedy sweep: reuse it
        let default_sizes = [self.selection.layer1.len(), self.selection.layer2.len()];
        let reuse = a.sweep_algorithm == self.cfg.pipeline.select.algorithm
            && sizes.first() == Some(&default_sizes);
        let chosen = if missing.is_empty() {
            Vec::new()
        } else if reuse {
            let mut rest = choose_selection(
                &self.model,
                &self.splits,
                &self.cfg,
                a.sweep_algorithm,
                &sizes[1..],
                [self.selection.layer1.clone(), self.selection.layer2.clone()],
            )?;
            rest.insert(0, self.selection.clone());
            rest
        } else {
            choose_selection(
                &self.model,
                &self.splits,
                &self.cfg,
                a.sweep_algorithm,
                &sizes,
                [vec![], vec![]],
            )?
        };
        let mut out = Vec::new();
        for p in percents {
            if let Some((sel, scores)) = from_sweep(p) {
                out.push((p, sel, scores));
            } else if let Some(i) = missing.iter().position(|m| *m == p) {
                out.push((p, chosen[i].clone(), None));
            }
        }
        Ok(out)
    }

    /// The default selection on count pipelines; the `percent` point (nested greedy from the
    /// sweep when available) on percent pipelines.
    pub(crate) fn extraction_selection(&self, percent: f64) -> Result<NeuronSelection> {
        if self.cfg.pipeline.select.percent <= 0.0
            || percent <= 0.0
            || percent == self.cfg.pipeline.select.percent
        {
            return Ok(self.selection.clone());
        }
        let channels = privdnn_model::partition::channels(&self.model)?;
        let sizes = SelectConfig {
            percent,
            ..self.cfg.pipeline.select.clone()
        }
        .sizes(channels);
        choose_selection(
            &self.model,
            &self.splits,
            &self.cfg,
            self.cfg.pipeline.attack.sweep_algorithm,
            &[sizes],
            [vec![], vec![]],
        )?
        .pop()
        .context("no selection")
    }
}
