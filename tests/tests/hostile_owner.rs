//! A hostile owner against the real client (`privdnn_party::classify::classify`): a fake owner
//! in this test speaks the PDNP wire protocol through `privdnn-net` framing, serves the files of
//! a real owner-keyed setup (tiny LeNet5, N = 8192, two CRT residues) and answers decryption
//! requests with the real owner's reply — or with a tampered one: wrong lengths, wrong bit
//! widths, wrong slot and ciphertext counts, garbage and inflated length prefixes; or it serves
//! an encrypted-model file whose block and selection do not match.
//!
//! The honest run must classify (so the fake owner speaks the protocol); every hostile run
//! must end with an error that names the problem, without a panic, and without any single
//! allocation (on the client's thread, counted by `privdnn_fuzz`'s allocator) larger than both
//! the largest one of the honest run and the largest frame the owner sent.

#[path = "../../crates/privdnn-party/tests/common/tiny.rs"]
mod tiny;

use std::net::{TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use privdnn_artifacts::{DatasetSplit, RunLayout, write_artifact};
use privdnn_config::{Backend, HeConfig};
use privdnn_he::engine::Layout;
use privdnn_he::files::EncryptedModelFile;
use privdnn_he::protocol::{Reply, from_wire, to_wire};
use privdnn_net::{Channel, Limits};
use privdnn_partial::owner::OwnerSide;
use privdnn_partial::wire::{
    DecryptReply, FileData, FileEntry, FileId, Message, ServerStats, ServiceInfo,
};
use privdnn_party::classify::{ClientConfig, ImageSource, LayoutChoice, classify};
use privdnn_party::wire::sha256_hex;
use tiny::{encrypt_run, tiny_model, tiny_selection};

/// What the fake owner does to an honest reply's bytes.
type Tamper = fn(Vec<u8>) -> Vec<u8>;

/// The fake owner's behaviour.
struct Owner {
    model: Vec<u8>,
    keys: Vec<u8>,
    side: OwnerSide,
    tamper: Tamper,
    /// Largest frame sent (bytes): a client may allocate what it is sent, no more.
    sent: AtomicUsize,
}

fn typed(bytes: &[u8], f: impl FnOnce(&mut Reply)) -> Vec<u8> {
    let mut reply: Reply = from_wire(bytes, "reply").expect("honest reply");
    f(&mut reply);
    to_wire(&reply).expect("encode")
}

fn answer(owner: &Owner, msg: Message) -> Message {
    let file = |id: FileId, bytes: &[u8]| FileEntry {
        id,
        bytes: bytes.len() as u64,
        sha256: sha256_hex(bytes),
    };
    match msg {
        Message::GetInfo => Message::Info(ServiceInfo {
            server: "hostile".into(),
            model: "tiny".into(),
            max_frame: privdnn_net::DEFAULT_MAX_FRAME,
            files: vec![
                file(FileId::EncryptedModel, &owner.model),
                file(FileId::EvaluationKeys, &owner.keys),
            ],
        }),
        Message::GetFile(id) => Message::File(FileData {
            id,
            bytes: match id {
                FileId::EvaluationKeys => owner.keys.clone(),
                _ => owner.model.clone(),
            },
        }),
        Message::Decrypt(r) => {
            let honest = owner.side.answer(&r.request).expect("honest answer");
            Message::Decrypted(DecryptReply {
                id: r.id,
                owner_seconds: 0.0,
                reply: (owner.tamper)(honest),
            })
        }
        _ => Message::Stats(ServerStats::default()),
    }
}

fn serve(owner: Arc<Owner>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let owner = owner.clone();
            std::thread::spawn(move || connection(&owner, stream));
        }
    });
    addr
}

fn connection(owner: &Owner, stream: TcpStream) {
    let Ok(mut ch) = Channel::<TcpStream, Message>::new(stream, Limits::default()) else {
        return;
    };
    while let Ok(Some(msg)) = ch.recv() {
        match ch.send(&answer(owner, msg)) {
            Ok(n) => {
                owner.sent.fetch_max(n, Ordering::Relaxed);
            }
            Err(_) => return,
        }
    }
}

fn split() -> DatasetSplit {
    DatasetSplit {
        dataset: "synthetic".into(),
        split: "test".into(),
        channels: 1,
        height: 28,
        width: 28,
        class_names: (0..10).map(|i| i.to_string()).collect(),
        labels: vec![3],
        images: (0..784).map(|i| (i * 37 % 256) as u8).collect(),
    }
}

/// Runs the real client against `owner`; returns its result (a panic fails the test), the
/// largest single allocation on this thread and the largest frame the owner sent.
fn run_client(owner: Owner, cache: &Path) -> (Result<(), String>, usize, usize) {
    let owner = Arc::new(owner);
    let addr = serve(owner.clone());
    let cfg = ClientConfig {
        server: addr,
        cache_dir: cache.to_path_buf(),
        layout: LayoutChoice::Fixed(Layout::Spatial),
        batch: 0,
        offset: 0,
        count: 1,
        headroom_bits: HeConfig::default().headroom_bits,
        limits: Limits {
            idle_timeout: Duration::from_secs(120),
            ..Limits::default()
        },
        connect_timeout: Duration::from_secs(10),
        tls: None,
        keep_logits: false,
        mode: None,
        audit_owner_block: None,
    };
    let device = privdnn_model::backend_device(Backend::Flex, false).expect("device");
    let source = ImageSource::Split(split(), "hostile".into());
    let (result, alloc) = privdnn_fuzz::alloc::limited(usize::MAX, || {
        catch_unwind(AssertUnwindSafe(|| classify(&cfg, &source, device)))
    });
    let result = result.unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!("the client panicked: {msg}")
    });
    let sent = owner.sent.load(Ordering::Relaxed);
    (
        result.map(|_| ()).map_err(|e| e.to_string()),
        alloc.largest,
        sent,
    )
}

fn model_with(
    base: &EncryptedModelFile,
    dir: &Path,
    f: impl FnOnce(&mut EncryptedModelFile),
) -> Vec<u8> {
    let mut m = base.clone();
    f(&mut m);
    let path = dir.join("hostile_model.bin");
    write_artifact(&path, &m).expect("write");
    std::fs::read(&path).expect("read")
}

/// Replies that are not what the request asked for.
fn hostile_replies() -> Vec<(&'static str, Tamper, &'static str)> {
    vec![
        (
            "truncated reply",
            (|b: Vec<u8>| b[..b.len() / 2].to_vec()) as Tamper,
            "decryption reply",
        ),
        (
            "garbage reply",
            (|_: Vec<u8>| vec![0xAB; 1000]) as Tamper,
            "decryption reply",
        ),
        (
            "inflated length prefix",
            (|b: Vec<u8>| [vec![0xFD], (1u64 << 40).to_le_bytes().to_vec(), b].concat()) as Tamper,
            "decryption reply",
        ),
        (
            "1-bit slots, 8× the count (index panic before the fix)",
            (|b: Vec<u8>| {
                typed(&b, |r| {
                    for p in r.values.iter_mut().flatten() {
                        p.width = 1;
                        p.len = p.data.len() as u32 * 8;
                    }
                })
            }) as Tamper,
            "values of 1 bits",
        ),
        (
            "2^27 slots in 16 MiB (a 1 GiB unpack before the fix)",
            (|b: Vec<u8>| {
                typed(&b, |r| {
                    let p = &mut r.values[0][0];
                    p.width = 1;
                    p.len = 1 << 27;
                    p.data = vec![0x55; 1 << 24];
                })
            }) as Tamper,
            "expected 8192 values",
        ),
        (
            "one slot too many",
            (|b: Vec<u8>| {
                typed(&b, |r| {
                    let p = &mut r.values[1][0];
                    p.len += 1;
                    p.data.extend_from_slice(&[0; 4]);
                })
            }) as Tamper,
            "8193 values",
        ),
        (
            "a ciphertext missing",
            (|b: Vec<u8>| typed(&b, |r| drop(r.values[0].pop()))) as Tamper,
            "residue 0",
        ),
        (
            "a residue too many",
            (|b: Vec<u8>| typed(&b, |r| r.values.push(r.values[0].clone()))) as Tamper,
            "3 residues",
        ),
        (
            "slot values ≥ t",
            (|b: Vec<u8>| {
                typed(&b, |r| {
                    for p in &mut r.values[0] {
                        p.data.fill(0xFF);
                    }
                })
            }) as Tamper,
            "≥ t",
        ),
    ]
}

#[test]
fn a_hostile_owner_ends_every_client_run_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run_dir = dir.path().join("run");
    let out = encrypt_run(&tiny_model(), &tiny_selection(&[2]), &run_dir);
    let layout = RunLayout::new(&run_dir);
    let model = std::fs::read(layout.encrypted_model()).expect("model");
    let keys = std::fs::read(layout.evaluation_keys()).expect("keys");
    let owner = |model: Vec<u8>, tamper: Tamper| Owner {
        model,
        keys: keys.clone(),
        side: OwnerSide::load(&layout.owner_secret()).expect("owner"),
        tamper,
        sent: AtomicUsize::new(0),
    };
    let mut case = 0;
    let mut cache = || {
        case += 1;
        dir.path().join(format!("cache{case}"))
    };

    let (honest, honest_peak, _) = run_client(owner(model.clone(), |b| b), &cache());
    honest.expect("the fake owner serves an honest run");
    println!("honest run: largest allocation {honest_peak} B");

    let base = &out.model;
    let bad_models: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "block selects filter 9 of 5 (selection agrees)",
            model_with(base, dir.path(), |m| {
                m.block.s2 = vec![9];
                m.selection.layer2 = vec![9];
                m.selection.channels = [4, 10];
            }),
            "layer-2 filter 9, but the block has 5",
        ),
        (
            "block and selection disagree",
            model_with(base, dir.path(), |m| m.block.s2 = vec![3]),
            "not the one the block was encrypted for",
        ),
        (
            "selection names filter 9 of 5",
            model_with(base, dir.path(), |m| m.selection.layer2 = vec![9]),
            "layer 2 selects filter 9",
        ),
        (
            "layer-1 filter listed twice",
            model_with(base, dir.path(), |m| {
                m.block.s1 = vec![1, 1];
                m.selection.layer1 = vec![1, 1];
            }),
            "twice",
        ),
        (
            "packing chunk 0",
            model_with(base, dir.path(), |m| m.block.chunk = 0),
            "chunk",
        ),
        (
            "remainder tensor shape ≠ values",
            model_with(base, dir.path(), |m| m.remainder.tensors[0].shape[0] += 1),
            "holds",
        ),
    ];
    let mut failures = Vec::new();
    let cases = hostile_replies()
        .into_iter()
        .map(|(name, tamper, needle)| (name, model.clone(), tamper, needle))
        .chain(
            bad_models
                .into_iter()
                .map(|(n, m, needle)| (n, m, (|b: Vec<u8>| b) as Tamper, needle)),
        );
    for (name, model, tamper, needle) in cases {
        let (result, peak, sent) = run_client(owner(model, tamper), &cache());
        let bound = honest_peak.max(sent);
        match result {
            Ok(()) => failures.push(format!("{name}: the client accepted it")),
            Err(e) => {
                println!("{name}: {e} (largest allocation {peak} B)");
                if !e.contains(needle) {
                    failures.push(format!("{name}: error lacks `{needle}`: {e}"));
                }
                if peak > bound {
                    failures.push(format!(
                        "{name}: allocated {peak} B in one piece; the honest run needed at most \
                         {honest_peak} B and the largest frame sent was {sent} B"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
