//! The attack stage's shared state ([`Stage`]): the resolved config, the trained model, the
//! splits, the default selection, the devices and the metrics written so far; loading it for a
//! command line ([`load`]), writing one metrics key ([`Stage::put`]), and the thin wrappers of
//! the library experiments (extraction, inversion); the SPNN leakage experiment's files (the
//! variants' server views and models under `baselines/spnn/`), with or without the stage
//! ([`run_spnn_leakage_alone`]: it needs no trained model of the pipeline).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use privdnn_artifacts::{
    DatasetSplit, NeuronSelection, RunLayout, TrainedModel, file_sha256, read_artifact,
    write_json_atomic,
};
use privdnn_config::ResolvedConfig;
use privdnn_data::Splits;
use privdnn_model::burn::tensor::Device;
use privdnn_spnn::{SERVER_VIEW_FILE, ServerView};
use serde_json::Value;

use crate::cli::{RunArgs, apply_overrides};
use crate::experiment::Experiment;
use crate::recover::{AttackTraining, Devices};
use crate::selections::choose_selection;
use crate::spnn_leakage::{RECORD_FILE, RELEASED_TV, VARIANTS, VariantRun};

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
    /// Digest of what the experiments depend on: the attack stage's config hash, the trained
    /// model file and the default selection.
    pub resume_key: String,
    /// `resume_key` of the run that wrote the existing `metrics.json`, if any.
    pub prior_resume_key: Option<String>,
    /// Whether this run continues an interrupted one with the same inputs: finished
    /// experiments are skipped and the finished points of `samples` and `sweep` kept.
    pub resume: bool,
}

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
    let prior_resume_key = metrics
        .get("resume_key")
        .and_then(Value::as_str)
        .map(str::to_string);
    let resume_key = format!(
        "{} {} {}",
        cfg.stage_hash("attack"),
        file_sha256(&model_path)?,
        selection.to_reference_json()
    );
    Ok(Stage {
        prior_settings,
        prior_resume_key,
        resume_key,
        resume: false,
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

    /// The objects of list `key` written by the interrupted run this one resumes (empty when
    /// not resuming); read before the list is rewritten.
    pub fn prior_points(&self, key: &str) -> Vec<serde_json::Map<String, Value>> {
        if !self.resume {
            return Vec::new();
        }
        self.metrics
            .get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_object).cloned().collect())
            .unwrap_or_default()
    }

    /// Experiments a resumed run skips: those whose time an earlier run with the same inputs
    /// recorded (the time is written when an experiment finishes).
    pub fn finished_experiments(&self) -> Vec<String> {
        if !self.resume {
            return Vec::new();
        }
        self.metrics
            .get("seconds")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
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

    /// `extract_protocol`: weight extraction with the answers of both modes' real roles.
    pub fn run_extract_protocol(&mut self) -> Result<()> {
        let sel = self.extraction_selection(self.cfg.pipeline.attack.extract_percent)?;
        let report = crate::extract::run_protocol_experiment(
            &self.experiment(),
            &sel,
            &self.cfg.pipeline.he,
        )?;
        self.put("extraction_protocol", report)
    }

    /// `invert`: input recovery by the owner.
    pub fn run_invert(&mut self) -> Result<()> {
        let sel = self.extraction_selection(self.cfg.pipeline.attack.invert_percent)?;
        let report = crate::invert::run_experiment(&self.experiment(), &sel)?;
        self.put("inversion", report)
    }
}

impl Stage {
    /// `spnn_leakage`: what the SPNN server learns of the training images (issue 18).
    pub fn run_spnn_leakage(&mut self) -> Result<()> {
        let record = spnn_leakage(
            &self.cfg,
            &self.run_dir,
            &self.out,
            &self.splits.train,
            &self.devices.train,
        )?;
        self.put("spnn_leakage", record)
    }
}

/// `spnn_leakage` without the stage: reads only the config, the training split and the SPNN
/// runs; writes `attack/spnn_leakage.json`, `attack/spnn_leakage.png` and the `spnn_leakage`
/// key of `attack/metrics.json`.
pub fn run_spnn_leakage_alone(args: &RunArgs) -> Result<()> {
    let mut cfg = args.target.load()?;
    apply_overrides(&mut cfg, &args.set)?;
    let run_dir = cfg.results_dir(&args.target.root.join("results"));
    // fail on missing views before loading the data
    spnn_variants(&cfg, &run_dir)?;
    let (splits, _) = privdnn_data::load_splits(&args.target.root, &cfg.pipeline)?;
    let device = privdnn_model::backend_device(cfg.pipeline.train.backend, true)?;
    let out = RunLayout::new(run_dir.clone()).attack_dir();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let record = spnn_leakage(&cfg, &run_dir, &out, &splits.train, &device)?;
    let path = out.join("metrics.json");
    let mut metrics = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    metrics.insert("spnn_leakage".into(), record);
    write_json_atomic(&path, &metrics)?;
    Ok(())
}

/// Runs the experiment on the variants of `run_dir` and writes its record.
fn spnn_leakage(
    cfg: &ResolvedConfig,
    run_dir: &Path,
    out: &Path,
    train: &DatasetSplit,
    device: &Device,
) -> Result<Value> {
    let variants = spnn_variants(cfg, run_dir)?;
    let a = &cfg.pipeline.attack;
    let settings = crate::invert::InvertSettings {
        steps: a.invert_steps,
        learning_rate: a.invert_learning_rate,
        tv: RELEASED_TV,
        scale_invariant: false,
    };
    let record = crate::spnn_leakage::run_experiment(&variants, train, &settings, device, out)?;
    write_json_atomic(&out.join(RECORD_FILE), &record)?;
    log::info!("spnn leakage: {}", out.join(RECORD_FILE).display());
    Ok(record)
}

/// The SPNN variants of the run that have a server view, with their trained models.
fn spnn_variants(cfg: &ResolvedConfig, run_dir: &Path) -> Result<Vec<VariantRun>> {
    let profile = if cfg.profile == "default" {
        String::new()
    } else {
        format!(" --profile {}", cfg.profile)
    };
    let command = format!("cargo xtask baseline spnn {}{profile}", cfg.pipeline.name);
    let base = run_dir.join("baselines").join("spnn");
    let mut variants = Vec::new();
    for (dir, name) in VARIANTS {
        let dir = base.join(dir);
        let view_path = dir.join("server").join(SERVER_VIEW_FILE);
        if !view_path.exists() {
            continue;
        }
        let view = ServerView::read(&view_path)?;
        let model_path = dir.join("model.bin");
        let model: TrainedModel = read_artifact(&model_path).with_context(|| {
            format!(
                "{}: the SPNN variant's trained model (run `{command}`)",
                model_path.display()
            )
        })?;
        variants.push(VariantRun {
            name: name.to_string(),
            dir,
            view,
            model,
        });
    }
    if variants.is_empty() {
        let missing: Vec<String> = VARIANTS
            .iter()
            .map(|(d, _)| {
                base.join(d)
                    .join("server")
                    .join(SERVER_VIEW_FILE)
                    .display()
                    .to_string()
            })
            .collect();
        bail!(
            "no SPNN server view: {} missing; run `{command}` first",
            missing.join(" and ")
        );
    }
    Ok(variants)
}
