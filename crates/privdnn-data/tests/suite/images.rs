//! Tests of the encoded-image readers: ImageFolder trees, the official Tiny ImageNet layout and
//! image tars (raw and gzipped), with exact PNG values, approximate JPEG values, resizing, order,
//! and the typed errors for undecodable, truncated and misplaced inputs.

use image::ImageFormat;
use privdnn_data::{DataError, read_image_folder, read_image_tar, read_tiny_imagenet_val};

use crate::fixtures::{
    TestResult, assert_names, encode, flat_image, gzip, planes, rgb_image, tar, write,
};

/// Largest absolute difference between two byte slices.
fn max_diff(a: &[u8], b: &[u8]) -> u8 {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

#[test]
fn image_folder_reads_png_exactly_and_jpeg_approximately() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cat0 = rgb_image(4, 4, 10);
    let cat1 = rgb_image(4, 4, 50);
    let dog = flat_image(4, 4, [200, 100, 30]);
    write(
        &dir.path().join("cat/10.png"),
        &encode(&cat1, ImageFormat::Png),
    );
    write(
        &dir.path().join("cat/2.PNG"),
        &encode(&cat0, ImageFormat::Png),
    );
    write(&dir.path().join("cat/notes.txt"), b"not an image");
    write(
        &dir.path().join("dog/a.JPG"),
        &encode(&dog, ImageFormat::Jpeg),
    );
    let read = read_image_folder(dir.path(), 4, 3)?;
    assert_eq!(read.class_names, ["cat", "dog"]);
    assert_eq!(read.labels, [0, 0, 1]);
    assert_eq!(read.images.len(), 3 * 48);
    assert_eq!(
        &read.images[..48],
        planes(&cat0).as_slice(),
        "2.PNG sorts before 10.png"
    );
    assert_eq!(&read.images[48..96], planes(&cat1).as_slice());
    assert!(max_diff(&read.images[96..], &planes(&dog)) <= 3);
    Ok(())
}

#[test]
fn image_folder_resizes_and_converts_to_luma() -> TestResult {
    let dir = tempfile::tempdir()?;
    write(
        &dir.path().join("a/0.png"),
        &encode(&flat_image(6, 6, [90, 90, 90]), ImageFormat::Png),
    );
    write(
        &dir.path().join("b/0.png"),
        &encode(&rgb_image(3, 5, 0), ImageFormat::Png),
    );
    let gray = read_image_folder(dir.path(), 2, 1)?;
    assert_eq!(gray.images.len(), 2 * 4);
    assert_eq!(
        &gray.images[..4],
        &[90; 4],
        "a flat image stays flat after resize"
    );
    let rgb = read_image_folder(dir.path(), 8, 3)?;
    assert_eq!(rgb.images.len(), 2 * 3 * 64);
    Ok(())
}

#[test]
fn image_folder_errors_name_the_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let good = encode(&rgb_image(4, 4, 0), ImageFormat::Png);
    write(&dir.path().join("a/0.png"), &good);
    let bad = dir.path().join("a/1.png");
    write(&bad, &good[..good.len() / 2]);
    let err = read_image_folder(dir.path(), 4, 3).expect_err("must fail");
    assert!(matches!(err, DataError::BadImage { .. }), "{err:?}");
    assert_names(&err.to_string(), &bad);
    let empty = tempfile::tempdir()?;
    assert!(matches!(
        read_image_folder(empty.path(), 4, 3),
        Err(DataError::Layout { .. })
    ));
    assert!(matches!(
        read_image_folder(dir.path(), 4, 2),
        Err(DataError::InvalidArgument { .. })
    ));
    Ok(())
}

#[test]
fn tiny_imagenet_official_layout() -> TestResult {
    let dir = tempfile::tempdir()?;
    let train = dir.path().join("train");
    for (wnid, base) in [("n02", 100), ("n01", 0)] {
        write(
            &train.join(format!("{wnid}/images/{wnid}_0.JPEG")),
            &encode(&flat_image(8, 8, [base, 0, 0]), ImageFormat::Jpeg),
        );
        write(&train.join(format!("{wnid}/{wnid}_boxes.txt")), b"ignored");
    }
    let read = read_image_folder(&train, 8, 3)?;
    assert_eq!(read.class_names, ["n01", "n02"]);
    assert_eq!(read.labels, [0, 1]);
    let val = dir.path().join("val");
    write(
        &val.join("images/val_1.JPEG"),
        &encode(&flat_image(8, 8, [0, 0, 0]), ImageFormat::Jpeg),
    );
    write(
        &val.join("images/val_0.JPEG"),
        &encode(&flat_image(8, 8, [100, 0, 0]), ImageFormat::Jpeg),
    );
    write(
        &val.join("val_annotations.txt"),
        b"val_0.JPEG\tn02\t0\t0\t8\t8\nval_1.JPEG\tn01\t0\t0\t8\t8\n",
    );
    let val_read = read_tiny_imagenet_val(&val, &read.class_names, 4)?;
    assert_eq!(val_read.labels, [1, 0]);
    assert_eq!(val_read.images.len(), 2 * 3 * 16);
    write(&val.join("val_annotations.txt"), b"val_0.JPEG\tn99\n");
    let err = read_tiny_imagenet_val(&val, &read.class_names, 4).expect_err("unknown wnid");
    assert!(
        matches!(err, DataError::Layout { .. }) && err.to_string().contains("n99"),
        "{err}"
    );
    Ok(())
}

/// A CIFAR-style JPEG-tar fixture: `(entries, expected train planes in order)`.
fn cifar_like_entries() -> (Vec<(&'static str, Vec<u8>)>, Vec<u8>) {
    let images: Vec<_> = [0u8, 30, 60].iter().map(|&b| rgb_image(4, 4, b)).collect();
    let entries = vec![
        ("./train/cat/10.png", encode(&images[2], ImageFormat::Png)),
        ("train/cat/2.png", encode(&images[1], ImageFormat::Png)),
        (
            "./train/airplane/0.png",
            encode(&images[0], ImageFormat::Png),
        ),
        ("train/cat/readme.txt", b"skip me".to_vec()),
        (
            "test/airplane/0.jpg",
            encode(&flat_image(4, 4, [9, 9, 9]), ImageFormat::Jpeg),
        ),
        (
            "test/cat/0.jpg",
            encode(&flat_image(4, 4, [99, 99, 99]), ImageFormat::Jpeg),
        ),
    ];
    let expected = images.iter().flat_map(planes).collect();
    (entries, expected)
}

#[test]
fn image_tar_raw_and_gzip() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (entries, expected) = cifar_like_entries();
    let raw = tar(&entries);
    for (name, bytes) in [("d.tar", raw.clone()), ("d.tar.gz", gzip(&raw))] {
        let path = dir.path().join(name);
        write(&path, &bytes);
        let train = read_image_tar(&path, "train", 4, 3)?;
        assert_eq!(train.class_names, ["airplane", "cat"]);
        assert_eq!(train.labels, [0, 1, 1]);
        assert_eq!(
            train.images, expected,
            "sorted by class, then numerically by name"
        );
        let test = read_image_tar(&path, "test", 2, 1)?;
        assert_eq!(test.labels, [0, 1]);
        assert!(max_diff(&test.images, &[9, 9, 9, 9, 99, 99, 99, 99]) <= 3);
        let err = read_image_tar(&path, "validate", 4, 3).expect_err("no such prefix");
        assert!(matches!(err, DataError::Layout { .. }), "{err:?}");
    }
    Ok(())
}

#[test]
fn image_tar_truncated_and_corrupt() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (entries, _) = cifar_like_entries();
    let raw = tar(&entries);
    let gz = gzip(&raw);
    let cases = [
        ("mid-member.tar", raw[..700].to_vec(), "truncated"),
        ("block-boundary.tar", raw[..1024].to_vec(), "truncated"),
        ("cut.tar.gz", gz[..gz.len() / 2].to_vec(), "truncated"),
        ("garbage.tar", vec![0x55; 2048], "corrupt"),
        (
            "garbage.tar.gz",
            vec![0x1f, 0x8b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            "corrupt",
        ),
    ];
    for (name, bytes, kind) in cases {
        let path = dir.path().join(name);
        write(&path, &bytes);
        let err = read_image_tar(&path, "train", 4, 3).expect_err("must fail");
        let ok = match kind {
            "truncated" => matches!(err, DataError::Truncated { .. }),
            _ => matches!(err, DataError::Corrupt { .. }),
        };
        assert!(ok, "{name}: {err:?}");
        assert_names(&err.to_string(), &path);
    }
    let bad_member = dir.path().join("bad-member.tar");
    write(
        &bad_member,
        &tar(&[("train/cat/0.jpg", b"not a jpeg".to_vec())]),
    );
    let err = read_image_tar(&bad_member, "train", 4, 3).expect_err("must fail");
    assert!(
        matches!(err, DataError::BadImage { .. }) && err.to_string().contains("train/cat/0.jpg"),
        "{err}"
    );
    Ok(())
}
