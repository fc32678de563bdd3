//! Authenticated, encrypted transport: TLS 1.3 with client certificates (rustls, `ring`
//! provider), for every networked protocol of the workspace.
//!
//! * [`NetStream`]: one connected stream — plain TCP (loopback tests, `--insecure`), or the
//!   server or client end of a TLS session over TCP. It implements [`Transport`], so a
//!   [`crate::Channel`] runs on it unchanged.
//! * [`TlsServer`]: the service's side. Only TLS 1.3; a client certificate is *required* and
//!   must chain to the configured CA (a missing or foreign certificate fails the handshake,
//!   before a single frame is read). [`TlsServer::accept`] returns the peer's identity: the
//!   user id from the certificate's `urn:privdnn:user:<id>` URI name, and the SHA-256 of the
//!   certificate (for allow-lists and audit lines).
//! * [`TlsClient`]: the user's side: trusts only the configured CA and presents its own
//!   certificate; the server must prove the name `privdnn-owner` (or the one configured).
//!
//! Certificates for development and tests come from [`crate::pki`].

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection, StreamOwned,
};
use sha2::{Digest, Sha256};

use crate::{NetError, Transport};

/// Prefix of the URI subject-alternative name that carries a user id in a client certificate.
pub const USER_URI_PREFIX: &str = "urn:privdnn:user:";
/// The DNS name the owner's certificate carries and the client checks by default.
pub const DEFAULT_SERVER_NAME: &str = "privdnn-owner";

/// A connected stream: plain TCP or one end of a TLS 1.3 session over TCP.
pub enum NetStream {
    /// Plain TCP (no authentication, no encryption).
    Plain(TcpStream),
    /// The server end of a TLS session.
    TlsServer(Box<StreamOwned<ServerConnection, TcpStream>>),
    /// The client end of a TLS session.
    TlsClient(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl From<TcpStream> for NetStream {
    fn from(tcp: TcpStream) -> Self {
        NetStream::Plain(tcp)
    }
}

impl NetStream {
    /// The underlying socket.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            NetStream::Plain(s) => s,
            NetStream::TlsServer(s) => &s.sock,
            NetStream::TlsClient(s) => &s.sock,
        }
    }

    /// Whether the stream is encrypted and authenticated.
    pub fn is_tls(&self) -> bool {
        !matches!(self, NetStream::Plain(_))
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp().peer_addr()
    }
}

impl Read for NetStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            NetStream::Plain(s) => s.read(buf),
            NetStream::TlsServer(s) => s.read(buf),
            NetStream::TlsClient(s) => s.read(buf),
        }
    }
}

impl Write for NetStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            NetStream::Plain(s) => s.write(buf),
            NetStream::TlsServer(s) => s.write(buf),
            NetStream::TlsClient(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            NetStream::Plain(s) => s.flush(),
            NetStream::TlsServer(s) => s.flush(),
            NetStream::TlsClient(s) => s.flush(),
        }
    }
}

/// Sends a TLS close_notify and everything still buffered.
fn close_notify<C, D>(conn: &mut C, sock: &mut TcpStream) -> std::io::Result<()>
where
    C: std::ops::DerefMut<Target = rustls::ConnectionCommon<D>>,
{
    conn.send_close_notify();
    while conn.wants_write() {
        conn.write_tls(sock)?;
    }
    Ok(())
}

impl Transport for NetStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> std::io::Result<()> {
        self.tcp().set_read_timeout(timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> std::io::Result<()> {
        self.tcp().set_write_timeout(timeout)
    }

    fn write_timeout(&self) -> Option<Duration> {
        self.tcp().write_timeout().ok().flatten()
    }

    fn shutdown_write(&mut self) -> std::io::Result<()> {
        match self {
            NetStream::Plain(s) => s.shutdown(Shutdown::Write),
            NetStream::TlsServer(s) => {
                let s = &mut **s;
                close_notify(&mut s.conn, &mut s.sock)?;
                s.sock.shutdown(Shutdown::Write)
            }
            NetStream::TlsClient(s) => {
                let s = &mut **s;
                close_notify(&mut s.conn, &mut s.sock)?;
                s.sock.shutdown(Shutdown::Write)
            }
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>, NetError> {
    std::fs::read(path).map_err(|e| {
        NetError::io(
            format!(
                "reading the {what} {} (make a development set with `privdnn-party certs`)",
                path.display()
            ),
            e,
        )
    })
}

fn certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, NetError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| NetError::tls(format!("reading the {what}"), e))?;
    if certs.is_empty() {
        return Err(NetError::tls(
            format!("reading the {what}"),
            "no PEM certificate in it",
        ));
    }
    Ok(certs)
}

fn private_key(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, NetError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| NetError::tls(format!("reading the {what}"), e))
}

fn roots(ca_pem: &[u8]) -> Result<Arc<RootCertStore>, NetError> {
    let mut store = RootCertStore::empty();
    for cert in certs(ca_pem, "CA certificate")? {
        store
            .add(cert)
            .map_err(|e| NetError::tls("adding the CA certificate", e))?;
    }
    Ok(Arc::new(store))
}

/// Who is on the other end of an accepted TLS connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The user id named by the certificate (`urn:privdnn:user:<id>`), if it names one.
    pub user: Option<String>,
    /// SHA-256 of the client certificate (DER), hex.
    pub fingerprint: String,
}

/// The user id a certificate (DER) names in its `urn:privdnn:user:` URI, if any.
pub fn user_of_certificate(der: &CertificateDer<'_>) -> Option<String> {
    let cert = webpki::EndEntityCert::try_from(der).ok()?;
    cert.valid_uri_names()
        .find_map(|uri| uri.strip_prefix(USER_URI_PREFIX))
        .filter(|id| crate::pki::valid_user_id(id))
        .map(str::to_string)
}

fn handshake<C, D>(
    conn: &mut C,
    tcp: &mut TcpStream,
    timeout: Duration,
    what: &str,
) -> Result<(), NetError>
where
    C: std::ops::DerefMut<Target = rustls::ConnectionCommon<D>>,
{
    tcp.set_read_timeout(Some(timeout))
        .and_then(|_| tcp.set_write_timeout(Some(timeout)))
        .map_err(|e| NetError::io("setting the handshake timeout", e))?;
    while conn.is_handshaking() {
        conn.complete_io(tcp).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => NetError::Timeout {
                what: "the TLS handshake",
                seconds: timeout.as_secs_f64(),
            },
            _ => NetError::tls(what.to_string(), e),
        })?;
    }
    // A TLS 1.3 client finishes before the server has judged its certificate: flush our last
    // flight so a refusal reaches us as an alert on the first read.
    while conn.wants_write() {
        conn.write_tls(tcp)
            .map_err(|e| NetError::tls(what.to_string(), e))?;
    }
    Ok(())
}

/// The service's TLS settings: TLS 1.3 only, client certificates required and checked against
/// one CA.
#[derive(Clone)]
pub struct TlsServer {
    config: Arc<ServerConfig>,
}

impl std::fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsServer(TLS 1.3, client certificate required)")
    }
}

impl TlsServer {
    /// From PEM bytes: the CA that signs client certificates, the server's certificate chain and
    /// its private key.
    pub fn from_pem(ca_pem: &[u8], cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, NetError> {
        let verifier = WebPkiClientVerifier::builder_with_provider(roots(ca_pem)?, provider())
            .build()
            .map_err(|e| NetError::tls("building the client-certificate verifier", e))?;
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| NetError::tls("choosing TLS 1.3", e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                certs(cert_pem, "server certificate")?,
                private_key(key_pem, "server key")?,
            )
            .map_err(|e| NetError::tls("loading the server certificate and key", e))?;
        config.send_tls13_tickets = 0;
        Ok(Self {
            config: Arc::new(config),
        })
    }

    /// From PEM files.
    pub fn load(ca: &Path, cert: &Path, key: &Path) -> Result<Self, NetError> {
        Self::from_pem(
            &read_pem(ca, "CA certificate")?,
            &read_pem(cert, "server certificate")?,
            &read_pem(key, "server key")?,
        )
    }

    /// Runs the handshake on an accepted socket (bounded by `timeout`) and names the peer. A
    /// client without a certificate, or with one the CA did not sign, fails here.
    pub fn accept(
        &self,
        mut tcp: TcpStream,
        timeout: Duration,
    ) -> Result<(NetStream, PeerIdentity), NetError> {
        let mut conn = ServerConnection::new(self.config.clone())
            .map_err(|e| NetError::tls("starting a TLS session", e))?;
        handshake(&mut conn, &mut tcp, timeout, "TLS handshake with a client")?;
        let cert = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or_else(|| NetError::tls("TLS handshake", "the client sent no certificate"))?;
        let identity = PeerIdentity {
            user: user_of_certificate(cert),
            fingerprint: hex(&Sha256::digest(cert.as_ref())),
        };
        let stream = NetStream::TlsServer(Box::new(StreamOwned::new(conn, tcp)));
        Ok((stream, identity))
    }
}

/// The client's TLS settings: trusts one CA, presents one certificate.
#[derive(Clone)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TlsClient(TLS 1.3, server {:?})", self.server_name)
    }
}

impl TlsClient {
    /// From PEM bytes: the CA that signed the server, the client's certificate chain and key,
    /// and the name the server's certificate must carry.
    pub fn from_pem(
        ca_pem: &[u8],
        cert_pem: &[u8],
        key_pem: &[u8],
        server_name: &str,
    ) -> Result<Self, NetError> {
        let config = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| NetError::tls("choosing TLS 1.3", e))?
            .with_root_certificates(roots(ca_pem)?)
            .with_client_auth_cert(
                certs(cert_pem, "client certificate")?,
                private_key(key_pem, "client key")?,
            )
            .map_err(|e| NetError::tls("loading the client certificate and key", e))?;
        let server_name = ServerName::try_from(server_name.to_string())
            .map_err(|e| NetError::tls(format!("server name `{server_name}`"), e))?;
        Ok(Self {
            config: Arc::new(config),
            server_name,
        })
    }

    /// From PEM files.
    pub fn load(ca: &Path, cert: &Path, key: &Path, server_name: &str) -> Result<Self, NetError> {
        Self::from_pem(
            &read_pem(ca, "CA certificate")?,
            &read_pem(cert, "client certificate")?,
            &read_pem(key, "client key")?,
            server_name,
        )
    }

    /// Runs the handshake on a connected socket (bounded by `timeout`). The server's verdict on
    /// our certificate arrives with its first answer (TLS 1.3).
    pub fn connect(&self, mut tcp: TcpStream, timeout: Duration) -> Result<NetStream, NetError> {
        let mut conn = ClientConnection::new(self.config.clone(), self.server_name.clone())
            .map_err(|e| NetError::tls("starting a TLS session", e))?;
        handshake(
            &mut conn,
            &mut tcp,
            timeout,
            "TLS handshake with the server",
        )?;
        Ok(NetStream::TlsClient(Box::new(StreamOwned::new(conn, tcp))))
    }
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
