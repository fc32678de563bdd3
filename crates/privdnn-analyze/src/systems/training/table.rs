//! The split-training tables: `spnn_training` (one row per run × variant: accuracy and gap to
//! plaintext, time per epoch and its split, forwards checked against the integer shadow, bytes
//! and rounds per step measured vs analytic, leakage, threat model) and `spnn_training_epochs`
//! (test accuracy per epoch of every variant).

use super::{Attacker, LEAKAGE, METRICS, TrainingRun, VARIANTS, Variant};
use crate::systems::table::NOT_MEASURED;
use crate::table::{NA, Table, count, num, ratio, secs};

/// Number of cells filled from `metrics.json` (between "variant" and the leakage columns).
const METRIC_COLUMNS: usize = 14;

/// The attackers of the leakage columns, in column order.
pub const ATTACKERS: [&str; 2] = ["blind", "released_conv1"];

/// Display names of the links of one training step, in display order.
const LINKS: [(&str, &str); 7] = [
    ("a_to_b", "A→B"),
    ("b_to_a", "B→A"),
    ("a_to_server", "A→S"),
    ("b_to_server", "B→S"),
    ("server_to_a", "S→A"),
    ("server_to_b", "S→B"),
    ("dealer_to_b", "D→B"),
];

/// The training table.
pub fn spnn_training(runs: &[TrainingRun]) -> Table {
    let mut t = Table::new(
        "spnn_training",
        "Split training (SPNN, as reconstructed) beside plaintext training: accuracy, time per epoch, traffic per step and input leakage per variant",
        &[
            "run",
            "dataset",
            "variant",
            "noise σ",
            "final test accuracy %",
            "gap to plaintext (points)",
            "s per epoch",
            "epoch time ÷ plaintext",
            "crypto s per epoch",
            "server s per epoch",
            "transfer s per epoch",
            "first-layer forwards exact (exact / checked)",
            "bytes per step measured",
            "bytes per step analytic",
            "bytes deviation %",
            "bytes per step per link: measured / analytic (deviation %)",
            "rounds per step",
            "leakage, blind attacker (z1 only): PSNR dB / SSIM",
            "leakage, attacker with released conv1: PSNR dB / SSIM",
            "threat model (who learns what)",
            "source",
        ],
    );
    for run in runs {
        let metrics = run.metrics.get();
        let plain = metrics.and_then(|m| m.variant("plaintext"));
        let dataset = metrics.and_then(|m| m.dataset.clone());
        for (name, label) in VARIANTS {
            let mut row = vec![
                run.name.clone(),
                dataset.clone().unwrap_or_else(|| NA.to_string()),
                label.to_string(),
            ];
            match metrics.and_then(|m| m.variant(name)) {
                Some(v) => row.extend(cells(v, plain)),
                None => row.extend(std::iter::repeat_n(
                    NOT_MEASURED.to_string(),
                    METRIC_COLUMNS,
                )),
            }
            row.extend(ATTACKERS.iter().map(|a| leakage_cell(run, name, a)));
            row.push(threat_model(run, name));
            row.push(format!("results/{}/{{{METRICS}, {LEAKAGE}}}", run.name));
            t.push(row);
        }
    }
    notes(&mut t, runs);
    t
}

/// Seconds, "0" for exactly zero (naive split has no crypto).
fn seconds(v: Option<f64>) -> String {
    if v == Some(0.0) { "0".into() } else { secs(v) }
}

/// A signed difference with two decimals.
fn signed(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:+.2}"),
        _ => NA.to_string(),
    }
}

/// `(measured − analytic) / analytic` in percent.
fn deviation(measured: Option<f64>, analytic: Option<f64>) -> Option<f64> {
    match (measured, analytic) {
        (Some(m), Some(a)) if a > 0.0 => Some(100.0 * (m - a) / a),
        (Some(m), Some(a)) if a == 0.0 && m == 0.0 => Some(0.0),
        _ => None,
    }
}

fn total(links: &[(String, f64)]) -> Option<f64> {
    links.iter().map(|(_, b)| *b).reduce(|a, b| a + b)
}

fn link(links: &[(String, f64)], key: &str) -> Option<f64> {
    links.iter().find(|(k, _)| k == key).map(|(_, b)| *b)
}

/// "A→B 1200 / 1200 (+0.00 %); …" over the links either map records.
fn per_link(v: &Variant) -> String {
    let mut keys: Vec<(String, String)> = LINKS
        .iter()
        .map(|(k, name)| (k.to_string(), name.to_string()))
        .collect();
    for (k, _) in v.bytes.iter().chain(&v.analytic_bytes) {
        if !keys.iter().any(|(known, _)| known == k) {
            keys.push((k.clone(), k.clone()));
        }
    }
    let cells: Vec<String> = keys
        .iter()
        .filter_map(|(key, name)| {
            let (m, a) = (link(&v.bytes, key), link(&v.analytic_bytes, key));
            (m.is_some() || a.is_some()).then(|| {
                format!(
                    "{name} {} / {} ({} %)",
                    count(m),
                    count(a),
                    signed(deviation(m, a))
                )
            })
        })
        .collect();
    if cells.is_empty() {
        NA.to_string()
    } else {
        cells.join("; ")
    }
}

/// The cells of one measured variant.
fn cells(v: &Variant, plain: Option<&Variant>) -> Vec<String> {
    let is_plain = v.name == "plaintext";
    let gap = match plain.and_then(|p| p.test_accuracy) {
        _ if is_plain => "(reference)".to_string(),
        Some(p) => signed(v.test_accuracy.map(|a| a - p)),
        None => NA.to_string(),
    };
    let forwards = match (v.forwards_exact, v.forwards_checked) {
        (Some(x), Some(y)) if y > 0.0 => format!("{} / {}", count(Some(x)), count(Some(y))),
        _ => NA.to_string(),
    };
    let (measured, analytic) = (total(&v.bytes), total(&v.analytic_bytes));
    vec![
        v.noise_sigma
            .map_or_else(|| NA.to_string(), |s| format!("{s}")),
        num(v.test_accuracy, 2),
        gap,
        secs(v.seconds_per_epoch),
        ratio(v.seconds_per_epoch, plain.and_then(|p| p.seconds_per_epoch)),
        seconds(v.crypto_seconds),
        seconds(v.server_seconds),
        seconds(v.transfer_seconds),
        forwards,
        count(measured),
        count(analytic),
        signed(deviation(measured, analytic)),
        per_link(v),
        count(v.rounds_per_step),
    ]
}

fn score(a: &Attacker) -> String {
    format!("{} dB / {}", num(a.psnr_db, 2), num(a.ssim, 3))
}

/// PSNR / SSIM of `attacker` on `variant`; plaintext training has no server view ("–").
fn leakage_cell(run: &TrainingRun, variant: &str, attacker: &str) -> String {
    match run.leakage.get().and_then(|l| l.score(variant, attacker)) {
        Some(a) => score(a),
        None if variant == "plaintext" => NA.to_string(),
        None => NOT_MEASURED.to_string(),
    }
}

/// What the SPNN parties learn: the file's `learns` (server first), else the default line.
fn spnn_learns(run: &TrainingRun) -> String {
    let order = ["server", "holder_a", "holder_b", "dealer"];
    let mut learns: Vec<&(String, String)> = run
        .metrics
        .get()
        .map(|m| m.learns.iter().collect())
        .unwrap_or_default();
    if learns.is_empty() {
        return "semi-honest, non-colluding: two holders split each image by pixel columns and secret-share conv1 (dealer-made Beaver triples); the server sees z1 = conv1 output of every training image (not the pixels, labels or conv1's weights); holder B keeps the last layer and the labels".into();
    }
    learns.sort_by_key(|(party, _)| order.iter().position(|o| o == party).unwrap_or(order.len()));
    learns
        .iter()
        .map(|(party, text)| format!("{party}: {text}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn threat_model(run: &TrainingRun, variant: &str) -> String {
    match variant {
        "plaintext" => "one party trains on its own data: no split, no protection (the reference)".into(),
        "spnn_noise" => format!("as SPNN, with SGLD noise σ on the holders' conv1 updates — {}", spnn_learns(run)),
        "naive_split" => "no cryptography: the data holder computes conv1 in the clear and sends z1; the server sees z1 as in SPNN, but inputs and conv1 are not secret-shared".into(),
        _ => spnn_learns(run),
    }
}

fn notes(t: &mut Table, runs: &[TrainingRun]) {
    t.note("\"as reconstructed\": SPNN was rebuilt from the paper's text; the numbers are those of our reconstruction (deviations: `as_reconstructed` in each metrics.json), not the paper's.");
    t.note("Gap to plaintext = variant − plaintext final test accuracy (points; negative = less accurate). Epoch time ÷ plaintext = s per epoch over the plaintext variant's. Crypto / server / transfer: the split of one epoch (holders and dealer on the secret-shared first layer / the server's layers / moving messages).");
    t.note("First-layer forwards exact: forwards whose reconstructed conv1 output equals the integer shadow's, of those checked (– where nothing is shared: plaintext, naive split).");
    t.note("Bytes per step: one training step (one batch), measured on each link vs the analytic count; deviation = (measured − analytic) ÷ analytic. Links: A, B = the two data holders, S = server, D = dealer. Rounds: sequential message flights of one step.");
    t.note("Leakage: PSNR (dB) / SSIM of the training images an attacker reconstructs from the server's view (z1 of the last epoch); blind = knows z1 only, released conv1 = also knows the released model's first layer. Higher = more leakage. Plaintext training has no server (–).");
    t.note(format!("{NOT_MEASURED}: the run's file or that variant does not exist yet (the commands that write the files are in the run notes below). {NA}: the file does not record that quantity."));
    for run in runs {
        run_note(t, run);
    }
}

/// Per-run notes: noise cost, the leakage reference, and which files are missing.
fn run_note(t: &mut Table, run: &TrainingRun) {
    let mut parts = Vec::new();
    if let Some(m) = run.metrics.get() {
        let acc = |n: &str| m.variant(n).and_then(|v| v.test_accuracy);
        if let (Some(plain), Some(noisy)) = (acc("spnn"), acc("spnn_noise")) {
            parts.push(format!(
                "accuracy cost of the noise {} points (SPNN − SPNN + noise)",
                num(Some(plain - noisy), 2)
            ));
        }
    }
    if let Some(l) = run.leakage.get() {
        let reference = l
            .reference
            .as_ref()
            .map(score)
            .unwrap_or_else(|| NA.to_string());
        parts.push(format!(
            "leakage over {} images; reference guess (mean training image) {reference}",
            count(l.images)
        ));
    }
    parts.extend(run.metrics.problem(&run.metrics_command()));
    parts.extend(run.leakage.problem(&run.leakage_command()));
    if !parts.is_empty() {
        t.note(format!("{}: {}", run.name, parts.join("; ")));
    }
}

/// Test accuracy per epoch: one row per run × epoch, one column per variant.
pub fn spnn_training_epochs(runs: &[TrainingRun]) -> Table {
    let mut columns = vec!["run".to_string(), "epoch".to_string()];
    columns.extend(
        VARIANTS
            .iter()
            .map(|(_, label)| format!("{label} test accuracy %")),
    );
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    let mut t = Table::new(
        "spnn_training_epochs",
        "Split training (SPNN, as reconstructed): test accuracy per epoch, plaintext vs SPNN vs SPNN + noise vs naive split",
        &columns,
    );
    for run in runs {
        let variants: Vec<Option<&Variant>> = VARIANTS
            .iter()
            .map(|(name, _)| run.metrics.get().and_then(|m| m.variant(name)))
            .collect();
        let epochs = epoch_numbers(&variants);
        if epochs.is_empty() {
            let mut row = vec![run.name.clone(), NA.to_string()];
            row.extend(std::iter::repeat_n(
                NOT_MEASURED.to_string(),
                VARIANTS.len(),
            ));
            t.push(row);
        }
        for e in epochs {
            let mut row = vec![run.name.clone(), format!("{e}")];
            row.extend(variants.iter().map(|v| match v {
                None => NOT_MEASURED.to_string(),
                Some(v) => num(accuracy_at(v, e), 2),
            }));
            t.push(row);
        }
    }
    t.note("Test accuracy after each epoch, from the `epochs` list of each variant in `baselines/spnn/metrics.json` (figure: `spnn_accuracy_<run>`). not yet measured: the run's file or that variant does not exist yet (see `spnn_training`); –: that variant has no entry for the epoch.");
    t
}

/// Epoch numbers of an entry (its `epoch`, else its position + 1).
fn numbered(v: &Variant) -> impl Iterator<Item = (u64, Option<f64>)> + '_ {
    v.epochs.iter().enumerate().map(|(i, e)| {
        let n = e
            .epoch
            .filter(|n| *n >= 0.0)
            .map_or(i as u64 + 1, |n| n.round() as u64);
        (n, e.test_accuracy)
    })
}

/// Sorted union of the epoch numbers of every variant.
pub(crate) fn epoch_numbers(variants: &[Option<&Variant>]) -> Vec<u64> {
    let mut all: Vec<u64> = variants
        .iter()
        .flatten()
        .flat_map(|v| numbered(v).map(|(n, _)| n))
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// Test accuracy of `v` after epoch `epoch`.
pub(crate) fn accuracy_at(v: &Variant, epoch: u64) -> Option<f64> {
    numbered(v).find(|(n, _)| *n == epoch).and_then(|(_, a)| a)
}
