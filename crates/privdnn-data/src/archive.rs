//! Reader for image datasets packed in a `.tar` or `.tar.gz` in ImageFolder layout:
//! `<prefix>/<class>/<image>.{jpg,jpeg,png}` (entries may start with `./`), e.g. the CIFAR-10
//! JPEG tar with `train/airplane/0.jpg` … `test/truck/999.jpg`.
//!
//! The archive is read in one streaming pass (it can be large); members are then decoded in
//! parallel. Classes are sorted by name, images by path (numeric-aware). A cut-short archive is a
//! [`DataError::Truncated`], never a silently smaller dataset.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Component, Path};
use std::sync::atomic::Ordering;

use crate::error::DataError;
use crate::images::{
    LabelledImages, check_shape, class_label, decode_into, has_image_extension, natural_cmp,
};
use crate::input::{EofWatch, fill_parallel, open, stream_error};

const FORMAT: &str = "image tar";

/// One archive member kept for decoding.
struct Member {
    class: String,
    name: String,
    bytes: Vec<u8>,
}

/// Reads the images under `prefix/<class>/` of the tar (or tar.gz) at `path`.
pub fn read_image_tar(
    path: &Path,
    prefix: &str,
    size: usize,
    channels: usize,
) -> Result<LabelledImages, DataError> {
    read_image_tar_splits(path, &[prefix], size, channels)?
        .pop()
        .ok_or_else(|| DataError::layout(path, format!("no `{prefix}/<class>/<image>` entries")))
}

/// Like [`read_image_tar`] for several prefixes at once (one pass over the archive); results are
/// in `prefixes` order.
pub fn read_image_tar_splits(
    path: &Path,
    prefixes: &[&str],
    size: usize,
    channels: usize,
) -> Result<Vec<LabelledImages>, DataError> {
    check_shape(path, size, channels)?;
    let members = collect_members(path, prefixes)?;
    prefixes
        .iter()
        .zip(members)
        .map(|(prefix, members)| decode_members(path, prefix, members, size, channels))
        .collect()
}

/// One pass over the archive: the image members under each prefix, in archive order.
fn collect_members(path: &Path, prefixes: &[&str]) -> Result<Vec<Vec<Member>>, DataError> {
    let opened = open(path)?;
    let gzip = opened.gzip;
    let watch = EofWatch::new(opened.reader);
    let eof = watch.eof.clone();
    let error = |e| stream_error(path, FORMAT, gzip, eof.load(Ordering::Relaxed), e);
    let mut archive = tar::Archive::new(watch);
    let mut members: Vec<Vec<Member>> = prefixes.iter().map(|_| Vec::new()).collect();
    for entry in archive.entries().map_err(error)? {
        let mut entry = entry.map_err(error)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let entry_path = entry.path().map_err(error)?.into_owned();
        let parts: Vec<String> = entry_path
            .components()
            .filter(|c| !matches!(c, Component::CurDir))
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let [top, class, name] = parts.as_slice() else {
            continue;
        };
        let Some(slot) = prefixes.iter().position(|p| p == top) else {
            continue;
        };
        if name.starts_with('.') || !has_image_extension(Path::new(name)) {
            continue;
        }
        let expected = entry.size();
        let mut bytes = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
        entry.read_to_end(&mut bytes).map_err(error)?;
        if (bytes.len() as u64) < expected {
            return Err(DataError::truncated(
                path,
                FORMAT,
                format!(
                    "member `{}` promises {expected} bytes, the archive ends after {}",
                    entry_path.display(),
                    bytes.len()
                ),
            ));
        }
        members[slot].push(Member {
            class: class.clone(),
            name: name.clone(),
            bytes,
        });
    }
    if eof.load(Ordering::Relaxed) {
        return Err(DataError::truncated(
            path,
            FORMAT,
            "the archive ends without its end-of-archive marker",
        ));
    }
    Ok(members)
}

/// Sorts, labels and decodes the members of one prefix.
fn decode_members(
    path: &Path,
    prefix: &str,
    mut members: Vec<Member>,
    size: usize,
    channels: usize,
) -> Result<LabelledImages, DataError> {
    if members.is_empty() {
        return Err(DataError::layout(
            path,
            format!("no `{prefix}/<class>/<image>` entries"),
        ));
    }
    members.sort_by(|a, b| {
        natural_cmp(&a.class, &b.class).then_with(|| natural_cmp(&a.name, &b.name))
    });
    let classes: BTreeSet<&str> = members.iter().map(|m| m.class.as_str()).collect();
    let mut class_names: Vec<String> = classes.into_iter().map(String::from).collect();
    class_names.sort_by(|a, b| natural_cmp(a, b));
    let mut labels = Vec::with_capacity(members.len());
    for member in &members {
        let index = class_names
            .iter()
            .position(|c| *c == member.class)
            .unwrap_or_default();
        labels.push(class_label(path, index)?);
    }
    let images = fill_parallel(&members, channels * size * size, |member, out| {
        decode_into(&member.bytes, size, channels, out).map_err(|reason| DataError::BadImage {
            path: path.to_path_buf(),
            member: format!(" (member `{prefix}/{}/{}`)", member.class, member.name),
            reason,
        })
    })?;
    Ok(LabelledImages {
        class_names,
        labels,
        images,
    })
}
