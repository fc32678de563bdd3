//! Manual check on the real datasets (ignored by default; needs /work/shared/datasets or
//! `PRIVDNN_DATASETS`): prepares MNIST, Fashion-MNIST, GTSRB and CIFAR-10 (32 and 64) into a
//! temporary folder and prints counts and timings. Never writes next to the sources.
//! Run with `cargo test --release -p privdnn-data -- --ignored --nocapture real_datasets_prepare`.

use std::path::PathBuf;
use std::time::Instant;

use privdnn_data::{load_prepared, prepare};

use crate::fixtures::TestResult;

#[test]
#[ignore = "reads the real datasets (minutes); run explicitly"]
fn real_datasets_prepare() -> TestResult {
    let root = std::env::var_os("PRIVDNN_DATASETS")
        .map_or_else(|| PathBuf::from("/work/shared/datasets"), PathBuf::from);
    let cache = tempfile::tempdir()?;
    let cases = [
        ("mnist", 28, 60_000, 10_000),
        ("fashion-mnist", 28, 60_000, 10_000),
        ("gtsrb", 32, 39_209, 12_630),
        ("cifar10", 32, 50_000, 10_000),
        ("cifar10", 64, 50_000, 10_000),
    ];
    for (dataset, size, train_count, test_count) in cases {
        let started = Instant::now();
        prepare(dataset, &root, cache.path(), size, true)?;
        let prepared = started.elapsed().as_secs_f64();
        let started = Instant::now();
        prepare(dataset, &root, cache.path(), size, true)?;
        let skipped = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let (train, test) = load_prepared(cache.path(), dataset, size)?;
        let loaded = started.elapsed().as_secs_f64();
        println!(
            "{dataset:>13} @{size}: train {} test {} classes {} | prepare {prepared:.2} s, cached re-run {skipped:.3} s, load {loaded:.2} s",
            train.len(),
            test.len(),
            train.num_classes()
        );
        assert_eq!((train.len(), test.len()), (train_count, test_count));
    }
    Ok(())
}
