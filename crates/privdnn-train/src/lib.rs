//! Training stage: the `privdnn-train` command line ([`cli`]) over the training library
//! `privdnn-training`, and the backend benchmark ([`bench`], `cargo xtask bench train`).

pub mod bench;
pub mod cli;

pub use privdnn_training::{
    Observer, QuietObserver, TrainError, TrainInputs, TrainMetrics, TrainOutcome, run,
};
