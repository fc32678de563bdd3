//! Training as a library: trains one pipeline's model and returns the trained-model artifact
//! and its metrics. The checkpoint with the best *validation* accuracy is kept (not the lowest
//! training loss, as the reference did); test accuracy is measured once, on that checkpoint.
//!
//! [`run`] does no I/O except through the optional checkpoint path (for resuming); the train
//! stage (`privdnn-train`) reads the dataset cache and writes results, and tests of other crates
//! train their tiny models here without depending on a stage. Never evaluates on the test split
//! during training.

mod error;
mod metrics;
mod run;

pub use error::TrainError;
pub use metrics::TrainMetrics;
pub use run::{Observer, QuietObserver, TrainInputs, TrainOutcome, model_spec, run};
