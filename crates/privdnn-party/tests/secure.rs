//! The owner service behind its gate (issue 14), on the tiny LeNet5 over loopback: TLS 1.3 with
//! client certificates in both modes (answers equal the integer shadow bit for bit); a client
//! without a certificate, with one from another CA, of an unknown or a revoked user, or speaking
//! plain TCP is refused; quotas, the per-request ciphertext cap and the per-peer connection cap
//! refuse with clear error codes, and the audit log shows every decision. The `certs` and
//! `serve` commands: a development PKI with 0600 keys, TLS from a `--service` file, and plain
//! TCP only with `--insecure` on loopback; `client` over TLS with `--ca/--cert/--key`. Secrets
//! at rest: the secret key and the keyed owner block are created mode 0600, and `serve` says
//! precisely who else can read a loose one. User-keyed requests count against the ciphertext
//! quota. The last test measures TLS against plain TCP.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::tiny::{tiny_model, tiny_selection};
use common::{BIN, fixture, load_user, spatial_request};
use privdnn_artifacts::{RunLayout, read_artifact};
use privdnn_config::{HeConfig, ServiceConfig, UserQuota};
use privdnn_he::engine::Layout;
use privdnn_he::protocol::Request;
use privdnn_net::pki::{DevCa, Issued};
use privdnn_net::tls::DEFAULT_SERVER_NAME;
use privdnn_net::{ErrorCode, NetError, TlsClient, TlsServer};
use privdnn_partial::keyed::{KeyedModelFile, KeyedOwnerFile, KeyedUserSide, setup, write_setup};
use privdnn_party::PartyError;
use privdnn_party::client::Client;
use privdnn_party::server::{Server, ServerConfig, ServerHandle};
use privdnn_party::wire::{FileId, Limits};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

struct Pki {
    ca: DevCa,
    server: Issued,
}

fn pki() -> Pki {
    let ca = DevCa::generate().expect("ca");
    let server = ca.issue_server(&[]).expect("server cert");
    Pki { ca, server }
}

impl Pki {
    fn tls(&self) -> TlsServer {
        TlsServer::from_pem(
            self.ca.cert_pem().as_bytes(),
            self.server.cert_pem.as_bytes(),
            self.server.key_pem.as_bytes(),
        )
        .expect("tls server")
    }

    fn user(&self, id: &str) -> TlsClient {
        client_of(&self.ca, &self.ca.issue_user(id).expect("user cert"))
    }
}

fn client_of(trusted: &DevCa, user: &Issued) -> TlsClient {
    TlsClient::from_pem(
        trusted.cert_pem().as_bytes(),
        user.cert_pem.as_bytes(),
        user.key_pem.as_bytes(),
        DEFAULT_SERVER_NAME,
    )
    .expect("tls client")
}

fn quota(requests: u64, ciphertexts: u64, revoked: bool) -> UserQuota {
    UserQuota {
        requests,
        ciphertexts,
        revoked,
    }
}

/// alice: plenty; dora: one request; bob: revoked; erin: one ciphertext.
fn service() -> ServiceConfig {
    let mut s = ServiceConfig::default();
    s.users.insert("alice".into(), quota(100, 100_000, false));
    s.users.insert("erin".into(), quota(100, 1, false));
    s.users.insert("dora".into(), quota(1, 100_000, false));
    s.users.insert("bob".into(), quota(100, 100_000, true));
    s
}

fn tls_config(p: &Pki, audit: &Path) -> ServerConfig {
    ServerConfig {
        listen: "127.0.0.1:0".into(),
        tls: Some(p.tls()),
        access: Some(service()),
        audit_log: Some(audit.to_path_buf()),
        ..ServerConfig::default()
    }
}

fn connect(server: &ServerHandle, tls: Option<&TlsClient>) -> Result<Client, PartyError> {
    Client::connect_with(
        &server.addr().to_string(),
        Limits::default(),
        Duration::from_secs(10),
        tls,
    )
}

/// `privdnn-party serve` on the fixture's owner-keyed files (flags to add).
fn serve_command(fx: &common::Fixture) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .arg("--model")
        .arg(&fx.paths.model)
        .arg("--keys")
        .arg(&fx.paths.keys)
        .arg("--secret")
        .arg(&fx.paths.secret);
    cmd
}

/// The audit log's lines (after the connection threads had time to write theirs).
fn audit_lines(path: &Path) -> Vec<Value> {
    std::thread::sleep(Duration::from_millis(300));
    std::fs::read_to_string(path)
        .expect("audit log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

/// The remote error code of a refused call.
fn remote_code(err: &PartyError) -> Option<ErrorCode> {
    match err {
        PartyError::Net(NetError::Remote { code, .. }) => ErrorCode::from_code(*code),
        _ => None,
    }
}

/// One blinded spatial request for images 0..2, decrypted through `client`, checked against
/// the shadow.
fn decrypt_and_check(client: &mut Client) -> Result<(), PartyError> {
    let fx = fixture();
    let user = load_user(fx);
    let raw = fx.raw(0..2);
    let (request, pending) = spatial_request(&user, &raw);
    let reply = client.decrypt(request)?;
    let got = user.finish(&reply.reply, pending).expect("finish");
    assert_eq!(
        got.z,
        fx.shadow(&raw).z,
        "decrypted outputs equal the shadow"
    );
    Ok(())
}

#[test]
fn owner_keyed_over_tls_is_shadow_exact_and_strangers_are_refused() {
    let fx = fixture();
    let p = pki();
    let dir = tempfile::tempdir().expect("tmp");
    let audit = dir.path().join("audit.jsonl");
    let server = Server::bind(&fx.paths, &tls_config(&p, &audit))
        .expect("bind")
        .spawn()
        .expect("spawn");
    // alice: downloads the files and gets exact answers.
    let mut alice = connect(&server, Some(&p.user("alice"))).expect("alice");
    let model = alice.file(FileId::EncryptedModel).expect("model");
    assert_eq!(model, std::fs::read(&fx.paths.model).expect("model file"));
    decrypt_and_check(&mut alice).expect("alice decrypts");
    // carol (right CA, not listed) and bob (revoked): refused with `unauthorized`.
    for (who, says) in [("carol", "not on this owner's list"), ("bob", "revoked")] {
        let err = connect(&server, Some(&p.user(who)))
            .and_then(|mut c| c.info())
            .expect_err(who);
        assert_eq!(
            remote_code(&err),
            Some(ErrorCode::Unauthorized),
            "{who}: {err}"
        );
        assert!(err.to_string().contains(says), "{who}: {err}");
    }
    // mallory: a certificate for "alice" from another CA; refused at the handshake.
    let other = DevCa::generate().expect("other ca");
    let forged = other.issue_user("alice").expect("forged");
    let mallory = TlsClient::from_pem(
        p.ca.cert_pem().as_bytes(),
        forged.cert_pem.as_bytes(),
        forged.key_pem.as_bytes(),
        DEFAULT_SERVER_NAME,
    )
    .expect("mallory");
    let got = connect(&server, Some(&mallory)).and_then(|mut c| c.file(FileId::EncryptedModel));
    assert!(got.is_err(), "a foreign certificate got the model");
    // No certificate at all, plain TCP: no frame is answered.
    let got = connect(&server, None).and_then(|mut c| c.info());
    assert!(got.is_err(), "plain TCP was served by a TLS owner");
    // alice is still served.
    let mut again = connect(&server, Some(&p.user("alice"))).expect("alice again");
    assert!(again.info().is_ok());
    server.shutdown();
    let lines = audit_lines(&audit);
    let refused = |user: &str, kind: &str| {
        lines
            .iter()
            .any(|l| l["user"] == user && l["kind"] == kind && l["outcome"] == "refused")
    };
    assert!(
        refused("carol", "connect") && refused("bob", "connect"),
        "{lines:?}"
    );
    assert_eq!(
        lines.iter().filter(|l| l["kind"] == "handshake").count(),
        2,
        "mallory and the plain client fail the handshake: {lines:?}"
    );
    let decrypt = lines
        .iter()
        .find(|l| l["kind"] == "decrypt" && l["user"] == "alice")
        .expect("alice's decrypt line");
    assert_eq!(decrypt["outcome"], "ok");
    assert!(decrypt["ciphertexts"].as_u64().expect("cts") > 0);
    assert!(
        decrypt["bytes_in"].as_u64().expect("in") > decrypt["bytes_out"].as_u64().expect("out")
    );
}

#[test]
fn quotas_and_the_ciphertext_cap_refuse_with_clear_codes_and_are_audited() {
    let fx = fixture();
    let p = pki();
    let dir = tempfile::tempdir().expect("tmp");
    let audit = dir.path().join("audit.jsonl");
    let server = Server::bind(&fx.paths, &tls_config(&p, &audit))
        .expect("bind")
        .spawn()
        .expect("spawn");
    let dora = p.user("dora");
    let mut c = connect(&server, Some(&dora)).expect("dora");
    decrypt_and_check(&mut c).expect("dora's one request");
    let mut c = connect(&server, Some(&dora)).expect("dora again");
    let err = decrypt_and_check(&mut c).expect_err("over quota");
    assert_eq!(remote_code(&err), Some(ErrorCode::Quota), "{err}");
    assert!(err.to_string().contains("1 requests per 3600 s"), "{err}");
    // A request with more ciphertexts than the model needs: refused before any decryption.
    let user = load_user(fx);
    let (request, _) = spatial_request(&user, &fx.raw(0..1));
    let request: Request = privdnn_artifacts::codec::decode(&request, "request").expect("decode");
    let ct = request.cts[0][0].clone();
    let huge = Request {
        cts: request.cts.iter().map(|_| vec![ct.clone(); 200]).collect(),
    };
    let bytes = privdnn_artifacts::codec::encode(&huge).expect("encode");
    let before = server.stats().decrypts;
    let mut alice = connect(&server, Some(&p.user("alice"))).expect("alice");
    let err = alice.decrypt(bytes).expect_err("too many ciphertexts");
    assert_eq!(remote_code(&err), Some(ErrorCode::BadRequest), "{err}");
    assert!(
        err.to_string().contains("the served model needs at most"),
        "{err}"
    );
    assert_eq!(server.stats().decrypts, before);
    server.shutdown();
    let lines = audit_lines(&audit);
    let quota_line = lines
        .iter()
        .find(|l| l["user"] == "dora" && l["code"] == "quota")
        .expect("dora's quota line");
    assert_eq!(quota_line["outcome"], "refused");
    assert_eq!(quota_line["kind"], "decrypt");
    let capped = lines
        .iter()
        .find(|l| l["user"] == "alice" && l["outcome"] == "refused")
        .expect("alice's refused request");
    assert_eq!(capped["ciphertexts"], 200 * huge.cts.len() as u64);
    assert_eq!(capped["code"], "bad-request");
}

#[test]
fn the_per_peer_cap_refuses_extra_connections() {
    let fx = fixture();
    let p = pki();
    let dir = tempfile::tempdir().expect("tmp");
    let audit = dir.path().join("audit.jsonl");
    let config = ServerConfig {
        max_connections_per_peer: 2,
        ..tls_config(&p, &audit)
    };
    let server = Server::bind(&fx.paths, &config)
        .expect("bind")
        .spawn()
        .expect("spawn");
    let alice = p.user("alice");
    let mut held: Vec<Client> = (0..2)
        .map(|_| connect(&server, Some(&alice)).expect("c"))
        .collect();
    for c in &mut held {
        c.info().expect("served");
    }
    let third = connect(&server, Some(&alice)).and_then(|mut c| c.info());
    assert!(
        third.is_err(),
        "a third connection from one address was served"
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    connect(&server, Some(&alice))
        .and_then(|mut c| c.info())
        .expect("a slot is free again");
    server.shutdown();
    assert!(audit_lines(&audit).iter().any(|l| l["code"] == "busy"));
}

#[test]
fn user_keyed_mode_over_tls_is_shadow_exact() {
    let selection = tiny_selection(&[2, 4]);
    let out = setup(&tiny_model(), &selection, &HeConfig::default()).expect("keyed setup");
    let dir = tempfile::tempdir().expect("tmp");
    let layout = RunLayout::new(dir.path());
    write_setup(&layout, &out, None).expect("write");
    let p = pki();
    let audit = dir.path().join("audit.jsonl");
    let server = Server::bind_keyed(
        &layout.keyed_model(),
        &layout.keyed_owner_block(),
        &tls_config(&p, &audit),
    )
    .expect("bind")
    .spawn()
    .expect("spawn");
    let mut client = connect(&server, Some(&p.user("alice"))).expect("alice");
    let bytes = client.file(FileId::KeyedModel).expect("download");
    let cached = dir.path().join("client").join("keyed_model.bin");
    privdnn_artifacts::write_bytes_atomic(&cached, &bytes).expect("cache");
    let file: KeyedModelFile = read_artifact(&cached).expect("keyed model");
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let user = KeyedUserSide::new(file, Layout::Batch, &mut rng).expect("user");
    let images: Vec<Vec<u8>> = (0..2)
        .map(|_| (0..28 * 28).map(|_| rng.random::<u8>()).collect())
        .collect();
    let raw: Vec<&[u8]> = images.iter().map(Vec::as_slice).collect();
    let (request, pending) = user.request(&raw, &mut rng).expect("request");
    let request = privdnn_artifacts::codec::encode(&request).expect("encode");
    let (reply, _) = client.keyed(1, &request, 8 << 20).expect("keyed call");
    let got = user.finish(&pending, &reply).expect("finish");
    let owner: KeyedOwnerFile = read_artifact(&layout.keyed_owner_block()).expect("owner");
    let shadow = privdnn_partial::shadow_outputs(&owner.block, &selection, &raw, owner.layer1);
    assert_eq!(got.z, shadow.z, "outputs equal the shadow over TLS");
    // erin may send one ciphertext per window: her keyed request is refused once decoded,
    // before any evaluation.
    let mut erin = connect(&server, Some(&p.user("erin"))).expect("erin");
    let err = erin
        .keyed(2, &request, 8 << 20)
        .expect_err("over the ciphertext quota");
    assert_eq!(remote_code(&err), Some(ErrorCode::Quota), "{err}");
    assert!(err.to_string().contains("1 ciphertexts per"), "{err}");
    let err = connect(&server, Some(&p.user("mallory")))
        .and_then(|mut c| c.info())
        .expect_err("unknown user");
    assert_eq!(remote_code(&err), Some(ErrorCode::Unauthorized), "{err}");
    server.shutdown();
    let lines = audit_lines(&audit);
    // The line of a request's last part carries its ciphertexts (the others are acks).
    let charged = |user: &str, outcome: &str| {
        lines
            .iter()
            .filter(|l| l["kind"] == "keyed-request" && l["user"] == user)
            .filter(|l| l["outcome"] == outcome)
            .filter_map(|l| l["ciphertexts"].as_u64())
            .max()
            .unwrap_or_else(|| panic!("{user}'s {outcome} keyed request: {lines:?}"))
    };
    let cts = charged("alice", "ok");
    assert!(cts > 1, "a keyed request counts its ciphertexts ({cts})");
    assert_eq!(
        charged("erin", "refused"),
        cts,
        "the refused request names its count"
    );
}

#[test]
fn certs_and_serve_commands_run_tls_and_plain_tcp_only_on_loopback() {
    let fx = fixture();
    let dir = tempfile::tempdir().expect("tmp");
    let certs = dir.path().join("certs");
    let out = Command::new(BIN)
        .args(["certs", "--users", "alice,bob", "--out"])
        .arg(&certs)
        .output()
        .expect("certs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("[users.alice]") && text.contains("[users.bob]"),
        "{text}"
    );
    #[cfg(unix)]
    for key in ["ca.key", "owner.key", "users/alice.key", "users/bob.key"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(certs.join(key))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    // The printed table is a valid --service file.
    let table = text.split_once("--service\n").expect("table").1;
    let service = dir.path().join("service.toml");
    std::fs::write(&service, table).expect("write service");
    let audit = dir.path().join("audit.jsonl");
    let mut child = serve_command(fx)
        .args(["--listen", "127.0.0.1:0", "--service"])
        .arg(&service)
        .arg("--audit-log")
        .arg(&audit)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let line = first_line(&mut child);
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .expect("listening")
        .to_string();
    let tls = TlsClient::load(
        &certs.join("ca.pem"),
        &certs.join("users/alice.pem"),
        &certs.join("users/alice.key"),
        DEFAULT_SERVER_NAME,
    )
    .expect("alice");
    let mut alice = Client::connect_with(
        &addr,
        Limits::default(),
        Duration::from_secs(10),
        Some(&tls),
    )
    .expect("alice over TLS");
    assert!(alice.info().is_ok());
    assert!(
        Client::connect(&addr, Limits::default(), Duration::from_secs(10))
            .and_then(|mut c| c.info())
            .is_err()
    );
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        audit_lines(&audit)
            .iter()
            .any(|l| l["user"] == "alice" && l["kind"] == "get-info")
    );
    // Without TLS settings and without --insecure: refused; --insecure beyond loopback: refused.
    let serve = |extra: &[&str]| serve_command(fx).args(extra).output().expect("serve");
    let out = serve(&["--listen", "127.0.0.1:0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--insecure"));
    let out = serve(&["--listen", "0.0.0.0:0", "--insecure"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}

/// Connect + handshake + one `info` round trip, and one decryption, TLS against plain TCP on
/// the same owner files in the same process.
#[test]
fn tls_overhead_against_plain_tcp_on_real_requests() {
    let fx = fixture();
    let p = pki();
    let dir = tempfile::tempdir().expect("tmp");
    let tls = Server::bind(&fx.paths, &tls_config(&p, &dir.path().join("a.jsonl")))
        .expect("bind")
        .spawn()
        .expect("spawn");
    let plain = Server::bind(
        &fx.paths,
        &ServerConfig {
            listen: "127.0.0.1:0".into(),
            ..ServerConfig::default()
        },
    )
    .expect("bind")
    .spawn()
    .expect("spawn");
    let alice = p.user("alice");
    let user = load_user(fx);
    let raw = fx.raw(0..1);
    let (request, _) = spatial_request(&user, &raw);
    let (connects, requests) = (30, 10);
    let mut report = Vec::new();
    for (name, server, cred) in [("tls", &tls, Some(&alice)), ("tcp", &plain, None)] {
        let clock = Instant::now();
        for _ in 0..connects {
            connect(server, cred)
                .and_then(|mut c| c.info())
                .expect("info");
        }
        let connect_ms = clock.elapsed().as_secs_f64() * 1e3 / connects as f64;
        let mut c = connect(server, cred).expect("client");
        c.info().expect("warm");
        let clock = Instant::now();
        for _ in 0..requests {
            c.decrypt(request.clone()).expect("decrypt");
        }
        let request_ms = clock.elapsed().as_secs_f64() * 1e3 / requests as f64;
        report.push((name, connect_ms, request_ms));
    }
    eprintln!(
        "request {} B: connect+handshake+info: TLS {:.2} ms, TCP {:.2} ms; decrypt round trip: TLS {:.2} ms, TCP {:.2} ms ({connects} connections, {requests} requests each)",
        request.len(),
        report[0].1,
        report[1].1,
        report[0].2,
        report[1].2
    );
    assert!(report.iter().all(|r| r.1 > 0.0 && r.2 > 0.0));
    tls.shutdown();
    plain.shutdown();
}

/// The owner-keyed secret key and the user-keyed owner block are created mode 0600 by the
/// stage's writers (also over an old, loose file), the user files are not secret.
#[cfg(unix)]
#[test]
fn secrets_are_created_mode_0600_even_over_a_loose_old_file() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).expect("written").permissions().mode() & 0o777;
    let dir = tempfile::tempdir().expect("tmp");
    let layout = RunLayout::new(dir.path());
    for old in [layout.owner_secret(), layout.keyed_owner_block()] {
        std::fs::create_dir_all(old.parent().expect("folder")).expect("folder");
        std::fs::write(&old, b"an old key").expect("old file");
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    let selection = tiny_selection(&[2]);
    let he = HeConfig {
        max_chunk: 64,
        ..HeConfig::default()
    };
    let out = privdnn_partial::setup::encrypt(&tiny_model(), &selection, &he).expect("encrypt");
    privdnn_partial::setup::write_outputs(&layout, &out, None).expect("write");
    let keyed = setup(&tiny_model(), &selection, &HeConfig::default()).expect("keyed setup");
    write_setup(&layout, &keyed, None).expect("write keyed");
    assert_eq!(mode(&layout.owner_secret()), 0o600, "secret_key.bin");
    assert_eq!(mode(&layout.keyed_owner_block()), 0o600, "keyed_block.bin");
    for public in [layout.encrypted_model(), layout.keyed_model()] {
        assert_ne!(mode(&public) & 0o600, 0, "{}", public.display());
    }
    // `serve` names who else can read a loose secret.
    std::fs::set_permissions(
        layout.owner_secret(),
        std::fs::Permissions::from_mode(0o640),
    )
    .expect("chmod");
    let log = dir.path().join("serve.log");
    let mut child = Command::new(BIN)
        .arg("serve")
        .arg("--model")
        .arg(layout.encrypted_model())
        .arg("--keys")
        .arg(layout.evaluation_keys())
        .arg("--secret")
        .arg(layout.owner_secret())
        .args(["--listen", "127.0.0.1:0", "--insecure"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("serve");
    let line = first_line(&mut child);
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(line.starts_with("listening on "), "{line}\n{text}");
    assert!(
        text.contains("has mode 640: its group can read it;") && text.contains("chmod 600"),
        "{text}"
    );
}

/// `privdnn-party client --ca --cert --key` classifies through a TLS owner; without the flags
/// it is refused.
#[test]
fn the_client_command_speaks_tls() {
    let fx = fixture();
    let owner = common::OwnerProcess::start_tls(fx, "client-tls-owner", &[]);
    let pki = fx.root.join("client-tls-owner-pki");
    let dir = tempfile::tempdir().expect("tmp");
    let (cache, report) = (dir.path().join("cache"), dir.path().join("client.json"));
    let tls_flags = [
        "--ca".to_string(),
        pki.join("ca.pem").display().to_string(),
        "--cert".into(),
        pki.join("users/alice.pem").display().to_string(),
        "--key".into(),
        pki.join("users/alice.key").display().to_string(),
    ];
    let flags: Vec<&str> = tls_flags.iter().map(String::as_str).collect();
    let images = (0, 2, 0);
    let child = common::client_command(&fx.dataset, &owner.addr, (&cache, &report), images, &flags)
        .spawn()
        .expect("client");
    let json = common::finish_client(child, &report);
    assert_eq!(common::u(&json, "/images"), 2, "{json}");
    let plain = common::client_command(&fx.dataset, &owner.addr, (&cache, &report), images, &[])
        .output()
        .expect("plain client");
    assert!(
        !plain.status.success(),
        "plain TCP was served by a TLS owner"
    );
    let half = common::client_command(
        &fx.dataset,
        &owner.addr,
        (&cache, &report),
        images,
        &flags[..2],
    )
    .output()
    .expect("client with --ca only");
    assert!(
        String::from_utf8_lossy(&half.stderr).contains("give all of --ca, --cert and --key"),
        "{}",
        String::from_utf8_lossy(&half.stderr)
    );
}

/// The first line a spawned `serve` prints on stdout (its address).
fn first_line(child: &mut std::process::Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("address");
    line
}
