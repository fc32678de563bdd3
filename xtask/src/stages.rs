//! Stage planning and execution for `cargo xtask pipeline` and `cargo xtask data`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use privdnn_artifacts::{Manifest, RunLayout};
use privdnn_config::{HeMode, ResolvedConfig};

/// Stages in pipeline order.
pub const STAGES: [&str; 6] = ["data", "train", "select", "encrypt", "infer", "attack"];

/// The stages to run for `--only` / `--from`.
pub fn plan(only: Option<&str>, from: Option<&str>) -> Result<Vec<&'static str>> {
    let find = |name: &str| {
        STAGES
            .iter()
            .position(|s| *s == name)
            .with_context(|| format!("unknown stage `{name}`; stages: {}", STAGES.join(", ")))
    };
    Ok(match (only, from) {
        (Some(_), Some(_)) => bail!("give either --only or --from, not both"),
        (Some(name), None) => vec![STAGES[find(name)?]],
        (None, Some(name)) => STAGES[find(name)?..].to_vec(),
        (None, None) => STAGES.to_vec(),
    })
}

/// Builds every stage binary (one `--workspace` build, so all binaries share one compiled burn
/// with the tests) and runs `target/release/<binary> <args>`.
pub fn run_binary(binary: &str, args: &[&str]) -> Result<()> {
    run_binary_with(binary, args, &[])
}

/// [`run_binary`] with extra environment variables (config overrides such as
/// `PRIVDNN_HE__IMAGES`).
pub fn run_binary_with(binary: &str, args: &[&str], env: &[(&str, &str)]) -> Result<()> {
    build_binaries()?;
    let path = Path::new("target/release").join(binary);
    let status = Command::new(&path)
        .args(args)
        .envs(env.iter().copied())
        .status()
        .with_context(|| format!("starting {}", path.display()))?;
    if !status.success() {
        bail!("`{binary} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Builds every binary of the workspace in release mode with cargo's own progress, after a line
/// saying what is built and how long it takes when the binaries are not there yet.
pub fn build_binaries() -> Result<()> {
    if !Path::new("target/release/privdnn-train").exists() {
        eprintln!(
            "building the privdnn binaries (release: burn, fhe and the workspace's crates; a first \
             build takes 10–20 minutes on 2 cores, later builds seconds) …"
        );
    }
    cargo(&["build", "--release", "--workspace", "--bins"])
}

/// A `cargo` command without the package variables `cargo run` gave xtask itself
/// (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, …): build scripts such as ring's rerun when they
/// change, so an inner build would otherwise recompile ring, rustls and every crate above them
/// (about 4 minutes on 2 cores) each time a user alternates `cargo xtask …` and `cargo build`.
pub fn cargo_command() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string()));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let from_run = key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_MANIFEST_")
            || matches!(
                key.as_ref(),
                "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE"
            );
        if from_run {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd
}

/// Runs `cargo <args>` in the workspace, failing when it fails.
pub fn cargo(args: &[&str]) -> Result<()> {
    let status = cargo_command()
        .args(args)
        .status()
        .context("starting cargo")?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

fn load(root: &Path, name: &str, profile: Option<&str>) -> Result<ResolvedConfig> {
    Ok(privdnn_config::load_pipeline(root, name, profile)?)
}

/// Prepares the datasets of the shipped pipelines (or the named ones).
pub fn prepare_data(
    root: &Path,
    datasets: &[String],
    source: Option<&Path>,
    size: Option<usize>,
    verify: bool,
) -> Result<()> {
    // (dataset, size, source, cache) of every pipeline, deduplicated.
    let mut jobs: Vec<(String, usize, std::path::PathBuf, std::path::PathBuf)> = Vec::new();
    for name in privdnn_config::available_pipelines(&root.join("pipelines")) {
        let cfg = load(root, &name, None)?;
        let d = &cfg.pipeline.data;
        if d.dataset == "synthetic" {
            continue;
        }
        let wanted = if datasets.is_empty() {
            // by default only what is present in the source folder
            root.join(&d.source)
                .join(dataset_folder(&d.dataset))
                .exists()
        } else {
            datasets.contains(&d.dataset)
        };
        let job = (
            d.dataset.clone(),
            size.unwrap_or(d.image_size),
            d.source.clone(),
            d.cache.clone(),
        );
        if wanted && !jobs.contains(&job) {
            jobs.push(job);
        }
    }
    for wanted in datasets {
        if !jobs.iter().any(|j| &j.0 == wanted) {
            bail!(
                "no pipeline uses dataset `{wanted}`; known datasets: {}",
                privdnn_data::known_datasets().join(", ")
            );
        }
    }
    for (dataset, size, default_source, cache) in jobs {
        let source = source
            .map(Path::to_path_buf)
            .unwrap_or_else(|| root.join(default_source));
        let started = std::time::Instant::now();
        let paths = privdnn_data::prepare(&dataset, &source, &root.join(cache), size, verify)?;
        log::info!(
            "{dataset} at {size}px ready in {:.1}s: {}",
            started.elapsed().as_secs_f64(),
            paths
                .train
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
    }
    Ok(())
}

fn dataset_folder(dataset: &str) -> &str {
    match dataset {
        "gtsrb" => "gtsrb32",
        "tinyimagenet" => "tiny-imagenet-200",
        other => other,
    }
}

/// The artifact whose manifest says whether `stage` is up to date: `RunLayout::stage_artifact`,
/// except that a user-keyed encrypt stage writes `encrypt/keyed_model.bin` and no
/// `encrypted_model.bin`.
fn stage_artifact(layout: &RunLayout, cfg: &ResolvedConfig, stage: &str) -> Option<PathBuf> {
    if stage == "encrypt" && cfg.pipeline.he.mode == HeMode::UserKeyed {
        return Some(layout.keyed_model());
    }
    layout.stage_artifact(stage)
}

/// Runs stage binary `privdnn-<stage> run` unless its artifact (`RunLayout::stage_artifact`)
/// is up to date; stages without one (measurements) always run.
fn run_stage(
    layout: &RunLayout,
    cfg: &ResolvedConfig,
    stage: &str,
    (name, profile): (&str, Option<&str>),
    force: bool,
    extra: &[&str],
) -> Result<()> {
    if let Some(artifact) = stage_artifact(layout, cfg, stage)
        && !force
        && Manifest::is_current(&artifact, &cfg.stage_hash(stage))
    {
        log::info!(
            "{stage}: up to date ({}); --force re-runs it",
            artifact.display()
        );
        return Ok(());
    }
    let mut args = vec!["run", "--pipeline", name];
    if let Some(p) = profile {
        args.extend(["--profile", p]);
    }
    args.extend(extra);
    run_binary(&format!("privdnn-{stage}"), &args)
}

/// Runs the planned stages of pipeline `name`.
pub fn run_pipeline(
    root: &Path,
    name: &str,
    profile: Option<&str>,
    plan: &[&str],
    force: bool,
) -> Result<()> {
    let cfg = load(root, name, profile)?;
    let layout = RunLayout::new(cfg.results_dir(&root.join("results")));
    let target = (name, profile);
    log::info!(
        "pipeline {name} (profile {}), results in {}",
        cfg.profile,
        layout.run_dir().display()
    );
    let mut estimates = crate::estimate::Announcer::new(root, &cfg, profile);
    for stage in plan {
        estimates.announce(stage);
        let started = std::time::Instant::now();
        match *stage {
            "data" => {
                let d = &cfg.pipeline.data;
                if d.dataset == "synthetic" {
                    log::info!("data: synthetic dataset, nothing to prepare");
                    continue;
                }
                let paths = privdnn_data::prepare(
                    &d.dataset,
                    &root.join(&d.source),
                    &root.join(&d.cache),
                    d.image_size,
                    true,
                )?;
                log::info!("data: ready ({})", paths.train.display());
            }
            // training and the attack stage resume from their checkpoints unless forced
            "train" | "attack" => {
                let fresh: &[&str] = if force { &["--fresh"] } else { &[] };
                run_stage(
                    &layout,
                    &cfg,
                    stage,
                    target,
                    force || *stage == "attack",
                    fresh,
                )?;
            }
            "select" | "encrypt" => run_stage(&layout, &cfg, stage, target, force, &[])?,
            // Measurements (infer, spec §4): no up-to-date artifact, always re-run.
            "infer" => run_stage(&layout, &cfg, stage, target, true, &[])?,
            other => bail!("stage `{other}` is not implemented yet"),
        }
        log::info!("{stage}: {:.1}s", started.elapsed().as_secs_f64());
    }
    Ok(())
}
