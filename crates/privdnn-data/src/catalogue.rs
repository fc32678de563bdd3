//! The dataset catalogue: which names exist, where their source files may live under a source
//! root, their published checksums, and how to turn the sources into train/test splits.
//!
//! Accepted layouts (each also accepted directly in the source root, without the folder):
//! - `mnist/`, `fashion-mnist/`: `{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`.
//! - `emnist/` (or `emnist/gzip/`): `emnist-letters-{train,test}-{images-idx3,labels-idx1}-ubyte[.gz]`;
//!   labels 1..26, so 27 classes named `"0"`..`"26"`; images are stored transposed and are
//!   transposed back to upright here.
//! - `gtsrb32/`: `gtsrb32_{train,test}.bin[.gz]`, 3×32×32 records, 43 classes `"0"`..`"42"`.
//! - `cifar10/`: the official binary version `cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin`
//!   (preferred when present: lossless) or the JPEG tar `cifar10_jpg.tar[.gz]`.
//! - `tiny-imagenet-200/`: the official layout (`train/<wnid>/images/`, `val/images/` +
//!   `val/val_annotations.txt`, used as the test split) or ImageFolder `train/` + `test/`.
//!
//! This module only finds sources (reading them is `load`); it must never write anything.

use std::path::{Path, PathBuf};

use crate::error::DataError;

/// Names of the datasets, in catalogue order.
const NAMES: [&str; 6] = [
    "mnist",
    "fashion-mnist",
    "emnist",
    "gtsrb",
    "cifar10",
    "tinyimagenet",
];
/// `(native image size, channels)` of each dataset of [`NAMES`].
const SHAPES: [(usize, usize); 6] = [(28, 1), (28, 1), (28, 1), (32, 3), (32, 3), (64, 3)];

/// Published SHA-256 of the source files (`sha256sum` format, keyed by canonical folder/file).
const CHECKSUMS: &str = "\
1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be  mnist/t10k-images-idx3-ubyte.gz
b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b  mnist/t10k-labels-idx1-ubyte.gz
0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971  mnist/train-images-idx3-ubyte.gz
1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203  mnist/train-labels-idx1-ubyte.gz
cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa  fashion-mnist/t10k-images-idx3-ubyte.gz
8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05  fashion-mnist/t10k-labels-idx1-ubyte.gz
b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7  fashion-mnist/train-images-idx3-ubyte.gz
0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056  fashion-mnist/train-labels-idx1-ubyte.gz
5839d5ea52ea2c070cdf87eb07486b3970ab5df190cd8e7ecae237f38bf19467  cifar10/cifar10_jpg.tar.gz
804245c32e76cf4a40ad784ee71adff624e25bd5fa1cae48e517dafb648f1e1e  gtsrb32/gtsrb32_train.bin.gz
8f646f9f5ac6957c19cb07d6791ef75b59a1f30329bf836d581d5c9cda772b5b  gtsrb32/gtsrb32_test.bin.gz
";

/// CIFAR-10 class names in label order (also the sorted folder names of the JPEG tar).
const CIFAR10_CLASSES: &str = "airplane,automobile,bird,cat,deer,dog,frog,horse,ship,truck";
/// Fashion-MNIST class names in label order (torchvision's).
const FASHION_CLASSES: &str =
    "T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot";

/// Names of every dataset this crate can prepare.
pub fn known_datasets() -> &'static [&'static str] {
    &NAMES
}

/// Side of the dataset's images as distributed (28, 28, 28, 32, 32, 64), or `None` if unknown.
pub fn native_image_size(dataset: &str) -> Option<usize> {
    shape(dataset).map(|(size, _)| size)
}

/// Channels of the dataset's images, or an error listing the known datasets.
pub(crate) fn channels(dataset: &str) -> Result<usize, DataError> {
    shape(dataset)
        .map(|(_, channels)| channels)
        .ok_or_else(|| DataError::UnknownDataset {
            name: dataset.to_string(),
            known: NAMES.join(", "),
        })
}

fn shape(dataset: &str) -> Option<(usize, usize)> {
    NAMES.iter().position(|n| *n == dataset).map(|i| SHAPES[i])
}

/// Class names from a comma-separated list.
fn class_list(names: &str) -> Vec<String> {
    names.split(',').map(String::from).collect()
}

/// Class names `"0"`..`"n-1"`.
fn numbered(n: usize) -> Vec<String> {
    (0..n).map(|i| i.to_string()).collect()
}

/// One source file or folder of a located dataset.
#[derive(Clone, Debug)]
pub(crate) struct Input {
    /// Where it is.
    pub path: PathBuf,
    /// True for a folder of images (fingerprinted by walking it, never hashed).
    pub is_dir: bool,
    /// Published checksum, when known.
    pub known_sha256: Option<&'static str>,
}

/// A dataset's sources, found and ready to read.
#[derive(Clone, Debug)]
pub(crate) enum Source {
    /// IDX image and label files (MNIST family).
    Idx {
        train: [PathBuf; 2],
        test: [PathBuf; 2],
        transpose: bool,
        classes: Vec<String>,
    },
    /// Fixed 3×32×32 records (GTSRB, CIFAR-10 binary).
    Records {
        train: Vec<PathBuf>,
        test: Vec<PathBuf>,
        classes: Vec<String>,
    },
    /// A JPEG tar with `train/` and `test/` ImageFolder trees.
    ImageTar { path: PathBuf },
    /// Two ImageFolder trees.
    Folders { train: PathBuf, test: PathBuf },
    /// Official Tiny ImageNet: ImageFolder `train/` and annotated `val/`.
    TinyImageNet { train: PathBuf, val: PathBuf },
}

/// Finds the sources of `dataset` under `root`.
pub(crate) fn locate(dataset: &str, root: &Path) -> Result<(Source, Vec<Input>), DataError> {
    channels(dataset)?;
    let found = match dataset {
        "mnist" => locate_idx(
            root,
            "mnist",
            &["mnist"],
            idx_stems("", "t10k"),
            numbered(10),
            false,
        ),
        "fashion-mnist" => {
            let classes = class_list(FASHION_CLASSES);
            locate_idx(
                root,
                "fashion-mnist",
                &["fashion-mnist"],
                idx_stems("", "t10k"),
                classes,
                false,
            )
        }
        "emnist" => {
            let stems = idx_stems("emnist-letters-", "test");
            locate_idx(
                root,
                "emnist",
                &["emnist", "emnist/gzip", "gzip"],
                stems,
                numbered(27),
                true,
            )
        }
        "gtsrb" => {
            let stems = ["gtsrb32_train.bin", "gtsrb32_test.bin"];
            find_files(root, "gtsrb32", &["gtsrb32", "gtsrb"], &stems).map(|(f, inputs)| {
                let (train, test) = (f[..1].to_vec(), f[1..].to_vec());
                (
                    Source::Records {
                        train,
                        test,
                        classes: numbered(43),
                    },
                    inputs,
                )
            })
        }
        "cifar10" => locate_cifar10(root),
        _ => locate_tiny_imagenet(root),
    };
    found.ok_or_else(|| DataError::MissingSource {
        dataset: dataset.to_string(),
        root: root.to_path_buf(),
        expected: expected_files(dataset).to_string(),
    })
}

/// Human description of the accepted files, for [`DataError::MissingSource`].
fn expected_files(dataset: &str) -> &'static str {
    match dataset {
        "mnist" => "mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]",
        "fashion-mnist" => "fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]",
        "emnist" => "emnist/emnist-letters-{train,test}-{images-idx3,labels-idx1}-ubyte[.gz]",
        "gtsrb" => "gtsrb32/gtsrb32_{train,test}.bin[.gz]",
        "cifar10" => {
            "cifar10/cifar10_jpg.tar.gz or cifar10/cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin"
        }
        _ => {
            "tiny-imagenet-200/{train/<wnid>/images/,val/images/,val/val_annotations.txt} or tiny-imagenet-200/{train,test}/<class>/"
        }
    }
}

/// The four IDX file stems: `<prefix>train-images-idx3-ubyte`, …, `<prefix><test>-labels-idx1-ubyte`.
fn idx_stems(prefix: &str, test: &str) -> Vec<String> {
    ["train", test]
        .iter()
        .flat_map(|split| {
            ["images-idx3", "labels-idx1"].map(|kind| format!("{prefix}{split}-{kind}-ubyte"))
        })
        .collect()
}

fn locate_idx(
    root: &Path,
    folder: &str,
    subfolders: &[&str],
    stems: Vec<String>,
    classes: Vec<String>,
    transpose: bool,
) -> Option<(Source, Vec<Input>)> {
    let stems: Vec<&str> = stems.iter().map(String::as_str).collect();
    let (f, inputs) = find_files(root, folder, subfolders, &stems)?;
    let (train, test) = ([f[0].clone(), f[1].clone()], [f[2].clone(), f[3].clone()]);
    Some((
        Source::Idx {
            train,
            test,
            transpose,
            classes,
        },
        inputs,
    ))
}

fn locate_cifar10(root: &Path) -> Option<(Source, Vec<Input>)> {
    let batches = [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ];
    let subfolders = [
        "cifar10/cifar-10-batches-bin",
        "cifar-10-batches-bin",
        "cifar10",
    ];
    if let Some((f, inputs)) = find_files(root, "cifar10", &subfolders, &batches) {
        let classes = class_list(CIFAR10_CLASSES);
        return Some((
            Source::Records {
                train: f[..5].to_vec(),
                test: f[5..].to_vec(),
                classes,
            },
            inputs,
        ));
    }
    let (f, inputs) = find_files(root, "cifar10", &["cifar10"], &["cifar10_jpg.tar"])?;
    Some((Source::ImageTar { path: f[0].clone() }, inputs))
}

fn locate_tiny_imagenet(root: &Path) -> Option<(Source, Vec<Input>)> {
    let folder_input = |path: &PathBuf| Input {
        path: path.clone(),
        is_dir: true,
        known_sha256: None,
    };
    candidate_dirs(root, &["tiny-imagenet-200", "tinyimagenet"])
        .into_iter()
        .find_map(|dir| {
            let train = dir.join("train");
            let (val, test) = (dir.join("val"), dir.join("test"));
            let (source, dirs) = if train.is_dir() && val.join("val_annotations.txt").is_file() {
                (
                    Source::TinyImageNet {
                        train: train.clone(),
                        val: val.clone(),
                    },
                    [train, val],
                )
            } else if train.is_dir() && test.is_dir() {
                (
                    Source::Folders {
                        train: train.clone(),
                        test: test.clone(),
                    },
                    [train, test],
                )
            } else {
                return None;
            };
            Some((source, dirs.iter().map(folder_input).collect()))
        })
}

/// `root/<sub>` for every sub-folder, then `root` itself.
fn candidate_dirs(root: &Path, subfolders: &[&str]) -> Vec<PathBuf> {
    subfolders
        .iter()
        .map(|s| root.join(s))
        .chain([root.to_path_buf()])
        .collect()
}

/// The first candidate folder holding every stem (each as `stem.gz` or `stem`), with its inputs.
fn find_files(
    root: &Path,
    folder: &str,
    subfolders: &[&str],
    stems: &[&str],
) -> Option<(Vec<PathBuf>, Vec<Input>)> {
    candidate_dirs(root, subfolders)
        .into_iter()
        .find_map(|dir| {
            let files: Vec<PathBuf> = stems
                .iter()
                .map(|stem| {
                    [format!("{stem}.gz"), stem.to_string()]
                        .into_iter()
                        .map(|n| dir.join(n))
                        .find(|p| p.is_file())
                })
                .collect::<Option<_>>()?;
            let inputs = files
                .iter()
                .map(|path| Input {
                    path: path.clone(),
                    is_dir: false,
                    known_sha256: known_sha256(folder, path),
                })
                .collect();
            Some((files, inputs))
        })
}

/// Published checksum of `path`, looked up as `<folder>/<file name>`.
fn known_sha256(folder: &str, path: &Path) -> Option<&'static str> {
    let key = format!("{folder}/{}", path.file_name()?.to_string_lossy());
    CHECKSUMS
        .lines()
        .filter_map(|line| line.split_once("  "))
        .find(|(_, file)| *file == key)
        .map(|(hash, _)| hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_table_is_well_formed() {
        assert_eq!(CHECKSUMS.lines().count(), 11);
        for line in CHECKSUMS.lines() {
            let (hash, file) = line.split_once("  ").unwrap_or_default();
            assert!(
                hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
                "{line}"
            );
            assert!(file.contains('/'), "{line}");
        }
        let path = Path::new("/anywhere/train-images-idx3-ubyte.gz");
        assert!(known_sha256("mnist", path).is_some_and(|h| h.starts_with("0b3670")));
        assert_eq!(
            known_sha256("fashion-mnist", Path::new("train-images-idx3-ubyte")),
            None
        );
    }
}
