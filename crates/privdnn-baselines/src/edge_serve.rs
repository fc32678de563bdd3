//! `edge serve`: one edge server process. It reads only the bundle it is given (its layers) and
//! writes its address to a port file once listening, then its counters when the device shuts it
//! down.

use std::net::TcpListener;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use privdnn_artifacts::{write_bytes_atomic, write_json_atomic};
use privdnn_edge::edge::{Cheat, CheatMode, EdgeServer};
use privdnn_edge::messages::{EdgeBundle, from_bytes};
use privdnn_mpc::MaskKey;
use privdnn_net::Limits;

/// Options of `edge serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// `a` or `b`.
    #[arg(long)]
    pub role: String,
    /// This edge's bundle (its layers).
    #[arg(long)]
    pub bundle: PathBuf,
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// File to write the bound address to.
    #[arg(long)]
    pub port_file: Option<PathBuf>,
    /// File to write the final counters to (JSON).
    #[arg(long)]
    pub stats: Option<PathBuf>,
    /// Corrupt this fraction of requests (integrity measurement; 0 = honest).
    #[arg(long, default_value_t = 0.0)]
    pub cheat_rate: f64,
}

/// `edge serve`.
pub fn serve(args: &ServeArgs) -> Result<()> {
    let bytes = std::fs::read(&args.bundle)
        .with_context(|| format!("reading {}", args.bundle.display()))?;
    let bundle: EdgeBundle = from_bytes(&bytes)?;
    if bundle.role.name() != args.role {
        bail!(
            "{} is edge {}'s bundle, not edge {}'s",
            args.bundle.display(),
            bundle.role.name(),
            args.role
        );
    }
    let edge = if args.cheat_rate > 0.0 {
        let cheat = Cheat {
            rate: args.cheat_rate,
            mode: CheatMode::AllItems,
        };
        EdgeServer::cheating(bundle, cheat, MaskKey::random().stream("cheat", &[]))
    } else {
        EdgeServer::new(bundle)
    };
    let listener =
        TcpListener::bind(&args.listen).with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?.to_string();
    if let Some(p) = &args.port_file {
        write_bytes_atomic(p, addr.as_bytes())?;
    }
    eprintln!("edge {} listening on {addr}", args.role);
    let stats = privdnn_edge::net::serve(&listener, edge, Limits::default())?;
    if let Some(p) = &args.stats {
        write_json_atomic(p, &stats)?;
    }
    Ok(())
}
