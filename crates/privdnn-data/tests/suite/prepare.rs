//! Tests of the catalogue and the prepared cache on fake source roots written in the real
//! layouts: preparation, checksum verification, cache skipping and invalidation, resizing,
//! EMNIST transposition, the JPEG tar and Tiny ImageNet layouts, and the error messages.

use std::path::Path;

use image::ImageFormat;
use privdnn_data::{DataError, known_datasets, load_prepared, native_image_size, prepare};

use crate::fixtures::{
    TestResult, encode, flat_image, gzip, idx_images, idx_labels, records, tar, write,
    write_mnist_like,
};

fn modified(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .expect("cache file exists")
}

#[test]
fn catalogue_lists_datasets_and_sizes() {
    assert_eq!(
        known_datasets(),
        [
            "mnist",
            "fashion-mnist",
            "emnist",
            "gtsrb",
            "cifar10",
            "tinyimagenet"
        ]
    );
    let sizes: Vec<_> = known_datasets()
        .iter()
        .map(|d| native_image_size(d))
        .collect();
    assert_eq!(
        sizes,
        [Some(28), Some(28), Some(28), Some(32), Some(32), Some(64)]
    );
    assert_eq!(native_image_size("imagenet"), None);
}

#[test]
fn prepare_mnist_round_trip_and_cache_skip() -> TestResult {
    let source = tempfile::tempdir()?;
    let cache = tempfile::tempdir()?;
    write_mnist_like(&source.path().join("mnist"), "", "train", "t10k", 12, 6);
    let paths = prepare("mnist", source.path(), cache.path(), 4, false)?;
    assert_eq!(paths.train, cache.path().join("mnist-4/train.bin"));
    assert!(cache.path().join("mnist-4/source.json").is_file());
    let (train, test) = load_prepared(cache.path(), "mnist", 4)?;
    assert_eq!((train.len(), test.len()), (12, 6));
    assert_eq!(
        (train.split.as_str(), test.split.as_str()),
        ("train", "test")
    );
    assert_eq!((train.channels, train.height, train.width), (1, 4, 4));
    assert_eq!(train.class_names.len(), 10);
    assert_eq!(train.labels[3], 3);
    assert_eq!(train.image(3)[0], 30);

    let before = modified(&paths.train);
    std::thread::sleep(std::time::Duration::from_millis(20));
    prepare("mnist", source.path(), cache.path(), 4, false)?;
    assert_eq!(
        modified(&paths.train),
        before,
        "second call must reuse the cache"
    );

    write_mnist_like(&source.path().join("mnist"), "", "train", "t10k", 20, 6);
    prepare("mnist", source.path(), cache.path(), 4, false)?;
    assert_eq!(
        load_prepared(cache.path(), "mnist", 4)?.0.len(),
        20,
        "changed sources re-prepare"
    );
    Ok(())
}

#[test]
fn prepare_verifies_checksums() -> TestResult {
    let source = tempfile::tempdir()?;
    let cache = tempfile::tempdir()?;
    write_mnist_like(&source.path().join("mnist"), "", "train", "t10k", 3, 2);
    let err = prepare("mnist", source.path(), cache.path(), 28, true)
        .expect_err("fake files cannot match");
    let message = err.to_string();
    assert!(matches!(err, DataError::Checksum { .. }), "{err:?}");
    assert!(
        message.contains("mnist/t")
            && message.contains("expected")
            && message.contains("verify = false"),
        "{message}"
    );
    // A cache prepared without verification is not trusted by a verifying call.
    prepare("mnist", source.path(), cache.path(), 28, false)?;
    assert!(matches!(
        prepare("mnist", source.path(), cache.path(), 28, true),
        Err(DataError::Checksum { .. })
    ));
    Ok(())
}

#[test]
fn prepare_resizes_and_accepts_files_in_the_root() -> TestResult {
    let source = tempfile::tempdir()?;
    let cache = tempfile::tempdir()?;
    write_mnist_like(source.path(), "", "train", "t10k", 4, 2);
    prepare("fashion-mnist", source.path(), cache.path(), 8, false)?;
    let (train, _) = load_prepared(cache.path(), "fashion-mnist", 8)?;
    assert_eq!((train.height, train.images.len()), (8, 4 * 64));
    assert_eq!(train.class_names[0], "T-shirt/top");
    Ok(())
}

#[test]
fn prepare_emnist_transposes() -> TestResult {
    let source = tempfile::tempdir()?;
    let cache = tempfile::tempdir()?;
    let dir = source.path().join("emnist");
    let mut pixels = vec![0u8; 2 * 4];
    pixels[1] = 255; // row 0, column 1 of image 0 (2×2)
    for split in ["train", "test"] {
        write(
            &dir.join(format!("emnist-letters-{split}-images-idx3-ubyte.gz")),
            &gzip(&idx_images(2, 2, 2, &pixels)),
        );
        write(
            &dir.join(format!("emnist-letters-{split}-labels-idx1-ubyte")),
            &idx_labels(&[1, 26]),
        );
    }
    prepare("emnist", source.path(), cache.path(), 2, false)?;
    let (train, _) = load_prepared(cache.path(), "emnist", 2)?;
    assert_eq!(train.num_classes(), 27);
    assert_eq!(train.labels, [1, 26]);
    assert_eq!(
        train.image(0),
        [0, 0, 255, 0],
        "pixel moved to row 1, column 0"
    );
    Ok(())
}

#[test]
fn prepare_rejects_out_of_range_labels() -> TestResult {
    let source = tempfile::tempdir()?;
    let cache = tempfile::tempdir()?;
    let dir = source.path().join("gtsrb32");
    write(
        &dir.join("gtsrb32_train.bin"),
        &records(&[0, 43], &vec![0; 2 * 3072]),
    );
    write(
        &dir.join("gtsrb32_test.bin.gz"),
        &gzip(&records(&[42], &vec![0; 3072])),
    );
    let err =
        prepare("gtsrb", source.path(), cache.path(), 32, false).expect_err("label 43 is invalid");
    assert!(
        matches!(err, DataError::Corrupt { .. }) && err.to_string().contains("gtsrb32_train.bin"),
        "{err}"
    );
    Ok(())
}

#[test]
fn prepare_cifar10_tar_and_tiny_imagenet() -> TestResult {
    let source = tempfile::tempdir()?;
    let cache = tempfile::tempdir()?;
    let jpeg = |v: u8| encode(&flat_image(32, 32, [v, v, v]), ImageFormat::Jpeg);
    let entries = vec![
        ("train/cat/0.jpg", jpeg(10)),
        ("train/airplane/0.jpg", jpeg(20)),
        ("train/airplane/1.jpg", jpeg(30)),
        ("test/airplane/0.jpg", jpeg(40)),
        ("test/cat/0.jpg", jpeg(50)),
    ];
    write(
        &source.path().join("cifar10/cifar10_jpg.tar.gz"),
        &gzip(&tar(&entries)),
    );
    prepare("cifar10", source.path(), cache.path(), 64, false)?;
    let (train, test) = load_prepared(cache.path(), "cifar10", 64)?;
    assert_eq!(
        (train.labels.as_slice(), test.labels.as_slice()),
        (&[0u16, 0, 1][..], &[0u16, 1][..])
    );
    assert_eq!(
        (train.channels, train.height, train.image_len()),
        (3, 64, 3 * 64 * 64)
    );

    let tiny = source.path().join("tiny-imagenet-200");
    write(
        &tiny.join("train/n1/images/a.JPEG"),
        &encode(&flat_image(64, 64, [1, 2, 3]), ImageFormat::Jpeg),
    );
    write(
        &tiny.join("val/images/v.JPEG"),
        &encode(&flat_image(64, 64, [1, 2, 3]), ImageFormat::Jpeg),
    );
    write(
        &tiny.join("val/val_annotations.txt"),
        b"v.JPEG\tn1\t0\t0\t1\t1\n",
    );
    prepare("tinyimagenet", source.path(), cache.path(), 64, false)?;
    let (train, test) = load_prepared(cache.path(), "tinyimagenet", 64)?;
    assert_eq!(
        (train.len(), test.len(), train.class_names[0].as_str()),
        (1, 1, "n1")
    );
    Ok(())
}

#[test]
fn prepare_and_load_errors_say_what_to_do() -> TestResult {
    let source = tempfile::tempdir()?;
    let cache = tempfile::tempdir()?;
    let err = prepare("imagenet", source.path(), cache.path(), 32, false).expect_err("unknown");
    assert!(
        matches!(err, DataError::UnknownDataset { .. }) && err.to_string().contains("cifar10"),
        "{err}"
    );
    let err = prepare("mnist", source.path(), cache.path(), 28, false).expect_err("missing");
    let message = err.to_string();
    assert!(
        message.contains("--source") && message.contains("mnist/{train,t10k}-{images-idx3"),
        "{message}"
    );
    let err = load_prepared(cache.path(), "mnist", 28).expect_err("not prepared");
    assert!(
        matches!(err, DataError::NotPrepared { .. })
            && err.to_string().contains("cargo xtask data mnist"),
        "{err}"
    );
    write_mnist_like(&source.path().join("mnist"), "", "train", "t10k", 2, 2);
    let err = prepare("mnist", source.path(), cache.path(), 0, false).expect_err("size 0");
    assert!(matches!(err, DataError::InvalidArgument { .. }), "{err:?}");
    Ok(())
}
