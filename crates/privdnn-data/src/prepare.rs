//! The prepared-dataset cache: `cache_root/<dataset>-<image_size>/{train,test}.bin`
//! ([`DatasetSplit`] artifacts) plus `source.json` ([`SourceManifest`]).
//!
//! [`prepare`] locates and checks the sources (SHA-256 against the published checksums), reads
//! them once and writes the cache; a second call with unchanged sources (same paths, sizes and
//! modification times) and the same image size does nothing. [`load_prepared`] reads the cache
//! back and checks its consistency. This module must never write outside `cache_root` and never
//! modify a source file.

use std::path::{Path, PathBuf};
use std::time::{Instant, UNIX_EPOCH};

use privdnn_artifacts::{
    ArtifactError, DatasetSplit, file_sha256, read_artifact, write_artifact, write_json_atomic,
};
use serde::{Deserialize, Serialize};

use crate::catalogue::{Input, channels, locate};
use crate::error::DataError;
use crate::images::check_shape;

/// Version of the cache layout; bump it when the prepared bytes would change for the same sources.
const CACHE_FORMAT: u32 = 1;

/// Where [`prepare`] put the two splits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedPaths {
    /// The `train` split artifact.
    pub train: PathBuf,
    /// The `test` split artifact (the official test set, before any validation split).
    pub test: PathBuf,
}

/// Contents of `source.json`: what a cache folder was prepared from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceManifest {
    /// Cache layout version.
    pub format_version: u32,
    /// Dataset name.
    pub dataset: String,
    /// Side of the prepared images.
    pub image_size: usize,
    /// Channels of the prepared images.
    pub channels: usize,
    /// Which source layout was read (`idx`, `records`, `image-tar`, …).
    pub source_kind: String,
    /// The source files and folders.
    pub sources: Vec<SourceFile>,
    /// Images in the train split.
    pub train_count: usize,
    /// Images in the test split.
    pub test_count: usize,
    /// Number of classes.
    pub num_classes: usize,
    /// Size of `train.bin`.
    pub train_bytes: u64,
    /// Size of `test.bin`.
    pub test_bytes: u64,
}

/// One source file (or folder of images) and its fingerprint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceFile {
    /// Path as found under the source root.
    pub path: String,
    /// Size in bytes (sum over the files of a folder).
    pub bytes: u64,
    /// Files counted (1 for a file).
    pub files: u64,
    /// Modification time, nanoseconds since the Unix epoch (latest over a folder; 0 if unknown).
    pub modified_ns: u64,
    /// SHA-256 of a file (folders are not hashed).
    pub sha256: Option<String>,
    /// True when the hash was checked against the published checksum.
    pub verified: bool,
}

/// The cache folder of one dataset at one image size.
pub fn cache_dir(cache_root: &Path, dataset: &str, image_size: usize) -> PathBuf {
    cache_root.join(format!("{dataset}-{image_size}"))
}

/// Prepares `dataset` from the sources under `source_root` into the cache under `cache_root`,
/// resized to `image_size × image_size`. With `verify`, every source file with a published
/// checksum must match it. Skips the work when the cache is already up to date.
pub fn prepare(
    dataset: &str,
    source_root: &Path,
    cache_root: &Path,
    image_size: usize,
    verify: bool,
) -> Result<PreparedPaths, DataError> {
    let channels = channels(dataset)?;
    let dir = cache_dir(cache_root, dataset, image_size);
    let paths = PreparedPaths {
        train: dir.join("train.bin"),
        test: dir.join("test.bin"),
    };
    let manifest_path = dir.join("source.json");
    check_shape(&dir, image_size, channels)?;
    let (source, inputs) = locate(dataset, source_root)?;
    let fingerprints = inputs
        .iter()
        .map(fingerprint)
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(old) = read_manifest(&manifest_path)
        && is_up_to_date(
            &old,
            dataset,
            image_size,
            &fingerprints,
            &inputs,
            &paths,
            verify,
        )
    {
        log::info!("{dataset}: cache {} is up to date, skipping", dir.display());
        return Ok(paths);
    }
    let started = Instant::now();
    let sources = hash_sources(&inputs, fingerprints, verify)?;
    match std::fs::remove_file(&manifest_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(DataError::io(&manifest_path, e));
        }
        _ => {}
    }
    log::info!(
        "{dataset}: reading {} sources from {}",
        source.kind(),
        source_root.display()
    );
    let (train, test) = source.load(dataset, image_size)?;
    let train_bytes = write_artifact(&paths.train, &train)?;
    let test_bytes = write_artifact(&paths.test, &test)?;
    let manifest = SourceManifest {
        format_version: CACHE_FORMAT,
        dataset: dataset.to_string(),
        image_size,
        channels,
        source_kind: source.kind().to_string(),
        sources,
        train_count: train.len(),
        test_count: test.len(),
        num_classes: train.num_classes(),
        train_bytes,
        test_bytes,
    };
    write_json_atomic(&manifest_path, &manifest)?;
    log::info!(
        "{dataset}: prepared {} train / {} test images at {image_size}×{image_size} in {:.1} s",
        train.len(),
        test.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(paths)
}

/// Loads the prepared `(train, test)` splits of `dataset` at `image_size`.
pub fn load_prepared(
    cache_root: &Path,
    dataset: &str,
    image_size: usize,
) -> Result<(DatasetSplit, DatasetSplit), DataError> {
    channels(dataset)?;
    let dir = cache_dir(cache_root, dataset, image_size);
    let load = |name: &str| {
        let path = dir.join(format!("{name}.bin"));
        let split: DatasetSplit = read_artifact(&path).map_err(|e| match e {
            ArtifactError::NotFound { path, .. } => DataError::NotPrepared {
                path,
                dataset: dataset.to_string(),
                image_size,
            },
            other => DataError::Artifact(other),
        })?;
        check_split(&path, &split, dataset, name, image_size)?;
        Ok::<_, DataError>(split)
    };
    let (train, test) = (load("train")?, load("test")?);
    if train.class_names != test.class_names || train.channels != test.channels {
        return Err(DataError::BadCache {
            path: dir.join("test.bin"),
            dataset: dataset.to_string(),
            reason: "train and test disagree on classes or channels".to_string(),
        });
    }
    Ok((train, test))
}

/// Checks that a loaded split is what its name promises and internally consistent.
fn check_split(
    path: &Path,
    split: &DatasetSplit,
    dataset: &str,
    name: &str,
    size: usize,
) -> Result<(), DataError> {
    let problem = if split.dataset != dataset || split.split != name {
        Some(format!(
            "holds {}/{} instead of {dataset}/{name}",
            split.dataset, split.split
        ))
    } else if split.height != size || split.width != size {
        Some(format!(
            "images are {}×{}, expected {size}×{size}",
            split.height, split.width
        ))
    } else if Some(split.images.len()) != split.labels.len().checked_mul(split.image_len()) {
        Some(format!(
            "{} image bytes for {} images of {} bytes",
            split.images.len(),
            split.len(),
            split.image_len()
        ))
    } else if split
        .labels
        .iter()
        .any(|&l| usize::from(l) >= split.num_classes())
    {
        Some(format!("a label is outside 0..{}", split.num_classes()))
    } else {
        None
    };
    match problem {
        Some(reason) => Err(DataError::BadCache {
            path: path.to_path_buf(),
            dataset: dataset.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Reads an existing `source.json`; anything unreadable just means "not up to date".
fn read_manifest(path: &Path) -> Option<SourceManifest> {
    let text = std::fs::read_to_string(path).ok()?;
    match serde_json::from_str(&text) {
        Ok(manifest) => Some(manifest),
        Err(e) => {
            log::warn!("{}: unreadable ({e}); preparing again", path.display());
            None
        }
    }
}

/// True when the cache was prepared from exactly these (unchanged) sources at this size.
fn is_up_to_date(
    old: &SourceManifest,
    dataset: &str,
    image_size: usize,
    current: &[SourceFile],
    inputs: &[Input],
    paths: &PreparedPaths,
    verify: bool,
) -> bool {
    let same_sources = old.sources.len() == current.len()
        && old.sources.iter().zip(current).all(|(o, c)| {
            (&o.path, o.bytes, o.files, o.modified_ns) == (&c.path, c.bytes, c.files, c.modified_ns)
        });
    let verified = !verify
        || old.sources.iter().zip(inputs).all(|(o, input)| {
            input
                .known_sha256
                .is_none_or(|known| o.sha256.as_deref() == Some(known))
        });
    let outputs_intact = [
        (&paths.train, old.train_bytes),
        (&paths.test, old.test_bytes),
    ]
    .iter()
    .all(|(path, bytes)| std::fs::metadata(path).is_ok_and(|m| m.len() == *bytes));
    old.format_version == CACHE_FORMAT
        && old.dataset == dataset
        && old.image_size == image_size
        && same_sources
        && verified
        && outputs_intact
}

/// Size, file count and modification time of a source (walking folders).
fn fingerprint(input: &Input) -> Result<SourceFile, DataError> {
    let mut record = SourceFile {
        path: input.path.display().to_string(),
        bytes: 0,
        files: 0,
        modified_ns: 0,
        sha256: None,
        verified: false,
    };
    let mut pending = vec![input.path.clone()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::metadata(&path).map_err(|e| DataError::io(&path, e))?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(|e| DataError::io(&path, e))? {
                pending.push(entry.map_err(|e| DataError::io(&path, e))?.path());
            }
            continue;
        }
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok());
        let modified_ns = modified.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        record.bytes += meta.len();
        record.files += 1;
        record.modified_ns = record.modified_ns.max(modified_ns);
    }
    Ok(record)
}

/// Hashes every source file and, with `verify`, compares it with its published checksum.
fn hash_sources(
    inputs: &[Input],
    mut records: Vec<SourceFile>,
    verify: bool,
) -> Result<Vec<SourceFile>, DataError> {
    for (input, record) in inputs.iter().zip(&mut records) {
        if input.is_dir {
            continue;
        }
        let actual = file_sha256(&input.path).map_err(|e| source_error(&input.path, e))?;
        match input.known_sha256 {
            Some(expected) if verify && expected != actual => {
                return Err(DataError::Checksum {
                    path: input.path.clone(),
                    expected: expected.to_string(),
                    actual,
                });
            }
            Some(_) if verify => record.verified = true,
            None if verify => log::info!(
                "{}: no published checksum, not verified",
                input.path.display()
            ),
            _ => {}
        }
        record.sha256 = Some(actual);
    }
    Ok(records)
}

/// Rewords an artifacts-crate I/O error about a source file.
fn source_error(path: &Path, e: ArtifactError) -> DataError {
    match e {
        ArtifactError::Io { source, .. } => DataError::io(path, source),
        ArtifactError::NotFound { .. } => DataError::io(path, std::io::ErrorKind::NotFound.into()),
        other => DataError::Artifact(other),
    }
}
