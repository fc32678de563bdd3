//! Training stage: trains one pipeline's model and returns the trained-model artifact and its
//! metrics. The checkpoint with the best *validation* accuracy is kept (not the lowest training
//! loss, as the reference did); test accuracy is measured once, on that checkpoint.
//!
//! `run` does no I/O except through the optional checkpoint path (for resuming); the CLI in
//! `cli.rs` reads the dataset cache and writes results. Never evaluates on the test split during
//! training.

pub mod bench;
pub mod cli;
mod error;
mod loop_;
mod metrics;

pub use error::TrainError;
pub use loop_::{Observer, QuietObserver, TrainInputs, TrainOutcome, run};
pub use metrics::TrainMetrics;
