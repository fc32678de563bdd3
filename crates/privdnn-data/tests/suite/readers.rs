//! Tests of the binary readers (IDX and labelled records) on real-format fixtures: round trips
//! raw and gzipped, and the typed errors for corrupt and truncated files. Never touches real data.

use privdnn_data::{DataError, read_cifar_records, read_idx_images, read_idx_labels};

use crate::fixtures::{
    TestResult, assert_names, gzip, idx_images, idx_labels, pattern, records, write,
};

#[test]
fn idx_round_trip_raw_and_gzip() -> TestResult {
    let dir = tempfile::tempdir()?;
    let pixels = pattern(3 * 2 * 4, 1);
    let labels = [7u8, 0, 9];
    for (suffix, encode) in [
        ("", (|b: &[u8]| b.to_vec()) as fn(&[u8]) -> Vec<u8>),
        (".gz", |b: &[u8]| gzip(b)),
    ] {
        let images_path = dir.path().join(format!("images{suffix}"));
        let labels_path = dir.path().join(format!("labels{suffix}"));
        write(&images_path, &encode(&idx_images(3, 2, 4, &pixels)));
        write(&labels_path, &encode(&idx_labels(&labels)));
        let images = read_idx_images(&images_path)?;
        assert_eq!((images.count, images.rows, images.cols), (3, 2, 4));
        assert_eq!(images.pixels, pixels);
        assert_eq!(read_idx_labels(&labels_path)?, labels);
    }
    Ok(())
}

#[test]
fn idx_transpose_turns_images_upright() {
    let mut images = privdnn_data::IdxImages {
        count: 2,
        rows: 2,
        cols: 3,
        pixels: (0..12).collect(),
    };
    images.transpose();
    assert_eq!((images.rows, images.cols), (3, 2));
    assert_eq!(images.pixels, [0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11]);
}

#[test]
fn idx_bad_magic_and_garbage_are_corrupt() -> TestResult {
    let dir = tempfile::tempdir()?;
    let wrong_magic = dir.path().join("labels-as-images");
    write(&wrong_magic, &idx_labels(&[1, 2, 3]));
    let garbage_gz = dir.path().join("garbage.gz");
    write(
        &garbage_gz,
        &[
            0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3,
        ],
    );
    for path in [&wrong_magic, &garbage_gz] {
        let err = read_idx_images(path).expect_err("must fail");
        assert!(matches!(err, DataError::Corrupt { .. }), "{err:?}");
        assert_names(&err.to_string(), path);
    }
    let err = read_idx_labels(&dir.path().join("missing")).expect_err("must fail");
    assert!(matches!(err, DataError::Io { .. }), "{err:?}");
    Ok(())
}

#[test]
fn idx_truncated_raw_and_gzip() -> TestResult {
    let dir = tempfile::tempdir()?;
    let full = idx_images(5, 4, 4, &pattern(80, 3));
    let cases = [
        ("short-body", full[..full.len() - 10].to_vec()),
        ("short-header", full[..9].to_vec()),
        ("short-gz", {
            let gz = gzip(&full);
            gz[..gz.len() / 2].to_vec()
        }),
        ("gz-without-trailer", {
            let gz = gzip(&full);
            gz[..gz.len() - 4].to_vec()
        }),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        write(&path, &bytes);
        let err = read_idx_images(&path).expect_err("must fail");
        assert!(
            matches!(err, DataError::Truncated { .. }),
            "{name}: {err:?}"
        );
        assert_names(&err.to_string(), &path);
    }
    let labels = dir.path().join("labels");
    write(&labels, &idx_labels(&[1, 2, 3])[..10]);
    let err = read_idx_labels(&labels).expect_err("must fail");
    assert!(
        err.to_string().contains("header promises 3 labels"),
        "{err}"
    );
    Ok(())
}

#[test]
fn idx_trailing_bytes_are_corrupt() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("long");
    let mut bytes = idx_labels(&[1, 2]);
    bytes.push(0);
    write(&path, &bytes);
    assert!(matches!(
        read_idx_labels(&path),
        Err(DataError::Corrupt { .. })
    ));
    Ok(())
}

#[test]
fn records_round_trip_raw_and_gzip() -> TestResult {
    let dir = tempfile::tempdir()?;
    let pixels = pattern(4 * 3 * 2 * 2, 5);
    let labels = [3u8, 42, 0, 1];
    let bytes = records(&labels, &pixels);
    for (name, data) in [("r.bin", bytes.clone()), ("r.bin.gz", gzip(&bytes))] {
        let path = dir.path().join(name);
        write(&path, &data);
        let (read_labels, read_pixels) = read_cifar_records(&path, 3, 2, 2)?;
        assert_eq!(read_labels, [3, 42, 0, 1]);
        assert_eq!(read_pixels, pixels);
    }
    Ok(())
}

#[test]
fn records_truncated_corrupt_and_invalid() -> TestResult {
    let dir = tempfile::tempdir()?;
    let bytes = records(&[1, 2], &pattern(2 * 12, 0));
    let gz = gzip(&bytes);
    let cases = [
        ("cut.bin", bytes[..bytes.len() - 3].to_vec(), "truncated"),
        ("cut.bin.gz", gz[..gz.len() - 6].to_vec(), "truncated"),
        ("empty.bin", Vec::new(), "truncated"),
        (
            "garbage.bin.gz",
            vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff],
            "corrupt",
        ),
    ];
    for (name, data, kind) in cases {
        let path = dir.path().join(name);
        write(&path, &data);
        let err = read_cifar_records(&path, 3, 2, 2).expect_err("must fail");
        let ok = match kind {
            "truncated" => matches!(err, DataError::Truncated { .. }),
            _ => matches!(err, DataError::Corrupt { .. }),
        };
        assert!(ok, "{name}: {err:?}");
        assert_names(&err.to_string(), &path);
    }
    let path = dir.path().join("cut.bin");
    assert!(matches!(
        read_cifar_records(&path, 0, 2, 2),
        Err(DataError::InvalidArgument { .. })
    ));
    Ok(())
}
