//! Run manifests (a small JSON file beside each artifact) and the atomic-write helpers.
//!
//! A manifest records what produced an artifact: kind and schema version, producing crate and
//! version, git revision, hash of the resolved configuration, hashes of the input files, wall time
//! and peak memory. `xtask` compares these hashes to decide which stages are up to date.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::envelope::ArtifactKind;
use crate::error::ArtifactError;

/// One input file that an artifact was computed from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputRecord {
    /// Path as given to the stage.
    pub path: String,
    /// SHA-256 of the file's bytes, hex.
    pub sha256: String,
}

/// JSON description of how an artifact was produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Artifact kind name.
    pub kind: String,
    /// Schema version of the artifact.
    pub schema_version: u32,
    /// Producing crate and version, e.g. `privdnn-train 0.1.0`.
    pub producer: String,
    /// `git describe`-style revision of the source tree, or `unknown`.
    pub git_revision: String,
    /// SHA-256 of the resolved configuration.
    pub config_hash: String,
    /// Files the artifact was computed from.
    pub inputs: Vec<InputRecord>,
    /// SHA-256 of the artifact file itself.
    pub output_sha256: String,
    /// Size of the artifact file.
    pub output_bytes: u64,
    /// Wall-clock seconds the stage took.
    pub wall_seconds: f64,
    /// Peak resident memory of the producing process, bytes (0 where unknown).
    pub peak_rss_bytes: u64,
    /// Unix time of writing.
    pub created_unix: u64,
}

impl Manifest {
    /// Builds a manifest for an artifact that has just been written to `artifact`.
    pub fn for_artifact(
        kind: ArtifactKind,
        schema_version: u32,
        producer: &str,
        artifact: &Path,
        config_hash: &str,
        inputs: &[&Path],
        wall_seconds: f64,
    ) -> Result<Self, ArtifactError> {
        let inputs = inputs
            .iter()
            .map(|p| {
                Ok(InputRecord {
                    path: p.display().to_string(),
                    sha256: file_sha256(p)?,
                })
            })
            .collect::<Result<Vec<_>, ArtifactError>>()?;
        let output_bytes = std::fs::metadata(artifact)
            .map_err(|e| ArtifactError::io(artifact, e, kind.producer()))?
            .len();
        Ok(Manifest {
            kind: kind.name().to_string(),
            schema_version,
            producer: producer.to_string(),
            git_revision: git_revision(),
            config_hash: config_hash.to_string(),
            inputs,
            output_sha256: file_sha256(artifact)?,
            output_bytes,
            wall_seconds,
            peak_rss_bytes: peak_rss_bytes(),
            created_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        })
    }

    /// Writes the manifest beside its artifact (see [`manifest_path`]).
    pub fn write_beside(&self, artifact: &Path) -> Result<PathBuf, ArtifactError> {
        let path = manifest_path(artifact);
        write_json_atomic(&path, self)?;
        Ok(path)
    }

    /// Reads the manifest that belongs to `artifact`.
    pub fn read_beside(artifact: &Path) -> Result<Self, ArtifactError> {
        let path = manifest_path(artifact);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ArtifactError::io(&path, e, "the stage that wrote the artifact"))?;
        serde_json::from_str(&text).map_err(|source| ArtifactError::Json { path, source })
    }

    /// True when `artifact` exists, is the file its manifest describes, was made with
    /// `config_hash` in the schema version this build uses for its kind, and every input it was
    /// computed from is unchanged.
    pub fn is_current(artifact: &Path, config_hash: &str) -> bool {
        let Ok(manifest) = Self::read_beside(artifact) else {
            return false;
        };
        ArtifactKind::from_name(&manifest.kind)
            .is_some_and(|kind| kind.schema_version() == manifest.schema_version)
            && manifest.config_hash == config_hash
            && file_sha256(artifact).is_ok_and(|h| h == manifest.output_sha256)
            && manifest
                .inputs
                .iter()
                .all(|i| file_sha256(Path::new(&i.path)).is_ok_and(|h| h == i.sha256))
    }
}

/// `model.bin` → `model.bin.manifest.json`.
pub fn manifest_path(artifact: &Path) -> PathBuf {
    let mut name = artifact.as_os_str().to_owned();
    name.push(".manifest.json");
    PathBuf::from(name)
}

/// SHA-256 of a file, hex encoded, streamed.
pub fn file_sha256(path: &Path) -> Result<String, ArtifactError> {
    let mut file =
        std::fs::File::open(path).map_err(|e| ArtifactError::io(path, e, "an earlier stage"))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)
        .map_err(|e| ArtifactError::io(path, e, "an earlier stage"))?;
    Ok(hex(&hasher.finalize()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Revision of the source tree (`git describe --always --dirty`), or `unknown` outside git.
pub fn git_revision() -> String {
    std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=12"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// Peak resident set size of this process in bytes (Linux `VmHWM`; 0 elsewhere).
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Writes bytes to `path` atomically: temporary file in the same folder, fsync, rename.
/// Creates missing parent folders. The previous file stays intact if anything fails.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<(), ArtifactError> {
    write_atomic(path, bytes, false)
}

/// [`write_bytes_atomic`] for a secret: on Unix the temporary file is created with mode 0600
/// before a byte is written (the rename keeps the mode), so the secret is never readable by
/// other users, not even briefly, whatever the umask.
pub fn write_private_atomic(path: &Path, bytes: &[u8]) -> Result<(), ArtifactError> {
    write_atomic(path, bytes, true)
}

fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> Result<(), ArtifactError> {
    let producer = "this command";
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| ArtifactError::io(parent, e, producer))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "artifact".to_string());
    let tmp = parent.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::OpenOptionsExt;
            // A leftover temporary file would keep its old mode: start from a new one.
            let _ = std::fs::remove_file(&tmp);
            opts.create_new(true).mode(0o600);
        }
        #[cfg(not(unix))]
        let _ = private;
        let mut file = opts.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(ArtifactError::io(path, e, producer));
    }
    Ok(())
}

/// Serialises `value` as pretty JSON and writes it atomically.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<(), ArtifactError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|source| ArtifactError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    text.push('\n');
    write_bytes_atomic(path, text.as_bytes())
}
