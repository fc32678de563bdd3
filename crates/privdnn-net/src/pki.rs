//! A development PKI (rcgen): one CA, one server (owner) certificate and one client certificate
//! per user, for tests and for a first deployment.
//!
//! * CA: `CN = privdnn development CA`, may sign certificates only.
//! * Server: `serverAuth`, DNS names [`crate::tls::DEFAULT_SERVER_NAME`], `localhost` and the
//!   extra hosts given (IP addresses become IP names).
//! * User `<id>`: `clientAuth`, `CN = <id>` and the URI name `urn:privdnn:user:<id>` — the name
//!   the service maps to a user.
//!
//! [`write_dev_pki`] writes PEM files into a folder: `ca.pem`, `ca.key`, `owner.pem`,
//! `owner.key`, `users/<id>.pem`, `users/<id>.key`. Private keys are created with mode 0600 (on
//! Unix). An existing `ca.key`/`ca.pem` pair is reused, so running it again with new users adds
//! them under the same CA; delete the folder to rotate everything.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::NetError;
use crate::tls::{DEFAULT_SERVER_NAME, USER_URI_PREFIX};

const CA_NAME: &str = "privdnn development CA";
/// Days a development certificate is valid (from the start of the current day).
pub const VALIDITY_DAYS: u64 = 365;

/// Whether `id` may be a user id: 1–64 characters of `a-z A-Z 0-9 . _ -`.
pub fn valid_user_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn err(context: &str) -> impl Fn(rcgen::Error) -> NetError + '_ {
    move |e| NetError::tls(context.to_string(), e)
}

/// A certificate and its private key, PEM.
#[derive(Clone)]
pub struct Issued {
    /// Certificate (PEM).
    pub cert_pem: String,
    /// Private key (PKCS#8 PEM). Secret.
    pub key_pem: String,
}

/// A development certificate authority.
pub struct DevCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

/// Valid from the start of yesterday (UTC; tolerates clock skew) for [`VALIDITY_DAYS`] days.
fn validity(params: &mut CertificateParams) {
    const DAY: u64 = 86_400;
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let today = rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(secs - secs % DAY);
    params.not_before = today - Duration::from_secs(DAY);
    params.not_after = today + Duration::from_secs(VALIDITY_DAYS * DAY);
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_NAME);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

impl DevCa {
    /// A new CA with a fresh key.
    pub fn generate() -> Result<Self, NetError> {
        let key = KeyPair::generate().map_err(err("generating the CA key"))?;
        let mut params = ca_params();
        validity(&mut params);
        let cert_pem = params
            .self_signed(&key)
            .map_err(err("signing the CA certificate"))?
            .pem();
        Ok(Self {
            issuer: Issuer::new(params, key),
            cert_pem,
        })
    }

    /// The CA of an earlier [`DevCa::generate`], from its certificate and key (PEM), to issue
    /// more certificates under it.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, NetError> {
        let key = KeyPair::from_pem(key_pem).map_err(err("reading the CA key"))?;
        Ok(Self {
            issuer: Issuer::new(ca_params(), key),
            cert_pem: cert_pem.to_string(),
        })
    }

    /// The CA certificate (PEM): what both sides trust.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key (PEM). Secret.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    fn issue(&self, mut params: CertificateParams, what: &str) -> Result<Issued, NetError> {
        validity(&mut params);
        let key = KeyPair::generate().map_err(err("generating a key"))?;
        let cert = params.signed_by(&key, &self.issuer).map_err(err(what))?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The owner's (server) certificate for [`DEFAULT_SERVER_NAME`], `localhost` and `hosts`.
    pub fn issue_server(&self, hosts: &[String]) -> Result<Issued, NetError> {
        let mut names = vec![DEFAULT_SERVER_NAME.to_string(), "localhost".to_string()];
        names.extend(
            hosts
                .iter()
                .filter(|h| !names.contains(h))
                .cloned()
                .collect::<Vec<_>>(),
        );
        let mut params =
            CertificateParams::new(names).map_err(err("naming the server certificate"))?;
        params
            .distinguished_name
            .push(DnType::CommonName, DEFAULT_SERVER_NAME);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.issue(params, "signing the server certificate")
    }

    /// A client certificate naming user `id`.
    pub fn issue_user(&self, id: &str) -> Result<Issued, NetError> {
        if !valid_user_id(id) {
            return Err(NetError::tls(
                format!("user id `{id}`"),
                "use 1-64 characters of a-z, A-Z, 0-9, '.', '_', '-'",
            ));
        }
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, id);
        params.distinguished_name = dn;
        let uri = format!("{USER_URI_PREFIX}{id}")
            .try_into()
            .map_err(err("naming the user certificate"))?;
        params.subject_alt_names = vec![SanType::URI(uri)];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.issue(params, "signing a user certificate")
    }
}

/// Writes `bytes` to `path`, readable and writable by the owner only (mode 0600 on Unix; the
/// mode is set at creation, so the secret is never readable by others, even briefly).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), NetError> {
    let ctx = |e| NetError::io(format!("writing {}", path.display()), e);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        opts.mode(0o600);
        // An existing file keeps its old mode on open: tighten it first.
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(ctx)?;
        }
    }
    let mut f = opts.open(path).map_err(ctx)?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(ctx)
}

fn write_public(path: &Path, text: &str) -> Result<(), NetError> {
    std::fs::write(path, text).map_err(|e| NetError::io(format!("writing {}", path.display()), e))
}

/// The files [`write_dev_pki`] wrote.
#[derive(Debug, Clone)]
pub struct PkiFiles {
    /// CA certificate (give it to both sides).
    pub ca: PathBuf,
    /// CA key (keep offline; needed only to add users).
    pub ca_key: PathBuf,
    /// Owner certificate.
    pub server_cert: PathBuf,
    /// Owner key.
    pub server_key: PathBuf,
    /// Per user: (id, certificate, key).
    pub users: Vec<(String, PathBuf, PathBuf)>,
}

/// Writes (or extends) a development PKI in `out`: the CA (reused if `ca.pem`/`ca.key` exist),
/// a fresh owner certificate for `hosts`, and a certificate per user.
pub fn write_dev_pki(out: &Path, hosts: &[String], users: &[String]) -> Result<PkiFiles, NetError> {
    let users_dir = out.join("users");
    std::fs::create_dir_all(&users_dir)
        .map_err(|e| NetError::io(format!("creating {}", users_dir.display()), e))?;
    let (ca_path, ca_key) = (out.join("ca.pem"), out.join("ca.key"));
    let ca = if ca_path.exists() && ca_key.exists() {
        let read = |p: &Path| {
            std::fs::read_to_string(p)
                .map_err(|e| NetError::io(format!("reading {}", p.display()), e))
        };
        DevCa::from_pem(&read(&ca_path)?, &read(&ca_key)?)?
    } else {
        let ca = DevCa::generate()?;
        write_private(&ca_key, ca.key_pem().as_bytes())?;
        write_public(&ca_path, ca.cert_pem())?;
        ca
    };
    let server = ca.issue_server(hosts)?;
    let (server_cert, server_key) = (out.join("owner.pem"), out.join("owner.key"));
    write_private(&server_key, server.key_pem.as_bytes())?;
    write_public(&server_cert, &server.cert_pem)?;
    let mut written = Vec::new();
    for id in users {
        let user = ca.issue_user(id)?;
        let (cert, key) = (
            users_dir.join(format!("{id}.pem")),
            users_dir.join(format!("{id}.key")),
        );
        write_private(&key, user.key_pem.as_bytes())?;
        write_public(&cert, &user.cert_pem)?;
        written.push((id.clone(), cert, key));
    }
    Ok(PkiFiles {
        ca: ca_path,
        ca_key,
        server_cert,
        server_key,
        users: written,
    })
}
