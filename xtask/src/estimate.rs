//! `cargo xtask estimate <pipeline> [--profile P] [--compare] [--recalibrate] [--load L]`:
//! predicted wall time, peak memory and bytes written per stage, from a short calibration on
//! this machine (`privdnn-train calibrate`, `privdnn-infer calibrate`; cached in
//! `results/calibration.json`, keyed by CPU model, core count, binary version and the
//! configuration the units depend on) and the cost model of [`crate::estimate_stages`].
//! `cargo xtask pipeline` prints the one-line estimate of every stage before it starts
//! ([`Announcer`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use privdnn_config::ResolvedConfig;
use serde::{Deserialize, Serialize};

use crate::estimate_model::{HeUnits, TrainUnits};
use crate::estimate_stages::{self as model, Clock, StageEstimate};

/// What a calibration entry is valid for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationKey {
    /// `model name` of /proc/cpuinfo.
    pub cpu_model: String,
    /// Cores available.
    pub cores: usize,
    /// Workspace version and git revision of the binaries.
    pub version: String,
    /// Pipeline and profile.
    pub run: String,
    /// Hashes of the train and encrypt settings (the units depend on both).
    pub config: String,
}

/// One cached calibration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Calibration {
    /// Validity key.
    pub key: CalibrationKey,
    /// Training and selection units.
    pub train: TrainUnits,
    /// HE units, shape and memory plans (None when `privdnn-infer calibrate` failed: the
    /// encrypt and infer stages are then not predicted, and the next run tries again).
    pub he: Option<HeUnits>,
}

/// `results/calibration.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct CalibrationFile {
    entries: Vec<Calibration>,
}

fn calibration_path(root: &Path) -> PathBuf {
    root.join("results").join("calibration.json")
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("model name"))?.to_string();
            Some(line.split_once(':')?.1.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The key of `cfg`'s calibration on this machine.
pub fn key(cfg: &ResolvedConfig) -> CalibrationKey {
    CalibrationKey {
        cpu_model: cpu_model(),
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        version: format!(
            "{} {}",
            env!("CARGO_PKG_VERSION"),
            privdnn_artifacts::git_revision()
        ),
        run: format!("{} {}", cfg.pipeline.name, cfg.profile),
        config: format!("{} {}", cfg.stage_hash("train"), cfg.stage_hash("encrypt")),
    }
}

/// 1-minute load average (0 where unknown).
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// CPU seconds (all cores, all processes) busy so far, and this process's children's CPU seconds
/// (the calibration binaries, once waited for) plus its own, from /proc (None elsewhere).
fn cpu_counters() -> Option<(f64, f64)> {
    const TICKS: f64 = 100.0; // USER_HZ
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu: Vec<f64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …: busy = all but idle and iowait
    let busy = cpu
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum::<f64>();
    let me = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<f64> = me
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    // after the state field (not numeric): utime stime cutime cstime are fields 14–17
    let own: f64 = fields.get(10..14)?.iter().sum();
    Some((busy / TICKS, own / TICKS))
}

/// The load other processes put on the machine during a window, in the estimator's terms: with
/// `o` of `cores` cores busy with others while the calibration wanted them all, the fair-share
/// model ([`crate::estimate_stages::share`]) gives `o·cores / (cores − o)` other runnable
/// threads. Measured instead of the 1-minute load average, which still counts work that stopped
/// before the calibration (a paused training run read as load 2.1 and halved every prediction).
pub(crate) fn others_load(before: (f64, f64), after: (f64, f64), wall_s: f64, cores: usize) -> f64 {
    let c = cores.max(1) as f64;
    let others = ((after.0 - before.0) - (after.1 - before.1)) / wall_s.max(1e-3);
    let o = others.clamp(0.0, 0.9 * c);
    o * c / (c - o)
}

fn read_file(root: &Path) -> Result<CalibrationFile> {
    let path = calibration_path(root);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: not a calibration file; delete it (or run with --recalibrate)",
                path.display()
            )
        }),
        Err(_) => Ok(CalibrationFile::default()),
    }
}

/// Runs `target/release/<binary> calibrate --pipeline … [--profile …]` and returns its stdout.
fn calibrate_with(
    binary: &str,
    name: &str,
    profile: Option<&str>,
    extra: &[&str],
) -> Result<String> {
    let path = Path::new("target/release").join(binary);
    let mut cmd = Command::new(&path);
    cmd.args(["calibrate", "--pipeline", name]).args(extra);
    if let Some(p) = profile {
        cmd.args(["--profile", p]);
    }
    let out = cmd.env("RUST_LOG", "warn").output().with_context(|| {
        format!(
            "starting {} (build it: cargo build --release --workspace --bins)",
            path.display()
        )
    })?;
    if !out.status.success() {
        bail!(
            "`{binary} calibrate --pipeline {name}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn parse<T: serde::de::DeserializeOwned>(binary: &str, text: &str) -> Result<T> {
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or("");
    serde_json::from_str(line).with_context(|| {
        format!("{binary} calibrate printed no calibration JSON (rebuild the binaries)")
    })
}

/// `privdnn-train calibrate`, its training and selection parts in two fresh processes (memory
/// freed by one part would hide the other's growth); one process for binaries without `--part`.
fn train_calibration(name: &str, profile: Option<&str>) -> Result<TrainUnits> {
    let part = |p: &str| {
        calibrate_with("privdnn-train", name, profile, &["--part", p])
            .and_then(|text| parse::<TrainUnits>("privdnn-train", &text))
    };
    if let (Ok(mut train), Ok(select)) = (part("train"), part("select")) {
        train.select = select.select;
        return Ok(train);
    }
    parse(
        "privdnn-train",
        &calibrate_with("privdnn-train", name, profile, &[])?,
    )
}

/// The cached calibration of `cfg`, or a fresh one (then cached) when absent or `fresh`.
pub fn calibration(
    root: &Path,
    cfg: &ResolvedConfig,
    profile: Option<&str>,
    fresh: bool,
) -> Result<Calibration> {
    let want = key(cfg);
    let mut file = read_file(root)?;
    if !fresh
        && let Some(c) = file
            .entries
            .iter()
            .find(|e| e.key == want && e.he.is_some())
    {
        return Ok(c.clone());
    }
    let name = cfg.pipeline.name.as_str();
    let started = std::time::Instant::now();
    log::info!(
        "calibrating {name} on this machine (load {:.1})",
        load_average()
    );
    let before = cpu_counters();
    let mut train = train_calibration(name, profile)?;
    let he = calibrate_with("privdnn-infer", name, profile, &[])
        .and_then(|text| parse("privdnn-infer", &text))
        .map_err(|e| log::warn!("HE calibration failed, encrypt and infer not predicted: {e:#}"))
        .ok();
    let wall = started.elapsed().as_secs_f64();
    if let (Some(b), Some(a)) = (before, cpu_counters()) {
        train.load_average = others_load(b, a, wall, want.cores);
    }
    log::info!(
        "calibrated in {wall:.1}s (other processes' load during it: {:.1})",
        train.load_average
    );
    let entry = Calibration {
        key: want.clone(),
        train,
        he,
    };
    file.entries.retain(|e| e.key != want);
    file.entries.push(entry.clone());
    privdnn_artifacts::write_json_atomic(&calibration_path(root), &file)?;
    Ok(entry)
}

/// Every stage's prediction for `cfg` at `load_now` (others' load average).
pub fn predict(
    cfg: &ResolvedConfig,
    c: &Calibration,
    cached: bool,
    load_now: f64,
) -> Vec<StageEstimate> {
    let clock = Clock {
        threads: c.train.threads,
        load_then: c.train.load_average,
        load_now,
    };
    let mut out = vec![
        model::data(&c.train, &clock, cached),
        model::train(cfg, &c.train, &clock),
        model::select(cfg, &c.train, &clock),
    ];
    if let Some(he) = &c.he {
        out.extend(model::encrypt(cfg, he, &clock));
        out.extend(model::infer(cfg, &c.train, he, &clock));
    }
    out.push(model::attack(cfg, &c.train, &clock));
    out
}

fn mb(b: u64) -> String {
    format!("{:.1}", b as f64 / 1e6)
}

/// The one-line form of a prediction.
pub fn line(e: &StageEstimate) -> String {
    format!(
        "estimate {}: ~{:.1}s, peak {} MB, {} MB written/sent ({})",
        e.stage,
        e.seconds,
        mb(e.peak_bytes),
        mb(e.bytes),
        e.note
    )
}

fn data_cached(root: &Path, cfg: &ResolvedConfig) -> bool {
    let d = &cfg.pipeline.data;
    d.dataset == "synthetic"
        || root
            .join(&d.cache)
            .join(format!("{}-{}", d.dataset, d.image_size))
            .exists()
}

/// `cargo xtask estimate`.
pub fn run(root: &Path, name: &str, profile: Option<&str>, opts: &Options) -> Result<()> {
    let cfg = privdnn_config::load_pipeline(root, name, profile)?;
    if opts.build {
        crate::stages::build_binaries()?;
    }
    let cal = calibration(root, &cfg, profile, opts.recalibrate)?;
    let load = opts.load.unwrap_or(if opts.compare {
        cal.train.load_average
    } else {
        load_average()
    });
    let predictions = predict(&cfg, &cal, data_cached(root, &cfg), load);
    println!(
        "{} ({}): {} cores, load average {load:.1} assumed (calibrated at {:.1})",
        name, cfg.profile, cal.train.threads, cal.train.load_average
    );
    for p in &predictions {
        println!("{}", line(p));
    }
    if opts.compare {
        let run_dir = cfg.results_dir(&root.join("results"));
        crate::estimate_compare::compare(root, &run_dir, &cfg, &predictions, load)?;
    }
    Ok(())
}

/// Options of `cargo xtask estimate`.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Compare with the run's measured reports.
    pub compare: bool,
    /// Calibrate again even when a matching calibration is cached.
    pub recalibrate: bool,
    /// Load average (other processes) to predict for; default: now (compare: the calibration's).
    pub load: Option<f64>,
    /// Build the stage binaries first.
    pub build: bool,
}

/// Prints each stage's one-line estimate in `cargo xtask pipeline`; calibrates on first use
/// (after the data stage when the cache is missing) and never fails the pipeline. Every stage
/// is predicted at the load average of other processes taken when the pipeline started: later
/// readings still count the pipeline's own previous stage (a 1-minute average), which made
/// a stage after a busy one look up to 1.6× longer than it ran.
pub struct Announcer<'a> {
    root: &'a Path,
    cfg: &'a ResolvedConfig,
    profile: Option<&'a str>,
    calibration: Option<Calibration>,
    load: f64,
}

impl<'a> Announcer<'a> {
    /// For pipeline `cfg` run with `profile`.
    pub fn new(root: &'a Path, cfg: &'a ResolvedConfig, profile: Option<&'a str>) -> Self {
        Self {
            root,
            cfg,
            profile,
            calibration: None,
            load: load_average(),
        }
    }

    /// Logs the estimate of `stage` (or why there is none).
    pub fn announce(&mut self, stage: &str) {
        let cached = data_cached(self.root, self.cfg);
        if self.calibration.is_none() && (cached || stage != "data") {
            match calibration(self.root, self.cfg, self.profile, false) {
                Ok(c) => self.calibration = Some(c),
                Err(e) => log::warn!("estimate {stage}: unavailable ({e:#})"),
            }
        }
        let Some(c) = &self.calibration else { return };
        let all = predict(self.cfg, c, cached, self.load);
        if let Some(e) = all.iter().find(|e| e.stage == stage) {
            log::info!("{}", line(e));
        }
    }
}
