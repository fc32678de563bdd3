//! The three splits a pipeline works on, loaded from the cache (or synthesised for the `tiny`
//! pipeline): train (optionally limited), and the official test set halved into validation and
//! test with the configured seed.

use std::path::{Path, PathBuf};

use privdnn_artifacts::DatasetSplit;
use privdnn_config::PipelineConfig;

use crate::error::DataError;
use crate::{load_prepared, sample_indices, split_validation_test, synthetic};

/// Train, validation and test splits of one pipeline.
pub struct Splits {
    /// Training images.
    pub train: DatasetSplit,
    /// Validation half of the official test set (model and neuron selection).
    pub validation: DatasetSplit,
    /// Test half of the official test set (reported numbers).
    pub test: DatasetSplit,
}

/// Loads the splits of `pipeline` with paths relative to `root`; also returns the cache files
/// read (for manifests).
pub fn load_splits(
    root: &Path,
    pipeline: &PipelineConfig,
) -> Result<(Splits, Vec<PathBuf>), DataError> {
    let d = &pipeline.data;
    let (train, test, files) = if d.dataset == "synthetic" {
        let (train, test) = synthetic(
            d.synthetic_sizes[0],
            d.synthetic_sizes[1],
            d.image_size,
            pipeline.in_channels(),
            pipeline.seed,
        );
        (train, test, Vec::new())
    } else {
        let cache = root.join(&d.cache);
        let (train, test) = load_prepared(&cache, &d.dataset, d.image_size)?;
        let dir = crate::cache_dir(&cache, &d.dataset, d.image_size);
        (
            train,
            test,
            vec![dir.join("train.bin"), dir.join("test.bin")],
        )
    };
    let (validation, test) = split_validation_test(&test, d.split_seed);
    let train = if d.train_limit > 0 && d.train_limit < train.len() {
        let mut keep = sample_indices(train.len(), d.train_limit, d.split_seed);
        keep.sort_unstable();
        train.subset(&keep, "train")
    } else {
        train
    };
    Ok((
        Splits {
            train,
            validation,
            test,
        },
        files,
    ))
}
