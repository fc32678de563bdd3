//! `cargo xtask serve` / `cargo xtask client`: the owner service and the user client of
//! `privdnn-party` for a pipeline run (TCP; see the README, "Two parties over the network").

use anyhow::Result;

/// `privdnn-party serve --pipeline <pipeline> <args…>` (prints the address it listens on).
pub fn serve(pipeline: &str, args: &[String]) -> Result<()> {
    let mut cmd = vec!["serve", "--pipeline", pipeline];
    cmd.extend(args.iter().map(String::as_str));
    crate::stages::run_binary("privdnn-party", &cmd)
}

/// `privdnn-party client --pipeline <pipeline> --images <images> <args…>`.
pub fn client(pipeline: &str, images: &str, args: &[String]) -> Result<()> {
    let mut cmd = vec!["client", "--pipeline", pipeline, "--images", images];
    cmd.extend(args.iter().map(String::as_str));
    crate::stages::run_binary("privdnn-party", &cmd)
}
