//! The owner and the user as separate processes on loopback, with a tiny real-shaped LeNet5
//! encrypted by the real encrypt code into a temporary folder (N = 8192, two CRT residues):
//!
//! * end to end: an owner process and two client processes, predictions equal to the in-process
//!   run, bytes reported by the clients equal to the owner's counters and to the frame sizes;
//! * faults: 1,000 malformed / truncated / oversized / wrong-version / unexpected frames plus
//!   stalled connections, each answered with an error frame and a clean close, the owner still
//!   alive and serving a well-behaved client afterwards;
//! * load: 8 concurrent clients, every answer matched to its request;
//! * privacy: the user's cache and every frame it receives hold no secret-key bytes, and the
//!   owner's view of a request (what it decrypts and returns) differs from the true outputs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use privdnn_artifacts::{
    ArtifactKind, DatasetSplit, ModelSpec, NeuronSelection, Normalization, TrainedModel,
    write_artifact,
};
use privdnn_config::{Backend, HeConfig};
use privdnn_he::engine::{Layout, SlotPlan};
use privdnn_he::files::OwnerSecretFile;
use privdnn_he::ops::OpCounter;
use privdnn_he::params::HeParams;
use privdnn_he::protocol::{Reply, from_wire};
use privdnn_model::{Network, RemainderNet, export_tensors};
use privdnn_partial::owner::OwnerSide;
use privdnn_partial::user::UserSide;
use privdnn_partial::{SelectedOutputs, shadow_outputs};
use privdnn_party::client::{Client, argmax_rows, fetch_model};
use privdnn_party::load::{LoadConfig, load_summary, run_load};
use privdnn_party::server::OwnerFiles;
use privdnn_party::wire::{
    DecryptRequest, ErrorCode, FileData, FileId, HEADER_LEN, Limits, MAGIC, Message, ServiceInfo,
    VERSION, WireMessage, header, kind,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_privdnn-party");
const IMAGES: usize = 8;

/// The encrypted tiny model, its files and a test split, shared by every test of this binary.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    paths: OwnerFiles,
    dataset: PathBuf,
    split: DatasetSplit,
    secret: OwnerSecretFile,
    selection: NeuronSelection,
    layer1_outputs: bool,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let clock = Instant::now();
        let device = privdnn_model::backend_device(Backend::Flex, false).expect("device");
        let spec = ModelSpec {
            architecture: privdnn_artifacts::Architecture::Lenet5,
            in_channels: 1,
            image_size: 28,
            num_classes: 10,
            lenet_filters: [4, 5],
            width: 1.0,
        };
        let (tensors, _) =
            export_tensors(&Network::new(&spec, &device).expect("network")).expect("export");
        let normalization = Normalization {
            mean: vec![0.4],
            std: vec![0.25],
        };
        let model = TrainedModel {
            dataset: "synthetic".into(),
            spec,
            normalization,
            tensors,
        };
        let selection = NeuronSelection {
            layer1: vec![1],
            layer2: vec![2],
            channels: [4, 5],
            algorithm: "test".into(),
        };
        let he = HeConfig {
            max_chunk: 64,
            ..HeConfig::default()
        };
        let out = privdnn_partial::setup::encrypt(&model, &selection, &he).expect("encrypt");
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        let paths = OwnerFiles::of_run(&root);
        write_artifact(&paths.model, &out.model).expect("write model");
        write_artifact(&paths.keys, &out.keys).expect("write keys");
        write_artifact(&paths.secret, &out.secret).expect("write secret");
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let split = DatasetSplit {
            dataset: "synthetic".into(),
            split: "test".into(),
            channels: 1,
            height: 28,
            width: 28,
            class_names: (0..10).map(|c| c.to_string()).collect(),
            labels: (0..IMAGES).map(|_| rng.random_range(0..10)).collect(),
            images: (0..IMAGES * 28 * 28).map(|_| rng.random::<u8>()).collect(),
        };
        let dataset = root.join("test.bin");
        write_artifact(&dataset, &split).expect("write split");
        eprintln!(
            "fixture: tiny LeNet5 encrypted in {:.1} s",
            clock.elapsed().as_secs_f64()
        );
        Fixture {
            _dir: dir,
            root,
            paths,
            dataset,
            split,
            secret: out.secret,
            layer1_outputs: out.model.layer1_outputs,
            selection,
        }
    })
}

/// The user's role with its clear remainder network (what `classify` builds).
struct User {
    role: UserSide,
    tail: RemainderNet,
}

impl std::ops::Deref for User {
    type Target = UserSide;
    fn deref(&self) -> &UserSide {
        &self.role
    }
}

impl User {
    fn logits(&self, split: &DatasetSplit, indices: &[usize], out: &SelectedOutputs) -> Vec<f32> {
        self.tail
            .logits(split, indices, &self.role.injection(out))
            .expect("logits")
    }
}

fn load_user(fx: &Fixture) -> User {
    let device = privdnn_model::backend_device(Backend::Flex, false).expect("device");
    let role =
        UserSide::load(&fx.paths.model, &fx.paths.keys, 20.0, &OpCounter::default()).expect("user");
    let tail = RemainderNet::new(role.remainder(), device).expect("remainder network");
    User { role, tail }
}

/// An owner process; killed when dropped.
struct OwnerProcess {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl OwnerProcess {
    fn start(fx: &Fixture, name: &str, extra: &[&str]) -> Self {
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
        }
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn client(&self) -> Client {
        Client::connect(&self.addr, Limits::default(), Duration::from_secs(10)).expect("connect")
    }
}

impl Drop for OwnerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client_command(
    fx: &Fixture,
    addr: &str,
    cache: &Path,
    report: &Path,
    offset: usize,
    count: usize,
    batch: usize,
) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("client")
        .arg("--images")
        .arg(&fx.dataset)
        .args([
            "--offset",
            &offset.to_string(),
            "--count",
            &count.to_string(),
            "--batch",
            &batch.to_string(),
        ])
        .args(["--server", addr, "--layout", "spatial", "--logits"])
        .arg("--cache")
        .arg(cache)
        .arg("--report")
        .arg(report)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn finish_client(child: Child, report: &Path) -> Value {
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

fn u(v: &Value, path: &str) -> u64 {
    v.pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{path} missing in {v}"))
}

/// The in-process run (both roles in this process, bytes between them): logits per batch,
/// request sizes, and the decrypted outputs.
fn in_process(
    fx: &Fixture,
    user: &User,
    owner: &OwnerSide,
    indices: &[usize],
    batch: usize,
) -> (Vec<f32>, Vec<usize>) {
    let (mut logits, mut request_sizes) = (Vec::new(), Vec::new());
    for chunk in indices.chunks(batch) {
        let raw: Vec<&[u8]> = chunk.iter().map(|&i| fx.split.image(i)).collect();
        let (request, pending) = user
            .request(
                Layout::Spatial,
                &raw,
                &OpCounter::default(),
                &|_| {},
                &mut rand::rng(),
            )
            .expect("request");
        request_sizes.push(request.len());
        let reply = owner.answer(&request).expect("answer");
        let out = user.finish(&reply, pending).expect("finish");
        let shadow = shadow_outputs(&fx.secret.block, &fx.selection, &raw, fx.layer1_outputs);
        assert_eq!(out, shadow, "in-process run differs from the shadow");
        logits.extend(user.logits(&fx.split, chunk, &out));
    }
    (logits, request_sizes)
}

/// A window of secret-key bytes (from the middle of the serialised key: its coefficients).
fn secret_windows(fx: &Fixture) -> Vec<Vec<u8>> {
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

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn assert_no_secret_in_cache(fx: &Fixture, cache: &Path) {
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

#[test]
fn owner_and_two_client_processes_match_the_in_process_run() {
    let fx = fixture();
    let owner = OwnerProcess::start(fx, "e2e-owner", &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let (cache_a, cache_b) = (dir.path().join("a"), dir.path().join("b"));
    let (report_a, report_b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    // Client A: images 0..3 in one request; client B: images 3..8 in requests of 2.
    let clock = Instant::now();
    let a = client_command(fx, &owner.addr, &cache_a, &report_a, 0, 3, 0)
        .spawn()
        .expect("client a");
    let b = client_command(fx, &owner.addr, &cache_b, &report_b, 3, 5, 2)
        .spawn()
        .expect("client b");
    let (ra, rb) = (finish_client(a, &report_a), finish_client(b, &report_b));
    eprintln!("two clients: {:.1} s", clock.elapsed().as_secs_f64());

    // The owner's counters equal what the clients report (plus this stats request).
    let mut probe = owner.client();
    let stats = probe.stats().expect("stats");
    let sent = u(&ra, "/total/bytes_sent") + u(&rb, "/total/bytes_sent");
    let received = u(&ra, "/total/bytes_received") + u(&rb, "/total/bytes_received");
    assert_eq!(
        stats.bytes_in,
        sent + HEADER_LEN as u64,
        "owner bytes in vs client bytes sent"
    );
    assert_eq!(
        stats.bytes_out, received,
        "owner bytes out vs client bytes received"
    );
    assert_eq!(stats.decrypts, 1 + 3);
    assert_eq!(stats.files, 4);
    assert_eq!(stats.errors, 0);

    // Predictions (and logits) equal the in-process run with the same batches.
    let user = load_user(fx);
    let owner_side = OwnerSide::load(&fx.paths.secret).expect("owner");
    let model_len = std::fs::metadata(&fx.paths.model).expect("model").len();
    let keys_len = std::fs::metadata(&fx.paths.keys).expect("keys").len();
    for (r, offset, count, batch) in [(&ra, 0usize, 3usize, 3usize), (&rb, 3, 5, 2)] {
        let indices: Vec<usize> = (offset..offset + count).collect();
        let (logits, sizes) = in_process(fx, &user, &owner_side, &indices, batch);
        let want = argmax_rows(&logits, 10);
        let got: Vec<usize> = r["predictions"]
            .as_array()
            .expect("predictions")
            .iter()
            .map(|p| p.as_u64().expect("p") as usize)
            .collect();
        assert_eq!(
            got, want,
            "predictions over the network differ from the in-process run"
        );
        let got_logits: Vec<f64> = r["logits"]
            .as_array()
            .expect("logits")
            .iter()
            .map(|v| v.as_f64().expect("f"))
            .collect();
        for (g, w) in got_logits.iter().zip(&logits) {
            assert!(
                (g - *w as f64).abs() <= 1e-4 * (1.0 + w.abs() as f64),
                "logit {g} vs {w}"
            );
        }
        let labels: Vec<u64> = r["labels"]
            .as_array()
            .expect("labels")
            .iter()
            .map(|v| v.as_u64().expect("l"))
            .collect();
        let correct = labels
            .iter()
            .zip(&got)
            .filter(|(l, p)| **l as usize == **p)
            .count() as u64;
        assert_eq!(u(r, "/correct"), correct);
        assert_eq!(u(r, "/images"), count as u64);
        // Bytes: every batch's frames are its request / reply plus the frame overhead, the
        // request sizes equal the in-process ones, and the parts add up to the totals.
        let batches = r["batches"].as_array().expect("batches");
        assert_eq!(batches.len(), sizes.len());
        let (mut up, mut down) = (0, 0);
        for (b, size) in batches.iter().zip(&sizes) {
            let (req, rep) = (u(b, "/request_bytes"), u(b, "/reply_bytes"));
            assert_eq!(req, *size as u64, "request bytes vs the in-process request");
            let (s, rcv) = (u(b, "/traffic/bytes_sent"), u(b, "/traffic/bytes_received"));
            assert!(
                s > req + HEADER_LEN as u64 && s <= req + HEADER_LEN as u64 + 20,
                "sent {s} for a {req}-byte request"
            );
            assert!(
                rcv > rep + HEADER_LEN as u64 && rcv <= rep + HEADER_LEN as u64 + 30,
                "received {rcv} for a {rep}-byte reply"
            );
            assert_eq!(u(b, "/traffic/round_trips"), 1);
            up += s;
            down += rcv;
        }
        assert_eq!(u(r, "/inference/traffic/bytes_sent"), up);
        assert_eq!(u(r, "/inference/traffic/bytes_received"), down);
        let per_image = r["inference"]["bytes_sent_per_image"]
            .as_f64()
            .expect("per image");
        assert!((per_image - up as f64 / count as f64).abs() < 1e-6);
        // First run: both files downloaded, in 1 info + 2 file round trips.
        let dl = u(r, "/download/traffic/bytes_received");
        assert_eq!(u(r, "/download/file_bytes"), model_len + keys_len);
        assert!(
            dl > model_len + keys_len && dl < model_len + keys_len + 1024,
            "download {dl} bytes"
        );
        assert_eq!(u(r, "/download/traffic/round_trips"), 3);
        assert_eq!(u(r, "/total/bytes_received"), dl + down);
        assert_eq!(u(r, "/total/round_trips"), 3 + batches.len() as u64);
    }
    // The user never holds the secret.
    assert_no_secret_in_cache(fx, &cache_a);
    assert_no_secret_in_cache(fx, &cache_b);

    // Client A again: the model comes from the cache (one info round trip, no file).
    let again = client_command(fx, &owner.addr, &cache_a, &report_a, 0, 3, 0)
        .spawn()
        .expect("client a again");
    let ra2 = finish_client(again, &report_a);
    assert_eq!(
        ra2["download"]["downloaded"].as_array().map(Vec::len),
        Some(0)
    );
    assert_eq!(u(&ra2, "/download/traffic/round_trips"), 1);
    assert!(u(&ra2, "/download/traffic/bytes_received") < 1024);
    assert_eq!(ra2["predictions"], ra["predictions"]);
}

/// One hostile connection: sends `bytes` (then half-closes when `close`), and expects one error
/// frame with `code` followed by the end of the stream, within `wait`.
fn expect_error(
    addr: &str,
    bytes: &[u8],
    close: bool,
    code: ErrorCode,
    wait: Duration,
    what: &str,
) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("{what}: connect: {e}"));
    s.set_read_timeout(Some(wait)).expect("timeout");
    if !bytes.is_empty() {
        s.write_all(bytes)
            .unwrap_or_else(|e| panic!("{what}: write: {e}"));
    }
    if close {
        s.shutdown(Shutdown::Write).expect("half close");
    }
    let mut got = Vec::new();
    let started = Instant::now();
    // Read to the end: the owner must close the connection (a timeout here is a hang).
    if let Err(e) = s.read_to_end(&mut got) {
        panic!(
            "{what}: no clean close after {:.1} s ({e}); got {} bytes",
            started.elapsed().as_secs_f64(),
            got.len()
        );
    }
    assert!(
        got.len() >= HEADER_LEN,
        "{what}: no error frame ({} bytes)",
        got.len()
    );
    assert_eq!(got[..4], MAGIC, "{what}");
    let k = u16::from_le_bytes([got[6], got[7]]);
    let len = u32::from_le_bytes([got[8], got[9], got[10], got[11]]) as usize;
    // A well-formed request answered before the bad frame comes first.
    let (k, payload) = if k == kind::INFO {
        let rest = &got[HEADER_LEN + len..];
        let len2 = u32::from_le_bytes([rest[8], rest[9], rest[10], rest[11]]) as usize;
        assert_eq!(
            rest.len(),
            HEADER_LEN + len2,
            "{what}: exactly one frame after the answer"
        );
        (u16::from_le_bytes([rest[6], rest[7]]), &rest[HEADER_LEN..])
    } else {
        assert_eq!(got.len(), HEADER_LEN + len, "{what}: exactly one frame");
        (k, &got[HEADER_LEN..])
    };
    assert_eq!(k, kind::ERROR, "{what}");
    match Message::decode(k, payload).expect("error frame decodes") {
        Message::Error(e) => assert_eq!(e.code, code.code(), "{what}: {}", e.message),
        other => panic!("{what}: {other:?}"),
    }
}

fn frame(kind: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = header(kind, payload.len() as u32).to_vec();
    f.extend_from_slice(payload);
    f
}

/// Bad frame number `i` and the error it must get.
fn bad_frame(
    i: usize,
    rng: &mut ChaCha8Rng,
    max_frame: u32,
) -> (Vec<u8>, bool, ErrorCode, &'static str) {
    let info = Message::Info(ServiceInfo {
        server: "x".into(),
        model: "y".into(),
        max_frame: 1,
        files: vec![],
    });
    let huge = |prefix: &[u8]| {
        let mut b = prefix.to_vec();
        b.push(0xFD); // bincode varint: a u64 follows
        b.extend_from_slice(&(1u64 << 40).to_le_bytes());
        b
    };
    match i % 14 {
        0 => {
            let mut g: Vec<u8> = (0..rng.random_range(1..64)).map(|_| rng.random()).collect();
            if g[0] == MAGIC[0] {
                g[0] = b'G';
            }
            (g, false, ErrorCode::BadMagic, "garbage")
        }
        1 => {
            let mut f = frame(kind::GET_INFO, &[]);
            let v = [0u16, 2, VERSION + 1, u16::MAX][rng.random_range(0..4)];
            f[4..6].copy_from_slice(&v.to_le_bytes());
            (f, false, ErrorCode::WrongVersion, "wrong version")
        }
        2 => (
            frame([0u16, 5, 77, 100, 254][rng.random_range(0..5)], &[]),
            false,
            ErrorCode::UnknownKind,
            "unknown kind",
        ),
        3 => {
            let len = rng.random_range(max_frame + 1..=u32::MAX);
            (
                header(kind::DECRYPT, len).to_vec(),
                false,
                ErrorCode::Oversized,
                "oversized",
            )
        }
        4 => {
            let f = frame(kind::GET_INFO, &[]);
            (
                f[..rng.random_range(1..HEADER_LEN)].to_vec(),
                true,
                ErrorCode::Truncated,
                "truncated header",
            )
        }
        5 => {
            let mut f = header(kind::DECRYPT, 1000).to_vec();
            f.extend((0..rng.random_range(0..999)).map(|_| rng.random::<u8>()));
            (f, true, ErrorCode::Truncated, "truncated payload")
        }
        6 => {
            let payload: Vec<u8> = (0..rng.random_range(1..40))
                .map(|_| 200 + rng.random_range(0..50u8))
                .collect();
            (
                frame(kind::GET_FILE, &payload),
                false,
                ErrorCode::Malformed,
                "malformed payload",
            )
        }
        7 => (
            frame(kind::GET_STATS, &[1, 2, 3]),
            false,
            ErrorCode::Malformed,
            "payload on an empty message",
        ),
        8 => (
            info.to_frame().expect("frame"),
            false,
            ErrorCode::Unexpected,
            "owner message sent to the owner",
        ),
        9 => {
            let junk: Vec<u8> = (0..rng.random_range(0..200))
                .map(|_| rng.random())
                .collect();
            let msg = Message::Decrypt(DecryptRequest {
                id: i as u64,
                request: junk,
            });
            (
                msg.to_frame().expect("frame"),
                false,
                ErrorCode::BadRequest,
                "request that does not decrypt",
            )
        }
        11 => (
            frame(kind::DECRYPT, &huge(&[7])),
            false,
            ErrorCode::Malformed,
            "request claiming 1 TB",
        ),
        12 => {
            // A well-framed request whose ciphertext claims 1 TB of bits (1 residue, 1 ct, level 3).
            let msg = Message::Decrypt(DecryptRequest {
                id: 1,
                request: huge(&[1, 1, 3, 30, 10]),
            });
            (
                msg.to_frame().expect("frame"),
                false,
                ErrorCode::BadRequest,
                "ciphertext claiming 1 TB",
            )
        }
        13 => {
            let msg = Message::Decrypt(DecryptRequest {
                id: 2,
                request: huge(&[]),
            });
            (
                msg.to_frame().expect("frame"),
                false,
                ErrorCode::BadRequest,
                "2^40 residues",
            )
        }
        _ => {
            // A good request, then garbage on the same connection.
            let mut f = frame(kind::GET_INFO, &[]);
            f.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
            (
                f,
                false,
                ErrorCode::BadMagic,
                "garbage after a good request",
            )
        }
    }
}

#[test]
fn a_thousand_bad_frames_neither_crash_nor_hang_the_owner() {
    let fx = fixture();
    let mut owner = OwnerProcess::start(
        fx,
        "fault-owner",
        &[
            "--max-frame-mib",
            "1",
            "--frame-timeout",
            "1",
            "--idle-timeout",
            "2",
            "--max-connections",
            "32",
        ],
    );
    let max_frame = 1u32 << 20;
    let clock = Instant::now();
    let wait = Duration::from_secs(10);
    std::thread::scope(|scope| {
        for t in 0..4usize {
            let addr = owner.addr.clone();
            scope.spawn(move || {
                let mut rng = ChaCha8Rng::seed_from_u64(100 + t as u64);
                for i in (t..1000).step_by(4) {
                    let (bytes, close, code, what) = bad_frame(i, &mut rng, max_frame);
                    expect_error(&addr, &bytes, close, code, wait, &format!("#{i} {what}"));
                }
            });
        }
        // Stalled peers: half a header, then silence (frame timeout); nothing at all (idle timeout).
        for t in 0..4usize {
            let addr = owner.addr.clone();
            scope.spawn(move || {
                expect_error(
                    &addr,
                    &MAGIC[..3],
                    false,
                    ErrorCode::Timeout,
                    wait,
                    &format!("stalled header {t}"),
                );
                expect_error(
                    &addr,
                    &[],
                    false,
                    ErrorCode::Timeout,
                    wait,
                    &format!("idle {t}"),
                );
            });
        }
    });
    let bad_s = clock.elapsed().as_secs_f64();
    assert!(
        owner.alive(),
        "the owner process died:\n{}",
        std::fs::read_to_string(&owner.log).unwrap_or_default()
    );

    // A well-behaved client is still served, correctly.
    let user = load_user(fx);
    let raw: Vec<&[u8]> = (0..2).map(|i| fx.split.image(i)).collect();
    let (request, pending) = user
        .request(
            Layout::Spatial,
            &raw,
            &OpCounter::default(),
            &|_| {},
            &mut rand::rng(),
        )
        .expect("request");
    let mut good = owner.client();
    let info = good.info().expect("info");
    assert_eq!(info.max_frame, max_frame);
    let reply = good.decrypt(request).expect("decrypt after the attack");
    let out = user.finish(&reply.reply, pending).expect("finish");
    assert_eq!(
        out,
        shadow_outputs(&fx.secret.block, &fx.selection, &raw, fx.layer1_outputs)
    );
    let stats = good.stats().expect("stats");
    assert_eq!(
        stats.errors,
        1000 + 8,
        "every bad connection closed with an error"
    );
    assert_eq!(stats.decrypts, 1);
    assert_eq!(stats.busy, 0);
    eprintln!("1,008 bad connections handled in {bad_s:.1} s; owner stats {stats:?}");
}

#[test]
fn eight_concurrent_clients_get_their_own_answers() {
    let fx = fixture();
    let owner = OwnerProcess::start(fx, "load-owner", &[]);
    let user = load_user(fx);
    let owner_side = OwnerSide::load(&fx.paths.secret).expect("owner");
    // Four distinct requests (other images, other masks); decryption is deterministic, so the
    // right answer to each is known byte for byte.
    let clock = Instant::now();
    let mut requests = Vec::new();
    let mut pendings = Vec::new();
    for r in 0..4usize {
        let idx: Vec<usize> = (0..1 + r % 2).map(|k| (2 * r + k) % IMAGES).collect();
        let raw: Vec<&[u8]> = idx.iter().map(|&i| fx.split.image(i)).collect();
        let (request, pending) = user
            .request(
                Layout::Spatial,
                &raw,
                &OpCounter::default(),
                &|_| {},
                &mut rand::rng(),
            )
            .expect("request");
        let expected = owner_side.answer(&request).expect("answer");
        requests.push((request, expected));
        pendings.push((idx, pending));
    }
    eprintln!(
        "4 requests prepared in {:.1} s",
        clock.elapsed().as_secs_f64()
    );
    let (clients, rounds) = (8usize, 6usize);
    let clock = Instant::now();
    let latencies: Vec<Vec<f64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let (addr, requests) = (owner.addr.clone(), &requests);
                scope.spawn(move || {
                    let mut client =
                        Client::connect(&addr, Limits::default(), Duration::from_secs(10))
                            .expect("connect");
                    let mut lat = Vec::new();
                    for k in 0..rounds {
                        let (request, expected) = &requests[(c + k) % requests.len()];
                        let t = Instant::now();
                        let reply = client.decrypt(request.clone()).expect("decrypt");
                        lat.push(t.elapsed().as_secs_f64());
                        assert!(
                            reply.reply == *expected,
                            "client {c} round {k}: answer to another request"
                        );
                    }
                    lat
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect()
    });
    let wall = clock.elapsed().as_secs_f64();
    let mut all: Vec<f64> = latencies.into_iter().flatten().collect();
    assert_eq!(all.len(), clients * rounds, "lost answers");
    all.sort_by(f64::total_cmp);
    let bytes: usize = (0..clients * rounds)
        .map(|i| requests[i % 4].0.len() + requests[i % 4].1.len())
        .sum();
    let stats = owner.client().stats().expect("stats");
    assert_eq!(stats.decrypts, (clients * rounds) as u64);
    assert_eq!(stats.errors, 0);
    eprintln!(
        "load: {clients} clients × {rounds} requests in {wall:.2} s = {:.1} requests/s, {:.1} MB/s; latency p50 {:.1} ms, \
         p95 {:.1} ms, max {:.1} ms; owner decrypt time {:.2} s in total",
        all.len() as f64 / wall,
        bytes as f64 / 1e6 / wall,
        1e3 * all[all.len() / 2],
        1e3 * all[all.len() * 95 / 100],
        1e3 * all[all.len() - 1],
        stats.decrypt_seconds
    );
    // And the answers really are the decryptions of these requests.
    for ((idx, pending), (_, expected)) in pendings.into_iter().zip(&requests) {
        let raw: Vec<&[u8]> = idx.iter().map(|&i| fx.split.image(i)).collect();
        let out = user.finish(expected, pending).expect("finish");
        assert_eq!(
            out,
            shadow_outputs(&fx.secret.block, &fx.selection, &raw, fx.layer1_outputs)
        );
    }
    // The benchmark command's library function (`privdnn-party load`) on the same owner.
    let cache = tempfile::tempdir().expect("cache");
    let cfg = LoadConfig {
        server: owner.addr.clone(),
        cache_dir: cache.path().to_path_buf(),
        clients: 3,
        rounds: 2,
        distinct: 2,
        images_per_request: 2,
        layout: Layout::Spatial,
        headroom_bits: 20.0,
        limits: Limits::default(),
        connect_timeout: Duration::from_secs(10),
    };
    let report = run_load(&cfg, &fx.split).expect("load benchmark");
    eprint!("{}", load_summary(&report));
    assert_eq!((report.requests, report.mismatches), (6, 0));
    assert_eq!((report.owner.decrypts, report.owner.errors), (6, 0));
}

/// Signed CRT values of a reply's slots, with no mask removed: what the owner sees.
fn owner_view(reply: &Reply, params: &[HeParams]) -> Vec<Vec<i64>> {
    let values = reply.slots().expect("packed slots");
    (0..values[0].len())
        .map(|k| {
            (0..values[0][k].len())
                .map(|slot| {
                    let residues: Vec<i64> = params
                        .iter()
                        .enumerate()
                        .map(|(i, p)| p.decode_signed(values[i][k][slot]))
                        .collect();
                    HeParams::crt_combine(params, &residues) as i64
                })
                .collect()
        })
        .collect()
}

#[test]
fn user_never_receives_the_secret_and_owner_sees_only_masked_values() {
    let fx = fixture();
    let owner = OwnerProcess::start(fx, "privacy-owner", &[]);
    let mut client = owner.client();
    client.record_transcript();
    let cache = tempfile::tempdir().expect("cache");
    let download = fetch_model(&mut client, cache.path()).expect("download");
    assert_eq!(download.downloaded.len(), 2);
    let user =
        UserSide::load(&download.model, &download.keys, 20.0, &OpCounter::default()).expect("user");
    let n = 3;
    let raw: Vec<&[u8]> = (0..n).map(|i| fx.split.image(i)).collect();
    let (request, pending) = user
        .request(
            Layout::Spatial,
            &raw,
            &OpCounter::default(),
            &|_| {},
            &mut rand::rng(),
        )
        .expect("request");
    let reply = client.decrypt(request).expect("decrypt");

    // 1. The user: the cache and every frame received hold no secret-key bytes.
    assert_no_secret_in_cache(fx, cache.path());
    assert_eq!(client.transcript().len(), 4, "info, two files, one answer");
    let windows = secret_windows(fx);
    for (i, f) in client.transcript().iter().enumerate() {
        for w in &windows {
            assert!(!contains(f, w), "frame {i} contains secret-key bytes");
        }
        if let Ok(Message::File(FileData { id, bytes })) =
            Message::decode(u16::from_le_bytes([f[6], f[7]]), &f[HEADER_LEN..])
        {
            assert!(FileId::ALL.contains(&id));
            assert_ne!(
                u16::from_le_bytes([bytes[8], bytes[9]]),
                ArtifactKind::OwnerSecretKey.code()
            );
        }
    }

    // 2. The owner: what it decrypted and returned, read as outputs, differs from the true ones.
    let truth = shadow_outputs(&fx.secret.block, &fx.selection, &raw, fx.layer1_outputs);
    let parsed: Reply = from_wire(&reply.reply, "reply").expect("reply");
    let params = user.session.params();
    let view = owner_view(&parsed, &params);
    let plain = user.session.plain();
    let plan = SlotPlan::new(Layout::Spatial, plain, params[0].degree, n).expect("plan");
    let groups = plan.groups();
    let per = plain.shape.h2 * plain.shape.w2;
    let (mut same, mut total) = (0usize, 0usize);
    for kk in 0..fx.selection.layer2.len() {
        let mut maps = vec![vec![0i64; per]; n];
        for g in 0..groups {
            plan.scatter(g, &view[kk * groups + g], &mut maps);
        }
        for (img, m) in maps.iter().enumerate() {
            for (p, v) in m.iter().enumerate() {
                total += 1;
                same += usize::from(*v == truth.z[img][kk][p]);
            }
        }
    }
    let zeros = view.iter().flatten().filter(|v| **v == 0).count();
    let slots = view.iter().map(Vec::len).sum::<usize>();
    eprintln!(
        "owner's view: {same} of {total} outputs equal the true value, {zeros} of {slots} slots zero"
    );
    assert!(
        total > 0 && same * 100 <= total,
        "the owner sees {same} of {total} true outputs"
    );
    // Unused slots hold 0 in the plaintext; masked, they are uniform.
    assert!(
        zeros * 100 <= slots,
        "{zeros} of {slots} slots are zero in the owner's view"
    );
    // ... while the user recovers them exactly.
    let recovered: SelectedOutputs = user.finish(&reply.reply, pending).expect("finish");
    assert_eq!(recovered, truth);
}

#[test]
fn owner_refuses_to_serve_a_secret_as_a_user_file() {
    let fx = fixture();
    let out = Command::new(BIN)
        .arg("serve")
        .arg("--model")
        .arg(&fx.paths.secret)
        .arg("--keys")
        .arg(&fx.paths.keys)
        .arg("--secret")
        .arg(&fx.paths.secret)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to serve"), "{err}");
}

#[test]
fn client_source_never_names_the_secret() {
    for (file, source) in [
        ("client.rs", include_str!("../src/client.rs")),
        ("classify.rs", include_str!("../src/classify.rs")),
    ] {
        never_names_the_secret(file, source);
    }
}

fn never_names_the_secret(file: &str, source: &str) {
    for forbidden in [
        "OwnerSecret",
        "SecretKey",
        "secret_key",
        "OwnerSide",
        "owner::",
        "server::",
        "secret:",
    ] {
        assert!(!source.contains(forbidden), "{file} mentions `{forbidden}`");
    }
}
