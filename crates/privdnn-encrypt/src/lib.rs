//! Encrypt stage (model owner): the `privdnn-encrypt` command line over the owner's setup of
//! `privdnn_partial::setup`. It reads `train/model.bin` and the selection and writes the three
//! files of the run folder (`privdnn_artifacts::RunLayout`): encrypted model and evaluation keys
//! for the user, the owner's secret apart. This crate never builds burn.

pub mod cli;
pub mod keyed;
