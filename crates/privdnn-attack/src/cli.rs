//! Command line of the attack stage. Reads a pipeline run's trained model, its default selection
//! (`select/selection.bin`, or chosen here with the pipeline's settings) and optional
//! `select/sweep.json`, and the dataset cache; writes `results/<run>/attack/metrics.json`
//! (re-running a subset of the experiments keeps the other keys) and the input-recovery
//! picture grids `attack/inversion_<case>.png`.
//!
//! `metrics.json` keys: `original` (A_o on the evaluation images), `recovery` (default
//! selection, `samples` attacker images: A_s, A_r, A_rec before / after both variants, A_t),
//! `from_scratch` ({samples, accuracy}), `sample_curve` (per sample count), `points` (per
//! selection percent), `extraction`, `inversion`, `settings`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};
use privdnn_artifacts::{
    DatasetSplit, NeuronSelection, RunLayout, TrainedModel, read_artifact, write_json_atomic,
};
use privdnn_config::{ResolvedConfig, SelectAlgorithm, SelectConfig};
use privdnn_data::Splits;
use privdnn_model::partition::evaluator::Evaluator;
use privdnn_selection::choose::{Context, choose};
use serde_json::{Value, json};

use crate::experiment::Experiment;
use crate::recover::{AttackTraining, Devices, Variant, accuracy, from_scratch, recover};

/// privdnn attack stage.
#[derive(Parser, Debug)]
#[command(name = "privdnn-attack", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the configured attack experiments of a pipeline.
    Run(RunArgs),
}

/// Which pipeline, and which experiments.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Pipeline, profile and root.
    #[command(flatten)]
    pub target: privdnn_config::PipelineArgs,
    /// Experiments to run (comma-separated: recover, samples, sweep, extract, invert); default
    /// `attack.experiments`.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Override an `[attack]` setting with a JSON value, e.g. `--set extract_queries=[16,32]`
    /// (lists cannot come from `PRIVDNN_ATTACK__*` variables). Repeatable.
    #[arg(long = "set")]
    pub set: Vec<String>,
    /// Owner service attacked by `key_recovery` (default: one started here on loopback).
    #[arg(long)]
    pub server: Option<String>,
}

fn apply_overrides(cfg: &mut ResolvedConfig, sets: &[String]) -> Result<()> {
    if sets.is_empty() {
        return Ok(());
    }
    let mut value = serde_json::to_value(&cfg.pipeline.attack)?;
    for s in sets {
        let (key, raw) = s
            .split_once('=')
            .with_context(|| format!("`--set {s}`: expected KEY=VALUE"))?;
        let v = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
        let obj = value
            .as_object_mut()
            .context("attack settings are not an object")?;
        if !obj.contains_key(key) {
            bail!("`--set {s}`: no setting `attack.{key}`");
        }
        obj.insert(key.to_string(), v);
    }
    cfg.pipeline.attack =
        serde_json::from_value(value).context("`--set`: value of the wrong type")?;
    Ok(())
}

const EXPERIMENTS: [&str; 6] = [
    "recover",
    "samples",
    "sweep",
    "extract",
    "invert",
    "key_recovery",
];

/// Everything the experiments share.
pub struct Stage {
    /// Resolved config.
    pub cfg: ResolvedConfig,
    /// Trained model.
    pub model: TrainedModel,
    /// Splits.
    pub splits: Splits,
    /// Test images every accuracy is measured on.
    pub eval: DatasetSplit,
    /// Default selection.
    pub selection: NeuronSelection,
    /// Output folder.
    pub out: PathBuf,
    /// Run folder.
    pub run_dir: PathBuf,
    /// Devices.
    pub devices: Devices,
    /// Optimiser settings.
    pub training: AttackTraining,
    /// The metrics written so far.
    pub metrics: serde_json::Map<String, Value>,
    /// `settings` of the run that wrote the existing `metrics.json`, if any.
    pub prior_settings: Option<Value>,
}

pub use crate::experiment::bar;

fn training(cfg: &ResolvedConfig) -> AttackTraining {
    let p = &cfg.pipeline;
    let a = &p.attack;
    AttackTraining {
        epochs: a.epochs,
        scratch_epochs: a.scratch_epochs,
        batch_size: a.batch_size,
        optimizer: p.train.optimizer,
        momentum: p.train.momentum,
        learning_rate: if a.learning_rate > 0.0 {
            a.learning_rate
        } else {
            p.train.learning_rate / 10.0
        },
        lr_ratio: a.lr_ratio.max(1.0),
        scratch_learning_rate: p.train.learning_rate,
        scratch_augmentation: p.data.augmentation.clone(),
        eval_batch_size: p.train.eval_batch_size,
        seed: p.seed,
    }
}

/// The selection-split evaluator and context helpers for choosing selections.
fn choose_selection(
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

/// Loads everything for `args`.
pub fn load(args: &RunArgs) -> Result<Stage> {
    let mut cfg = args.target.load()?;
    apply_overrides(&mut cfg, &args.set)?;
    let layout = RunLayout::new(cfg.results_dir(&args.target.root.join("results")));
    let run_dir = layout.run_dir().to_path_buf();
    let model_path = layout.trained_model();
    let model: TrainedModel = read_artifact(&model_path).with_context(|| {
        format!(
            "the attack stage needs the trained model: run `cargo xtask pipeline {}{} --only train`",
            args.target.pipeline,
            args.target.profile.as_deref().map(|p| format!(" --profile {p}")).unwrap_or_default()
        )
    })?;
    let (splits, _) = privdnn_data::load_splits(&args.target.root, &cfg.pipeline)?;
    let channels = privdnn_model::partition::channels(&model)?;
    let sel_path = layout.selection();
    let selection: NeuronSelection = if sel_path.exists() {
        read_artifact(&sel_path)?
    } else {
        let sizes = cfg.pipeline.select.sizes(channels);
        log::info!(
            "{} missing: choosing the default selection {sizes:?} here",
            sel_path.display()
        );
        choose_selection(
            &model,
            &splits,
            &cfg,
            cfg.pipeline.select.algorithm,
            &[sizes],
            [vec![], vec![]],
        )?
        .pop()
        .context("no selection")?
    };
    privdnn_model::partition::check(&model, &selection)?;
    let limit = cfg.pipeline.attack.eval_images;
    let eval = if limit > 0 && limit < splits.test.len() {
        let mut keep = privdnn_data::sample_indices(splits.test.len(), limit, cfg.pipeline.seed);
        keep.sort_unstable();
        splits.test.subset(&keep, "test")
    } else {
        splits.test.clone()
    };
    let backend = cfg.pipeline.train.backend;
    let devices = Devices {
        train: privdnn_model::backend_device(backend, true)?,
        eval: privdnn_model::backend_device(backend, false)?,
    };
    let out = layout.attack_dir();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let metrics = std::fs::read_to_string(out.join("metrics.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    let prior_settings = metrics.get("settings").cloned();
    Ok(Stage {
        prior_settings,
        training: training(&cfg),
        cfg,
        model,
        splits,
        eval,
        selection,
        out,
        run_dir,
        devices,
        metrics,
    })
}

impl Stage {
    /// Writes `metrics.json` with `key` set to `value`.
    /// The file is re-read first, so keys written meanwhile by another run are kept.
    pub fn put(&mut self, key: &str, value: Value) -> Result<()> {
        if let Some(on_disk) = std::fs::read_to_string(self.out.join("metrics.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v.as_object().cloned())
        {
            for (k, v) in on_disk {
                self.metrics.entry(k).or_insert(v);
            }
        }
        self.metrics.insert(key.to_string(), value);
        write_json_atomic(&self.out.join("metrics.json"), &self.metrics)?;
        Ok(())
    }

    /// The attacker's `n` labelled validation samples (seeded, as the reference: seed 0).
    pub fn samples(&self, n: usize) -> DatasetSplit {
        let v = &self.splits.validation;
        let mut keep = privdnn_data::sample_indices(v.len(), n, self.cfg.pipeline.seed);
        keep.sort_unstable();
        v.subset(&keep, "attacker")
    }

    /// A_s and A_r of `selection` on the evaluation images.
    pub fn separate_removed(&self, selection: &NeuronSelection) -> Result<(f64, f64)> {
        let (s, r) = privdnn_model::partition::reference_evaluations(
            &self.model,
            &self.eval,
            selection,
            self.training.eval_batch_size,
            &self.devices.eval,
        )?;
        Ok((s.accuracy(), r.accuracy()))
    }

    /// Both recovery variants of `selection` with `n` samples (and optionally A_t).
    pub fn recovery_point(
        &self,
        selection: &NeuronSelection,
        n: usize,
        with_scratch: bool,
        what: &str,
    ) -> Result<serde_json::Map<String, Value>> {
        let samples = self.samples(n);
        let t = &self.training;
        let total = 2 * t.epochs + if with_scratch { t.scratch_epochs } else { 0 };
        let progress = bar(total as u64, what);
        let mut m = serde_json::Map::new();
        m.insert("samples".into(), json!(samples.len()));
        m.insert("selection".into(), selection.to_reference_json());
        m.insert(
            "sizes".into(),
            json!([selection.layer1.len(), selection.layer2.len()]),
        );
        for variant in [Variant::Freeze, Variant::Unfreeze] {
            let (r, _) = recover(
                &self.model,
                selection,
                &samples,
                &self.eval,
                variant,
                t,
                &self.devices,
                &progress,
            )?;
            let key = match variant {
                Variant::Freeze => "freeze",
                Variant::Unfreeze => "unfreeze",
            };
            m.insert("reinitialized".into(), json!(r.before));
            m.insert("reinitialized_values".into(), json!(r.reinitialized_values));
            m.insert(format!("recovered_{key}"), json!(r.after));
            m.insert(format!("seconds_{key}"), json!(r.seconds));
        }
        if with_scratch {
            let clock = Instant::now();
            let (a_t, _) = from_scratch(
                &self.model,
                &samples,
                &self.eval,
                &self.model.normalization,
                t,
                &self.devices,
                &progress,
            )?;
            m.insert("from_scratch".into(), json!(a_t));
            m.insert(
                "seconds_from_scratch".into(),
                json!(clock.elapsed().as_secs_f64()),
            );
        }
        progress.finish_and_clear();
        Ok(m)
    }

    fn print(&self, what: &str, m: &serde_json::Map<String, Value>) {
        let f = |k: &str| {
            m.get(k)
                .and_then(Value::as_f64)
                .map(|v| format!("{v:.2}"))
                .unwrap_or("-".into())
        };
        println!(
            "{what}: {} samples {} | A_s {} A_r {} | re-initialised {} | A_rec freeze {} unfreeze {} | A_t {}",
            m.get("samples").cloned().unwrap_or_default(),
            m.get("selection").cloned().unwrap_or_default(),
            f("separate"),
            f("removed"),
            f("reinitialized"),
            f("recovered_freeze"),
            f("recovered_unfreeze"),
            f("from_scratch"),
        );
    }

    /// `recover`: the default selection with `attack.samples` samples, with A_t.
    pub fn run_recover(&mut self) -> Result<()> {
        let n = self.cfg.pipeline.attack.samples;
        let sel = self.selection.clone();
        let mut m = self.recovery_point(&sel, n, true, "recovery")?;
        let (a_s, a_r) = self.separate_removed(&sel)?;
        m.insert("separate".into(), json!(a_s));
        m.insert("removed".into(), json!(a_r));
        self.print("recovery", &m);
        let a_t = m.get("from_scratch").cloned().unwrap_or(Value::Null);
        self.put("recovery", Value::Object(m))?;
        self.put("from_scratch", json!({"samples": n, "accuracy": a_t}))
    }

    /// Whether the previous run trained with the same settings as this one.
    fn same_training_settings(&self) -> bool {
        let Ok(now) = serde_json::to_value(&self.cfg.pipeline.attack) else {
            return false;
        };
        let Some(before) = &self.prior_settings else {
            return false;
        };
        [
            "samples",
            "epochs",
            "batch_size",
            "learning_rate",
            "lr_ratio",
            "scratch_epochs",
            "eval_images",
        ]
        .iter()
        .all(|k| now.get(k) == before.get(k))
    }

    /// `samples`: the recovery and A_t versus the attacker's sample count.
    pub fn run_samples(&mut self) -> Result<()> {
        let sel = self.selection.clone();
        let mut curve = Vec::new();
        for &n in &self.cfg.pipeline.attack.sample_counts.clone() {
            // the `recover` experiment is this very point (same samples, seed and settings)
            let reuse = self
                .metrics
                .get("recovery")
                .and_then(Value::as_object)
                .filter(|r| {
                    n == self.cfg.pipeline.attack.samples
                        && r.get("selection") == Some(&sel.to_reference_json())
                        && r.get("samples").and_then(Value::as_u64)
                            == Some(self.samples(n).len() as u64)
                        && r.get("from_scratch").is_some_and(Value::is_number)
                        && self.same_training_settings()
                })
                .cloned();
            let m = match reuse {
                Some(r) => r,
                None => self.recovery_point(&sel, n, true, &format!("{n} samples"))?,
            };
            self.print("sample curve", &m);
            curve.push(Value::Object(m));
            self.put("sample_curve", Value::Array(curve.clone()))?;
        }
        Ok(())
    }

    /// The sweep's percents and selections: `select/sweep.json` where it has the point,
    /// otherwise chosen here (nested) with `attack.sweep_algorithm`.
    fn sweep_selections(&self) -> Result<Vec<(f64, NeuronSelection, Option<(f64, f64)>)>> {
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

    /// `sweep`: A_s, A_r, A_rec (both) per selection percent.
    pub fn run_sweep(&mut self) -> Result<()> {
        let n = self.cfg.pipeline.attack.samples;
        let mut points = Vec::new();
        for (percent, sel, scores) in self.sweep_selections()? {
            let mut m = self.recovery_point(&sel, n, false, &format!("{percent} %"))?;
            let (a_s, a_r) = match scores {
                Some(s) => s,
                None => self.separate_removed(&sel)?,
            };
            m.insert("percent".into(), json!(percent));
            m.insert("algorithm".into(), json!(sel.algorithm));
            m.insert("separate".into(), json!(a_s));
            m.insert("removed".into(), json!(a_r));
            if let Some(a_t) = self
                .metrics
                .get("from_scratch")
                .and_then(|v| v.get("accuracy"))
                .cloned()
            {
                m.insert("from_scratch".into(), a_t);
            }
            self.print(&format!("{percent} %"), &m);
            points.push(Value::Object(m));
            self.put("points", Value::Array(points.clone()))?;
        }
        Ok(())
    }

    /// The plain inputs of the library's experiments.
    pub fn experiment(&self) -> Experiment<'_> {
        Experiment {
            attack: &self.cfg.pipeline.attack,
            seed: self.cfg.pipeline.seed,
            model: &self.model,
            eval: &self.eval,
            devices: &self.devices,
            out: &self.out,
        }
    }

    /// `extract`: weight extraction by the user.
    pub fn run_extract(&mut self) -> Result<()> {
        let sel = self.extraction_selection(self.cfg.pipeline.attack.extract_percent)?;
        let report = crate::extract::run_experiment(&self.experiment(), &sel)?;
        self.put("extraction", report)
    }

    /// `invert`: input recovery by the owner.
    pub fn run_invert(&mut self) -> Result<()> {
        let sel = self.extraction_selection(self.cfg.pipeline.attack.invert_percent)?;
        let report = crate::invert::run_experiment(&self.experiment(), &sel)?;
        self.put("inversion", report)
    }

    /// The default selection on count pipelines; the `percent` point (nested greedy from the
    /// sweep when available) on percent pipelines.
    fn extraction_selection(&self, percent: f64) -> Result<NeuronSelection> {
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
        Ok(choose_selection(
            &self.model,
            &self.splits,
            &self.cfg,
            self.cfg.pipeline.attack.sweep_algorithm,
            &[sizes],
            [vec![], vec![]],
        )?
        .pop()
        .context("no selection")?)
    }
}

/// `run`.
pub fn run(args: &RunArgs) -> Result<()> {
    let started = Instant::now();
    let mut stage = load(args)?;
    let experiments = if args.only.is_empty() {
        stage.cfg.pipeline.attack.experiments.clone()
    } else {
        args.only.clone()
    };
    if let Some(bad) = experiments
        .iter()
        .find(|e| !EXPERIMENTS.contains(&e.as_str()))
    {
        bail!(
            "unknown attack experiment `{bad}`; available: {}",
            EXPERIMENTS.join(", ")
        );
    }
    let original = accuracy(
        &stage.model,
        &stage.eval,
        stage.training.eval_batch_size,
        &stage.devices.eval,
    )?;
    log::info!(
        "A_o {original:.2} % on {} test images; default selection {}",
        stage.eval.len(),
        stage.selection.to_reference_json()
    );
    stage.put("pipeline", json!(stage.cfg.pipeline.name))?;
    stage.put("profile", json!(stage.cfg.profile))?;
    stage.put("architecture", json!(stage.model.spec.architecture.name()))?;
    stage.put("original", json!(original))?;
    stage.put("eval_images", json!(stage.eval.len()))?;
    stage.put(
        "settings",
        serde_json::to_value(&stage.cfg.pipeline.attack)?,
    )?;
    stage.put("config_hash", json!(stage.cfg.stage_hash("attack")))?;
    for e in &experiments {
        let clock = Instant::now();
        match e.as_str() {
            "recover" => stage.run_recover()?,
            "samples" => stage.run_samples()?,
            "sweep" => stage.run_sweep()?,
            "extract" => stage.run_extract()?,
            "invert" => stage.run_invert()?,
            "key_recovery" => {
                let record = crate::key_recovery::run_experiment(
                    &stage,
                    &args.target,
                    args.server.as_deref(),
                )?;
                stage.put("key_recovery", record)?
            }
            _ => {}
        }
        let secs = clock.elapsed().as_secs_f64();
        log::info!("{e}: {secs:.1}s");
        let mut timing = stage
            .metrics
            .get("seconds")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        timing.insert(e.clone(), json!(secs));
        stage.put("seconds", Value::Object(timing))?;
    }
    log::info!(
        "attack stage done in {:.1}s: {}",
        started.elapsed().as_secs_f64(),
        stage.out.join("metrics.json").display()
    );
    Ok(())
}

/// Entry point of the `privdnn-attack` binary.
pub fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match Cli::parse().command {
        Command::Run(a) => run(&a),
    }
}
