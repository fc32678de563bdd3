//! Command line of `privdnn-party`:
//!
//! * `serve --pipeline <name>` (or `--model/--keys/--secret FILE`): the owner service; prints
//!   `listening on <addr>` on stdout once it accepts connections. TLS 1.3 with client
//!   certificates of the users in `[service]` (or `--service FILE`); `--insecure`: plain TCP on
//!   loopback only ([`crate::service_cli`]).
//! * `certs --out DIR --users alice,bob`: a development CA, owner and user certificates.
//! * `client --pipeline <name> --images <N | split file | image folder>`: the user; downloads the
//!   model into `results/<run>/client/` (or `--cache`), classifies, prints predictions and costs,
//!   writes `results/<run>/party/client.json` (or `--report`).
//! * `load --pipeline <name> [--clients 8 --rounds 8]`: the load benchmark against a running
//!   owner (`results/<run>/party/load.json`).
//!
//! `client` and `load` speak TLS 1.3 with `--ca CA.pem --cert USER.pem --key USER.key
//! [--server-name privdnn-owner]` ([`TlsArgs`]); without them plain TCP, which only an owner
//! started with `--insecure` answers.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use privdnn_config::{Backend, HeMode, ResolvedConfig};
use privdnn_he::engine::Layout;

use crate::PartyError;
use crate::client::{ClientConfig, ImageSource, LayoutChoice, classify, summary};
use crate::load::{LoadConfig, load_summary, run_load};
use crate::server::{OwnerFiles, Server, ServerConfig};
use crate::service_cli::{CertsArgs, SecurityArgs, TlsArgs};
use crate::wire::Limits;

#[derive(Parser, Debug)]
#[command(
    name = "privdnn-party",
    version,
    about = "PrivDNN owner service and user client over TCP"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Owner: serve the model and answer requests (owner-keyed: hold the secret key and decrypt
    /// blinded requests — one crafted request returns the key; user-keyed: no key, no decryption).
    /// Read README.md "Threat model" before listening beyond loopback.
    Serve(ServeArgs),
    /// Owner: make a development CA, the owner's certificate and one certificate per user
    /// (private keys mode 0600), and print the `[service]` table that uses them.
    Certs(CertsArgs),
    /// User: download the model once, classify local images through the owner (in the mode the
    /// owner serves: owner-keyed, or user-keyed with the user's own keys).
    Client(ClientArgs),
    /// Load benchmark: concurrent users sending decryption requests to a running owner.
    Load(LoadArgs),
}

/// Which pipeline run (optional when every file is given explicitly).
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Pipeline name (pipelines/<name>.toml).
    #[arg(long)]
    pub pipeline: Option<String>,
    /// Config profile.
    #[arg(long)]
    pub profile: Option<String>,
    /// Encryption variant (`privdnn-encrypt run --variant`).
    #[arg(long)]
    pub variant: Option<String>,
    /// Project root.
    #[arg(long, default_value = ".")]
    pub root: PathBuf,
}

/// Size and time limits.
#[derive(Args, Debug, Clone)]
pub struct LimitArgs {
    /// Largest frame payload accepted, MiB.
    #[arg(long, default_value_t = 256)]
    pub max_frame_mib: u32,
    /// Seconds to wait for the next frame (server: idle connection; client: the owner's answer).
    #[arg(long)]
    pub idle_timeout: Option<f64>,
    /// Seconds for the rest of a frame once it started.
    #[arg(long, default_value_t = 120.0)]
    pub frame_timeout: f64,
    /// Seconds a blocked write may wait.
    #[arg(long, default_value_t = 60.0)]
    pub write_timeout: f64,
}

impl LimitArgs {
    fn limits(&self, idle_default: f64) -> Result<Limits, PartyError> {
        let secs = |v: f64, what: &str| {
            Duration::try_from_secs_f64(v)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    PartyError::Usage(format!("--{what} must be a positive number of seconds"))
                })
        };
        Ok(Limits {
            max_frame: Some(self.max_frame_mib)
                .filter(|m| (1..=crate::wire::MAX_FRAME_CEILING >> 20).contains(m))
                .map(|m| m << 20)
                .ok_or_else(|| {
                    PartyError::Usage("--max-frame-mib must be between 1 and 1024".into())
                })?,
            idle_timeout: secs(self.idle_timeout.unwrap_or(idle_default), "idle-timeout")?,
            frame_timeout: secs(self.frame_timeout, "frame-timeout")?,
            write_timeout: secs(self.write_timeout, "write-timeout")?,
        })
    }
}

/// `serve`.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Encrypted model file (default: the pipeline run's).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Evaluation keys file (default: the pipeline run's).
    #[arg(long)]
    keys: Option<PathBuf>,
    /// Owner secret file (default: the pipeline run's `owner/secret_key.bin`).
    #[arg(long)]
    secret: Option<PathBuf>,
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:7447")]
    listen: String,
    /// Connections served at once (more are refused with a `busy` error).
    #[arg(long, default_value_t = 64)]
    max_connections: usize,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    security: SecurityArgs,
}

impl ServeArgs {
    /// The service settings: listen address, limits, TLS, users and quotas, audit log.
    fn config(
        &self,
        label: String,
        resolved: Option<&(ResolvedConfig, PathBuf)>,
    ) -> Result<ServerConfig, PartyError> {
        let mut config = ServerConfig {
            listen: self.listen.clone(),
            max_connections: self.max_connections,
            limits: self.limits.limits(300.0)?,
            label,
            ..ServerConfig::default()
        };
        self.security.apply(
            &mut config,
            resolved.map(|(cfg, _)| &cfg.pipeline.service),
            resolved.map(|(_, base)| base.as_path()),
        )?;
        Ok(config)
    }
}

/// `client`.
#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Images: a number N (the first N test images of the pipeline), a dataset split file
    /// (`data/<dataset>-<size>/test.bin`) or an image folder `dir/<class>/*.png`.
    #[arg(long)]
    images: String,
    /// Images to classify from a file or folder (0 = all).
    #[arg(long, default_value_t = 0)]
    count: usize,
    /// First image.
    #[arg(long, default_value_t = 0)]
    offset: usize,
    /// Owner address.
    #[arg(long, default_value = "127.0.0.1:7447")]
    server: String,
    /// Cache folder of the downloaded model (default: `results/<run>/client/`).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// JSON report (default: `results/<run>/party/client.json`).
    #[arg(long)]
    report: Option<PathBuf>,
    /// `auto` (spatial when the images fit one spatial call, else the pipeline's layout), `batch`
    /// or `spatial`.
    #[arg(long, default_value = "auto")]
    layout: String,
    /// Images per request (0 = as many as one call holds).
    #[arg(long, default_value_t = 0)]
    batch: usize,
    /// Headroom bits of the output level (default: the pipeline's `he.headroom_bits`).
    #[arg(long)]
    headroom_bits: Option<f64>,
    /// Seconds to wait for the connection.
    #[arg(long, default_value_t = 10.0)]
    connect_timeout: f64,
    /// Keep the logits in the report.
    #[arg(long)]
    logits: bool,
    /// `auto` (the mode the owner serves; `PRIVDNN_HE__MODE=user-keyed` insists on user-keyed),
    /// `owner-keyed` or `user-keyed` (another mode at the owner is an error).
    #[arg(long, default_value = "auto")]
    mode: String,
    /// Measurement only (user-keyed mode): the owner's `owner/keyed_block.bin`, to compare the
    /// decrypted outputs and predictions with the integer shadow. A real user never has it.
    #[arg(long)]
    audit_owner_block: Option<PathBuf>,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    tls: TlsArgs,
}

/// `load`.
#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Dataset split file to take images from (default: the pipeline's test split).
    #[arg(long)]
    images: Option<PathBuf>,
    /// Owner address.
    #[arg(long, default_value = "127.0.0.1:7447")]
    server: String,
    /// Cache folder of the downloaded model (default: `results/<run>/client/`).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// JSON report (default: `results/<run>/party/load.json`).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Requests per client.
    #[arg(long, default_value_t = 8)]
    rounds: usize,
    /// Distinct requests prepared.
    #[arg(long, default_value_t = 4)]
    distinct: usize,
    /// Images per request.
    #[arg(long, default_value_t = 1)]
    images_per_request: usize,
    /// `spatial` or `batch`.
    #[arg(long, default_value = "spatial")]
    layout: String,
    /// Headroom bits of the output level (default: the pipeline's `he.headroom_bits`).
    #[arg(long)]
    headroom_bits: Option<f64>,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    tls: TlsArgs,
}

/// The pipeline config and run folder (with its variant), if a pipeline was named.
fn resolve(run: &RunArgs) -> Result<Option<(ResolvedConfig, PathBuf)>, PartyError> {
    let Some(name) = &run.pipeline else {
        return Ok(None);
    };
    let cfg = privdnn_config::load_pipeline(&run.root, name, run.profile.as_deref())?;
    let run_dir = cfg.results_dir(&run.root.join("results"));
    let base = privdnn_artifacts::RunLayout::new(run_dir)
        .with_variant(run.variant.as_deref())
        .output_dir()
        .to_path_buf();
    Ok(Some((cfg, base)))
}

fn parse_layout(name: &str) -> Result<Layout, PartyError> {
    serde_json::from_value(serde_json::Value::String(name.to_string()))
        .map_err(|_| PartyError::Usage(format!("unknown layout `{name}` (auto, batch, spatial)")))
}

/// `serve`: binds, prints the address, serves until killed.
pub fn serve(args: &ServeArgs) -> Result<(), PartyError> {
    let resolved = resolve(&args.run)?;
    if let Some((cfg, base)) = &resolved
        && cfg.pipeline.he.mode == HeMode::UserKeyed
    {
        return serve_keyed(args, resolved.as_ref(), base);
    }
    let default_files = resolved.as_ref().map(|(_, base)| OwnerFiles::of_run(base));
    let pick = |given: &Option<PathBuf>, default: Option<PathBuf>, flag: &str| {
        given
            .clone()
            .or(default)
            .ok_or_else(|| PartyError::Usage(format!("give --pipeline or {flag}")))
    };
    let files = OwnerFiles {
        model: pick(
            &args.model,
            default_files.as_ref().map(|f| f.model.clone()),
            "--model",
        )?,
        keys: pick(
            &args.keys,
            default_files.as_ref().map(|f| f.keys.clone()),
            "--keys",
        )?,
        secret: pick(
            &args.secret,
            default_files.as_ref().map(|f| f.secret.clone()),
            "--secret",
        )?,
    };
    let label = match &resolved {
        Some((cfg, _)) => {
            let run = cfg.results_dir(Path::new("")).display().to_string();
            args.run
                .variant
                .as_ref()
                .map_or(run.clone(), |v| format!("{run} (variant {v})"))
        }
        None => files.model.display().to_string(),
    };
    let config = args.config(label, resolved.as_ref())?;
    let server = Server::bind(&files, &config)?;
    let addr = server.local_addr()?;
    log::info!(
        "owner of `{}`: serving {} and {}, secret {}; at most {} connections, frames ≤ {} MiB",
        config.label,
        files.model.display(),
        files.keys.display(),
        files.secret.display(),
        config.max_connections,
        args.limits.max_frame_mib
    );
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {addr}")
        .and_then(|_| out.flush())
        .map_err(|e| PartyError::io("stdout", e))?;
    drop(out);
    server.run()
}

/// `serve` in user-keyed mode (`[he] mode = "user-keyed"` or `PRIVDNN_HE__MODE=user-keyed`):
/// serves `encrypt/keyed_model.bin`, answers keyed requests with `owner/keyed_block.bin`; no
/// key and no decryption ([`crate::keyed`]).
fn serve_keyed(
    args: &ServeArgs,
    resolved: Option<&(ResolvedConfig, PathBuf)>,
    base: &Path,
) -> Result<(), PartyError> {
    let layout = privdnn_artifacts::RunLayout::new(base);
    let config = args.config(format!("{} (user-keyed)", base.display()), resolved)?;
    let server = Server::bind_keyed(&layout.keyed_model(), &layout.keyed_owner_block(), &config)?;
    let addr = server.local_addr()?;
    log::info!(
        "owner of `{}` in user-keyed mode: serving {}, no key, no decryption",
        config.label,
        layout.keyed_model().display()
    );
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {addr}")
        .and_then(|_| out.flush())
        .map_err(|e| PartyError::io("stdout", e))?;
    drop(out);
    server.run()
}

/// The mode `client --mode` insists on: `auto` takes the owner's, unless the config asks for
/// the user-keyed mode (not the default, so asked for on purpose).
fn client_mode(flag: &str, config: HeMode) -> Result<Option<HeMode>, PartyError> {
    match flag {
        "auto" => Ok((config == HeMode::UserKeyed).then_some(config)),
        "owner-keyed" => Ok(Some(HeMode::OwnerKeyed)),
        "user-keyed" => Ok(Some(HeMode::UserKeyed)),
        other => Err(PartyError::Usage(format!(
            "unknown mode `{other}` (auto, owner-keyed, user-keyed)"
        ))),
    }
}

/// `client`: classifies, prints the summary, writes the report.
pub fn client(args: &ClientArgs) -> Result<PathBuf, PartyError> {
    let resolved = resolve(&args.run)?;
    let he = resolved
        .as_ref()
        .map(|(cfg, _)| cfg.pipeline.he.clone())
        .unwrap_or_default();
    let fallback = serde_json::to_value(he.layout)
        .ok()
        .and_then(|v| serde_json::from_value::<Layout>(v).ok())
        .unwrap_or(Layout::Batch);
    let layout = match args.layout.as_str() {
        "auto" => LayoutChoice::Auto(fallback),
        other => LayoutChoice::Fixed(parse_layout(other)?),
    };
    let mut count = args.count;
    let source = if let Ok(n) = args.images.parse::<usize>() {
        let Some((cfg, _)) = &resolved else {
            return Err(PartyError::Usage(
                "--images N takes the test split of --pipeline: name one".into(),
            ));
        };
        count = n;
        let (splits, _) = privdnn_data::load_splits(&args.run.root, &cfg.pipeline)?;
        ImageSource::Split(splits.test, format!("{} test split", cfg.pipeline.name))
    } else {
        let path = PathBuf::from(&args.images);
        if path.is_dir() {
            ImageSource::Folder(path)
        } else if path.is_file() {
            ImageSource::File(path)
        } else {
            return Err(PartyError::Usage(format!(
                "--images {}: not a number, a file or a folder",
                args.images
            )));
        }
    };
    let base = resolved.as_ref().map(|(_, b)| b.clone());
    let cache_dir = match (&args.cache, &base) {
        (Some(c), _) => c.clone(),
        (None, Some(b)) => b.join("client"),
        (None, None) => return Err(PartyError::Usage("give --pipeline or --cache".into())),
    };
    let report_path = args
        .report
        .clone()
        .or_else(|| base.as_ref().map(|b| b.join("party").join("client.json")));
    let cfg = ClientConfig {
        server: args.server.clone(),
        cache_dir,
        layout,
        batch: args.batch,
        offset: args.offset,
        count,
        headroom_bits: args.headroom_bits.unwrap_or(he.headroom_bits),
        limits: args.limits.limits(600.0)?,
        connect_timeout: Duration::try_from_secs_f64(args.connect_timeout).map_err(|_| {
            PartyError::Usage("--connect-timeout must be a positive number of seconds".into())
        })?,
        tls: args.tls.client()?,
        keep_logits: args.logits,
        mode: client_mode(&args.mode, he.mode)?,
        audit_owner_block: args.audit_owner_block.clone(),
    };
    let backend = resolved
        .as_ref()
        .map_or(Backend::Flex, |(c, _)| c.pipeline.train.backend);
    let device = privdnn_model::backend_device(backend, false)?;
    let report = classify(&cfg, &source, device)?;
    print!("{}", summary(&report));
    let written = match &report_path {
        Some(p) => {
            privdnn_artifacts::write_json_atomic(p, &report)?;
            println!("report: {}", p.display());
            p.clone()
        }
        None => PathBuf::new(),
    };
    Ok(written)
}

/// `load`: runs the benchmark, prints the summary, writes the report.
pub fn load(args: &LoadArgs) -> Result<(), PartyError> {
    let resolved = resolve(&args.run)?;
    let split = match (&args.images, &resolved) {
        (Some(path), _) => privdnn_artifacts::read_artifact(path)?,
        (None, Some((cfg, _))) => {
            privdnn_data::load_splits(&args.run.root, &cfg.pipeline)?
                .0
                .test
        }
        (None, None) => return Err(PartyError::Usage("give --pipeline or --images FILE".into())),
    };
    let base = resolved.as_ref().map(|(_, b)| b.clone());
    let cache_dir = match (&args.cache, &base) {
        (Some(c), _) => c.clone(),
        (None, Some(b)) => b.join("client"),
        (None, None) => return Err(PartyError::Usage("give --pipeline or --cache".into())),
    };
    let he = resolved
        .as_ref()
        .map(|(cfg, _)| cfg.pipeline.he.clone())
        .unwrap_or_default();
    let cfg = LoadConfig {
        server: args.server.clone(),
        cache_dir,
        clients: args.clients,
        rounds: args.rounds,
        distinct: args.distinct,
        images_per_request: args.images_per_request,
        layout: parse_layout(&args.layout)?,
        headroom_bits: args.headroom_bits.unwrap_or(he.headroom_bits),
        limits: args.limits.limits(600.0)?,
        connect_timeout: Duration::from_secs(10),
        tls: args.tls.client()?,
    };
    let report = run_load(&cfg, &split)?;
    print!("{}", load_summary(&report));
    if let Some(p) = args
        .report
        .clone()
        .or_else(|| base.map(|b| b.join("party").join("load.json")))
    {
        privdnn_artifacts::write_json_atomic(&p, &report)?;
        println!("report: {}", p.display());
    }
    Ok(())
}

/// Entry point of the binary.
pub fn main() -> Result<(), PartyError> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match Cli::parse_from(std::env::args_os()).command {
        Command::Serve(args) => serve(&args),
        Command::Certs(args) => {
            print!("{}", crate::service_cli::certs(&args)?);
            Ok(())
        }
        Command::Client(args) => client(&args).map(|_| ()),
        Command::Load(args) => load(&args),
    }
}
