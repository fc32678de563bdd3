//! Tests of the seeded shuffles (validation/test halving, sample indices, epoch order) and of
//! batch construction: exact normalisation, flip, crop, grayscale and determinism.

use std::collections::BTreeSet;

use privdnn_data::{
    Augmentation, DatasetSplit, Normalization, epoch_order, make_batch, sample_indices,
    split_validation_test,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A split whose labels are the image indices (so subsets can be traced back).
fn traced_split(n: usize) -> DatasetSplit {
    DatasetSplit {
        dataset: "fake".into(),
        split: "test".into(),
        channels: 1,
        height: 1,
        width: 1,
        class_names: (0..n).map(|i| i.to_string()).collect(),
        labels: (0..n as u16).collect(),
        images: (0..n).map(|i| (i % 256) as u8).collect(),
    }
}

#[test]
fn validation_test_split_is_deterministic_disjoint_and_complete() {
    let test = traced_split(10_000);
    let (val, rest) = split_validation_test(&test, 0);
    assert_eq!((val.len(), rest.len()), (5000, 5000));
    assert_eq!(
        (val.split.as_str(), rest.split.as_str()),
        ("validation", "test")
    );
    let all: BTreeSet<u16> = val.labels.iter().chain(&rest.labels).copied().collect();
    assert_eq!(
        all.len(),
        10_000,
        "halves are disjoint and cover everything"
    );
    for (i, &id) in val.labels.iter().enumerate() {
        assert_eq!(
            val.image(i)[0],
            (id % 256) as u8,
            "images follow their labels"
        );
    }
    assert_eq!(split_validation_test(&test, 0), (val.clone(), rest));
    assert_ne!(split_validation_test(&test, 1).0.labels, val.labels);
    let (v, t) = split_validation_test(&traced_split(7), 3);
    assert_eq!((v.len(), t.len()), (3, 4));
}

#[test]
fn sample_and_epoch_orders() {
    let sample = sample_indices(100, 10, 5);
    assert_eq!(sample.len(), 10);
    assert_eq!(sample.iter().collect::<BTreeSet<_>>().len(), 10);
    assert!(sample.iter().all(|&i| i < 100));
    assert_eq!(sample, sample_indices(100, 10, 5));
    assert_ne!(sample, sample_indices(100, 10, 6));
    assert_eq!(sample_indices(3, 10, 0).len(), 3);

    let first = epoch_order(50, 0, 9);
    let mut sorted = first.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..50).collect::<Vec<_>>());
    assert_eq!(first, epoch_order(50, 0, 9));
    assert_ne!(first, epoch_order(50, 1, 9));
    assert_ne!(first, epoch_order(50, 0, 10));
}

/// Two 3-channel 2×2 images with distinct bytes.
fn rgb_split() -> DatasetSplit {
    DatasetSplit {
        dataset: "fake".into(),
        split: "train".into(),
        channels: 3,
        height: 2,
        width: 2,
        class_names: vec!["a".into(), "b".into()],
        labels: vec![1, 0],
        images: (0..24).map(|i| (i * 10) as u8).collect(),
    }
}

fn norm() -> Normalization {
    Normalization {
        mean: vec![0.5, 0.4, 0.3],
        std: vec![0.25, 0.2, 0.1],
    }
}

fn expected(split: &DatasetSplit, index: usize, norm: &Normalization) -> Vec<f32> {
    let plane = split.height * split.width;
    split
        .image(index)
        .iter()
        .enumerate()
        .map(|(i, &b)| (b as f32 / 255.0 - norm.mean[i / plane]) / norm.std[i / plane])
        .collect()
}

#[test]
fn batch_normalises_exactly_without_augmentation() {
    let split = rgb_split();
    let (x, y) = make_batch(&split, &[1, 0, 1], &norm(), None);
    assert_eq!(y, [0, 1, 0]);
    let mut want = expected(&split, 1, &norm());
    want.extend(expected(&split, 0, &norm()));
    want.extend(expected(&split, 1, &norm()));
    assert_eq!(x, want);
    let single = Normalization {
        mean: vec![0.5],
        std: vec![0.5],
    };
    let (x, _) = make_batch(&split, &[0], &single, None);
    assert_eq!(x[23 - 12], (110.0 / 255.0 - 0.5) / 0.5);
}

#[test]
fn hflip_mirrors_some_images_and_keeps_the_rest() {
    let split = rgb_split();
    let aug = Augmentation {
        hflip: true,
        ..Augmentation::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let plain = expected(&split, 0, &norm());
    let mirrored: Vec<f32> = plain.chunks(2).flat_map(|row| [row[1], row[0]]).collect();
    let (mut flipped, mut kept) = (0, 0);
    for _ in 0..40 {
        let (x, _) = make_batch(&split, &[0], &norm(), Some((&aug, &mut rng)));
        if x == mirrored {
            flipped += 1;
        } else {
            assert_eq!(x, plain);
            kept += 1;
        }
    }
    assert!(flipped > 5 && kept > 5, "flipped {flipped}, kept {kept}");
    let mut again = ChaCha8Rng::seed_from_u64(1);
    let mut first = ChaCha8Rng::seed_from_u64(1);
    assert_eq!(
        make_batch(&split, &[0, 1], &norm(), Some((&aug, &mut again))),
        make_batch(&split, &[0, 1], &norm(), Some((&aug, &mut first)))
    );
}

#[test]
fn crop_shifts_with_zero_padding() {
    let split = DatasetSplit {
        channels: 1,
        height: 3,
        width: 3,
        images: (1..=9).collect(),
        labels: vec![0],
        ..rgb_split()
    };
    let norm = Normalization {
        mean: vec![0.0],
        std: vec![1.0],
    };
    let aug = Augmentation {
        crop_padding: 1,
        ..Augmentation::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let shifted = |dy: isize, dx: isize| -> Vec<f32> {
        (0..9)
            .map(|i| {
                let (y, x) = (i as isize / 3 + dy, i as isize % 3 + dx);
                if (0..3).contains(&y) && (0..3).contains(&x) {
                    (y * 3 + x + 1) as f32 / 255.0
                } else {
                    0.0
                }
            })
            .collect()
    };
    let mut seen = BTreeSet::new();
    for _ in 0..60 {
        let (x, _) = make_batch(&split, &[0], &norm, Some((&aug, &mut rng)));
        let shift = (-1..=1)
            .flat_map(|dy| (-1..=1).map(move |dx| (dy, dx)))
            .find(|&(dy, dx)| shifted(dy, dx) == x);
        seen.insert(shift.expect("output is a shifted, zero-padded copy"));
    }
    assert!(seen.len() >= 7, "most of the 9 shifts occur: {seen:?}");
}

#[test]
fn grayscale_copies_luma_to_every_channel() {
    let split = rgb_split();
    let aug = Augmentation {
        grayscale_p: 1.0,
        ..Augmentation::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let n = norm();
    let (x, _) = make_batch(&split, &[0], &n, Some((&aug, &mut rng)));
    let img = split.image(0);
    for c in 0..3 {
        for i in 0..4 {
            let luma =
                0.299 * img[i] as f32 + 0.587 * img[4 + i] as f32 + 0.114 * img[8 + i] as f32;
            let want = (luma / 255.0 - n.mean[c]) / n.std[c];
            assert!((x[c * 4 + i] - want).abs() < 1e-5, "channel {c} pixel {i}");
        }
    }
}

#[test]
fn augmentation_config_is_strict_with_defaults() -> Result<(), serde_json::Error> {
    let aug: Augmentation = serde_json::from_str(r#"{"hflip": true}"#)?;
    assert_eq!(
        aug,
        Augmentation {
            hflip: true,
            grayscale_p: 0.0,
            crop_padding: 0
        }
    );
    assert!(serde_json::from_str::<Augmentation>(r#"{"hflip": true, "flip": 1}"#).is_err());
    Ok(())
}
