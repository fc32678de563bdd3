//! The synthetic dataset of the `tiny` pipeline: ten classes of seeded random low-resolution
//! templates, upsampled, randomly shifted and overlaid with noise. A small CNN learns it within
//! seconds, but not perfectly at first, so tests can see accuracy improve. Never used for results.

use privdnn_artifacts::DatasetSplit;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CLASSES: usize = 10;
const GRID: usize = 4;

/// `(train, test)` splits of `train` and `test` images of `channels × size × size`.
pub fn synthetic(
    train: usize,
    test: usize,
    size: usize,
    channels: usize,
    seed: u64,
) -> (DatasetSplit, DatasetSplit) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let templates: Vec<Vec<f32>> = (0..CLASSES)
        .map(|_| {
            (0..channels * GRID * GRID)
                .map(|_| rng.random::<f32>())
                .collect()
        })
        .collect();
    let make = |count: usize, name: &str, rng: &mut ChaCha8Rng| {
        let mut images = Vec::with_capacity(count * channels * size * size);
        let mut labels = Vec::with_capacity(count);
        for i in 0..count {
            let class = i % CLASSES;
            let (dy, dx) = (rng.random_range(0..3usize), rng.random_range(0..3usize));
            for c in 0..channels {
                for y in 0..size {
                    for x in 0..size {
                        let gy = ((y + dy) * GRID / (size + 2)).min(GRID - 1);
                        let gx = ((x + dx) * GRID / (size + 2)).min(GRID - 1);
                        let base = templates[class][(c * GRID + gy) * GRID + gx];
                        let value = 40.0 + 150.0 * base + rng.random_range(-60.0..60.0f32);
                        images.push(value.clamp(0.0, 255.0) as u8);
                    }
                }
            }
            labels.push(class as u16);
        }
        DatasetSplit {
            dataset: "synthetic".to_string(),
            split: name.to_string(),
            channels,
            height: size,
            width: size,
            class_names: (0..CLASSES).map(|c| format!("class{c}")).collect(),
            labels,
            images,
        }
    };
    let train_split = make(train, "train", &mut rng);
    let test_split = make(test, "test", &mut rng);
    (train_split, test_split)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_is_seeded_and_shaped() {
        let (a, b) = synthetic(20, 10, 28, 1, 3);
        let (a2, _) = synthetic(20, 10, 28, 1, 3);
        let (a3, _) = synthetic(20, 10, 28, 1, 4);
        assert_eq!(a, a2);
        assert_ne!(a.images, a3.images);
        assert_eq!(a.images.len(), 20 * 28 * 28);
        assert_eq!(b.len(), 10);
        assert_eq!(a.num_classes(), 10);
    }
}
