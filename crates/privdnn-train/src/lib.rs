//! Training stage: the `privdnn-train` command line ([`cli`]) over the training library
//! `privdnn-training`, the backend benchmark ([`bench`], `cargo xtask bench train`) and the
//! unit costs `cargo xtask estimate` predicts from ([`calibrate`]).

pub mod bench;
pub mod calibrate;
pub mod cli;

pub use privdnn_training::{
    Observer, QuietObserver, TrainError, TrainInputs, TrainMetrics, TrainOutcome, run,
};
