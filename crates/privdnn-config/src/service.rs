//! `[service]`: the owner service's settings — TLS files, the users allowed and their quotas,
//! the per-peer connection cap and the audit log. Not part of any stage hash, and left out of the
//! serialised config when unset, so the hashes of existing runs do not change. The same table
//! can live in its own TOML file (`privdnn-party serve --service FILE`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// Settings of the owner service (`privdnn-party serve`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// CA certificate (PEM) that signs the user certificates (`privdnn-party certs`).
    pub ca: Option<PathBuf>,
    /// The owner's certificate (PEM).
    pub cert: Option<PathBuf>,
    /// The owner's private key (PEM; keep it mode 0600).
    pub key: Option<PathBuf>,
    /// JSON-lines audit log, one line per request (default: `<run>/party/audit.jsonl`).
    pub audit_log: Option<PathBuf>,
    /// Length of the quota window, seconds.
    pub window_seconds: u64,
    /// Connections one peer address (IP) may hold open at once.
    pub max_connections_per_peer: usize,
    /// Allowed users (the id their certificate names) and their quotas; anyone else is refused.
    pub users: BTreeMap<String, UserQuota>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            ca: None,
            cert: None,
            key: None,
            audit_log: None,
            window_seconds: 3600,
            max_connections_per_peer: 4,
            users: BTreeMap::new(),
        }
    }
}

/// What one user may do per window (`0` = nothing of that kind).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UserQuota {
    /// Requests (decryptions or keyed requests) per window.
    pub requests: u64,
    /// Ciphertexts per window, summed over the user's requests.
    pub ciphertexts: u64,
    /// Revoked: refused like an unknown user (keep the entry to say so in the audit log).
    pub revoked: bool,
}

impl Default for UserQuota {
    fn default() -> Self {
        Self {
            requests: 1000,
            ciphertexts: 1_000_000,
            revoked: false,
        }
    }
}

impl ServiceConfig {
    /// Whether nothing is set (then the table is not serialised).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Reads a standalone service file (the `[service]` keys at top level).
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let cfg: Self = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        cfg.validate().map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(cfg)
    }

    /// Checks ranges types cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if self.window_seconds == 0 {
            return Err("`service.window_seconds` must be at least 1".into());
        }
        if self.max_connections_per_peer == 0 {
            return Err("`service.max_connections_per_peer` must be at least 1".into());
        }
        let valid = |id: &str| {
            (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        };
        match self.users.keys().find(|id| !valid(id)) {
            Some(id) => Err(format!(
                "`service.users`: user id `{id}`: use 1-64 characters of a-z, A-Z, 0-9, '.', '_', '-'"
            )),
            None => Ok(()),
        }
    }
}
