//! Reading a located dataset ([`Source`]) into its train and test [`DatasetSplit`]s at the
//! requested image size: IDX and record sources are read at their native size and resized plane
//! by plane; encoded images are decoded straight to the requested size. Every label is checked
//! against the class list. This module must never write anything.

use std::path::{Path, PathBuf};

use privdnn_artifacts::DatasetSplit;

use crate::archive::read_image_tar_splits;
use crate::catalogue::{Source, channels};
use crate::error::DataError;
use crate::idx::{read_idx_images, read_idx_labels};
use crate::images::{LabelledImages, read_image_folder, read_tiny_imagenet_val, resize_chw};
use crate::records::read_cifar_records;

impl Source {
    /// Short description for logs and `source.json`.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Idx { .. } => "idx",
            Source::Records { .. } => "records",
            Source::ImageTar { .. } => "image-tar",
            Source::Folders { .. } => "image-folders",
            Source::TinyImageNet { .. } => "tiny-imagenet",
        }
    }

    /// Reads both splits at `size × size`.
    pub fn load(
        &self,
        dataset: &str,
        size: usize,
    ) -> Result<(DatasetSplit, DatasetSplit), DataError> {
        let channels = channels(dataset)?;
        let (train, test) = match self {
            Source::Idx {
                train,
                test,
                transpose,
                classes,
            } => (
                load_idx(train, *transpose, classes, size)?,
                load_idx(test, *transpose, classes, size)?,
            ),
            Source::Records {
                train,
                test,
                classes,
            } => (
                load_records(train, classes, size)?,
                load_records(test, classes, size)?,
            ),
            Source::ImageTar { path } => {
                let mut splits =
                    read_image_tar_splits(path, &["train", "test"], size, channels)?.into_iter();
                match (splits.next(), splits.next()) {
                    (Some(train), Some(test)) => same_classes(path, train, test)?,
                    _ => return Err(DataError::layout(path, "expected train/ and test/ trees")),
                }
            }
            Source::Folders { train, test } => same_classes(
                test,
                read_image_folder(train, size, channels)?,
                read_image_folder(test, size, channels)?,
            )?,
            Source::TinyImageNet { train, val } => {
                let train = read_image_folder(train, size, channels)?;
                let test = read_tiny_imagenet_val(val, &train.class_names, size)?;
                (train, test)
            }
        };
        let split = |images: LabelledImages, name: &str| DatasetSplit {
            dataset: dataset.to_string(),
            split: name.to_string(),
            channels,
            height: size,
            width: size,
            class_names: images.class_names,
            labels: images.labels,
            images: images.images,
        };
        Ok((split(train, "train"), split(test, "test")))
    }
}

/// Checks that train and test found the same classes.
fn same_classes(
    path: &Path,
    train: LabelledImages,
    test: LabelledImages,
) -> Result<(LabelledImages, LabelledImages), DataError> {
    if train.class_names != test.class_names {
        return Err(DataError::layout(
            path,
            format!(
                "train has classes {:?} but test has {:?}",
                train.class_names, test.class_names
            ),
        ));
    }
    Ok((train, test))
}

/// Reads one IDX split (`[images, labels]`), transposing and resizing as asked.
fn load_idx(
    files: &[PathBuf; 2],
    transpose: bool,
    classes: &[String],
    size: usize,
) -> Result<LabelledImages, DataError> {
    let [images_path, labels_path] = files;
    let mut images = read_idx_images(images_path)?;
    let labels = read_idx_labels(labels_path)?;
    if labels.len() != images.count {
        return Err(DataError::corrupt(
            labels_path,
            "IDX labels",
            format!(
                "{} labels for the {} images of {}",
                labels.len(),
                images.count,
                images_path.display()
            ),
        ));
    }
    if transpose {
        images.transpose();
    }
    let labels: Vec<u16> = labels.into_iter().map(u16::from).collect();
    check_labels(labels_path, "IDX labels", &labels, classes.len())?;
    let pixels = if images.rows == size && images.cols == size {
        images.pixels
    } else {
        resize_chw(images_path, &images.pixels, images.rows, images.cols, size)?
    };
    Ok(LabelledImages {
        class_names: classes.to_vec(),
        labels,
        images: pixels,
    })
}

/// Reads and concatenates 3×32×32 record files, resizing as asked.
fn load_records(
    files: &[PathBuf],
    classes: &[String],
    size: usize,
) -> Result<LabelledImages, DataError> {
    let (mut labels, mut pixels) = (Vec::new(), Vec::new());
    for file in files {
        let (l, p) = read_cifar_records(file, 3, 32, 32)?;
        check_labels(file, "labelled-record", &l, classes.len())?;
        labels.extend(l);
        pixels.extend(p);
    }
    if size != 32 {
        let path = files
            .first()
            .map(PathBuf::as_path)
            .unwrap_or(Path::new("."));
        pixels = resize_chw(path, &pixels, 32, 32, size)?;
    }
    Ok(LabelledImages {
        class_names: classes.to_vec(),
        labels,
        images: pixels,
    })
}

/// Every label must name a class.
fn check_labels(
    path: &Path,
    format: &'static str,
    labels: &[u16],
    classes: usize,
) -> Result<(), DataError> {
    match labels.iter().position(|&l| usize::from(l) >= classes) {
        Some(i) => Err(DataError::corrupt(
            path,
            format,
            format!("label {} of item {i} is outside 0..{classes}", labels[i]),
        )),
        None => Ok(()),
    }
}
