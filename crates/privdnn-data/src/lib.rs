//! Datasets for PrivDNN: readers for the real source formats, the prepared cache, deterministic
//! splits, and normalised (optionally augmented) float batches.
//!
//! - Readers ([`read_idx_images`], [`read_idx_labels`], [`read_cifar_records`],
//!   [`read_image_folder`], [`read_tiny_imagenet_val`], [`read_image_tar`]) detect gzip by its
//!   magic bytes, so `.gz` and raw files both work; a corrupt or truncated file is a typed
//!   [`DataError`] naming the file.
//! - [`prepare`] turns a source folder into `cache/<dataset>-<size>/{train,test}.bin`
//!   ([`DatasetSplit`] artifacts) after checking published checksums; [`load_prepared`] reads them.
//! - [`split_validation_test`], [`sample_indices`], [`epoch_order`] are seeded, reproducible shuffles.
//! - [`make_batch`] produces the float input of a training or evaluation step.
//!
//! This crate must never download anything, never write into the source folder, and never
//! depend on a deep-learning or encryption library.

mod archive;
mod batch;
mod catalogue;
mod error;
mod idx;
mod images;
mod input;
mod load;
mod prepare;
mod records;
mod split;
mod splits;
mod synthetic;

pub use archive::{read_image_tar, read_image_tar_splits};
pub use batch::{Augmentation, make_batch};
pub use catalogue::{known_datasets, native_image_size};
pub use error::DataError;
pub use idx::{IdxImages, read_idx_images, read_idx_labels};
pub use images::{LabelledImages, read_image_folder, read_tiny_imagenet_val};
pub use prepare::{PreparedPaths, SourceFile, SourceManifest, cache_dir, load_prepared, prepare};
pub use privdnn_artifacts::{DatasetSplit, Normalization};
pub use records::read_cifar_records;
pub use split::{epoch_order, sample_indices, split_validation_test};
pub use splits::{Splits, load_splits};
pub use synthetic::synthetic;
