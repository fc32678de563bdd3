//! The in-process harness on a tiny synthetic task: every forward equals the integer shadow,
//! the model trains, bytes match the analytic count, resume gives identical weights, noise
//! changes the weights, and the result is an ordinary model artifact.

use privdnn_spnn::harness::accuracy;
use privdnn_spnn::{Checkpoint, Harness, LinkBytes};

mod common;
use common::{ONE_TRAINING, settings, task};

#[test]
fn forwards_are_exact_and_bytes_match_the_analytic_count() {
    let _one = ONE_TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let (task, train, test) = task();
    let task_spec = task.spec.clone();
    let mut h = Harness::new(task, settings(2), None).expect("harness");
    let g = *h.geometry();
    let out = h.train(&train, &test, None, usize::MAX).expect("train");
    assert_eq!(out.steps, 6);
    for r in &out.history {
        assert_eq!(r.forwards_checked, 3);
        assert_eq!(r.forwards_exact, 3, "{r:?}");
    }
    let d = privdnn_model::UpperNet::new(&task_spec, 7, privdnn_model::UpperOptimizer::Adam, 0.0)
        .expect("net")
        .feature_dim();
    let analytic = LinkBytes::analytic(&g, 16, d);
    let per_step = |v: u64| v as f64 / out.steps as f64;
    for (got, want) in [
        (out.bytes.a_to_b, analytic.a_to_b),
        (out.bytes.b_to_server, analytic.b_to_server),
        (out.bytes.dealer_to_b, analytic.dealer_to_b),
        (out.bytes.server_to_a, analytic.server_to_a),
        (out.bytes.server_to_b, analytic.server_to_b),
    ] {
        let rel = (per_step(got) - want as f64).abs() / want as f64;
        assert!(rel < 0.01, "{got} vs {want} per step");
    }
    // the model is an ordinary artifact that evaluates in the clear
    let acc = accuracy(&out.model, &test).expect("accuracy");
    assert_eq!(acc, out.history[1].test_accuracy);
    assert!(out.history[1].train_loss.is_finite());
}

#[test]
fn resume_gives_the_same_weights_as_an_uninterrupted_run() {
    let _one = ONE_TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let (task, train, test) = task();
    let dir = std::env::temp_dir().join(format!("spnn-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("checkpoint.bin");
    let full = Harness::new(task.clone(), settings(2), None)
        .expect("harness")
        .train(&train, &test, None, usize::MAX)
        .expect("full");
    let mut first = Harness::new(task.clone(), settings(2), None).expect("harness");
    first.train(&train, &test, Some(&path), 1).expect("first");
    let ckpt = Checkpoint::read(&path).expect("read");
    assert_eq!(ckpt.epochs_done, 1);
    let resumed = Harness::new(task, settings(2), Some(&ckpt))
        .expect("resume")
        .train(&train, &test, Some(&path), usize::MAX)
        .expect("second");
    assert_eq!(resumed.checkpoint.holders, full.checkpoint.holders);
    assert_eq!(resumed.model, full.model);
    assert_eq!(resumed.history.len(), 2);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sgld_noise_adds_gaussian_noise_of_the_configured_scale() {
    let _one = ONE_TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    // one step over all images: the same forward and δ, so the weights differ by the noise only
    let (task, train, test) = task();
    let one_step = |sigma: f64| {
        let mut s = settings(1);
        s.batch_size = train.len();
        s.noise_sigma = sigma;
        Harness::new(task.clone(), s, None)
            .expect("harness")
            .train(&train, &test, None, usize::MAX)
            .expect("train")
            .model
    };
    let sigma = 0.01;
    let (plain, noisy) = (one_step(0.0), one_step(sigma));
    let w =
        |m: &privdnn_artifacts::TrainedModel| m.tensor("conv1.weight").expect("w").values.clone();
    let diff: Vec<f64> = w(&plain)
        .iter()
        .zip(&w(&noisy))
        .map(|(x, y)| (y - x) as f64)
        .collect();
    let rms = (diff.iter().map(|d| d * d).sum::<f64>() / diff.len() as f64).sqrt();
    let max = diff.iter().fold(0.0f64, |m, d| m.max(d.abs()));
    assert!(
        rms > 0.6 * sigma && rms < 1.4 * sigma,
        "rms {rms} over {} weights",
        diff.len()
    );
    assert!(max < 5.0 * sigma, "max {max}");
}
