//! Command line of the selection stage. Reads the trained model of a pipeline run and its
//! dataset cache; writes into `results/<run>/select/`:
//!
//! * `run`: `selection.bin` (+ manifest), `selection.json` (reference format), `metrics.json`;
//! * `sweep`: `sweep.json`, one record per percent point (large models, nested greedy) or per
//!   (|S1|, |S2|) group and algorithm (LeNet5);
//! * `exhaustive`: `exhaustive.json` (per group: size, best/worst, time, rank of every
//!   algorithm's choice, expected random rank) and `exhaustive_points.csv` (every selection);
//! * `evaluate`: A_s / A_r of a selection given as reference JSON.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use privdnn_artifacts::{
    Manifest, NeuronSelection, RunLayout, TrainedModel, read_artifact, write_artifact,
    write_bytes_atomic, write_json_atomic,
};
use privdnn_config::{ResolvedConfig, SelectAlgorithm};
use privdnn_data::Splits;
use privdnn_model::burn::tensor::Device;
use serde::Serialize;

use crate::choose::{Choice, Context, SelectionRecord, choose, record};
use crate::evaluator::Evaluator;
use crate::exhaustive::{Group, group_size, groups, score_group};

/// privdnn selection stage.
#[derive(Parser, Debug)]
#[command(name = "privdnn-select", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Choose the pipeline's default selection.
    Run(Common),
    /// Selection sweep: percent points (large models) or every group and algorithm (LeNet5).
    Sweep(Common),
    /// Exhaustive ground truth and the rank of every algorithm in each group.
    Exhaustive {
        #[command(flatten)]
        common: Common,
        /// Split the algorithms select on and the groups are ranked on: `validation` (default;
        /// the test half stays held out) or `test` (the reference's setting, for comparison:
        /// writes `exhaustive_test.*` beside the default files).
        #[arg(long, value_enum, default_value_t = RankSplit::Validation)]
        split: RankSplit,
    },
    /// A_s and A_r of a given selection (reference JSON: {"1": [..], "2": [..]}).
    Evaluate {
        #[command(flatten)]
        common: Common,
        /// The selection file.
        #[arg(long)]
        selection: PathBuf,
    },
}

/// The split an exhaustive experiment selects and ranks on (both halves of the official test
/// set).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RankSplit {
    /// The validation half; the test half stays held out (the clean default).
    Validation,
    /// The test half, as the reference selected and ranked (selection sees the report images).
    Test,
}

impl RankSplit {
    /// Name written into the outputs.
    pub fn name(self) -> &'static str {
        match self {
            RankSplit::Validation => "validation",
            RankSplit::Test => "test",
        }
    }

    /// Suffix of the output files (`exhaustive{suffix}.json`).
    fn suffix(self) -> &'static str {
        match self {
            RankSplit::Validation => "",
            RankSplit::Test => "_test",
        }
    }
}

/// Options shared by every command.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Pipeline, profile and root.
    #[command(flatten)]
    pub target: privdnn_config::PipelineArgs,
    /// Override `select.algorithm`.
    #[arg(long)]
    pub algorithm: Option<String>,
}

/// Everything a command needs, loaded once.
pub struct Loaded {
    /// Resolved config.
    pub cfg: ResolvedConfig,
    /// Trained model.
    pub model: TrainedModel,
    /// Its path.
    pub model_path: PathBuf,
    /// Splits.
    pub splits: Splits,
    /// Evaluator on the selection split (validation, possibly limited).
    pub validation: Evaluator,
    /// Evaluator on the test split.
    pub test: Evaluator,
    /// Output folder.
    pub out: PathBuf,
    /// Device.
    pub device: Device,
}

fn parse_algorithm(name: &str) -> Result<SelectAlgorithm> {
    SelectAlgorithm::ALL
        .into_iter()
        .find(|a| a.name() == name)
        .with_context(|| {
            let names: Vec<&str> = SelectAlgorithm::ALL.iter().map(|a| a.name()).collect();
            format!(
                "unknown algorithm `{name}`; available: {}",
                names.join(", ")
            )
        })
}

/// Loads config, model, splits and evaluators for `common`.
pub fn load(common: &Common) -> Result<Loaded> {
    let mut cfg = common.target.load()?;
    if let Some(name) = &common.algorithm {
        cfg.pipeline.select.algorithm = parse_algorithm(name)?;
    }
    let layout = RunLayout::new(cfg.results_dir(&common.target.root.join("results")));
    let model_path = layout.trained_model();
    let model: TrainedModel = read_artifact(&model_path)?;
    let (splits, _) = privdnn_data::load_splits(&common.target.root, &cfg.pipeline)?;
    if model.spec.num_classes != splits.test.num_classes()
        || model.spec.image_size != splits.test.height
    {
        bail!(
            "{}: model ({} classes, {} px) does not match the dataset ({} classes, {} px); re-run the train stage",
            model_path.display(),
            model.spec.num_classes,
            model.spec.image_size,
            splits.test.num_classes(),
            splits.test.height
        );
    }
    let device = privdnn_model::backend_device(cfg.pipeline.train.backend, false)?;
    let batch = cfg.pipeline.train.eval_batch_size;
    let limit = cfg.pipeline.select.eval_images;
    let selection_split = if limit > 0 && limit < splits.validation.len() {
        let mut keep =
            privdnn_data::sample_indices(splits.validation.len(), limit, cfg.pipeline.seed);
        keep.sort_unstable();
        splits.validation.subset(&keep, "validation")
    } else {
        splits.validation.clone()
    };
    let clock = std::time::Instant::now();
    let validation = Evaluator::new(&model, &selection_split, batch, &device)?;
    let test = Evaluator::new(&model, &splits.test, batch, &device)?;
    log::info!(
        "cached layers 1-2 of {} validation and {} test images in {:.1}s; A_o = {:.2}% / {:.2}%",
        selection_split.len(),
        splits.test.len(),
        clock.elapsed().as_secs_f64(),
        validation.original().accuracy(),
        test.original().accuracy()
    );
    let out = layout.stage_dir("select");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    Ok(Loaded {
        cfg,
        model,
        model_path,
        splits,
        validation,
        test,
        out,
        device,
    })
}

impl Loaded {
    fn context(&self) -> Context<'_> {
        self.context_on(&self.validation)
    }

    /// The algorithms' inputs with `evaluator` as the selection split.
    fn context_on<'a>(&'a self, evaluator: &'a Evaluator) -> Context<'a> {
        Context {
            model: &self.model,
            evaluator,
            train: &self.splits.train,
            config: &self.cfg.pipeline.select,
            device: &self.device,
            seed: self.cfg.pipeline.seed,
        }
    }

    /// The `run` command's selection when it is current (same select config, same model) and
    /// has `sizes`: the sweep starts from it instead of searching that point again.
    fn current_default(&self, sizes: [usize; 2]) -> Option<Choice> {
        let path = self.out.join("selection.bin");
        if !Manifest::is_current(&path, &self.cfg.stage_hash("select")) {
            return None;
        }
        let selection: NeuronSelection = read_artifact(&path).ok()?;
        let text = std::fs::read_to_string(self.out.join("metrics.json")).ok()?;
        let metrics: SelectionRecord = serde_json::from_str(&text).ok()?;
        let same = [selection.layer1.len(), selection.layer2.len()] == sizes
            && selection.algorithm == self.cfg.pipeline.select.algorithm.name()
            && metrics.selection == selection.to_reference_json();
        same.then(|| {
            log::info!(
                "{}: reusing the stage's selection for {sizes:?} ({:.0}s of search)",
                path.display(),
                metrics.seconds
            );
            Choice {
                selection,
                seconds: metrics.seconds,
                evaluations: metrics.evaluations,
                draws: metrics.draws,
            }
        })
    }

    fn random_seconds(&self, greedy_seconds: f64) -> f64 {
        let configured = self.cfg.pipeline.select.random_seconds;
        if configured > 0.0 {
            configured
        } else {
            greedy_seconds
        }
    }
}

fn print_record(r: &SelectionRecord) {
    println!(
        "{} {:?} {}: validation A_s {:.2} A_r {:.2} point {:.4} | test A_o {:.2} A_s {:.2} A_r {:.2} gap {:.2} | {} evaluations, {:.1}s",
        r.algorithm,
        r.sizes,
        r.selection,
        r.validation.separate,
        r.validation.removed,
        r.validation.point,
        r.test.original,
        r.test.separate,
        r.test.removed,
        r.test.gap,
        r.evaluations,
        r.seconds
    );
}

/// `run`: the default selection.
pub fn run_default(common: &Common) -> Result<PathBuf> {
    let started = std::time::Instant::now();
    let l = load(common)?;
    let s = &l.cfg.pipeline.select;
    let sizes = s.sizes(l.validation.channels());
    let ctx = l.context();
    let random_budget = if s.algorithm == SelectAlgorithm::Random {
        let greedy = choose(&ctx, SelectAlgorithm::Greedy, sizes, &[vec![], vec![]], 0.0)?;
        l.random_seconds(greedy.seconds)
    } else {
        0.0
    };
    let choice = choose(&ctx, s.algorithm, sizes, &[vec![], vec![]], random_budget)?;
    let rec = record(&choice, s.percent, &l.validation, &l.test)?;
    print_record(&rec);
    let path = l.out.join("selection.bin");
    write_artifact(&path, &choice.selection)?;
    Manifest::for_artifact(
        <NeuronSelection as privdnn_artifacts::Artifact>::KIND,
        <NeuronSelection as privdnn_artifacts::Artifact>::SCHEMA_VERSION,
        concat!("privdnn-select ", env!("CARGO_PKG_VERSION")),
        &path,
        &l.cfg.stage_hash("select"),
        &[l.model_path.as_path()],
        started.elapsed().as_secs_f64(),
    )?
    .write_beside(&path)?;
    write_json_atomic(
        &l.out.join("selection.json"),
        &choice.selection.to_reference_json(),
    )?;
    write_json_atomic(&l.out.join("metrics.json"), &rec)?;
    Ok(path)
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(what.to_string());
    bar
}

/// `sweep`: percent points with nested greedy (percent configs) or every group × algorithm.
pub fn sweep(common: &Common) -> Result<PathBuf> {
    let l = load(common)?;
    let s = &l.cfg.pipeline.select;
    let ctx = l.context();
    let channels = l.validation.channels();
    let mut records = Vec::new();
    if s.percent > 0.0 {
        let mut start: [Vec<usize>; 2] = [vec![], vec![]];
        let progress = bar(s.sweep_percents.len() as u64, "percent sweep");
        for &percent in &s.sweep_percents {
            let sizes = privdnn_config::SelectConfig {
                percent,
                ..s.clone()
            }
            .sizes(channels);
            // nested ("amend"): extend the previous point's selection when it is not larger
            if start[0].len() > sizes[0] || start[1].len() > sizes[1] {
                start = [vec![], vec![]];
            }
            let reused = if start[0].is_empty() {
                l.current_default(sizes)
            } else {
                None
            };
            let choice = match reused {
                Some(choice) => choice,
                None => choose(&ctx, s.algorithm, sizes, &start, l.random_seconds(0.0))?,
            };
            start = [
                choice.selection.layer1.clone(),
                choice.selection.layer2.clone(),
            ];
            let rec = record(&choice, percent, &l.validation, &l.test)?;
            progress.suspend(|| print_record(&rec));
            records.push(rec);
            write_json_atomic(&l.out.join("sweep.json"), &records)?;
            progress.inc(1);
        }
        progress.finish_and_clear();
    } else {
        for sizes in groups(s.max_group, channels) {
            let greedy = choose(&ctx, SelectAlgorithm::Greedy, sizes, &[vec![], vec![]], 0.0)?;
            for algorithm in SelectAlgorithm::ALL {
                let choice = if algorithm == SelectAlgorithm::Greedy {
                    greedy.clone()
                } else {
                    choose(
                        &ctx,
                        algorithm,
                        sizes,
                        &[vec![], vec![]],
                        l.random_seconds(greedy.seconds),
                    )?
                };
                let rec = record(&choice, 0.0, &l.validation, &l.test)?;
                print_record(&rec);
                records.push(rec);
            }
            write_json_atomic(&l.out.join("sweep.json"), &records)?;
        }
    }
    Ok(l.out.join("sweep.json"))
}

#[derive(Serialize)]
struct GroupSummary {
    sizes: [usize; 2],
    selections: usize,
    seconds: f64,
    /// Split the group is scored on and the algorithms selected on.
    split: &'static str,
    best: serde_json::Value,
    best_scores: [f64; 3],
    worst: serde_json::Value,
    worst_scores: [f64; 3],
    /// (algorithm, selection, rank, seconds, random draws)
    ranks: Vec<AlgorithmRank>,
    /// Greedy's choice made on the other split, ranked in this group (with `--split test`: the
    /// rank on held-out images of the selection the pipeline makes).
    greedy_other_split: AlgorithmRank,
    /// Expected best rank of random search with as many draws as random made in greedy's time.
    expected_random_rank: f64,
}

#[derive(Serialize)]
struct AlgorithmRank {
    algorithm: String,
    selection: serde_json::Value,
    /// Rank with ties sharing the better rank.
    rank: Option<usize>,
    /// Rank with ties counted against the choice (members with a point at least as high).
    worst_rank: Option<usize>,
    /// The choice's point in this group.
    point: Option<f64>,
    seconds: f64,
    draws: usize,
}

fn rank_entry(group: &Group, c: &Choice) -> AlgorithmRank {
    let (l1, l2) = (&c.selection.layer1, &c.selection.layer2);
    let span = group.rank_span(l1, l2);
    AlgorithmRank {
        algorithm: c.selection.algorithm.clone(),
        selection: c.selection.to_reference_json(),
        rank: span.map(|s| s.0),
        worst_rank: span.map(|s| s.1),
        point: group.member(l1, l2).map(|m| m.point),
        seconds: c.seconds,
        draws: c.draws,
    }
}

fn summary(group: &Group, choices: &[Choice], cross: &Choice, split: RankSplit) -> GroupSummary {
    let as_json = |m: &crate::exhaustive::Scored| serde_json::json!({"1": m.layer1, "2": m.layer2});
    let best = &group.members[0];
    let worst = &group.members[group.members.len() - 1];
    let random_draws = choices
        .iter()
        .find(|c| c.selection.algorithm == "random")
        .map(|c| c.draws)
        .unwrap_or(1);
    GroupSummary {
        sizes: group.sizes,
        selections: group.members.len(),
        seconds: group.seconds,
        split: split.name(),
        best: as_json(best),
        best_scores: [best.separate, best.removed, best.point],
        worst: as_json(worst),
        worst_scores: [worst.separate, worst.removed, worst.point],
        ranks: choices.iter().map(|c| rank_entry(group, c)).collect(),
        greedy_other_split: rank_entry(group, cross),
        expected_random_rank: group.expected_random_rank(random_draws),
    }
}

/// Every algorithm's choice for `group` on `on`, and greedy's on `other`, summarised.
fn group_summary(
    l: &Loaded,
    group: &Group,
    split: RankSplit,
    (on, other): (&Evaluator, &Evaluator),
) -> Result<GroupSummary> {
    let (ctx, sizes, none) = (l.context_on(on), group.sizes, [vec![], vec![]]);
    let greedy = choose(&ctx, SelectAlgorithm::Greedy, sizes, &none, 0.0)?;
    let mut choices = vec![greedy.clone()];
    for algorithm in SelectAlgorithm::ALL.into_iter().skip(1) {
        let budget = l.random_seconds(greedy.seconds);
        choices.push(choose(&ctx, algorithm, sizes, &none, budget)?);
    }
    let cross = choose(
        &l.context_on(other),
        SelectAlgorithm::Greedy,
        sizes,
        &none,
        0.0,
    )?;
    Ok(summary(group, &choices, &cross, split))
}

fn print_group(sum: &GroupSummary) {
    let ranks: Vec<String> = sum
        .ranks
        .iter()
        .map(|r| format!("{} {:?}", r.algorithm, r.rank.unwrap_or(0)))
        .collect();
    println!(
        "group {:?} on {}: {} selections in {:.1}s; best {} ({:.2}/{:.2}); ranks: {}; greedy chosen on the other split {:?}; random expected {:.1}",
        sum.sizes,
        sum.split,
        sum.selections,
        sum.seconds,
        sum.best,
        sum.best_scores[0],
        sum.best_scores[1],
        ranks.join(", "),
        sum.greedy_other_split.rank.unwrap_or(0),
        sum.expected_random_rank
    )
}

fn append_points(csv: &mut String, group: &Group) {
    let join = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(" ");
    for m in &group.members {
        csv.push_str(&format!(
            "{},{},{},{},{:.4},{:.4},{:.6}\n",
            group.sizes[0],
            group.sizes[1],
            join(&m.layer1),
            join(&m.layer2),
            m.separate,
            m.removed,
            m.point
        ));
    }
}

/// `exhaustive`: every group up to `select.max_group`, with ranks, scored and selected on
/// `split`.
pub fn exhaustive(common: &Common, split: RankSplit) -> Result<PathBuf> {
    let l = load(common)?;
    let (on, other) = match split {
        RankSplit::Validation => (&l.validation, &l.test),
        RankSplit::Test => (&l.test, &l.validation),
    };
    let channels = on.channels();
    let all = groups(l.cfg.pipeline.select.max_group, channels);
    let total: u128 = all.iter().map(|g| group_size(channels, *g)).sum();
    if total > 5_000_000 {
        bail!(
            "the exhaustive search up to {:?} has {total} selections; lower `select.max_group`",
            l.cfg.pipeline.select.max_group
        );
    }
    let file = |stem: &str, ext: &str| l.out.join(format!("{stem}{}.{ext}", split.suffix()));
    let progress = bar(total as u64, "exhaustive");
    let done = AtomicUsize::new(0);
    let mut summaries = Vec::new();
    let mut csv = String::from("s1_size,s2_size,layer1,layer2,separate,removed,point\n");
    for sizes in all {
        let group = score_group(on, sizes, &|n| {
            let d = done.fetch_add(n, Ordering::Relaxed) + n;
            if d.is_multiple_of(64) {
                progress.set_position(d as u64);
            }
        });
        let sum = group_summary(&l, &group, split, (on, other))?;
        progress.suspend(|| print_group(&sum));
        append_points(&mut csv, &group);
        summaries.push(sum);
        write_json_atomic(&file("exhaustive", "json"), &summaries)?;
    }
    progress.finish_and_clear();
    write_bytes_atomic(&file("exhaustive_points", "csv"), csv.as_bytes())?;
    let table = rank_table(&summaries);
    println!("{table}");
    write_bytes_atomic(&file("exhaustive_ranks", "md"), table.as_bytes())?;
    Ok(file("exhaustive", "json"))
}

/// The reference's Tables 2–3: rank of each algorithm's choice within its group.
fn rank_table(summaries: &[GroupSummary]) -> String {
    let algorithms: Vec<&str> = SelectAlgorithm::ALL.iter().map(|a| a.name()).collect();
    let mut out = format!(
        "| group | selections | {} | random (expected) | greedy s | random draws |\n|---|---|{}---|---|---|\n",
        algorithms.join(" | "),
        "---|".repeat(algorithms.len())
    );
    for s in summaries {
        let rank = |name: &str| {
            s.ranks
                .iter()
                .find(|r| r.algorithm == name)
                .and_then(|r| r.rank)
                .map(|r| r.to_string())
                .unwrap_or_else(|| "–".to_string())
        };
        let greedy_seconds = s
            .ranks
            .iter()
            .find(|r| r.algorithm == "greedy")
            .map(|r| r.seconds)
            .unwrap_or(0.0);
        let draws = s
            .ranks
            .iter()
            .find(|r| r.algorithm == "random")
            .map(|r| r.draws)
            .unwrap_or(0);
        out.push_str(&format!(
            "| ({}, {}) | {} | {} | {:.1} | {:.2} | {} |\n",
            s.sizes[0],
            s.sizes[1],
            s.selections,
            algorithms
                .iter()
                .map(|a| rank(a))
                .collect::<Vec<_>>()
                .join(" | "),
            s.expected_random_rank,
            greedy_seconds,
            draws
        ));
    }
    out
}

/// `evaluate`: scores a selection file.
pub fn evaluate_file(common: &Common, selection: &Path) -> Result<()> {
    let l = load(common)?;
    let text = std::fs::read_to_string(selection)
        .with_context(|| format!("reading {}", selection.display()))?;
    let sel = NeuronSelection::from_reference_json(&text, l.validation.channels(), "given")
        .map_err(|e| anyhow::anyhow!("{}: {e}", selection.display()))?;
    let choice = Choice {
        selection: sel,
        seconds: 0.0,
        evaluations: 0,
        draws: 0,
    };
    print_record(&record(&choice, 0.0, &l.validation, &l.test)?);
    Ok(())
}

/// Entry point of the `privdnn-select` binary.
pub fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match Cli::parse().command {
        Command::Run(c) => run_default(&c).map(|_| ()),
        Command::Sweep(c) => sweep(&c).map(|_| ()),
        Command::Exhaustive { common, split } => exhaustive(&common, split).map(|_| ()),
        Command::Evaluate { common, selection } => evaluate_file(&common, &selection),
    }
}
