//! The naive split network (no cryptography) on a tiny synthetic task: z1 of a step equals
//! conv(W_A, x_A) + conv(W_B, x_B) + b computed independently (direct loops over each holder's
//! own columns), each holder's update uses its own columns only, the run trains (loss
//! decreases), bytes match the analytic count, and σ > 0 is refused.

use privdnn_artifacts::DatasetSplit;
use privdnn_mpc::ring;
use privdnn_spnn::fixed::Geometry;
use privdnn_spnn::naive::{NaiveHolder, NaiveRun, naive_analytic};

mod common;
use common::{ONE_TRAINING, settings, task};

/// Holder `party`'s fixed-point pixel (ci, y, x) of image `i`, zero outside its columns.
fn pixel(
    g: &Geometry,
    split: &DatasetSplit,
    party: usize,
    i: usize,
    (ci, y, x): (usize, usize, usize),
) -> i64 {
    let (a, b) = g.columns(party);
    if x < a || x >= b {
        return 0;
    }
    let (h, w) = (g.input.h, g.input.w);
    let v = split.images[((i * g.input.c + ci) * h + y) * w + x] as f64;
    ring::to_signed(ring::encode_fixed((v / 255.0 - 0.5) / 0.25, 8))
}

/// conv(W_p, x_p) (+ b for holder A) of image `i` by direct loops, `[cout, oh, ow]`.
fn direct_z(g: &Geometry, split: &DatasetSplit, h: &NaiveHolder, i: usize) -> Vec<i64> {
    let out = g.output();
    let w = |co: usize, ci: usize, ky: usize, kx: usize| {
        ring::to_signed(h.weights[((co * g.input.c + ci) * g.k + ky) * g.k + kx])
    };
    let mut z = Vec::with_capacity(out.len());
    for co in 0..g.cout {
        for oy in 0..out.h {
            for ox in 0..out.w {
                let mut acc = if h.party == 0 {
                    ring::to_signed(h.bias[co])
                } else {
                    0
                };
                for ci in 0..g.input.c {
                    for ky in 0..g.k {
                        for kx in 0..g.k {
                            let (y, x) = (oy * g.stride + ky, ox * g.stride + kx);
                            let p = pixel(g, split, h.party, i, (ci, y, x));
                            acc = acc.wrapping_add(w(co, ci, ky, kx).wrapping_mul(p));
                        }
                    }
                }
                z.push(acc);
            }
        }
    }
    z
}

/// Σ over images and positions of δ · x_p (holder `party`'s columns only), per weight.
fn direct_grad(
    g: &Geometry,
    split: &DatasetSplit,
    party: usize,
    idx: &[usize],
    delta: &[u64],
) -> Vec<i64> {
    let out = g.output();
    let mut grad = vec![0i64; g.weights()];
    for (n, &i) in idx.iter().enumerate() {
        let d = &delta[n * out.len()..(n + 1) * out.len()];
        for co in 0..g.cout {
            for ci in 0..g.input.c {
                for ky in 0..g.k {
                    for kx in 0..g.k {
                        let slot = &mut grad[((co * g.input.c + ci) * g.k + ky) * g.k + kx];
                        for oy in 0..out.h {
                            for ox in 0..out.w {
                                let p = pixel(g, split, party, i, (ci, oy + ky, ox + kx));
                                let dv = ring::to_signed(d[(co * out.h + oy) * out.w + ox]);
                                *slot = slot.wrapping_add(dv.wrapping_mul(p));
                            }
                        }
                    }
                }
            }
        }
    }
    grad
}

#[test]
fn z1_is_the_sum_of_each_holders_own_conv_and_updates_use_own_columns() {
    let _one = ONE_TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let (task, train, _) = task();
    let s = settings(1);
    let mut run = NaiveRun::new(task, s.clone()).expect("run");
    let g = *run.geometry();
    assert_eq!(g.pad, 0, "the direct loops assume LeNet's unpadded conv1");
    let before = run.holders.clone();
    assert_eq!(before[0].weights, before[1].weights, "same initial conv1");
    let idx: Vec<usize> = (0..16).collect();
    let step = run.step(&train, &idx, 0.01, 0.05).expect("step");
    let mut want = Vec::new();
    for &i in &idx {
        let (za, zb) = (
            direct_z(&g, &train, &before[0], i),
            direct_z(&g, &train, &before[1], i),
        );
        want.extend(
            za.iter()
                .zip(&zb)
                .map(|(a, b)| ring::from_signed(a.wrapping_add(*b))),
        );
    }
    assert_eq!(step.z1, want, "z1 = conv(W_A, x_A) + conv(W_B, x_B) + b");
    let enc = s.encoding;
    let rate = enc.rate(0.05, idx.len());
    for (p, old) in before.iter().enumerate() {
        let grad = direct_grad(&g, &train, p, &idx, &step.delta);
        let expect: Vec<u64> = old
            .weights
            .iter()
            .zip(&grad)
            .map(|(w, gv)| {
                w.wrapping_sub((gv.wrapping_mul(rate as i64) >> enc.update_shift()) as u64)
            })
            .collect();
        assert_eq!(
            run.holders[p].weights, expect,
            "holder {p}: W −= lr/n Σ δ·x_p"
        );
    }
    assert_ne!(run.holders[0].weights, run.holders[1].weights);
    assert_eq!(run.holders[1].bias, before[1].bias, "holder B has no bias");
    assert_ne!(
        run.holders[0].bias, before[0].bias,
        "holder A updates the bias"
    );
}

#[test]
fn trains_and_counts_bytes() {
    let _one = ONE_TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let (task, train, test) = task();
    let mut run = NaiveRun::new(task, settings(4)).expect("run");
    let (g, d) = (*run.geometry(), run.feature_dim());
    let out = run.train(&train, &test).expect("train");
    assert_eq!(out.steps, 12);
    assert_eq!(out.history.len(), 4);
    let (first, last) = (&out.history[0], &out.history[3]);
    assert!(last.train_loss < first.train_loss, "{:?}", out.history);
    for r in &out.history {
        assert!(
            r.train_loss.is_finite() && (0.0..=100.0).contains(&r.test_accuracy),
            "{r:?}"
        );
        assert!(r.seconds >= r.server_seconds, "{r:?}");
    }
    let one = naive_analytic(&g, 16, d);
    assert_eq!(out.analytic.a_to_server, 12 * one.a_to_server);
    assert_eq!(out.analytic.server_to_b, 12 * one.server_to_b);
    assert_eq!(
        out.bytes.a_to_b + out.bytes.b_to_a + out.bytes.dealer_to_b,
        0
    );
    for (got, want) in [
        (out.bytes.a_to_server, out.analytic.a_to_server),
        (out.bytes.b_to_server, out.analytic.b_to_server),
        (out.bytes.server_to_a, out.analytic.server_to_a),
        (out.bytes.server_to_b, out.analytic.server_to_b),
    ] {
        assert!(
            got >= want && (got - want) as f64 / (want as f64) < 0.01,
            "{got} vs {want}"
        );
    }
    // evaluation is deterministic and reproduces the last record
    assert_eq!(run.accuracy(&test).expect("accuracy"), last.test_accuracy);
}

#[test]
fn noise_is_refused() {
    let (task, _, _) = task();
    let mut s = settings(1);
    s.noise_sigma = 0.01;
    let Err(err) = NaiveRun::new(task, s) else {
        panic!("σ > 0 was accepted");
    };
    assert!(err.to_string().contains("--noise 0"), "{err}");
}
