//! TLS 1.3 with client certificates on loopback: a good client is named by its certificate and
//! served; a client without a certificate, with one from another CA, or speaking plain TCP is
//! refused at the handshake; a client that does not trust the server's CA refuses it; the
//! development PKI writes its keys 0600 and can add users under the same CA. The last test
//! measures handshake and per-request cost against plain TCP in the same run.

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use privdnn_net::pki::{DevCa, Issued, write_dev_pki};
use privdnn_net::tls::DEFAULT_SERVER_NAME;
use privdnn_net::{
    Channel, ERROR_KIND, ErrorFrame, Limits, NetError, NetStream, PeerIdentity, Protocol,
    TlsClient, TlsServer, WireMessage, decode_bounded, encode,
};

/// A toy protocol: `Echo(bytes)` and the error message.
#[derive(Debug, Clone, PartialEq)]
enum Toy {
    Echo(Vec<u8>),
    Error(ErrorFrame),
}

impl WireMessage for Toy {
    const PROTOCOL: Protocol = Protocol {
        name: "toy-tls",
        magic: *b"TTLS",
        version: 1,
    };

    fn kind(&self) -> u16 {
        match self {
            Toy::Echo(_) => 1,
            Toy::Error(_) => ERROR_KIND,
        }
    }

    fn kind_name(kind: u16) -> Option<&'static str> {
        match kind {
            1 => Some("echo"),
            ERROR_KIND => Some("error"),
            _ => None,
        }
    }

    fn payload(&self) -> Result<Vec<u8>, NetError> {
        match self {
            Toy::Echo(v) => encode(&serde_bytes::ByteBuf::from(v.clone())),
            Toy::Error(e) => encode(e),
        }
    }

    fn decode(kind: u16, payload: &[u8]) -> Result<Self, NetError> {
        match kind {
            1 => Ok(Toy::Echo(
                decode_bounded::<serde_bytes::ByteBuf>(payload, "echo")?.into_vec(),
            )),
            ERROR_KIND => Ok(Toy::Error(decode_bounded(payload, "error")?)),
            kind => Err(NetError::UnknownKind {
                protocol: "toy-tls",
                kind,
            }),
        }
    }

    fn error(frame: ErrorFrame) -> Self {
        Toy::Error(frame)
    }

    fn as_error(&self) -> Option<&ErrorFrame> {
        match self {
            Toy::Error(e) => Some(e),
            Toy::Echo(_) => None,
        }
    }
}

struct Pki {
    ca: DevCa,
    server: Issued,
    alice: Issued,
}

fn pki() -> Pki {
    let ca = DevCa::generate().expect("ca");
    let server = ca.issue_server(&["127.0.0.1".into()]).expect("server");
    let alice = ca.issue_user("alice").expect("alice");
    Pki { ca, server, alice }
}

fn tls_server(p: &Pki) -> TlsServer {
    TlsServer::from_pem(
        p.ca.cert_pem().as_bytes(),
        p.server.cert_pem.as_bytes(),
        p.server.key_pem.as_bytes(),
    )
    .expect("server config")
}

fn tls_client(ca: &DevCa, user: &Issued) -> TlsClient {
    TlsClient::from_pem(
        ca.cert_pem().as_bytes(),
        user.cert_pem.as_bytes(),
        user.key_pem.as_bytes(),
        DEFAULT_SERVER_NAME,
    )
    .expect("client config")
}

const HANDSHAKE: Duration = Duration::from_secs(5);

/// Serves `n` connections (TLS when `tls` is given, plain otherwise), echoing every frame;
/// reports each accept's outcome.
fn echo_server(
    tls: Option<TlsServer>,
    n: usize,
) -> (
    std::net::SocketAddr,
    mpsc::Receiver<Result<Option<PeerIdentity>, String>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for tcp in listener.incoming().take(n) {
            let tcp = tcp.expect("accept");
            let _ = tcp.set_nodelay(true);
            let accepted = match &tls {
                Some(t) => t.accept(tcp, HANDSHAKE).map(|(s, id)| (s, Some(id))),
                None => Ok((NetStream::from(tcp), None)),
            };
            let stream = match accepted {
                Ok((s, id)) => {
                    let _ = tx.send(Ok(id));
                    s
                }
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    continue;
                }
            };
            thread::spawn(move || {
                let mut chan =
                    Channel::<NetStream, Toy>::new(stream, Limits::default()).expect("channel");
                while let Ok(Some(msg)) = chan.recv() {
                    if chan.send(&msg).is_err() {
                        return;
                    }
                }
                chan.close();
            });
        }
    });
    (addr, rx)
}

fn connect(addr: std::net::SocketAddr, tls: Option<&TlsClient>) -> Result<NetStream, NetError> {
    let tcp = TcpStream::connect(addr).map_err(|e| NetError::io("connect", e))?;
    let _ = tcp.set_nodelay(true);
    match tls {
        Some(t) => t.connect(tcp, HANDSHAKE),
        None => Ok(NetStream::from(tcp)),
    }
}

fn echo(stream: NetStream, bytes: Vec<u8>) -> Result<Vec<u8>, NetError> {
    let mut chan = Channel::<NetStream, Toy>::new(stream, Limits::default())?;
    match chan.call(&Toy::Echo(bytes))? {
        Toy::Echo(v) => Ok(v),
        Toy::Error(e) => Err(NetError::Remote {
            code: e.code,
            message: e.message,
        }),
    }
}

#[test]
fn a_good_client_is_named_by_its_certificate_and_served() {
    let p = pki();
    let (addr, accepted) = echo_server(Some(tls_server(&p)), 1);
    let stream = connect(addr, Some(&tls_client(&p.ca, &p.alice))).expect("handshake");
    assert!(stream.is_tls());
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(echo(stream, payload.clone()).expect("echo"), payload);
    let id = accepted.recv().expect("accepted").expect("handshake ok");
    let id = id.expect("identity");
    assert_eq!(id.user.as_deref(), Some("alice"));
    assert_eq!(id.fingerprint.len(), 64);
}

#[test]
fn a_client_without_a_certificate_is_refused_at_the_handshake() {
    let p = pki();
    let (addr, accepted) = echo_server(Some(tls_server(&p)), 1);
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::pem::PemObject::pem_slice_iter(p.ca.cert_pem().as_bytes()) {
        roots.add(c.expect("pem")).expect("root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .expect("tls13")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(DEFAULT_SERVER_NAME).expect("name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("conn");
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(HANDSHAKE)).expect("timeout");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    use std::io::{Read, Write};
    let _ = tls.write_all(b"TTLS");
    let mut buf = [0u8; 16];
    let read = tls.read(&mut buf);
    assert!(
        !matches!(read, Ok(n) if n > 0),
        "no data may reach a client without a certificate: {read:?}"
    );
    let err = accepted.recv().expect("accepted").expect_err("refused");
    assert!(err.contains("TLS"), "{err}");
}

#[test]
fn a_certificate_from_another_ca_is_refused() {
    let p = pki();
    let other = DevCa::generate().expect("other ca");
    let mallory = other.issue_user("alice").expect("mallory");
    let (addr, accepted) = echo_server(Some(tls_server(&p)), 1);
    // Mallory trusts the real CA (she knows the server) but her certificate is foreign.
    let client = TlsClient::from_pem(
        p.ca.cert_pem().as_bytes(),
        mallory.cert_pem.as_bytes(),
        mallory.key_pem.as_bytes(),
        DEFAULT_SERVER_NAME,
    )
    .expect("client");
    let got = connect(addr, Some(&client)).and_then(|s| echo(s, vec![1, 2, 3]));
    assert!(got.is_err(), "foreign certificate served: {got:?}");
    let err = accepted.recv().expect("accepted").expect_err("refused");
    assert!(
        err.to_lowercase().contains("certificate") || err.contains("UnknownIssuer"),
        "{err}"
    );
}

#[test]
fn a_client_refuses_a_server_from_another_ca_and_plain_tcp_is_refused() {
    let p = pki();
    let other = DevCa::generate().expect("other ca");
    let (addr, _accepted) = echo_server(Some(tls_server(&p)), 2);
    // The client trusts only `other`: the real server cannot prove its name.
    let doubtful = tls_client(&other, &other.issue_user("bob").expect("bob"));
    let err = connect(addr, Some(&doubtful))
        .map(|_| ())
        .expect_err("untrusted server");
    assert!(err.to_string().contains("TLS"), "{err}");
    // Plain frames to a TLS server: refused, no echo.
    let got = connect(addr, None).and_then(|s| echo(s, vec![7; 10]));
    assert!(got.is_err(), "plain TCP served by a TLS server: {got:?}");
}

#[test]
fn dev_pki_files_have_private_keys_0600_and_users_can_be_added() {
    let dir = tempfile::tempdir().expect("tmp");
    let first = write_dev_pki(dir.path(), &[], &["alice".into()]).expect("pki");
    let ca_before = std::fs::read(&first.ca).expect("ca");
    let second = write_dev_pki(dir.path(), &["10.0.0.7".into()], &["bob".into()]).expect("pki");
    assert_eq!(
        std::fs::read(&second.ca).expect("ca"),
        ca_before,
        "CA reused"
    );
    #[cfg(unix)]
    for key in [
        &second.ca_key,
        &second.server_key,
        &first.users[0].2,
        &second.users[0].2,
    ] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(key).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", key.display());
    }
    // alice (first run) and bob (second run) are both accepted by the second server.
    let server = TlsServer::load(&second.ca, &second.server_cert, &second.server_key).expect("srv");
    let (addr, accepted) = echo_server(Some(server), 2);
    for (user, cert, key) in [&first.users[0], &second.users[0]] {
        let client = TlsClient::load(&second.ca, cert, key, DEFAULT_SERVER_NAME).expect("client");
        let stream = connect(addr, Some(&client)).expect("handshake");
        assert_eq!(echo(stream, vec![1]).expect("echo"), vec![1]);
        let id = accepted.recv().expect("accepted").expect("ok").expect("id");
        assert_eq!(id.user.as_deref(), Some(user.as_str()));
    }
    assert!(
        DevCa::generate()
            .expect("ca")
            .issue_user("no spaces")
            .is_err()
    );
}

fn time_exchanges(
    addr: std::net::SocketAddr,
    tls: Option<&TlsClient>,
    n: usize,
    size: usize,
) -> (f64, f64) {
    let mut handshake = 0.0;
    let clock = Instant::now();
    let stream = connect(addr, tls).expect("connect");
    handshake += clock.elapsed().as_secs_f64();
    let mut chan = Channel::<NetStream, Toy>::new(stream, Limits::default()).expect("chan");
    let payload = vec![0x5a; size];
    let clock = Instant::now();
    for _ in 0..n {
        assert!(
            matches!(chan.call(&Toy::Echo(payload.clone())), Ok(Toy::Echo(v)) if v.len() == size)
        );
    }
    (handshake, clock.elapsed().as_secs_f64() / n as f64)
}

/// Handshake and per-request cost, TLS against plain TCP, same process and payloads.
#[test]
fn tls_overhead_against_plain_tcp_is_measured() {
    let p = pki();
    let client = tls_client(&p.ca, &p.alice);
    let conns = 20;
    let (tls_addr, _a) = echo_server(Some(tls_server(&p)), conns * 2);
    let (tcp_addr, _b) = echo_server(None, conns * 2);
    for size in [1 << 10, 1 << 20] {
        let rounds = if size > 4096 { 10 } else { 200 };
        let (mut hs_tls, mut hs_tcp, mut rq_tls, mut rq_tcp) = (0.0, 0.0, 0.0, 0.0);
        for _ in 0..conns {
            let (h, r) = time_exchanges(tls_addr, Some(&client), rounds, size);
            hs_tls += h / conns as f64;
            rq_tls += r / conns as f64;
            let (h, r) = time_exchanges(tcp_addr, None, rounds, size);
            hs_tcp += h / conns as f64;
            rq_tcp += r / conns as f64;
        }
        eprintln!(
            "payload {size} B: connect+handshake TLS {:.3} ms vs TCP {:.3} ms; per request TLS {:.3} ms vs TCP {:.3} ms ({conns} connections x {rounds} requests)",
            hs_tls * 1e3,
            hs_tcp * 1e3,
            rq_tls * 1e3,
            rq_tcp * 1e3
        );
        assert!(hs_tls > 0.0 && rq_tls > 0.0 && rq_tcp > 0.0);
    }
}
