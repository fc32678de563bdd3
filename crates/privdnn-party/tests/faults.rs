//! Faults against an owner process (owner-keyed mode): 1,000 malformed / truncated / oversized /
//! wrong-version / unexpected frames plus stalled connections, each answered with an error frame
//! and a clean close, the owner still alive and serving a well-behaved client afterwards. The
//! same attack runs over plain TCP (`--insecure`) and inside TLS 1.3 sessions of an allowed
//! user; over TLS, stalled and garbage handshakes are added.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{OwnerProcess, fixture, load_user, spatial_request};
use privdnn_net::Transport;
use privdnn_party::wire::{
    DecryptRequest, ErrorCode, HEADER_LEN, MAGIC, Message, ServiceInfo, VERSION, WireMessage,
    header, kind,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One hostile connection: sends `bytes` (then half-closes when `close`), and expects one error
/// frame with `code` followed by the end of the stream, within `wait`.
fn expect_error(
    owner: &OwnerProcess,
    bytes: &[u8],
    close: bool,
    code: ErrorCode,
    wait: Duration,
    what: &str,
) {
    let mut s = owner.stream();
    s.set_read_timeout(Some(wait)).expect("timeout");
    if !bytes.is_empty() {
        s.write_all(bytes)
            .and_then(|_| s.flush())
            .unwrap_or_else(|e| panic!("{what}: write: {e}"));
    }
    if close {
        s.shutdown_write().expect("half close");
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

/// Bad frame number `i` and the error it must get: framing faults for `i % 14` in 0..6,
/// payload faults otherwise.
fn bad_frame(
    i: usize,
    rng: &mut ChaCha8Rng,
    max_frame: u32,
) -> (Vec<u8>, bool, ErrorCode, &'static str) {
    match i % 14 {
        0..6 => bad_framing(i % 14, rng, max_frame),
        k => bad_payload(k, i, rng),
    }
}

/// Frames whose header or length is wrong.
fn bad_framing(
    k: usize,
    rng: &mut ChaCha8Rng,
    max_frame: u32,
) -> (Vec<u8>, bool, ErrorCode, &'static str) {
    match k {
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
        _ => {
            let mut f = header(kind::DECRYPT, 1000).to_vec();
            f.extend((0..rng.random_range(0..999)).map(|_| rng.random::<u8>()));
            (f, true, ErrorCode::Truncated, "truncated payload")
        }
    }
}

/// A bincode varint claiming a u64 of 2^40 after `prefix`.
fn huge(prefix: &[u8]) -> Vec<u8> {
    let mut b = prefix.to_vec();
    b.push(0xFD); // bincode varint: a u64 follows
    b.extend_from_slice(&(1u64 << 40).to_le_bytes());
    b
}

/// Well-framed messages whose payload is wrong, unexpected or hostile.
fn bad_payload(
    k: usize,
    i: usize,
    rng: &mut ChaCha8Rng,
) -> (Vec<u8>, bool, ErrorCode, &'static str) {
    let decrypt = |id: u64, request: Vec<u8>| {
        Message::Decrypt(DecryptRequest { id, request })
            .to_frame()
            .expect("frame")
    };
    match k {
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
        8 => {
            let info = Message::Info(ServiceInfo {
                server: "x".into(),
                model: "y".into(),
                max_frame: 1,
                files: vec![],
            });
            (
                info.to_frame().expect("frame"),
                false,
                ErrorCode::Unexpected,
                "owner message sent to the owner",
            )
        }
        9 => {
            let junk: Vec<u8> = (0..rng.random_range(0..200))
                .map(|_| rng.random())
                .collect();
            (
                decrypt(i as u64, junk),
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
        // A well-framed request whose ciphertext claims 1 TB of bits (1 residue, 1 ct, level 3).
        12 => (
            decrypt(1, huge(&[1, 1, 3, 30, 10])),
            false,
            ErrorCode::BadRequest,
            "ciphertext claiming 1 TB",
        ),
        13 => (
            decrypt(2, huge(&[])),
            false,
            ErrorCode::BadRequest,
            "2^40 residues",
        ),
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

/// 1,000 bad frames from 4 threads, and 8 stalled peers, each answered with its error.
fn attack(owner: &OwnerProcess, max_frame: u32) {
    let wait = Duration::from_secs(10);
    std::thread::scope(|scope| {
        for t in 0..4usize {
            scope.spawn(move || {
                let mut rng = ChaCha8Rng::seed_from_u64(100 + t as u64);
                for i in (t..1000).step_by(4) {
                    let (bytes, close, code, what) = bad_frame(i, &mut rng, max_frame);
                    expect_error(owner, &bytes, close, code, wait, &format!("#{i} {what}"));
                }
            });
        }
        // Stalled peers: half a header, then silence (frame timeout); nothing at all (idle timeout).
        for t in 0..4usize {
            scope.spawn(move || {
                expect_error(
                    owner,
                    &MAGIC[..3],
                    false,
                    ErrorCode::Timeout,
                    wait,
                    &format!("stalled header {t}"),
                );
                expect_error(
                    owner,
                    &[],
                    false,
                    ErrorCode::Timeout,
                    wait,
                    &format!("idle {t}"),
                );
            });
        }
    });
}

/// The owner's limits in the fault tests: 1 MiB frames, 1 s per frame, 2 s idle, 32
/// connections.
const LIMITS: [&str; 8] = [
    "--max-frame-mib",
    "1",
    "--frame-timeout",
    "1",
    "--idle-timeout",
    "2",
    "--max-connections",
    "32",
];

#[test]
fn a_thousand_bad_frames_neither_crash_nor_hang_the_owner() {
    let owner = OwnerProcess::start(fixture(), "fault-owner", &LIMITS);
    survive_and_serve(owner, |owner| attack(owner, 1 << 20));
}

#[test]
fn a_thousand_bad_frames_inside_tls_sessions_neither_crash_nor_hang_the_owner() {
    let fx = fixture();
    let owner = OwnerProcess::start_tls(fx, "tls-fault-owner", &LIMITS);
    let garbage = 50;
    survive_and_serve(owner, |owner| {
        std::thread::scope(|scope| {
            scope.spawn(|| attack(owner, 1 << 20));
            scope.spawn(|| bad_handshakes(owner, garbage));
        })
    });
    // Every failed handshake is in the audit log; no frame of them reached the owner role.
    std::thread::sleep(Duration::from_millis(300));
    let audit =
        std::fs::read_to_string(OwnerProcess::audit_log(fx, "tls-fault-owner")).expect("audit log");
    let handshakes = audit
        .lines()
        .filter(|l| l.contains("\"kind\":\"handshake\""))
        .count();
    assert_eq!(
        handshakes,
        garbage + STALLED_HANDSHAKES,
        "audit handshake lines"
    );
}

/// Peers that open TCP and then never finish a handshake (the owner's 10 s handshake bound).
const STALLED_HANDSHAKES: usize = 4;

/// Over TLS: `garbage` peers that send random bytes instead of a ClientHello, and
/// [`STALLED_HANDSHAKES`] that send nothing; the owner must close each, and soon.
fn bad_handshakes(owner: &OwnerProcess, garbage: usize) {
    let closes = |bytes: &[u8], wait: Duration, what: &str| {
        let mut s = TcpStream::connect(&owner.addr).expect("connect");
        s.set_read_timeout(Some(wait)).expect("timeout");
        s.write_all(bytes).expect("write");
        let started = Instant::now();
        let mut got = Vec::new();
        match s.read_to_end(&mut got) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!(
                "{what}: not closed after {:.1} s: {e}",
                started.elapsed().as_secs_f64()
            ),
        }
        // At most a TLS alert comes back: never a frame.
        assert!(
            !got.starts_with(&MAGIC),
            "{what}: a frame before a handshake"
        );
    };
    std::thread::scope(|scope| {
        for t in 0..STALLED_HANDSHAKES {
            scope.spawn(move || {
                closes(
                    &[],
                    Duration::from_secs(20),
                    &format!("stalled handshake {t}"),
                )
            });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for i in 0..garbage {
            let junk: Vec<u8> = (0..rng.random_range(1..300))
                .map(|_| rng.random())
                .collect();
            closes(
                &junk,
                Duration::from_secs(5),
                &format!("garbage handshake {i}"),
            );
        }
    });
}

/// Runs `attack` against `owner`, then checks that it is alive, counted one error per bad
/// connection, and serves a well-behaved client exactly.
fn survive_and_serve(mut owner: OwnerProcess, attack: impl FnOnce(&OwnerProcess)) {
    let fx = fixture();
    let max_frame = 1u32 << 20;
    let clock = Instant::now();
    attack(&owner);
    let bad_s = clock.elapsed().as_secs_f64();
    assert!(
        owner.alive(),
        "the owner process died:\n{}",
        std::fs::read_to_string(&owner.log).unwrap_or_default()
    );

    // A well-behaved client is still served, correctly.
    let user = load_user(fx);
    let raw = fx.raw(0..2);
    let (request, pending) = spatial_request(&user, &raw);
    let mut good = owner.client();
    let info = good.info().expect("info");
    assert_eq!(info.max_frame, max_frame);
    let reply = good.decrypt(request).expect("decrypt after the attack");
    let out = user.finish(&reply.reply, pending).expect("finish");
    assert_eq!(out, fx.shadow(&raw));
    let stats = good.stats().expect("stats");
    assert_eq!(
        stats.errors,
        1000 + 8,
        "every bad connection closed with an error"
    );
    assert_eq!(stats.decrypts, 1);
    assert_eq!(stats.busy, 0);
    eprintln!(
        "1,008 bad connections ({}) handled in {bad_s:.1} s; owner stats {stats:?}",
        if owner.tls.is_some() { "TLS" } else { "TCP" }
    );
}
