//! Command line of the selection stage. Reads the trained model of a pipeline run and its
//! dataset cache; writes into `results/<run>/select/`:
//!
//! * `run`: `selection.bin` (+ manifest), `selection.json` (reference format), `metrics.json`;
//! * `sweep`: `sweep.json`, one record per percent point (large models, nested greedy) or per
//!   (|S1|, |S2|) group and algorithm (LeNet5);
//! * `exhaustive`: the ground truth and every algorithm's rank per group
//!   ([`crate::exhaustive_run`]);
//! * `evaluate`: A_s / A_r of a selection given as reference JSON.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use privdnn_artifacts::{
    Manifest, NeuronSelection, RunLayout, TrainedModel, read_artifact, write_artifact,
    write_json_atomic,
};
use privdnn_config::{ResolvedConfig, SelectAlgorithm};
use privdnn_data::Splits;
use privdnn_model::burn::tensor::Device;

use crate::choose::{Choice, Context, SelectionRecord, choose, record};
use crate::evaluator::Evaluator;
use crate::exhaustive::groups;
use crate::exhaustive_run::{RankSplit, exhaustive};

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
    pub(crate) fn context_on<'a>(&'a self, evaluator: &'a Evaluator) -> Context<'a> {
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

    pub(crate) fn random_seconds(&self, greedy_seconds: f64) -> f64 {
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

pub(crate) fn bar(len: u64, what: &str) -> ProgressBar {
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
