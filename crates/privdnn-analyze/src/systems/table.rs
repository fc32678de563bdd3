//! The four-system comparison table (`systems_comparison.{md,csv}`): one row per system × model,
//! measured columns from the results files, the modelled LAN / WAN latency and the threat model.

use super::{LAN, Link, MODELS, Measured, System, WAN, measured};
use crate::runs::Run;
use crate::table::{NA, Table, count, mib, num, secs};

/// What a row shows for a system whose file does not exist.
pub const NOT_MEASURED: &str = "not yet measured";

/// What the split-training rows show: a training protocol has no per-image inference numbers.
pub const NOT_APPLICABLE: &str = "n/a (training protocol)";

/// The source cell of the split-training rows: SPNN is measured in training, not inference.
pub const TRAINING_POINTER: &str = "training protocol, no per-image inference: see the training table `spnn_training` (results/<run>/baselines/spnn/metrics.json)";

/// Number of measured columns (between "run" and "threat model").
const MEASURED_COLUMNS: usize = 12;

/// The comparison of every system on every model.
pub fn systems_comparison(runs: &[Run]) -> Table {
    let mut t = Table::new(
        "systems_comparison",
        "Four-system comparison: PrivDNN (owner-keyed, user-keyed), two-edge masking, two-server GC, split training — per image; LAN / WAN latency modelled (LAN: 0.2 ms RTT, 1 Gbit/s; WAN: 40 ms RTT, 100 Mbit/s)",
        &[
            "system",
            "model",
            "run",
            "accuracy % (protocol)",
            "exact match % vs integer shadow",
            "client/device CPU s",
            "server CPU s",
            "single-image latency s",
            "batched throughput img/s",
            "bytes client→server",
            "bytes server→client",
            "rounds",
            "peak memory MiB per party",
            "modelled LAN latency ms",
            "modelled WAN latency ms",
            "threat model (who learns what)",
            "source",
        ],
    );
    for system in System::ALL {
        for (label, folder) in MODELS {
            let run = runs.iter().find(|r| r.name == folder);
            let values = run.and_then(|r| measured(system, r));
            let mut row = vec![
                system.name().to_string(),
                label.to_string(),
                run.map(|r| r.name.clone())
                    .unwrap_or_else(|| NA.to_string()),
            ];
            let missing = match system {
                System::SplitTraining => NOT_APPLICABLE,
                _ => NOT_MEASURED,
            };
            match &values {
                Some(m) => row.extend(cells(m)),
                None => row.extend(std::iter::repeat_n(missing.to_string(), MEASURED_COLUMNS)),
            }
            row.push(system.threat_model().to_string());
            row.push(match system {
                System::SplitTraining => TRAINING_POINTER.to_string(),
                _ => format!("results/{folder}/{}", system.source()),
            });
            t.push(row);
        }
    }
    notes(&mut t);
    t
}

/// The measured and modelled cells of one row.
fn cells(m: &Measured) -> Vec<String> {
    let cpu = |v: Option<f64>| match v {
        Some(_) if m.cpu_is_wall => format!("{} (wall)", secs(v)),
        _ => secs(v),
    };
    let memory = if m.memory.is_empty() {
        NA.to_string()
    } else {
        m.memory
            .iter()
            .map(|p| format!("{} {}", p.party, mib(Some(p.bytes))))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let modelled = |link: Link| num(m.modelled_latency(link).map(|s| 1e3 * s), 3);
    vec![
        num(m.accuracy, 2),
        num(m.exact_match, 2),
        cpu(m.client_cpu),
        cpu(m.server_cpu),
        secs(m.latency),
        num(m.throughput, 1),
        count(m.bytes_up),
        count(m.bytes_down),
        num(m.rounds, 0),
        memory,
        modelled(LAN),
        modelled(WAN),
    ]
}

fn notes(t: &mut Table) {
    t.note(format!(
        "Modelled latency (not measured) per image = rounds × RTT + bytes ÷ bandwidth + client CPU + server CPU, from this row's columns (bytes: both directions, plus server↔server bytes where the file records them); {}: {} ms RTT, {} Gbit/s; {}: {} ms RTT, {} Mbit/s.",
        LAN.name,
        LAN.rtt_s * 1e3,
        LAN.bits_per_s / 1e9,
        WAN.name,
        WAN.rtt_s * 1e3,
        WAN.bits_per_s / 1e6
    ));
    t.note("Per-image bytes and CPU are averages over the batched run; rounds are those of one query; latency is one image end to end on this machine (loopback or in-process).");
    t.note("\"as reconstructed\": the baseline protocols were rebuilt from their papers' text (the algorithms were not readable); the numbers are those of our reconstruction, not the papers'.");
    t.note("PrivDNN owner-keyed: `infer/metrics.json` records wall seconds per phase, not CPU: client = user_he_eval + user_unblind + plain_tail, server = owner_decrypt, marked (wall); one request/reply round per query; both parties ran in one process (one peak). PrivDNN user-keyed: CPU seconds per party (client includes its plaintext tail). Two-edge: device bytes over both edge links, server CPU = both edges. Two-server: bytes of the client's links (up / down) plus both directions between the servers; server CPU = both servers, the dealer's offline work not counted (in-process runs: compute seconds, wall).");
    t.note(format!("{NOT_MEASURED}: the system's file does not exist for that run (run `cargo xtask pipeline <name>` for PrivDNN, `cargo xtask baseline edge <name>` / `cargo xtask baseline twoserver <name>` for the baselines). {NOT_APPLICABLE}: split training (SPNN) is a training protocol: its accuracy, time per epoch, traffic and leakage are in the training table `spnn_training`, not in these per-image inference columns. {NA}: the file does not record that quantity."));
}
