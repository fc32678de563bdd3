//! The owner service's gate: what every connection and request passes before it reaches the
//! owner role.
//!
//! 1. Transport: TLS 1.3 with a client certificate from the configured CA
//!    ([`privdnn_net::TlsServer`]); plain TCP only when no TLS is configured, and then only on a
//!    loopback address (checked at bind).
//! 2. User: the certificate's user id must be on the allow-list and not revoked
//!    ([`crate::policy::Access`]); refused with an `unauthorized` error frame otherwise — before
//!    any file byte or decryption.
//! 3. Per request: a decryption request may hold at most the ciphertexts the served model needs
//!    (per residue: selected layer-2 filters, plus selected layer-1 channels when the tail needs
//!    them, times the layer-2 output positions); then the user's quota is charged. A
//!    user-keyed request counts as a request at its first part and its ciphertexts (inputs and
//!    layer-1 squares of every residue) once it is decoded, before the evaluation.
//! 4. Every connection refusal and every request is written to the audit log
//!    ([`crate::audit_log`]).

use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use privdnn_artifacts::read_artifact;
use privdnn_he::files::EncryptedModelFile;
use privdnn_he::protocol::Request;
use privdnn_net::{NetStream, TlsServer};
use privdnn_partial::keyed::UserKeyedRequest;

use crate::PartyError;
use crate::audit_log::{AuditLog, AuditRecord};
use crate::policy::{Access, INSECURE_USER, PeerSlots};
use crate::wire::{Limits, PartyChannel};

/// The gate of one service.
#[derive(Debug)]
pub struct Gate {
    tls: Option<TlsServer>,
    access: Option<Access>,
    handshake_timeout: Duration,
    /// Most ciphertexts per residue in one decryption request (owner-keyed mode).
    max_ciphertexts: Option<usize>,
    /// Open connections per peer address.
    pub peers: PeerSlots,
    /// The audit log.
    pub audit: AuditLog,
}

/// Most ciphertexts per residue one decryption request can need for the model in `path`.
pub fn ciphertexts_needed(model: &Path) -> Result<usize, PartyError> {
    let file: EncryptedModelFile = read_artifact(model)?;
    let b = &file.block;
    let channels = b.s2.len() + if file.layer1_outputs { b.s1.len() } else { 0 };
    Ok(channels * b.plain.shape.h2 * b.plain.shape.w2)
}

/// Ciphertexts of a user-keyed request: the conv1 operands and layer-1 squares of every residue.
pub fn keyed_ciphertexts(request: &UserKeyedRequest) -> u64 {
    request
        .residues
        .iter()
        .map(|r| r.inputs.len() + r.a1.len())
        .sum::<usize>() as u64
}

impl Gate {
    /// A gate: `tls` (None = plain TCP), `access` (None = no user checks; plain only),
    /// the audit log, the per-peer cap and the per-request ciphertext cap.
    pub fn new(
        tls: Option<TlsServer>,
        access: Option<Access>,
        audit: AuditLog,
        max_per_peer: usize,
        max_ciphertexts: Option<usize>,
        handshake_timeout: Duration,
    ) -> Result<Self, PartyError> {
        if tls.is_some() && access.is_none() {
            return Err(PartyError::Usage(
                "TLS needs the list of users it serves ([service.users] in the owner's config)"
                    .into(),
            ));
        }
        Ok(Self {
            tls,
            access,
            handshake_timeout,
            max_ciphertexts,
            peers: PeerSlots::new(max_per_peer),
            audit,
        })
    }

    /// Whether connections are TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Runs the handshake and names the user; a refused peer gets an error frame when the
    /// transport allows one, and an audit line.
    pub fn open(&self, tcp: TcpStream, peer: &str) -> Option<(NetStream, String)> {
        let Some(tls) = &self.tls else {
            return Some((NetStream::from(tcp), INSECURE_USER.to_string()));
        };
        let (stream, id) = match tls.accept(tcp, self.handshake_timeout) {
            Ok(x) => x,
            Err(e) => {
                let err = PartyError::Unauthorized(e.to_string());
                log::warn!("{peer}: {err}");
                self.audit
                    .write(&AuditRecord::new(peer, "-", "handshake").failed(&err));
                return None;
            }
        };
        let admitted = match &self.access {
            Some(a) => a.admit(id.user.as_deref()),
            None => Ok(id.user.clone().unwrap_or_else(|| "-".into())),
        };
        match admitted {
            Ok(user) => {
                let mut rec = AuditRecord::new(peer, &user, "connect");
                rec.detail = format!("certificate sha256 {}", id.fingerprint);
                self.audit.write(&rec);
                Some((stream, user))
            }
            Err(err) => {
                let who = id.user.as_deref().unwrap_or("-");
                log::warn!("{peer}: {err}");
                let mut rec = AuditRecord::new(peer, who, "connect").failed(&err);
                rec.detail = format!("{} (certificate sha256 {})", rec.detail, id.fingerprint);
                self.audit.write(&rec);
                if let Ok(chan) = PartyChannel::new(stream, Limits::default()) {
                    chan.refuse(err.code(), err.to_string());
                }
                None
            }
        }
    }

    /// Checks a decryption request's size and charges `user`'s quota; returns its ciphertexts.
    pub fn admit_decrypt(&self, user: &str, request: &Request) -> Result<u64, PartyError> {
        let widest = request.cts.iter().map(Vec::len).max().unwrap_or(0);
        if let Some(max) = self.max_ciphertexts
            && widest > max
        {
            return Err(PartyError::BadRequest(format!(
                "{widest} ciphertexts per residue in one request; the served model needs at \
                 most {max}"
            )));
        }
        let total = request.cts.iter().map(Vec::len).sum::<usize>() as u64;
        self.charge(user, total)?;
        Ok(total)
    }

    /// Charges the `ciphertexts` of a complete user-keyed request ([`keyed_ciphertexts`]) to
    /// `user` (its request was charged at its first part).
    pub fn admit_keyed(&self, user: &str, ciphertexts: u64) -> Result<(), PartyError> {
        match &self.access {
            Some(a) if user != INSECURE_USER => a
                .charge_ciphertexts(user, ciphertexts, Instant::now())
                .map(drop),
            _ => Ok(()),
        }
    }

    /// Charges one request of `ciphertexts` to `user` (no-op without an allow-list).
    pub fn charge(&self, user: &str, ciphertexts: u64) -> Result<(), PartyError> {
        match &self.access {
            Some(a) if user != INSECURE_USER => {
                a.charge(user, ciphertexts, Instant::now()).map(drop)
            }
            _ => Ok(()),
        }
    }
}

/// Logs a warning when the owner's secret file (`what`) can be read or written by anyone but its
/// owner: which mode it has, who can do what with it, and the fix (`chmod 600 FILE`; files
/// written by the encrypt stage are mode 0600 from creation). Returns whether it is private.
pub fn check_private(path: &Path, what: &str) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if let Some(who) = loose_permissions(mode) {
                log::warn!(
                    "{what} {} has mode {mode:03o}: {who}; whoever reads it can use it like the \
                     owner. Run `chmod 600 {}` (the encrypt stage writes it 0600)",
                    path.display(),
                    path.display()
                );
                return false;
            }
        }
    }
    true
}

/// Who besides the file's owner may touch a file of `mode` (`None`: nobody).
pub fn loose_permissions(mode: u32) -> Option<String> {
    let mut who = Vec::new();
    for (shift, class) in [(3, "its group"), (0, "every other user")] {
        let bits = (mode >> shift) & 0o7;
        let can: Vec<&str> = [(0o4, "read"), (0o2, "write"), (0o1, "execute")]
            .into_iter()
            .filter(|(bit, _)| bits & bit != 0)
            .map(|(_, verb)| verb)
            .collect();
        if !can.is_empty() {
            who.push(format!("{class} can {} it", can.join(" and ")));
        }
    }
    (!who.is_empty()).then(|| who.join(", "))
}

#[cfg(test)]
mod tests {
    use super::loose_permissions;

    #[test]
    fn loose_permissions_name_who_can_do_what() {
        assert_eq!(loose_permissions(0o600), None);
        assert_eq!(loose_permissions(0o700), None);
        assert_eq!(
            loose_permissions(0o644).as_deref(),
            Some("its group can read it, every other user can read it")
        );
        assert_eq!(
            loose_permissions(0o662).as_deref(),
            Some("its group can read and write it, every other user can write it")
        );
    }
}
