//! Shared set-up of `privdnn-party`'s integration tests: the tiny LeNet5 encrypted by the real
//! owner setup into a temporary folder ([`fixture`], once per test binary), the user's role with
//! its clear tail ([`User`]), an owner process of the real binary ([`OwnerProcess`]), client
//! processes ([`client_command`], [`finish_client`]) and the checks on what the user holds.

#![allow(dead_code)]

pub mod tiny;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use privdnn_artifacts::{
    ArtifactKind, DatasetSplit, NeuronSelection, TrainedModel, write_artifact,
};
use privdnn_config::{Backend, ServiceConfig, UserQuota};
use privdnn_he::engine::Layout;
use privdnn_he::files::OwnerSecretFile;
use privdnn_he::ops::OpCounter;
use privdnn_model::RemainderNet;
use privdnn_net::pki::write_dev_pki;
use privdnn_net::tls::DEFAULT_SERVER_NAME;
use privdnn_net::{NetStream, TlsClient};
use privdnn_partial::SelectedOutputs;
use privdnn_partial::user::{Pending, UserSide};
use privdnn_party::client::Client;
use privdnn_party::server::OwnerFiles;
use privdnn_party::wire::Limits;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_privdnn-party");
/// Images of the fixture's split.
pub const IMAGES: usize = 8;

/// The encrypted tiny model, its files and a test split, shared by every test of a binary.
pub struct Fixture {
    _dir: tempfile::TempDir,
    /// The run folder (the owner's files, the split, the owners' logs).
    pub root: PathBuf,
    /// The three owner-keyed files.
    pub paths: OwnerFiles,
    /// The split file.
    pub dataset: PathBuf,
    /// The split.
    pub split: DatasetSplit,
    /// The owner's secret (the tests' auditor).
    pub secret: OwnerSecretFile,
    /// The selection.
    pub selection: NeuronSelection,
    /// Whether the block's layer-1 outputs are selected outputs too.
    pub layer1_outputs: bool,
}

/// `n` seeded random images with random labels.
pub fn random_split(n: usize, seed: u64) -> DatasetSplit {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    DatasetSplit {
        dataset: "synthetic".into(),
        split: "test".into(),
        channels: 1,
        height: 28,
        width: 28,
        class_names: (0..10).map(|c| c.to_string()).collect(),
        labels: (0..n).map(|_| rng.random_range(0..10)).collect(),
        images: (0..n * 28 * 28).map(|_| rng.random::<u8>()).collect(),
    }
}

/// The fixture, built once per test binary.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let clock = Instant::now();
        let model: TrainedModel = tiny::tiny_model();
        let selection = tiny::tiny_selection(&[2]);
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        let out = tiny::encrypt_run(&model, &selection, &root);
        let split = random_split(IMAGES, 7);
        let dataset = root.join("test.bin");
        write_artifact(&dataset, &split).expect("write split");
        eprintln!(
            "fixture: tiny LeNet5 encrypted in {:.1} s",
            clock.elapsed().as_secs_f64()
        );
        Fixture {
            _dir: dir,
            paths: OwnerFiles::of_run(&root),
            root,
            dataset,
            split,
            secret: out.secret,
            layer1_outputs: out.model.layer1_outputs,
            selection,
        }
    })
}

impl Fixture {
    /// The integer shadow of images `raw` (what the protocol must reproduce exactly).
    pub fn shadow(&self, raw: &[&[u8]]) -> SelectedOutputs {
        privdnn_partial::shadow_outputs(
            &self.secret.block,
            &self.selection,
            raw,
            self.layer1_outputs,
        )
    }

    /// Images `indices` of the split.
    pub fn raw(&self, indices: impl IntoIterator<Item = usize>) -> Vec<&[u8]> {
        indices.into_iter().map(|i| self.split.image(i)).collect()
    }
}

/// The user's role with its clear remainder network (what `classify` builds).
pub struct User {
    /// The role.
    pub role: UserSide,
    /// The clear tail.
    pub tail: RemainderNet,
}

impl std::ops::Deref for User {
    type Target = UserSide;
    fn deref(&self) -> &UserSide {
        &self.role
    }
}

impl User {
    /// Logits of `indices` with `out` injected.
    pub fn logits(
        &self,
        split: &DatasetSplit,
        indices: &[usize],
        out: &SelectedOutputs,
    ) -> Vec<f32> {
        self.tail
            .logits(split, indices, &self.role.injection(out))
            .expect("logits")
    }
}

/// The user of the fixture's files.
pub fn load_user(fx: &Fixture) -> User {
    let device = privdnn_model::backend_device(Backend::Flex, false).expect("device");
    let role =
        UserSide::load(&fx.paths.model, &fx.paths.keys, 20.0, &OpCounter::default()).expect("user");
    let tail = RemainderNet::new(role.remainder(), device).expect("remainder network");
    User { role, tail }
}

/// A blinded request for `raw` in the spatial layout.
pub fn spatial_request(user: &UserSide, raw: &[&[u8]]) -> (Vec<u8>, Pending) {
    user.request(
        Layout::Spatial,
        raw,
        &OpCounter::default(),
        &|_| {},
        &mut rand::rng(),
    )
    .expect("request")
}

/// An owner process; killed when dropped.
pub struct OwnerProcess {
    child: Child,
    /// Where it listens.
    pub addr: String,
    /// Its stderr.
    pub log: PathBuf,
    /// User `alice`'s TLS settings when the owner serves TLS (`None`: plain TCP).
    pub tls: Option<TlsClient>,
}

impl OwnerProcess {
    /// `privdnn-party serve --insecure` (plain TCP) on the fixture's owner-keyed files, any free
    /// port, `extra` flags.
    pub fn start(fx: &Fixture, name: &str, extra: &[&str]) -> Self {
        let mut args = vec!["--insecure"];
        args.extend(extra);
        Self::spawn(fx, name, &args, None)
    }

    /// `privdnn-party serve` over TLS 1.3: a development PKI from `privdnn_net::pki` in
    /// `<root>/<name>-pki`, user `alice` (quotas far above any test, 128 connections per peer)
    /// in a `--service` file; the process's client connections are `alice`'s.
    pub fn start_tls(fx: &Fixture, name: &str, extra: &[&str]) -> Self {
        let dir = fx.root.join(format!("{name}-pki"));
        let files = write_dev_pki(&dir, &[], &["alice".to_string()]).expect("dev PKI");
        let (_, cert, key) = &files.users[0];
        let mut service = ServiceConfig {
            ca: Some(files.ca.clone()),
            cert: Some(files.server_cert.clone()),
            key: Some(files.server_key.clone()),
            max_connections_per_peer: 128,
            ..ServiceConfig::default()
        };
        let quota = UserQuota {
            requests: 1 << 30,
            ciphertexts: 1 << 40,
            revoked: false,
        };
        service.users.insert("alice".into(), quota);
        let path = dir.join("service.toml");
        std::fs::write(&path, toml::to_string(&service).expect("toml")).expect("service file");
        let tls = TlsClient::load(&files.ca, cert, key, DEFAULT_SERVER_NAME).expect("alice");
        let path = path.to_string_lossy().into_owned();
        let audit = Self::audit_log(fx, name).to_string_lossy().into_owned();
        let mut args = vec!["--service", path.as_str(), "--audit-log", audit.as_str()];
        args.extend(extra);
        Self::spawn(fx, name, &args, Some(tls))
    }

    /// The audit log of a TLS owner started as `name`.
    pub fn audit_log(fx: &Fixture, name: &str) -> PathBuf {
        fx.root.join(format!("{name}-audit.jsonl"))
    }

    fn spawn(fx: &Fixture, name: &str, extra: &[&str], tls: Option<TlsClient>) -> Self {
        let log = fx.root.join(format!("{name}.log"));
        let mut child = Command::new(BIN)
            .arg("serve")
            .arg("--model")
            .arg(&fx.paths.model)
            .arg("--keys")
            .arg(&fx.paths.keys)
            .arg("--secret")
            .arg(&fx.paths.secret)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start the owner");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the address");
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            panic!(
                "owner did not start: {line:?}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        Self {
            addr: addr.to_string(),
            child,
            log,
            tls,
        }
    }

    /// The process has not exited.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// A connection (TLS as `alice` when the owner serves TLS).
    pub fn client(&self) -> Client {
        Client::connect_with(
            &self.addr,
            Limits::default(),
            Duration::from_secs(10),
            self.tls.as_ref(),
        )
        .expect("connect")
    }

    /// A raw byte stream to the owner (after the TLS handshake as `alice` when it serves TLS),
    /// for tests that send bytes no client would.
    pub fn stream(&self) -> NetStream {
        let tcp = TcpStream::connect(&self.addr).expect("connect");
        match &self.tls {
            Some(t) => t
                .connect(tcp, Duration::from_secs(10))
                .expect("TLS handshake"),
            None => NetStream::from(tcp),
        }
    }
}

impl Drop for OwnerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Which images a client process classifies: offset, count, images per request (0: all).
pub type Images = (usize, usize, usize);

/// `privdnn-party client` on the split file `dataset` against `addr`, logits kept, `extra`
/// flags (the layout, the mode, the audit).
pub fn client_command(
    dataset: &Path,
    addr: &str,
    (cache, report): (&Path, &Path),
    (offset, count, batch): Images,
    extra: &[&str],
) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("client")
        .arg("--images")
        .arg(dataset)
        .args([
            "--offset",
            &offset.to_string(),
            "--count",
            &count.to_string(),
            "--batch",
            &batch.to_string(),
        ])
        .args(["--server", addr, "--logits"])
        .args(extra)
        .arg("--cache")
        .arg(cache)
        .arg("--report")
        .arg(report)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Waits for a client process, checks its output and returns its JSON report.
pub fn finish_client(child: Child, report: &Path) -> Value {
    let out = child.wait_with_output().expect("client");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("predictions (") && text.contains("inference:"),
        "client output: {text}"
    );
    serde_json::from_str(&std::fs::read_to_string(report).expect("report")).expect("report JSON")
}

/// The unsigned integer at JSON `path`.
pub fn u(v: &Value, path: &str) -> u64 {
    v.pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{path} missing in {v}"))
}

/// The array of unsigned integers at JSON `key`.
pub fn u_array(v: &Value, key: &str) -> Vec<u64> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} missing"))
        .iter()
        .map(|p| p.as_u64().expect("integer"))
        .collect()
}

/// A window of secret-key bytes (from the middle of the serialised key: its coefficients).
pub fn secret_windows(fx: &Fixture) -> Vec<Vec<u8>> {
    fx.secret
        .secret
        .secret_keys
        .iter()
        .map(|k| {
            let mid = k.len() / 2;
            k[mid..mid + 48].to_vec()
        })
        .collect()
}

/// `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The cache holds exactly the two user files and no secret-key bytes.
pub fn assert_no_secret_in_cache(fx: &Fixture, cache: &Path) {
    let mut names: Vec<String> = std::fs::read_dir(cache)
        .expect("cache")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["encrypted_model.bin", "evaluation_keys.bin"],
        "the cache holds exactly the two user files"
    );
    let secret_file = std::fs::read(&fx.paths.secret).expect("secret");
    for name in &names {
        let bytes = std::fs::read(cache.join(name)).expect("cached file");
        assert_ne!(bytes, secret_file);
        assert_ne!(
            u16::from_le_bytes([bytes[8], bytes[9]]),
            ArtifactKind::OwnerSecretKey.code(),
            "{name}"
        );
        for w in secret_windows(fx) {
            assert!(!contains(&bytes, &w), "{name} contains secret-key bytes");
        }
    }
}
