//! Selection stage: the `privdnn-select` command line ([`cli`]) over the selection library
//! `privdnn-selection` (algorithms) and `privdnn_model::partition` (transforms, fast evaluator,
//! score). Selections are made on the validation split and reported on the test split. This
//! crate never encrypts anything.

pub mod cli;
pub mod exhaustive_run;

pub use privdnn_model::partition as transform;
pub use privdnn_model::partition::{evaluator, score};
pub use privdnn_selection::{SelectError, choose, exhaustive, greedy, pruning, random};
