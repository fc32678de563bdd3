//! End-to-end test of the training stage on the synthetic `tiny` pipeline: accuracy improves,
//! the best-validation checkpoint is kept, and an interrupted run resumes to the same result as
//! an uninterrupted one.

use std::path::Path;

use privdnn_config::load_pipeline;
use privdnn_train::cli::load_inputs;
use privdnn_train::{Observer, QuietObserver, run};

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

struct StopAfter(usize, usize);

impl Observer for StopAfter {
    fn keep_going(&mut self) -> bool {
        self.1 += 1;
        self.1 < self.0
    }
}

#[test]
fn tiny_pipeline_learns_and_resumes() {
    let cfg = load_pipeline(root(), "tiny", None).expect("tiny config");
    let (inputs, _) = load_inputs(root(), &cfg).expect("synthetic data");
    assert_eq!(inputs.validation.len() + inputs.test.len(), 600);

    let dir = tempfile::tempdir().expect("tempdir");
    let full_ckpt = dir.path().join("full.bin");
    let full = run(&cfg, &inputs, Some(&full_ckpt), &mut QuietObserver).expect("full run");
    let m = &full.metrics;
    assert_eq!(m.epochs_run, 3);
    let first = m.history[0].val_accuracy;
    let best = m.history.iter().map(|r| r.val_accuracy).fold(0.0, f64::max);
    assert!(
        m.test_accuracy > 50.0,
        "tiny model should learn the synthetic task: {m:?}"
    );
    assert!(
        m.history[2].train_loss < m.history[0].train_loss,
        "loss falls: {:?}",
        m.history
    );
    assert!(best >= first);
    assert_eq!(
        m.validation_accuracy,
        m.history[m.best_epoch - 1].val_accuracy,
        "best epoch kept"
    );
    assert!(m.train_images_per_second > 0.0);

    // interrupted after epoch 2, then resumed: same history and weights as the full run
    let ckpt = dir.path().join("interrupted.bin");
    let partial = run(&cfg, &inputs, Some(&ckpt), &mut StopAfter(2, 0)).expect("partial");
    assert_eq!(partial.metrics.epochs_run, 2);
    let resumed = run(&cfg, &inputs, Some(&ckpt), &mut QuietObserver).expect("resumed");
    assert_eq!(resumed.metrics.resumed_from_epoch, 2);
    assert_eq!(resumed.metrics.epochs_run, 3);
    let full_losses: Vec<f64> = m.history.iter().map(|r| r.train_loss).collect();
    let resumed_losses: Vec<f64> = resumed
        .metrics
        .history
        .iter()
        .map(|r| r.train_loss)
        .collect();
    assert_eq!(
        full_losses, resumed_losses,
        "resume reproduces the uninterrupted run"
    );
    assert_eq!(resumed.model, full.model);
}
