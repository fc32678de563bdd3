//! Tests of the estimator's cost model: shapes → operation counts (checked against the counts
//! the HE engine reported for the MNIST quick run: `results/mnist-quick/infer/metrics.json`,
//! 2 residues, 5,000 images in one batch call), greedy candidate counts, the load model and the
//! comparison table.

use super::*;
use crate::estimate_compare::{Measured, ratio, table};
use crate::estimate_stages::{Clock, StageEstimate, attack_work, share};

/// LeNet5 6/16 at 28 px: conv1 5×5 + 2×2 pool folded (k1 = 6), conv2 5×5 without padding.
fn lenet() -> Shape {
    Shape {
        cin: 1,
        height: 28,
        width: 28,
        k1: 6,
        pad1: 0,
        pool: 2,
        c1: 6,
        h1: 12,
        w1: 12,
        k2: 5,
        pad2: 0,
        c2: 16,
        h2: 8,
        w2: 8,
    }
}

fn plan(s1: usize, s2: usize, chunk: usize, residency: &str) -> MemoryPlan {
    MemoryPlan {
        s1,
        s2,
        chunk,
        residency: residency.into(),
        weight_bytes: 0,
        working_set_bytes: 0,
    }
}

#[test]
fn separate_mode_counts_match_the_engine() {
    let ops = he_ops(&lenet(), &plan(1, 1, 512, "lifted"), (5000, 2, 8192), true);
    // engine: 3488 ct×ct, 416 relins, 626 lifts, 510 expansion key switches
    assert_eq!(ops.ct_ct, 3488);
    assert_eq!(ops.relins, 416);
    assert_eq!(ops.lifts, 626);
    assert_eq!(ops.key_switches, 510);
    assert_eq!(ops.decrypts, 128);
    // engine 25,976: maps whose pixels are zero in every image are skipped
    assert_eq!(ops.ct_pt, 26656);
}

#[test]
fn full_block_counts_match_the_engine() {
    let ops = he_ops(&lenet(), &plan(6, 16, 128, "packed"), (5000, 2, 8192), true);
    // engine: 308,928 ct×ct, 3,776 relins, 8,256 lifts, 5,588 expansion key switches
    assert_eq!(ops.ct_ct, 308_928);
    assert_eq!(ops.relins, 3776);
    assert_eq!(ops.lifts, 8256);
    assert_eq!(ops.key_switches, 5588);
}

#[test]
fn more_images_than_slots_take_more_calls() {
    let one = he_ops(&lenet(), &plan(1, 1, 512, "packed"), (8192, 1, 8192), true);
    let two = he_ops(&lenet(), &plan(1, 1, 512, "packed"), (8193, 1, 8192), true);
    assert_eq!(two.ct_ct, 2 * one.ct_ct);
    assert_eq!(two.key_switches, 2 * one.key_switches);
}

#[test]
fn padded_conv2_sums_fewer_taps_at_the_border() {
    let vgg = Shape {
        cin: 3,
        height: 32,
        width: 32,
        k1: 3,
        pad1: 1,
        pool: 1,
        c1: 16,
        h1: 32,
        w1: 32,
        k2: 3,
        pad2: 1,
        c2: 16,
        h2: 32,
        w2: 32,
    };
    // 32×32 positions × 9 taps, minus the taps outside the map: 30² interior × 9 + border
    assert_eq!(conv2_terms(&vgg), 9 * 32 * 32 - 4 * 3 * 32 + 4);
    assert_eq!(conv2_terms(&lenet()), 25 * 64);
    // rotated spatial layout: 4 images of 32×32 per slot row of 4096
    assert_eq!(capacity(&vgg, 8192, false), 8);
    assert_eq!(capacity(&vgg, 8192, true), 8192);
}

#[test]
fn expansion_costs_a_power_of_two_per_chunk() {
    assert_eq!(expansion_key_switches(188, 512), 255);
    assert_eq!(expansion_key_switches(256, 128), 254);
    // the last ciphertext holds one weight but is expanded to all 128 coefficients
    assert_eq!(expansion_key_switches(129, 128), 254);
    assert_eq!(selected_weights(&lenet(), 1, 1), 37 + 151);
}

#[test]
fn greedy_scores_every_remaining_candidate_per_step() {
    // LeNet5 (1, 1): 6 layer-1 candidates, 16 layer-2 candidates
    assert_eq!(greedy_candidates([6, 16], [1, 1], 1, None), [6, 16]);
    // VGG quarter at 50 %: 16+15+…+9 per layer
    assert_eq!(greedy_candidates([16, 16], [8, 8], 1, None), [100, 100]);
    // two filters per step: 16 + 14 + 12 + 10
    assert_eq!(greedy_candidates([16, 16], [8, 8], 2, None), [52, 52]);
    // pools of 2n candidates
    assert_eq!(greedy_candidates([16, 16], [2, 2], 1, Some([4, 4])), [7, 7]);
}

#[test]
fn load_shrinks_the_share_of_the_cores() {
    assert!((share(2, 0.0) - 2.0).abs() < 1e-9);
    assert!((share(2, 2.0) - 1.0).abs() < 1e-9);
    // a unit measured on an idle machine takes twice as long at load 2
    let idle = Clock {
        threads: 2,
        load_then: 0.0,
        load_now: 0.0,
    };
    let busy = Clock {
        load_now: 2.0,
        ..idle
    };
    let u = [1.0, 2.0];
    assert!((idle.wall(u, 10.0) - 10.0).abs() < 1e-9);
    assert!((busy.wall(u, 10.0) - 20.0).abs() < 1e-9);
    assert!((busy.he_wall(10.0, 2.0) - 10.0).abs() < 1e-9);
    // one thread: idle gets a whole core, load 2 a third... of 2 cores: two thirds
    assert!((busy.serial_wall(2.0) - 3.0).abs() < 1e-9);
}

#[test]
fn the_table_shows_ratios_and_missing_reports() {
    let p = StageEstimate {
        stage: "train",
        seconds: 100.0,
        peak_bytes: 100_000_000,
        bytes: 1_000_000,
        note: String::new(),
    };
    let m = Measured {
        seconds: Some(150.0),
        peak_bytes: None,
        bytes: Some(500_000),
    };
    let t = table(&[(p, m)]);
    assert!(
        t.contains("| train | 100.0 | 150.0 | 1.50 | 100.0 | – | – | 1.00 | 0.50 | 0.50 |"),
        "{t}"
    );
    assert_eq!(ratio(0.0, Some(1.0)), "–");
}

#[test]
fn attack_counts_every_sample_point_with_its_from_scratch_training() {
    // MNIST quick: 16 recovery epochs, 64 from scratch, 1,000 samples, four sample counts (the
    // 1,000 point is the `recover` experiment's), three sweep points
    let a = privdnn_config::AttackConfig {
        epochs: 16,
        scratch_epochs: 64,
        samples: 1000,
        sample_counts: vec![100, 500, 1000, 5000],
        ..Default::default()
    };
    let (images, evals) = attack_work(&a, 3);
    let per_sample = 2.0 * 16.0 + 64.0;
    let expected = 1000.0 * per_sample + 5600.0 * per_sample + 3.0 * 1000.0 * 32.0;
    assert!((images - expected).abs() < 1e-6, "{images} vs {expected}");
    assert!((evals - (3.0 + 9.0 + 6.0)).abs() < 1e-9);
    // without `recover`, the 1,000 point is trained by the sample curve itself
    let alone = privdnn_config::AttackConfig {
        experiments: vec!["samples".into()],
        ..a
    };
    assert!((attack_work(&alone, 3).0 - 6600.0 * per_sample).abs() < 1e-6);
}

#[test]
fn attack_time_is_the_sum_of_its_experiments() {
    let dir = std::env::temp_dir().join(format!("privdnn-estimate-{}", std::process::id()));
    let layout = privdnn_artifacts::RunLayout::new(&dir);
    let cfg = privdnn_config::load_pipeline(std::path::Path::new(".."), "tiny", None)
        .or_else(|_| privdnn_config::load_pipeline(std::path::Path::new("."), "tiny", None))
        .expect("pipelines/tiny.toml");
    let measured = |cfg| crate::estimate_compare::measured(&layout, cfg, "attack");
    assert_eq!(measured(&cfg).seconds, None, "no attack report yet");
    let attack = dir.join("attack");
    std::fs::create_dir_all(&attack).expect("mkdir");
    let write = |text: &str| std::fs::write(attack.join("metrics.json"), text).expect("write");
    write(r#"{"seconds": {"recover": 20.5, "samples": 100.0, "sweep": 29.5}}"#);
    assert_eq!(
        measured(&cfg).seconds,
        None,
        "extract and invert not finished"
    );
    write(
        r#"{"seconds": {"recover": 20.5, "samples": 100.0, "sweep": 29.5, "extract": 40.0, "invert": 10.0}}"#,
    );
    assert_eq!(measured(&cfg).seconds, Some(200.0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn calibration_load_is_what_others_used_during_it() {
    use crate::estimate::others_load;
    // 10 busy CPU-seconds in 5 s on 2 cores, 5 of them the calibration's own: the others held
    // one core, which the fair share gives to 2 runnable threads beside 2 of ours
    let load = others_load((100.0, 10.0), (110.0, 15.0), 5.0, 2);
    assert!((load - 2.0).abs() < 1e-9, "{load}");
    assert_eq!(others_load((0.0, 0.0), (4.0, 4.0), 2.0, 2), 0.0);
    // a stale 1-minute average plays no part; a saturated machine stays finite
    let busy = others_load((0.0, 0.0), (10.0, 0.0), 5.0, 2);
    assert!(busy.is_finite() && busy >= 18.0, "{busy}");
}
