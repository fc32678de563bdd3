//! `cargo xtask serve` / `cargo xtask client`: the owner service and the user client of
//! `privdnn-party` for a pipeline run (TCP or TLS; see the README, "Two parties over the network"
//! and "Threat model").

use std::path::Path;

use anyhow::Result;

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
    let profile = args
        .iter()
        .position(|a| a == "--profile")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    let cfg = privdnn_config::load_pipeline(root, pipeline, profile)?;
    Ok(cfg.pipeline.service.cert.is_some())
}

/// `privdnn-party client --pipeline <pipeline> --images <images> <args…>`.
pub fn client(pipeline: &str, images: &str, args: &[String]) -> Result<()> {
    let mut cmd = vec!["client", "--pipeline", pipeline, "--images", images];
    cmd.extend(args.iter().map(String::as_str));
    crate::stages::run_binary("privdnn-party", &cmd)
}
