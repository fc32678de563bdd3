//! HE tables: measured inference cost per mode (`infer/metrics.json`) and the analytic operation
//! counts behind Fig. 5.

use super::{missing_note, model_name};
use crate::ops::{Arch, Network, Shape};
use crate::runs::{RefDataset, Run};
use crate::table::{NA, Table, acc, count, mib, num, secs};

/// The HE cost table: time per phase, per image, latency, memory, sizes, traffic, op counts,
/// per mode.
pub fn he_costs(runs: &[Run]) -> Table {
    let reports: Vec<(&Run, &crate::infer::ModeReport)> = runs
        .iter()
        .filter_map(|r| r.infer.get().map(|m| (r, m)))
        .flat_map(|(r, m)| m.reports.iter().map(move |x| (r, x)))
        .collect();
    let mut phases: Vec<String> = Vec::new();
    let mut ops: Vec<String> = Vec::new();
    for (_, r) in &reports {
        for (p, _) in &r.phases {
            if !phases.contains(p) {
                phases.push(p.clone());
            }
        }
        for (o, _) in &r.ops {
            if !ops.contains(o) {
                ops.push(o.clone());
            }
        }
    }
    let mut columns: Vec<String> = [
        "run",
        "mode",
        "selection",
        "percent",
        "images",
        "accuracy %",
        "exact match",
    ]
    .map(String::from)
    .to_vec();
    columns.extend(phases.iter().map(|p| format!("{p} s")));
    columns.extend(
        [
            "total s",
            "per image s",
            "latency s",
            "peak RSS MiB",
            "model MiB",
            "eval keys MiB",
            "user→owner MiB",
            "owner→user MiB",
        ]
        .map(String::from),
    );
    columns.extend(ops.iter().cloned());
    let mut t = Table {
        id: "he_costs".into(),
        title: "HE inference cost per mode (separate / full block / remove / plaintext)".into(),
        columns,
        rows: Vec::new(),
        notes: Vec::new(),
    };
    for (run, r) in &reports {
        let mut row = vec![
            run.name.clone(),
            r.mode.clone(),
            r.selection.clone().unwrap_or_else(|| NA.to_string()),
            num(r.percent, 0),
            count(r.images),
            acc(r.accuracy),
            num(r.exact_match_rate, 4),
        ];
        row.extend(phases.iter().map(|p| secs(r.phase(p))));
        row.extend([
            secs(r.total_seconds()),
            secs(r.per_image_s),
            secs(r.latency_s),
            mib(r.peak_rss_bytes),
            mib(r.model_bytes),
            mib(r.eval_key_bytes),
            mib(r.bytes_user_to_owner),
            mib(r.bytes_owner_to_user),
        ]);
        row.extend(ops.iter().map(|o| count(r.op(o))));
        t.push(row);
    }
    t.note("Source: `infer/metrics.json` of each run (provisional schema, see `crates/privdnn-analyze/src/infer.rs`). total s = sum of the phases (whole batch).");
    for run in runs {
        missing_note(
            &mut t,
            run,
            &run.infer,
            &run.pipeline_command(),
            Some("infer"),
        );
    }
    t
}

/// Selection points of the op-count table for one model: LeNet5 groups, or percent points.
fn op_points(net: &Network, shape: &Shape, max_group: [usize; 2]) -> Vec<(String, [u64; 2])> {
    if shape.arch == Arch::Lenet5 {
        let mut out = Vec::new();
        for a in 1..=(max_group[0] as u64).min(net.channels[0]) {
            for b in a..=(max_group[1] as u64).min(net.channels[1]) {
                out.push((format!("({a}, {b})"), [a, b]));
            }
        }
        let [c1, c2] = net.channels;
        out.push(("100 %".to_string(), [c1, c2]));
        out
    } else {
        [5.0, 10.0, 25.0, 50.0, 75.0, 100.0]
            .iter()
            .map(|p| (format!("{p} %"), net.percent_sizes(*p)))
            .collect()
    }
}

/// The models of the op-count table and Fig. 5: the reference's five at their paper shapes,
/// then each distinct shape among the runs. (label, runs, shape, largest LeNet5 group).
pub fn op_models(runs: &[Run]) -> Vec<(String, Vec<String>, Shape, [usize; 2])> {
    let mut out: Vec<(String, Vec<String>, Shape, [usize; 2])> = RefDataset::ALL
        .iter()
        .map(|d| {
            let group = match d {
                RefDataset::Emnist => [2, 4],
                _ => [2, 6],
            };
            (
                format!("{} (paper shape)", d.name()),
                Vec::new(),
                d.paper_shape(),
                group,
            )
        })
        .collect();
    for run in runs {
        let Some(shape) = run.shape() else { continue };
        if let Some(existing) = out.iter_mut().find(|m| m.2.key() == shape.key()) {
            existing.1.push(run.name.clone());
            continue;
        }
        out.push((
            format!("{} ({})", model_name(run), run.dataset()),
            vec![run.name.clone()],
            shape,
            run.config.pipeline.select.max_group,
        ));
    }
    out
}

/// The analytic HE operation counts behind Fig. 5.
pub fn he_operations(runs: &[Run]) -> Table {
    let mut t = Table::new(
        "fig5_he_operations",
        "Fig. 5 data — share of the network's arithmetic under HE (separate mode, analytic)",
        &[
            "model",
            "runs",
            "selection",
            "|S1|",
            "|S2|",
            "HE mults",
            "of which ct×ct",
            "HE adds",
            "network mults",
            "network adds",
            "% mults",
            "% adds",
            "% neurons",
        ],
    );
    for (label, names, shape, group) in op_models(runs) {
        let net = Network::new(&shape);
        for (point, [s1, s2]) in op_points(&net, &shape, group) {
            let e = net.encrypted(s1, s2);
            t.push(vec![
                label.clone(),
                names.join(" "),
                point,
                s1.to_string(),
                s2.to_string(),
                e.counts.mults.to_string(),
                e.ct_ct_mults.to_string(),
                e.counts.adds.to_string(),
                net.total.mults.to_string(),
                net.total.adds.to_string(),
                num(Some(e.mult_percent), 2),
                num(Some(e.add_percent), 2),
                num(Some(e.neuron_percent), 2),
            ]);
        }
    }
    t.note("Counts per image from the layer shapes (formulas in `crates/privdnn-analyze/src/ops.rs`): conv taps on zero padding are skipped, pool = w²−1 adds + 1 mult, square = 1 mult, BN = 1 mult + 1 add, FC = in·out mults and adds. Encrypted: the selected conv1 filters, their layer-1 ops, the selected conv2 filters over all conv1 channels (ct×ct for the selected inputs).");
    t.note("Percent points use |S_k| = max(1, ⌊C_k·p/100⌋). The reference's scripts counted VGG16's conv2 at 16×16 instead of 32×32 (spec §6), so our CIFAR10 shares are about 4× theirs.");
    t
}
