//! The integration test suite of privdnn-data, one binary (quick to link): readers, catalogue and
//! cache, splits and batches, plus an ignored check on the real datasets. Tests write only into
//! temporary folders.

mod fixtures;
mod images;
mod prepare;
mod readers;
mod real;
mod split_batch;
