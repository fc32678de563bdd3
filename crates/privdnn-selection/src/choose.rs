//! Runs one selection algorithm on an evaluator and describes the result: the selection, how
//! long it took and how many tail evaluations it needed, and its scores on the selection split
//! and on the held-out report split.

use std::time::Instant;

use privdnn_artifacts::{DatasetSplit, NeuronSelection, TrainedModel};
use privdnn_config::{SelectAlgorithm, SelectConfig};
use privdnn_model::burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::SelectError;
use crate::greedy::{GreedyPlan, greedy};
use crate::pruning::{fpgm_ranking, hrank_rankings, l2_ranking};
use crate::random::random_search;
use privdnn_model::partition::evaluator::Evaluator;
use privdnn_model::partition::score::point;

/// Inputs shared by every algorithm.
pub struct Context<'a> {
    /// The trained model.
    pub model: &'a TrainedModel,
    /// Evaluator on the selection split.
    pub evaluator: &'a Evaluator,
    /// Training split (HRank's sample images).
    pub train: &'a DatasetSplit,
    /// Selection settings.
    pub config: &'a SelectConfig,
    /// Device for auxiliary forward passes.
    pub device: &'a Device,
    /// Seed of random choices.
    pub seed: u64,
}

/// A finished choice.
#[derive(Clone, Debug)]
pub struct Choice {
    /// The selection.
    pub selection: NeuronSelection,
    /// Wall seconds of the algorithm.
    pub seconds: f64,
    /// Tail evaluations performed.
    pub evaluations: usize,
    /// Random draws (random search only).
    pub draws: usize,
}

fn top(ranking: &[usize], n: usize) -> Vec<usize> {
    ranking.iter().take(n).copied().collect()
}

/// Chooses a selection of `sizes` with `algorithm`, extending `start` where the algorithm can
/// (greedy variants; other algorithms ignore it). `random_seconds` is the budget of random
/// search.
pub fn choose(
    ctx: &Context,
    algorithm: SelectAlgorithm,
    sizes: [usize; 2],
    start: &[Vec<usize>; 2],
    random_seconds: f64,
) -> Result<Choice, SelectError> {
    let ev = ctx.evaluator;
    let before = ev.evaluations();
    let clock = Instant::now();
    let mut draws = 0;
    let greedy_with = |pools: [Option<Vec<usize>>; 2]| {
        let plan = GreedyPlan {
            sizes,
            step: ctx.config.greedy_step,
            pools,
            start: start.clone(),
        };
        greedy(ev, &plan, &|_| {})
    };
    let [layer1, layer2] = match algorithm {
        SelectAlgorithm::Greedy => greedy_with([None, None]),
        SelectAlgorithm::L2 => [
            top(&l2_ranking(ctx.model, 1)?, sizes[0]),
            top(&l2_ranking(ctx.model, 2)?, sizes[1]),
        ],
        SelectAlgorithm::Fpgm => [
            top(&fpgm_ranking(ctx.model, 1)?, sizes[0]),
            top(&fpgm_ranking(ctx.model, 2)?, sizes[1]),
        ],
        SelectAlgorithm::Hrank => {
            let [r1, r2] =
                hrank_rankings(ctx.model, ctx.train, ctx.config.hrank_images, ctx.device)?;
            [top(&r1, sizes[0]), top(&r2, sizes[1])]
        }
        SelectAlgorithm::L2Greedy | SelectAlgorithm::FpgmGreedy => {
            let rank = |layer| {
                if algorithm == SelectAlgorithm::L2Greedy {
                    l2_ranking(ctx.model, layer)
                } else {
                    fpgm_ranking(ctx.model, layer)
                }
            };
            let pools = [
                Some(top(&rank(1)?, 2 * sizes[0])),
                Some(top(&rank(2)?, 2 * sizes[1])),
            ];
            greedy_with(pools)
        }
        SelectAlgorithm::Random => {
            let outcome = random_search(ev, sizes, random_seconds, ctx.seed);
            draws = outcome.draws;
            outcome.selection
        }
    };
    ev.check()?;
    Ok(Choice {
        selection: NeuronSelection {
            layer1,
            layer2,
            channels: ev.channels(),
            algorithm: algorithm.name().to_string(),
        },
        seconds: clock.elapsed().as_secs_f64(),
        evaluations: ev.evaluations() - before,
        draws,
    })
}

/// Accuracies of a selection on one split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitScores {
    /// Images evaluated.
    pub images: usize,
    /// A_o, percent.
    pub original: f64,
    /// A_s, percent.
    pub separate: f64,
    /// A_r, percent.
    pub removed: f64,
    /// A_s − A_r.
    pub gap: f64,
    /// point(A_s, A_r) with A_base = A_o of this split.
    pub point: f64,
    /// Per-class A_o.
    pub per_class_original: Vec<f64>,
    /// Per-class A_s.
    pub per_class_separate: Vec<f64>,
    /// Per-class A_r.
    pub per_class_removed: Vec<f64>,
}

/// Scores `selection` with `ev` (which fixes the split).
pub fn split_scores(
    ev: &Evaluator,
    selection: &NeuronSelection,
) -> Result<SplitScores, SelectError> {
    let (s, r) = ev.evaluate(selection)?;
    let o = ev.original();
    Ok(SplitScores {
        images: o.total,
        original: o.accuracy(),
        separate: s.accuracy(),
        removed: r.accuracy(),
        gap: s.accuracy() - r.accuracy(),
        point: point(s.accuracy(), r.accuracy(), o.accuracy()),
        per_class_original: o.per_class_accuracy(),
        per_class_separate: s.per_class_accuracy(),
        per_class_removed: r.per_class_accuracy(),
    })
}

/// One selection with its provenance and scores (a line of `metrics.json` or of a sweep).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SelectionRecord {
    /// Algorithm name.
    pub algorithm: String,
    /// Percent of the sweep point (0 when sized by counts).
    pub percent: f64,
    /// (|S1|, |S2|).
    pub sizes: [usize; 2],
    /// The selection in the reference's JSON form.
    pub selection: serde_json::Value,
    /// Scores on the selection split (validation).
    pub validation: SplitScores,
    /// Scores on the report split (test).
    pub test: SplitScores,
    /// Tail evaluations performed by the algorithm.
    pub evaluations: usize,
    /// Random draws (random only).
    pub draws: usize,
    /// Wall seconds of the algorithm.
    pub seconds: f64,
}

/// Builds the record of a choice, scoring it on both splits.
pub fn record(
    choice: &Choice,
    percent: f64,
    validation: &Evaluator,
    test: &Evaluator,
) -> Result<SelectionRecord, SelectError> {
    let s = &choice.selection;
    Ok(SelectionRecord {
        algorithm: s.algorithm.clone(),
        percent,
        sizes: [s.layer1.len(), s.layer2.len()],
        selection: s.to_reference_json(),
        validation: split_scores(validation, s)?,
        test: split_scores(test, s)?,
        evaluations: choice.evaluations,
        draws: choice.draws,
        seconds: choice.seconds,
    })
}
