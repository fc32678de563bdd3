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
//!
//! `twoserver` — Li et al.'s two non-colluding servers with a dealer, as reconstructed
//! (`privdnn-twoserver`), one process per role over TCP:
//! * `server --role 1|2` (server 1 garbles, server 2 evaluates; server 1 dials server 2);
//! * `owner`: integer model of the trained model, shares sent to both servers, `public.bin`
//!   (the weight-free architecture) for the dealer and the client; then it exits;
//! * `dealer` (extra non-colluding party): seeds, then each query's triples and random OTs;
//! * `client`: single-image latency, then pipelined (batched) classification of every image;
//! * `reference` (evaluation only) and `report` as for `edge`.
//!
//! `cargo xtask baseline twoserver <pipeline>` runs all of them on 127.0.0.1 and writes
//! `results/<run>/baselines/twoserver/metrics.json`.
//!
//! `spnn` — SPNN split training (as reconstructed, `privdnn-spnn`), one process per role:
//! * `server` and `dealer` (listen), `holder --party b` (dials them, listens for holder A),
//!   `holder --party a` (dials all three); each keeps its state per epoch and resumes from it;
//! * `plaintext`: the same training without cryptography (training library, same settings);
//! * `naive`: the naive split network without cryptography (each holder its own conv1, one
//!   process) → `naive/metrics.json`;
//! * `report` (evaluation only): per-epoch accuracy of the opened models, the shadow audit of
//!   every first-layer forward, time / bytes / memory per role → `metrics.json`.
//!
//! `cargo xtask baseline spnn <pipeline>` runs all of them on 127.0.0.1.

mod edge_device;
mod edge_owner;
mod edge_report;
mod edge_serve;
mod files;
mod spnn_naive;
mod spnn_report;
mod spnn_roles;
mod twoserver_report;
mod twoserver_roles;

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
    /// Li et al.'s two non-colluding servers with a dealer (as reconstructed).
    Twoserver {
        #[command(subcommand)]
        role: TwoServerCommand,
    },
    /// SPNN split training (as reconstructed).
    Spnn {
        #[command(subcommand)]
        role: SpnnCommand,
    },
}

#[derive(Subcommand, Debug)]
enum SpnnCommand {
    /// The server (listens for both holders).
    Server(spnn_roles::ListenArgs),
    /// The triple dealer (listens for both holders).
    Dealer(spnn_roles::ListenArgs),
    /// A data holder (`--party a|b`).
    Holder(spnn_roles::HolderArgs),
    /// Plaintext training with the same settings, for comparison.
    Plaintext(spnn_roles::SpnnArgs),
    /// Naive split network without cryptography (one process), for comparison.
    Naive(spnn_roles::SpnnArgs),
    /// Evaluation only: accuracy per epoch, shadow audit, costs → metrics.json.
    Report(spnn_roles::SpnnArgs),
}

#[derive(Subcommand, Debug)]
enum TwoServerCommand {
    /// Owner: shares the integer model for both servers over TCP, publishes the architecture.
    Owner(twoserver_roles::OwnerArgs),
    /// Server 1 (garbler) or server 2 (evaluator).
    Server(twoserver_roles::ServerArgs),
    /// The dealer (extra non-colluding party): triples and random OTs.
    Dealer(twoserver_roles::DealerArgs),
    /// The client.
    Client(twoserver_roles::ClientArgs),
    /// Owner side, for evaluation only: float and integer-shadow reference on the test images.
    Reference(twoserver_report::RunOnly),
    /// Merge the parties' measurements into metrics.json.
    Report(twoserver_report::RunOnly),
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
        System::Twoserver { role } => match role {
            TwoServerCommand::Owner(a) => twoserver_roles::owner(&a),
            TwoServerCommand::Server(a) => twoserver_roles::server(&a),
            TwoServerCommand::Dealer(a) => twoserver_roles::dealer(&a),
            TwoServerCommand::Client(a) => twoserver_roles::client(&a),
            TwoServerCommand::Reference(a) => twoserver_report::reference(&a),
            TwoServerCommand::Report(a) => twoserver_report::report(&a),
        },
        System::Spnn { role } => match role {
            SpnnCommand::Server(a) => spnn_roles::server(&a),
            SpnnCommand::Dealer(a) => spnn_roles::dealer(&a),
            SpnnCommand::Holder(a) => spnn_roles::holder(&a),
            SpnnCommand::Plaintext(a) => spnn_roles::plaintext(&a),
            SpnnCommand::Naive(a) => spnn_naive::naive(&a),
            SpnnCommand::Report(a) => spnn_report::report(&a),
        },
    }
}
