//! `cargo xtask serve` / `cargo xtask client`: the owner service and the user client of
//! `privdnn-party` for a pipeline run (TCP or TLS; see the README, "Two parties over the network"
//! and "Threat model").

use std::path::Path;

use anyhow::{Result, anyhow, bail};
use privdnn_config::ServiceConfig;

/// `privdnn-party serve --pipeline <pipeline> <args…>` (prints the address it listens on).
/// A pipeline without TLS settings (`[service] cert`, or `--service FILE`) is served over plain
/// TCP with `--insecure`, which `privdnn-party` allows on loopback addresses only.
pub fn serve(root: &Path, pipeline: &str, args: &[String]) -> Result<()> {
    let mut cmd = vec!["serve", "--pipeline", pipeline];
    cmd.extend(args.iter().map(String::as_str));
    if !has_tls_settings(root, pipeline, args)? && !args.iter().any(|a| a == "--insecure") {
        log::info!(
            "no [service] TLS settings for `{pipeline}`: serving plain TCP on loopback \
             (--insecure); `privdnn-party certs` makes a development CA and certificates"
        );
        cmd.push("--insecure");
    }
    crate::stages::run_binary("privdnn-party", &cmd)
}

/// Whether `serve` gets its TLS files from `--service FILE` or the pipeline's `[service]`.
fn has_tls_settings(root: &Path, pipeline: &str, args: &[String]) -> Result<bool> {
    if args
        .iter()
        .any(|a| a == "--service" || a.starts_with("--service="))
    {
        return Ok(true);
    }
    Ok(service(root, pipeline, args)?.cert.is_some())
}

/// The pipeline's `[service]` table (with the `--profile` among `args`).
fn service(root: &Path, pipeline: &str, args: &[String]) -> Result<ServiceConfig> {
    let profile = flag_value(args, "--profile");
    let cfg = privdnn_config::load_pipeline(root, pipeline, profile)?;
    Ok(cfg.pipeline.service)
}

/// The value of `--name VALUE` or `--name=VALUE` in `args`.
fn flag_value<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().enumerate().find_map(|(i, a)| {
        if a == name {
            args.get(i + 1).map(String::as_str)
        } else {
            a.strip_prefix(name).and_then(|rest| rest.strip_prefix('='))
        }
    })
}

/// `privdnn-party client --pipeline <pipeline> --images <images> <args…>`.
///
/// When the pipeline's `[service]` configures TLS (`ca`, `cert`, `key`) and `args` give no
/// `--ca`, the client speaks TLS as user `--user NAME` (default: the first user of
/// `[service.users]` who is not revoked) with the files `privdnn-party certs` wrote next to the
/// CA: `<ca dir>/users/<user>.pem` and `.key`. Without TLS settings: plain TCP, as `serve`.
pub fn client(pipeline: &str, images: &str, args: &[String]) -> Result<()> {
    let root = crate::workspace_root();
    let mut rest: Vec<String> = Vec::with_capacity(args.len());
    let mut user = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--user" {
            user = it.next().cloned();
        } else if let Some(u) = a.strip_prefix("--user=") {
            user = Some(u.to_string());
        } else {
            rest.push(a.clone());
        }
    }
    let mut cmd: Vec<String> = ["client", "--pipeline", pipeline, "--images", images]
        .map(String::from)
        .into();
    if flag_value(&rest, "--ca").is_none() {
        cmd.extend(tls_flags(
            &service(&root, pipeline, &rest)?,
            user.as_deref(),
        )?);
    }
    cmd.extend(rest);
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    crate::stages::run_binary("privdnn-party", &cmd)
}

/// `--ca/--cert/--key` of `user` in the development PKI of `service` (none without TLS).
fn tls_flags(service: &ServiceConfig, user: Option<&str>) -> Result<Vec<String>> {
    let (Some(ca), Some(_)) = (&service.ca, &service.cert) else {
        return Ok(Vec::new());
    };
    let user = match user {
        Some(u) => u.to_string(),
        None => service
            .users
            .iter()
            .find(|(_, q)| !q.revoked)
            .map(|(u, _)| u.clone())
            .ok_or_else(|| anyhow!("[service.users] lists no user who is not revoked"))?,
    };
    let dir = ca.parent().unwrap_or(Path::new("")).join("users");
    let (cert, key) = (
        dir.join(format!("{user}.pem")),
        dir.join(format!("{user}.key")),
    );
    if !cert.is_file() || !key.is_file() {
        bail!(
            "the owner serves TLS but {} / {} do not exist: make them with `privdnn-party certs \
             --out {} --users {user}`, or pass --ca/--cert/--key",
            cert.display(),
            key.display(),
            ca.parent().unwrap_or(Path::new(".")).display()
        );
    }
    log::info!("TLS as user `{user}` ({})", cert.display());
    Ok(vec![
        "--ca".to_string(),
        ca.display().to_string(),
        "--cert".into(),
        cert.display().to_string(),
        "--key".into(),
        key.display().to_string(),
    ])
}
