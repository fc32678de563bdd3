//! The security side of the command line:
//!
//! * [`SecurityArgs`] (`serve`): TLS files, users and quotas from `[service]` (the pipeline's,
//!   or `--service FILE`), the audit log, and `--insecure` (plain TCP, loopback only).
//! * [`TlsArgs`] (`client`, `load`): `--ca/--cert/--key [--server-name]`; without them, plain TCP
//!   (works only against an owner started with `--insecure`).
//! * [`CertsArgs`] (`certs`): a development CA, the owner's certificate and one per user
//!   ([`privdnn_net::pki::write_dev_pki`], keys 0600), and the `[service]` table to paste.

use std::path::{Path, PathBuf};

use clap::Args;
use privdnn_config::{ServiceConfig, UserQuota};
use privdnn_net::tls::DEFAULT_SERVER_NAME;
use privdnn_net::{TlsClient, TlsServer};

use crate::PartyError;
use crate::server::ServerConfig;

/// `serve`: who may connect.
#[derive(Args, Debug, Clone)]
pub struct SecurityArgs {
    /// Plain TCP, no authentication, no quotas: only on a loopback address (tests, one machine).
    #[arg(long)]
    pub insecure: bool,
    /// Service settings file (the `[service]` keys at top level); default: the pipeline's
    /// `[service]` table.
    #[arg(long)]
    pub service: Option<PathBuf>,
    /// JSON-lines audit log (default: `[service] audit_log`, else `<run>/party/audit.jsonl`).
    #[arg(long)]
    pub audit_log: Option<PathBuf>,
}

impl SecurityArgs {
    /// Fills the security fields of `config` from the flags, `[service]` and the run folder.
    pub fn apply(
        &self,
        config: &mut ServerConfig,
        pipeline_service: Option<&ServiceConfig>,
        run_dir: Option<&Path>,
    ) -> Result<(), PartyError> {
        let service = match &self.service {
            Some(path) => ServiceConfig::from_file(path)?,
            None => pipeline_service.cloned().unwrap_or_default(),
        };
        config.audit_log = self
            .audit_log
            .clone()
            .or_else(|| service.audit_log.clone())
            .or_else(|| run_dir.map(|d| d.join("party").join("audit.jsonl")));
        if self.insecure {
            // Loopback only: every client is the same peer address, so the per-peer cap would
            // be the global one; keep the server's global cap alone.
            config.tls = None;
            config.access = None;
            return Ok(());
        }
        config.max_connections_per_peer = service.max_connections_per_peer;
        let (Some(ca), Some(cert), Some(key)) = (&service.ca, &service.cert, &service.key) else {
            return Err(PartyError::Usage(
                "the owner service needs TLS: set [service] ca, cert and key (make a development \
                 set with `privdnn-party certs --out certs --users alice`) and list the users \
                 in [service.users], or pass --insecure to serve plain TCP on loopback"
                    .into(),
            ));
        };
        if service.users.is_empty() {
            return Err(PartyError::Usage(
                "[service.users] is empty: list the users this owner serves".into(),
            ));
        }
        config.tls = Some(TlsServer::load(ca, cert, key)?);
        config.access = Some(service);
        Ok(())
    }
}

/// `client`/`load`: TLS towards the owner.
#[derive(Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// CA certificate that signed the owner's certificate (PEM).
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// This user's certificate (PEM, from `privdnn-party certs`).
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// This user's private key (PEM).
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Name the owner's certificate must carry.
    #[arg(long, default_value = DEFAULT_SERVER_NAME)]
    pub server_name: String,
}

impl TlsArgs {
    /// The TLS settings, or `None` (plain TCP) when no flag is given.
    pub fn client(&self) -> Result<Option<TlsClient>, PartyError> {
        match (&self.ca, &self.cert, &self.key) {
            (None, None, None) => Ok(None),
            (Some(ca), Some(cert), Some(key)) => {
                Ok(Some(TlsClient::load(ca, cert, key, &self.server_name)?))
            }
            _ => Err(PartyError::Usage(
                "give all of --ca, --cert and --key (or none for plain TCP)".into(),
            )),
        }
    }
}

/// `certs`: a development PKI.
#[derive(Args, Debug, Clone)]
pub struct CertsArgs {
    /// Output folder (keep it out of git: `*.key` files are ignored, put the folder under
    /// `results/` or outside the repository).
    #[arg(long)]
    pub out: PathBuf,
    /// Users to issue certificates for, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub users: Vec<String>,
    /// Extra host names or IP addresses of the owner's certificate (besides `privdnn-owner`
    /// and `localhost`), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub hosts: Vec<String>,
}

/// `certs`: writes the files, prints the `[service]` table that uses them.
pub fn certs(args: &CertsArgs) -> Result<String, PartyError> {
    let files = privdnn_net::pki::write_dev_pki(&args.out, &args.hosts, &args.users)?;
    let mut service = ServiceConfig {
        ca: Some(files.ca.clone()),
        cert: Some(files.server_cert.clone()),
        key: Some(files.server_key.clone()),
        ..ServiceConfig::default()
    };
    for (user, _, _) in &files.users {
        service.users.insert(user.clone(), UserQuota::default());
    }
    let table = toml::to_string_pretty(&service)
        .map_err(|e| PartyError::Internal(format!("rendering [service]: {e}")))?;
    let mut text = format!(
        "CA {} (key {}, keep offline), owner {} (key {})\n",
        files.ca.display(),
        files.ca_key.display(),
        files.server_cert.display(),
        files.server_key.display()
    );
    for (user, cert, key) in &files.users {
        text += &format!(
            "user {user}: --ca {} --cert {} --key {}\n",
            files.ca.display(),
            cert.display(),
            key.display()
        );
    }
    text += "\n# owner: put this in the pipeline's [service] table, or in a file for --service\n";
    text += &table;
    Ok(text)
}
