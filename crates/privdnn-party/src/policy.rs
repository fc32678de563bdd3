//! Who may use the owner service and how much: the allow-list of users and their quotas
//! ([`Access`], from `[service]` of the owner's config), and the per-peer connection cap
//! ([`PeerSlots`]) that keeps one host's idle sockets from locking everyone else out.
//!
//! A user is the id its client certificate names (`urn:privdnn:user:<id>`). A user who is not
//! listed, or listed with `revoked = true`, is refused before any file byte or decryption. Each
//! listed user has a window (`window_seconds`, fixed windows starting at the user's first
//! request) with a budget of requests and of ciphertexts; a request that would exceed either is
//! refused with a `quota` error and costs nothing. A user-keyed request is counted when its first
//! part arrives ([`Access::charge`] with no ciphertexts) and its ciphertexts once it is complete
//! and decoded ([`Access::charge_ciphertexts`]), before the owner evaluates it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use privdnn_config::ServiceConfig;

use crate::PartyError;

/// The user id of a plain-TCP (`--insecure`, loopback only) connection.
pub const INSECURE_USER: &str = "insecure-loopback";

#[derive(Debug, Clone, Copy)]
struct Usage {
    start: Instant,
    requests: u64,
    ciphertexts: u64,
}

/// What a user has used in the current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spent {
    /// Requests so far, this one included.
    pub requests: u64,
    /// Ciphertexts so far, this request's included.
    pub ciphertexts: u64,
}

/// The allow-list and the quotas.
#[derive(Debug)]
pub struct Access {
    service: ServiceConfig,
    window: Duration,
    usage: Mutex<HashMap<String, Usage>>,
}

impl Access {
    /// From the owner's `[service]` settings.
    pub fn new(service: ServiceConfig) -> Self {
        Self {
            window: Duration::from_secs(service.window_seconds.max(1)),
            service,
            usage: Mutex::new(HashMap::new()),
        }
    }

    /// The settings.
    pub fn service(&self) -> &ServiceConfig {
        &self.service
    }

    /// The user a certificate names, if the service serves them.
    pub fn admit(&self, user: Option<&str>) -> Result<String, PartyError> {
        let Some(user) = user else {
            return Err(PartyError::Unauthorized(
                "the client certificate names no privdnn user (urn:privdnn:user:<id>)".into(),
            ));
        };
        match self.service.users.get(user) {
            None => Err(PartyError::Unauthorized(format!(
                "user `{user}` is not on this owner's list"
            ))),
            Some(q) if q.revoked => Err(PartyError::Unauthorized(format!(
                "user `{user}` has been revoked"
            ))),
            Some(_) => Ok(user.to_string()),
        }
    }

    /// Charges one request of `ciphertexts` to `user` at `now`, or refuses it (nothing charged).
    pub fn charge(&self, user: &str, ciphertexts: u64, now: Instant) -> Result<Spent, PartyError> {
        self.charge_counts(user, 1, ciphertexts, now)
    }

    /// Charges `ciphertexts` more to a request already counted (a user-keyed request, complete
    /// and decoded), or refuses it (nothing charged).
    pub fn charge_ciphertexts(
        &self,
        user: &str,
        ciphertexts: u64,
        now: Instant,
    ) -> Result<Spent, PartyError> {
        self.charge_counts(user, 0, ciphertexts, now)
    }

    fn charge_counts(
        &self,
        user: &str,
        new_requests: u64,
        ciphertexts: u64,
        now: Instant,
    ) -> Result<Spent, PartyError> {
        let quota = self
            .service
            .users
            .get(user)
            .filter(|q| !q.revoked)
            .ok_or_else(|| PartyError::Unauthorized(format!("user `{user}` is not served")))?;
        let mut usage = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
        let u = usage.entry(user.to_string()).or_insert(Usage {
            start: now,
            requests: 0,
            ciphertexts: 0,
        });
        if now.saturating_duration_since(u.start) >= self.window {
            *u = Usage {
                start: now,
                requests: 0,
                ciphertexts: 0,
            };
        }
        let left = self
            .window
            .saturating_sub(now.saturating_duration_since(u.start))
            .as_secs();
        let requests = u.requests + new_requests;
        let cts = u.ciphertexts.saturating_add(ciphertexts);
        if new_requests > 0 && requests > quota.requests {
            return Err(PartyError::Quota(format!(
                "user `{user}` may send {} requests per {} s; the window resets in {left} s",
                quota.requests, self.service.window_seconds
            )));
        }
        if cts > quota.ciphertexts {
            return Err(PartyError::Quota(format!(
                "user `{user}` may send {} ciphertexts per {} s ({} used, this request has \
                 {ciphertexts}); the window resets in {left} s",
                quota.ciphertexts, self.service.window_seconds, u.ciphertexts
            )));
        }
        u.requests = requests;
        u.ciphertexts = cts;
        Ok(Spent {
            requests,
            ciphertexts: cts,
        })
    }
}

/// Open connections per peer address, capped.
#[derive(Debug)]
pub struct PeerSlots {
    cap: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One taken slot; frees it on drop.
#[derive(Debug)]
pub struct PeerSlot {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl PeerSlots {
    /// At most `cap` connections per address.
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            open: Arc::default(),
        }
    }

    /// Takes a slot for `ip`, or says how many it holds already.
    pub fn take(&self, ip: IpAddr) -> Result<PeerSlot, usize> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(ip).or_insert(0);
        if *n >= self.cap {
            return Err(*n);
        }
        *n += 1;
        Ok(PeerSlot {
            ip,
            open: self.open.clone(),
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use privdnn_config::UserQuota;

    fn access() -> Access {
        let mut s = ServiceConfig {
            window_seconds: 10,
            ..ServiceConfig::default()
        };
        s.users.insert(
            "alice".into(),
            UserQuota {
                requests: 2,
                ciphertexts: 10,
                revoked: false,
            },
        );
        s.users.insert(
            "bob".into(),
            UserQuota {
                revoked: true,
                ..UserQuota::default()
            },
        );
        Access::new(s)
    }

    #[test]
    fn unknown_revoked_and_nameless_users_are_refused() {
        let a = access();
        assert_eq!(a.admit(Some("alice")).expect("alice"), "alice");
        for who in [Some("bob"), Some("carol"), None] {
            assert!(
                matches!(a.admit(who), Err(PartyError::Unauthorized(_))),
                "{who:?}"
            );
        }
    }

    #[test]
    fn quotas_count_requests_and_ciphertexts_per_window() {
        let a = access();
        let t0 = Instant::now();
        assert_eq!(a.charge("alice", 6, t0).expect("1").ciphertexts, 6);
        // 6 + 5 > 10: refused, and nothing charged.
        assert!(matches!(
            a.charge("alice", 5, t0),
            Err(PartyError::Quota(_))
        ));
        assert_eq!(a.charge("alice", 4, t0).expect("2").requests, 2);
        let err = a.charge("alice", 0, t0).expect_err("third request");
        assert!(err.to_string().contains("2 requests per 10 s"), "{err}");
        // A new window.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(
            a.charge("alice", 10, later).expect("new window").requests,
            1
        );
        assert!(a.charge("bob", 1, later).is_err());
        // Ciphertexts of a request already counted (user-keyed): no new request, same budget.
        let spent = a
            .charge_ciphertexts("alice", 0, later)
            .expect("nothing more");
        assert_eq!((spent.requests, spent.ciphertexts), (1, 10));
        assert!(matches!(
            a.charge_ciphertexts("alice", 1, later),
            Err(PartyError::Quota(_))
        ));
    }

    #[test]
    fn peer_slots_cap_each_address_and_free_on_drop() {
        let slots = PeerSlots::new(2);
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let other: IpAddr = "127.0.0.2".parse().expect("ip");
        let a = slots.take(ip).expect("1");
        let _b = slots.take(ip).expect("2");
        assert_eq!(slots.take(ip).expect_err("3"), 2);
        let _c = slots.take(other).expect("other address");
        drop(a);
        assert!(slots.take(ip).is_ok());
    }
}
