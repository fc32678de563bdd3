//! The owner's audit log: one JSON line per request and per refused connection — time (UTC,
//! RFC 3339), peer, user, request kind, ciphertexts, bytes in and out, outcome (`ok`,
//! `refused` with the error code, or `error`) and a detail. Appended and flushed line by line,
//! file mode 0600 (it names users).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

use crate::PartyError;

/// One line of the log.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    /// UTC time, RFC 3339 with milliseconds.
    pub time: String,
    /// Peer address.
    pub peer: String,
    /// User id (`-` before the user is known).
    pub user: String,
    /// Request kind (`handshake`, `connect`, `get-file`, `decrypt`, `keyed-request`, …).
    pub kind: String,
    /// Ciphertexts in the request.
    pub ciphertexts: u64,
    /// Request bytes (whole frame).
    pub bytes_in: u64,
    /// Answer bytes (whole frame; 0 when refused).
    pub bytes_out: u64,
    /// `ok`, `refused` or `error`.
    pub outcome: &'static str,
    /// Error code name when not ok (`unauthorized`, `quota`, `bad-request`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    /// What happened, in words.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl AuditRecord {
    /// A record stamped now.
    pub fn new(peer: &str, user: &str, kind: &str) -> Self {
        Self {
            time: rfc3339_now(),
            peer: peer.to_string(),
            user: user.to_string(),
            kind: kind.to_string(),
            ciphertexts: 0,
            bytes_in: 0,
            bytes_out: 0,
            outcome: "ok",
            code: None,
            detail: String::new(),
        }
    }

    /// Marks the record as refused or failed by `err`.
    pub fn failed(mut self, err: &PartyError) -> Self {
        let code = err.code();
        self.outcome = match err {
            PartyError::Unauthorized(_)
            | PartyError::Quota(_)
            | PartyError::Busy(_)
            | PartyError::BadRequest(_) => "refused",
            _ => "error",
        };
        self.code = Some(code.name());
        self.detail = err.to_string();
        self
    }
}

/// Where the lines go (nowhere when no path is configured).
#[derive(Debug, Default)]
pub struct AuditLog {
    path: Option<PathBuf>,
    file: Option<Mutex<std::fs::File>>,
}

impl AuditLog {
    /// Appends to `path` (created 0600 with its folder), or discards lines when `None`.
    pub fn open(path: Option<&Path>) -> Result<Self, PartyError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| PartyError::io(format!("creating {}", dir.display()), e))?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts
            .open(path)
            .map_err(|e| PartyError::io(format!("opening the audit log {}", path.display()), e))?;
        Ok(Self {
            path: Some(path.to_path_buf()),
            file: Some(Mutex::new(file)),
        })
    }

    /// The log file, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Writes one line (a failure is logged, never fatal to the request).
    pub fn write(&self, record: &AuditRecord) {
        let Some(file) = &self.file else {
            return;
        };
        let mut line = match serde_json::to_vec(record) {
            Ok(l) => l,
            Err(e) => return log::error!("audit record not serialisable: {e}"),
        };
        line.push(b'\n');
        let mut f = file.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = f.write_all(&line).and_then(|_| f.flush()) {
            log::error!("writing the audit log: {e}");
        }
    }
}

/// Now, UTC, `YYYY-MM-DDThh:mm:ss.mmmZ`.
pub fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs(), now.subsec_millis())
}

/// Unix seconds (+ milliseconds) as RFC 3339 UTC (civil-from-days, proleptic Gregorian).
pub fn rfc3339(secs: u64, millis: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(1_798_761_599, 999), "2026-12-31T23:59:59.999Z");
    }

    #[test]
    fn lines_are_appended_as_json_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("logs").join("audit.jsonl");
        let log = AuditLog::open(Some(&path)).expect("open");
        log.write(&AuditRecord::new("1.2.3.4:5", "alice", "decrypt"));
        let refused = AuditRecord::new("1.2.3.4:5", "alice", "decrypt")
            .failed(&PartyError::Quota("spent".into()));
        log.write(&refused);
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["outcome"], "ok");
        assert_eq!(lines[1]["outcome"], "refused");
        assert_eq!(lines[1]["code"], "quota");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }
}
