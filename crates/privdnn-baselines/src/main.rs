//! `privdnn-baseline`: the seed systems beside PrivDNN as real processes.
//!
//! `edge` — Tian et al.'s two-edge-server outsourcing, as reconstructed (`privdnn-edge`):
//! * `setup` (owner): integer model of the trained model, key pairs, bundles for the edges and
//!   the device under `results/<run>/baselines/edge/`;
//! * `serve --role a|b` (edge): serves its layers over TCP until the device shuts it down;
//! * `device`: classifies test images through both edges (single-image latency, batched
//!   throughput), from its own bundle only;
//! * `reference` (owner side, evaluation only): burn's float predictions and the integer
//!   shadow's logits and CPU time on the same images;
//! * `report`: merges the parties' JSON files into `metrics.json`.
//!
//! `cargo xtask baseline edge <pipeline>` runs all of them on 127.0.0.1.

mod edge_device;
mod edge_owner;
mod edge_report;
mod edge_serve;
mod files;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Seed-system baselines as processes.
#[derive(Parser, Debug)]
#[command(name = "privdnn-baseline", about)]
struct Cli {
    #[command(subcommand)]
    system: System,
}

#[derive(Subcommand, Debug)]
enum System {
    /// Tian et al.'s two-edge-server outsourcing (as reconstructed).
    Edge {
        #[command(subcommand)]
        role: EdgeCommand,
    },
}

#[derive(Subcommand, Debug)]
enum EdgeCommand {
    /// Owner: integer model, key pairs, bundles.
    Setup(edge_owner::SetupArgs),
    /// Owner side, for evaluation only: float and integer-shadow reference on the test images.
    Reference(edge_owner::ReferenceArgs),
    /// An edge server.
    Serve(edge_serve::ServeArgs),
    /// The device.
    Device(edge_device::DeviceArgs),
    /// Merge the parties' measurements into metrics.json.
    Report(edge_report::ReportArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.system {
        System::Edge { role } => match role {
            EdgeCommand::Setup(a) => edge_owner::setup(&a),
            EdgeCommand::Reference(a) => edge_owner::reference(&a),
            EdgeCommand::Serve(a) => edge_serve::serve(&a),
            EdgeCommand::Device(a) => edge_device::device(&a),
            EdgeCommand::Report(a) => edge_report::report(&a),
        },
    }
}
