//! The four-system comparison: PrivDNN (owner-keyed and user-keyed HE), two-edge masking (Tian et
//! al.), two-server garbled circuits (Li et al.) and split training (SPNN), each on MNIST, GTSRB
//! quick and CIFAR-10 quick. Every number comes from a file a stage or baseline wrote under
//! `results/<run>/`; a system without its file is "not yet measured". The files are read as
//! untyped JSON (this crate depends on no other privdnn crate) and every field is optional:
//! a missing field shows as [`NA`](crate::table::NA).
//!
//! Sources (relative to the run folder):
//! - PrivDNN owner-keyed: `infer/metrics.json`, the `separate` mode report (phases in wall
//!   seconds; the user's query phases and the owner's decryption);
//! - PrivDNN user-keyed: `variants/user-keyed/infer/metrics.json` (`privdnn-infer` with
//!   `he.mode = "user-keyed"` and `--variant user-keyed`), its `user-keyed` mode report;
//! - two-edge masking: `baselines/edge/metrics.json` (`cargo xtask baseline edge <pipeline>`);
//! - two-server GC: `baselines/twoserver/metrics.json` (`cargo xtask baseline twoserver <pipeline>`
//!   or the in-process `RunMetrics` of `privdnn-twoserver`);
//! - split training: a training protocol, so no per-image inference numbers: its rows point to
//!   the training table of [`training`] (`spnn_training`, from `baselines/spnn/metrics.json` and
//!   `attack/spnn_leakage.json` of the quick MNIST / Fashion-MNIST runs).

pub mod figure;
pub mod table;
pub mod training;

#[cfg(test)]
mod tests;

use std::path::Path;

use serde_json::Value;

use crate::error::AnalyzeError;
use crate::infer::ModeReport;
use crate::json::{Input, parse_value};
use crate::runs::Run;

/// The systems compared, in table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    /// PrivDNN, the owner holds the HE key and decrypts the selected outputs.
    OwnerKeyed,
    /// PrivDNN, the user holds the HE key; the owner evaluates on the user's ciphertexts.
    UserKeyed,
    /// IoT device with two edge servers and additive masks (Tian et al.).
    TwoEdge,
    /// Client with two servers, secret sharing and garbled circuits (Li et al.).
    TwoServer,
    /// Split training (SPNN).
    SplitTraining,
}

impl System {
    /// All systems, in table order.
    pub const ALL: [System; 5] = [
        System::OwnerKeyed,
        System::UserKeyed,
        System::TwoEdge,
        System::TwoServer,
        System::SplitTraining,
    ];

    /// Display name ("as reconstructed": the protocol was rebuilt from the paper's text).
    pub fn name(self) -> &'static str {
        match self {
            System::OwnerKeyed => "PrivDNN owner-keyed",
            System::UserKeyed => "PrivDNN user-keyed",
            System::TwoEdge => "two-edge masking (Tian et al., as reconstructed)",
            System::TwoServer => "two-server GC (Li et al., as reconstructed)",
            System::SplitTraining => "split training (SPNN, as reconstructed)",
        }
    }

    /// A short name for figure axes.
    pub fn short_name(self) -> &'static str {
        match self {
            System::OwnerKeyed => "PrivDNN owner-keyed",
            System::UserKeyed => "PrivDNN user-keyed",
            System::TwoEdge => "two-edge",
            System::TwoServer => "two-server",
            System::SplitTraining => "SPNN",
        }
    }

    /// Who learns what, in a few words.
    pub fn threat_model(self) -> &'static str {
        match self {
            System::OwnerKeyed => {
                "semi-honest; user gets the model minus the selected filters (HE-encrypted under the owner's key) and its results; owner decrypts blinded selected-layer outputs"
            }
            System::UserKeyed => {
                "semi-honest; owner evaluates the selected filters on the user's ciphertexts (user's key): owner learns nothing about inputs; user learns the selected layers' outputs"
            }
            System::TwoEdge => {
                "two non-colluding semi-honest edges hold the linear layers in plaintext; device's inputs and activations hidden by fresh masks; colluding edges learn input differences"
            }
            System::TwoServer => {
                "two non-colluding semi-honest servers (+ dealer) hold shares of weights and activations; client learns only its logits"
            }
            System::SplitTraining => {
                "client keeps its data and the first layers; server runs the rest on the client's protected activations"
            }
        }
    }

    /// The file this system's numbers come from, relative to the run folder.
    pub fn source(self) -> &'static str {
        match self {
            System::OwnerKeyed => "infer/metrics.json",
            System::UserKeyed => "variants/user-keyed/infer/metrics.json",
            System::TwoEdge => "baselines/edge/metrics.json",
            System::TwoServer => "baselines/twoserver/metrics.json",
            System::SplitTraining => "baselines/spnn/metrics.json",
        }
    }
}

/// The models of the comparison: (label, run folder).
pub const MODELS: [(&str, &str); 3] = [
    ("MNIST", "mnist"),
    ("GTSRB quick", "gtsrb-quick"),
    ("CIFAR-10 quick", "cifar10-quick"),
];

/// The baseline files of a run (PrivDNN owner-keyed is the run's `infer` input; split training
/// is read by [`training`]).
#[derive(Debug)]
pub struct SystemFiles {
    /// `variants/user-keyed/infer/metrics.json`.
    pub user_keyed: Input<Value>,
    /// `baselines/edge/metrics.json`.
    pub two_edge: Input<Value>,
    /// `baselines/twoserver/metrics.json`.
    pub two_server: Input<Value>,
}

impl SystemFiles {
    /// Loads the files under the run folder `dir`; unreadable ones go to `problems`.
    pub fn load(dir: &Path, problems: &mut Vec<AnalyzeError>) -> SystemFiles {
        let mut load = |s: System| Input::load(dir.join(s.source()), problems, parse_value);
        SystemFiles {
            user_keyed: load(System::UserKeyed),
            two_edge: load(System::TwoEdge),
            two_server: load(System::TwoServer),
        }
    }
}

/// One party's peak resident memory.
#[derive(Clone, Debug, PartialEq)]
pub struct PartyMemory {
    /// Party name.
    pub party: String,
    /// Bytes.
    pub bytes: f64,
}

/// What the table shows of one system on one model; `None` = the file lacks the field.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Measured {
    /// Protocol accuracy, percent.
    pub accuracy: Option<f64>,
    /// Images whose output equals the integer shadow's, percent.
    pub exact_match: Option<f64>,
    /// Client / device CPU seconds per image.
    pub client_cpu: Option<f64>,
    /// Server CPU seconds per image (all servers together).
    pub server_cpu: Option<f64>,
    /// The CPU columns are wall seconds of the parties' phases (no CPU time recorded).
    pub cpu_is_wall: bool,
    /// Single-image latency, seconds.
    pub latency: Option<f64>,
    /// Batched throughput, images per second.
    pub throughput: Option<f64>,
    /// Bytes per image, client → servers.
    pub bytes_up: Option<f64>,
    /// Bytes per image, servers → client.
    pub bytes_down: Option<f64>,
    /// Bytes per image between servers (counted in the modelled latency).
    pub bytes_between: Option<f64>,
    /// Sequential rounds (flights) of one query.
    pub rounds: Option<f64>,
    /// Peak memory per party.
    pub memory: Vec<PartyMemory>,
}

/// A link of the latency model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Link {
    /// Name in the table.
    pub name: &'static str,
    /// Round-trip time, seconds.
    pub rtt_s: f64,
    /// Bandwidth, bits per second.
    pub bits_per_s: f64,
}

/// The modelled LAN: 0.2 ms round trip, 1 Gbit/s.
pub const LAN: Link = Link {
    name: "LAN",
    rtt_s: 0.2e-3,
    bits_per_s: 1e9,
};

/// The modelled WAN: 40 ms round trip, 100 Mbit/s.
pub const WAN: Link = Link {
    name: "WAN",
    rtt_s: 40e-3,
    bits_per_s: 1e8,
};

impl Measured {
    /// Modelled seconds per image on `link`: rounds × RTT + bytes ÷ bandwidth + CPU (client and
    /// servers; bytes of every link, up, down and between servers). `None` when an input is
    /// missing.
    pub fn modelled_latency(&self, link: Link) -> Option<f64> {
        let bytes = self.bytes_up? + self.bytes_down? + self.bytes_between.unwrap_or(0.0);
        Some(
            self.rounds? * link.rtt_s
                + bytes * 8.0 / link.bits_per_s
                + self.client_cpu?
                + self.server_cpu?,
        )
    }
}

/// A number at a JSON pointer.
fn at(v: &Value, pointer: &str) -> Option<f64> {
    v.pointer(pointer)?.as_f64()
}

/// `a / b` when both exist and `b` is positive.
fn per(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// Sum of the present values, `None` when none is.
fn sum(values: &[Option<f64>]) -> Option<f64> {
    values.iter().flatten().copied().reduce(|a, b| a + b)
}

fn memory(parts: &[(&str, Option<f64>)]) -> Vec<PartyMemory> {
    parts
        .iter()
        .filter_map(|(party, bytes)| {
            Some(PartyMemory {
                party: party.to_string(),
                bytes: (*bytes)?,
            })
        })
        .collect()
}

/// PrivDNN owner-keyed from the `separate` report of `infer/metrics.json`. The infer stage
/// records wall seconds per phase: client = the user's query phases (HE evaluation, unblinding,
/// plaintext tail), server = the owner's decryption; one request/reply round per query.
pub fn owner_keyed(r: &ModeReport) -> Measured {
    let images = r.images;
    Measured {
        accuracy: r.accuracy,
        exact_match: r.exact_match_rate.map(|x| 100.0 * x),
        client_cpu: per(
            sum(&[
                r.phase("user_he_eval"),
                r.phase("user_eval"),
                r.phase("user_unblind"),
                r.phase("plain_tail"),
            ]),
            images,
        ),
        server_cpu: per(r.phase("owner_decrypt"), images),
        cpu_is_wall: true,
        latency: r.latency_s,
        throughput: per(Some(1.0), r.per_image_s),
        bytes_up: per(r.bytes_user_to_owner, images),
        bytes_down: per(r.bytes_owner_to_user, images),
        bytes_between: None,
        rounds: images.map(|_| 1.0),
        memory: memory(&[("both (one process)", r.peak_rss_bytes)]),
    }
}

/// PrivDNN user-keyed from its `user-keyed` mode report (CPU seconds recorded per party; the
/// user's CPU includes its plaintext tail).
pub fn user_keyed(file: &Value) -> Option<Measured> {
    let r = file
        .get("mode_reports")?
        .as_array()?
        .iter()
        .find(|m| m.get("mode").and_then(Value::as_str) == Some("user-keyed"))?;
    let images = at(r, "/images");
    let tail = per(at(r, "/phases/plain_tail/cpu_s"), images);
    Some(Measured {
        accuracy: at(r, "/accuracy"),
        exact_match: at(r, "/exact_match_rate").map(|x| 100.0 * x),
        client_cpu: at(r, "/user_cpu_per_image_s").map(|u| u + tail.unwrap_or(0.0)),
        server_cpu: at(r, "/owner_cpu_per_image_s"),
        cpu_is_wall: false,
        latency: at(r, "/latency_s"),
        throughput: per(Some(1.0), at(r, "/per_image_s")),
        bytes_up: per(at(r, "/bytes_user_to_owner"), images),
        bytes_down: per(at(r, "/bytes_owner_to_user"), images),
        bytes_between: None,
        rounds: at(r, "/calls").map(|_| 1.0),
        memory: memory(&[
            ("user", at(r, "/user_peak_rss_bytes")),
            ("owner", at(r, "/owner_peak_rss_bytes")),
        ]),
    })
}

/// Two-edge masking from `baselines/edge/metrics.json` (bytes as the device's links counted
/// them in the batched run; server CPU = both edges).
pub fn two_edge(v: &Value) -> Measured {
    let link =
        |name: &str, dir: &str| at(v, &format!("/communication/batched_per_image/{name}/{dir}"));
    Measured {
        accuracy: at(v, "/accuracy/protocol"),
        exact_match: at(v, "/exact_match_rate"),
        client_cpu: at(v, "/device/cpu_seconds_per_image_batched"),
        server_cpu: sum(&[
            at(v, "/edges/a/cpu_seconds_per_image"),
            at(v, "/edges/b/cpu_seconds_per_image"),
        ]),
        cpu_is_wall: false,
        latency: at(v, "/latency/single_image_median_seconds"),
        throughput: at(v, "/throughput/images_per_second"),
        bytes_up: sum(&[link("link_a", "bytes_sent"), link("link_b", "bytes_sent")]),
        bytes_down: sum(&[
            link("link_a", "bytes_received"),
            link("link_b", "bytes_received"),
        ]),
        bytes_between: None,
        rounds: at(v, "/communication/rounds_per_image"),
        memory: memory(&[
            ("device", at(v, "/peak_rss_bytes/device")),
            ("edge A", at(v, "/peak_rss_bytes/edge_a")),
            ("edge B", at(v, "/peak_rss_bytes/edge_b")),
        ]),
    }
}

/// The first number found among `pointers`.
fn first(v: &Value, pointers: &[&str]) -> Option<f64> {
    pointers.iter().find_map(|p| at(v, p))
}

/// Two-server GC from `baselines/twoserver/metrics.json`: the TCP deployment's report
/// (`privdnn-baseline twoserver report`: CPU seconds and peak memory per party, bytes per link as
/// the client and server 1 counted them in the batched run), else the in-process `RunMetrics`
/// of `privdnn-twoserver` (compute seconds per party, wall). Server CPU = both servers (the
/// dealer's offline work is not counted).
pub fn two_server(v: &Value) -> Measured {
    let batched = |link: &str, dir: &str| at(v, &format!("/online/per_image_batched/{link}/{dir}"));
    let online = |link: &str| at(v, &format!("/online_per_image/{link}"));
    let party = |name: &str, what: &str| at(v, &format!("/parties/{name}/{what}"));
    let deployed = v.get("parties").is_some();
    let pick = |tcp: Option<f64>, in_process: Option<f64>| if deployed { tcp } else { in_process };
    Measured {
        accuracy: first(v, &["/accuracy/protocol", "/protocol_accuracy"]),
        exact_match: at(v, "/exact_match_rate"),
        client_cpu: pick(
            party("client", "cpu_seconds_per_image"),
            at(v, "/seconds_per_image/client"),
        ),
        server_cpu: pick(
            sum(&[
                party("server1", "cpu_seconds_per_image"),
                party("server2", "cpu_seconds_per_image"),
            ]),
            sum(&[
                at(v, "/seconds_per_image/s1"),
                at(v, "/seconds_per_image/s2"),
            ]),
        ),
        cpu_is_wall: !deployed,
        latency: first(
            v,
            &[
                "/latency/single_image_median_seconds",
                "/latency_median_seconds",
            ],
        ),
        throughput: at(v, "/throughput/images_per_second"),
        bytes_up: pick(
            sum(&[
                batched("client_s1", "bytes_sent"),
                batched("client_s2", "bytes_sent"),
            ]),
            sum(&[online("client_s1"), online("client_s2")]),
        ),
        bytes_down: pick(
            sum(&[
                batched("client_s1", "bytes_received"),
                batched("client_s2", "bytes_received"),
            ]),
            sum(&[online("s1_client"), online("s2_client")]),
        ),
        bytes_between: pick(
            sum(&[
                batched("s1_s2", "bytes_sent"),
                batched("s1_s2", "bytes_received"),
            ]),
            sum(&[online("s1_s2"), online("s2_s1")]),
        ),
        rounds: first(v, &["/online/rounds_per_image", "/rounds_per_image"]),
        memory: memory(&[
            ("client", party("client", "peak_rss_bytes")),
            ("server 1", party("server1", "peak_rss_bytes")),
            ("server 2", party("server2", "peak_rss_bytes")),
            ("dealer", party("dealer", "peak_rss_bytes")),
        ]),
    }
}

/// What `system` measured on `run`, `None` when its file (or report) does not exist.
pub fn measured(system: System, run: &Run) -> Option<Measured> {
    match system {
        System::OwnerKeyed => run.infer.get()?.mode("separate").map(owner_keyed),
        System::UserKeyed => user_keyed(run.systems.user_keyed.get()?),
        System::TwoEdge => run.systems.two_edge.get().map(two_edge),
        System::TwoServer => run.systems.two_server.get().map(two_server),
        // a training protocol: its numbers are in the training table (`training`)
        System::SplitTraining => None,
    }
}
