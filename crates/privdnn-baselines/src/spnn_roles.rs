//! `spnn server|dealer|holder|plaintext`: SPNN split training (as reconstructed,
//! `privdnn-spnn`), one process per role over TCP, and the plaintext training it is measured
//! against. The server and the dealer listen (port files); holder B dials them and listens for
//! holder A; holder A dials all three. Each role keeps its state under
//! `results/<run>/baselines/spnn/<variant>/<role>/` and resumes from it. `plaintext` trains the
//! same model with the same settings (no augmentation: a pixel shift would move columns between
//! the holders) through the training library into `plaintext/`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use privdnn_artifacts::{DatasetSplit, write_artifact, write_json_atomic};
use privdnn_config::{Augmentation, OptimizerKind, PipelineArgs, ResolvedConfig, Schedule};
use privdnn_model::UpperOptimizer;
use privdnn_net::Limits;
use privdnn_spnn::process::holder::{PeerHolder, run_holder};
use privdnn_spnn::process::{RunSetup, dealer::run_dealer, server::run_server};
use privdnn_spnn::{Settings, Task};

/// What every SPNN role is started with.
#[derive(Args, Debug, Clone)]
pub struct SpnnArgs {
    /// Pipeline, profile and root.
    #[command(flatten)]
    pub target: PipelineArgs,
    /// Variant directory under `baselines/spnn/` (e.g. `spnn`, `spnn-noise`).
    #[arg(long, default_value = "spnn")]
    pub variant: String,
    /// SGLD noise σ added to conv1's updates (weight units; 0 = none).
    #[arg(long, default_value_t = 0.0)]
    pub noise: f64,
    /// Learning rate of conv1 (plain SGD on the shares).
    #[arg(long, default_value_t = 0.05)]
    pub conv1_lr: f64,
    /// Epochs (default: the pipeline's).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Training images used (0 = the whole training split).
    #[arg(long, default_value_t = 0)]
    pub train_images: usize,
    /// Derive every key from the seed (reproducible runs and tests; anyone knowing the seed
    /// knows the masks, so never in a deployment).
    #[arg(long)]
    pub derived_keys: bool,
    /// Stop after this many more epochs (resume later with the same command).
    #[arg(long)]
    pub max_epochs: Option<usize>,
}

impl SpnnArgs {
    /// The resolved config, with `--epochs` applied.
    pub fn config(&self) -> Result<ResolvedConfig> {
        let mut cfg = self
            .target
            .load()
            .with_context(|| format!("loading pipeline `{}`", self.target.pipeline))?;
        if let Some(e) = self.epochs {
            cfg.pipeline.train.epochs = e;
        }
        cfg.pipeline.data.augmentation = Augmentation::default();
        Ok(cfg)
    }

    /// `results/<run>/baselines/spnn`.
    pub fn spnn_dir(&self) -> Result<PathBuf> {
        Ok(self
            .config()?
            .results_dir(&self.target.root.join("results"))
            .join("baselines")
            .join("spnn"))
    }

    /// The variant's directory.
    pub fn variant_dir(&self) -> Result<PathBuf> {
        Ok(self.spnn_dir()?.join(&self.variant))
    }

    /// The training split (the first `train_images` when set).
    pub fn train_split(&self, cfg: &ResolvedConfig) -> Result<(DatasetSplit, DatasetSplit)> {
        let (splits, _) = privdnn_data::load_splits(&self.target.root, &cfg.pipeline)
            .context("loading the dataset")?;
        let train = match self.train_images {
            0 => splits.train,
            k => {
                let idx: Vec<usize> = (0..k.min(splits.train.len())).collect();
                splits.train.subset(&idx, "train")
            }
        };
        Ok((train, splits.test))
    }

    /// The run as every role sees it; `role` names its state directory.
    pub fn setup(&self, role: &str) -> Result<(RunSetup, DatasetSplit, DatasetSplit)> {
        let cfg = self.config()?;
        let (train, test) = self.train_split(&cfg)?;
        let t = &cfg.pipeline.train;
        let settings = Settings {
            epochs: t.epochs,
            batch_size: t.batch_size,
            optimizer: match t.optimizer {
                OptimizerKind::Adam => UpperOptimizer::Adam,
                OptimizerKind::Sgd => UpperOptimizer::Sgd,
            },
            learning_rate: t.learning_rate,
            weight_decay: t.weight_decay,
            conv1_learning_rate: self.conv1_lr,
            cosine: t.schedule == Schedule::Cosine,
            seed: cfg.pipeline.seed,
            noise_sigma: self.noise,
            encoding: Default::default(),
        };
        let task = Task {
            spec: privdnn_training::model_spec(&cfg, &train),
            normalization: cfg.pipeline.data.normalization.clone(),
            dataset: cfg.pipeline.data.dataset.clone(),
        };
        let setup = RunSetup {
            task,
            settings,
            train_len: train.len(),
            dir: self.variant_dir()?.join(role),
            derived_keys: self.derived_keys,
            max_epochs: self.max_epochs.unwrap_or(usize::MAX),
            limits: limits(),
        };
        Ok((setup, train, test))
    }
}

/// Long waits (a role may wait for a slow peer's epoch end) and frames up to 1 GiB.
fn limits() -> Limits {
    Limits {
        max_frame: privdnn_net::MAX_FRAME_CEILING,
        idle_timeout: Duration::from_secs(1800),
        frame_timeout: Duration::from_secs(600),
        write_timeout: Duration::from_secs(1800),
    }
}

/// Options of a listening role.
#[derive(Args, Debug)]
pub struct ListenArgs {
    /// The run.
    #[command(flatten)]
    pub run: SpnnArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// File receiving the bound address once listening.
    #[arg(long)]
    pub port_file: Option<PathBuf>,
}

fn bind(args: &ListenArgs) -> Result<TcpListener> {
    let listener =
        TcpListener::bind(&args.listen).with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?.to_string();
    match &args.port_file {
        Some(p) => std::fs::write(p, &addr).with_context(|| format!("writing {}", p.display()))?,
        None => println!("{addr}"),
    }
    Ok(listener)
}

/// `spnn server`.
pub fn server(args: &ListenArgs) -> Result<()> {
    let (setup, _, _) = args.run.setup("server")?;
    let listener = bind(args)?;
    let stats = run_server(&setup, &listener)?;
    eprintln!(
        "server: {} epochs, {:.1} CPU s",
        stats.epochs.len(),
        stats.cpu_seconds
    );
    Ok(())
}

/// `spnn dealer`.
pub fn dealer(args: &ListenArgs) -> Result<()> {
    let (setup, _, _) = args.run.setup("dealer")?;
    let listener = bind(args)?;
    run_dealer(&setup, &listener)?;
    Ok(())
}

/// Options of `spnn holder`.
#[derive(Args, Debug)]
pub struct HolderArgs {
    /// The run (and, for holder B, where it listens for holder A).
    #[command(flatten)]
    pub listen: ListenArgs,
    /// `a` (left columns) or `b` (right columns, labels, top layer).
    #[arg(long)]
    pub party: String,
    /// The server's address.
    #[arg(long)]
    pub server: String,
    /// The dealer's address.
    #[arg(long)]
    pub dealer: String,
    /// Holder B's address (holder A only).
    #[arg(long)]
    pub holder_b: Option<String>,
}

/// `spnn holder`.
pub fn holder(args: &HolderArgs) -> Result<()> {
    let party = match args.party.as_str() {
        "a" => 0,
        "b" => 1,
        other => bail!("--party must be `a` or `b`, not `{other}`"),
    };
    let (setup, train, _) =
        args.listen
            .run
            .setup(if party == 0 { "holder-a" } else { "holder-b" })?;
    let stats = if party == 0 {
        let b = args
            .holder_b
            .as_deref()
            .context("holder A needs --holder-b ADDRESS")?;
        run_holder(
            &setup,
            0,
            &train,
            &args.server,
            &args.dealer,
            PeerHolder::Dial(b),
        )?
    } else {
        let listener = bind(&args.listen)?;
        run_holder(
            &setup,
            1,
            &train,
            &args.server,
            &args.dealer,
            PeerHolder::Listen(&listener),
        )?
    };
    eprintln!(
        "holder {}: {} epochs, {:.1} CPU s",
        args.party,
        stats.epochs.len(),
        stats.cpu_seconds
    );
    Ok(())
}

/// `spnn plaintext`: the train stage's training with the same settings, into `plaintext/`.
pub fn plaintext(args: &SpnnArgs) -> Result<()> {
    let cfg = args.config()?;
    let (splits, _) = privdnn_data::load_splits(&args.target.root, &cfg.pipeline)
        .context("loading the dataset")?;
    let (train, _) = args.train_split(&cfg)?;
    let inputs = privdnn_data::Splits { train, ..splits };
    let dir = args.spnn_dir()?.join("plaintext");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let ckpt = dir.join("checkpoint.bin");
    let out = privdnn_training::run(
        &cfg,
        &inputs,
        Some(&ckpt),
        &mut privdnn_training::QuietObserver,
    )?;
    write_artifact(&dir.join("model.bin"), &out.model)?;
    write_json_atomic(&dir.join("metrics.json"), &out.metrics)?;
    eprintln!(
        "plaintext: {:.2} % test after {} epochs, {:.1} s of training",
        out.metrics.test_accuracy, out.metrics.epochs_run, out.metrics.train_seconds
    );
    Ok(())
}
