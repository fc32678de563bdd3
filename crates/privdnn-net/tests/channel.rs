//! The framing layer on real loopback sockets with two toy protocols: a good exchange with its
//! byte counters, and every way a frame can be wrong (another protocol's magic, another version,
//! an unknown kind, an oversized or truncated frame, a peer too slow for the deadline, a payload
//! whose length prefix claims far more than was sent), each a distinct error.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use privdnn_net::{
    Channel, ERROR_KIND, ErrorCode, ErrorFrame, HEADER_LEN, Limits, NetError, Protocol,
    WireMessage, decode_bounded, decode_empty, encode,
};

/// A toy protocol: `Ping` (empty), `Echo(Vec<u32>)`, and the error message.
#[derive(Debug, Clone, PartialEq)]
enum Toy {
    Ping,
    Echo(Vec<u32>),
    Error(ErrorFrame),
}

const PING: u16 = 1;
const ECHO: u16 = 2;

impl WireMessage for Toy {
    const PROTOCOL: Protocol = Protocol {
        name: "toy",
        magic: *b"TOY1",
        version: 3,
    };

    fn kind(&self) -> u16 {
        match self {
            Toy::Ping => PING,
            Toy::Echo(_) => ECHO,
            Toy::Error(_) => ERROR_KIND,
        }
    }

    fn kind_name(kind: u16) -> Option<&'static str> {
        match kind {
            PING => Some("ping"),
            ECHO => Some("echo"),
            ERROR_KIND => Some("error"),
            _ => None,
        }
    }

    fn payload(&self) -> Result<Vec<u8>, NetError> {
        match self {
            Toy::Ping => Ok(Vec::new()),
            Toy::Echo(v) => encode(v),
            Toy::Error(e) => encode(e),
        }
    }

    fn decode(kind: u16, payload: &[u8]) -> Result<Self, NetError> {
        match kind {
            PING => decode_empty(payload, "ping").map(|()| Toy::Ping),
            ECHO => Ok(Toy::Echo(decode_bounded(payload, "echo")?)),
            ERROR_KIND => Ok(Toy::Error(decode_bounded(payload, "error")?)),
            other => Err(NetError::UnknownKind {
                protocol: "toy",
                kind: other,
            }),
        }
    }

    fn error(frame: ErrorFrame) -> Self {
        Toy::Error(frame)
    }

    fn as_error(&self) -> Option<&ErrorFrame> {
        match self {
            Toy::Error(e) => Some(e),
            _ => None,
        }
    }
}

/// Another protocol with the same kinds: its frames must be refused by a `Toy` reader.
#[derive(Debug)]
struct Other;

impl WireMessage for Other {
    const PROTOCOL: Protocol = Protocol {
        name: "other",
        magic: *b"OTHR",
        version: 3,
    };
    fn kind(&self) -> u16 {
        PING
    }
    fn kind_name(kind: u16) -> Option<&'static str> {
        (kind == PING).then_some("ping")
    }
    fn payload(&self) -> Result<Vec<u8>, NetError> {
        Ok(Vec::new())
    }
    fn decode(_: u16, _: &[u8]) -> Result<Self, NetError> {
        Ok(Other)
    }
    fn error(_: ErrorFrame) -> Self {
        Other
    }
    fn as_error(&self) -> Option<&ErrorFrame> {
        None
    }
}

fn limits(max_frame: u32, frame_ms: u64) -> Limits {
    Limits {
        max_frame,
        idle_timeout: Duration::from_secs(5),
        frame_timeout: Duration::from_millis(frame_ms),
        write_timeout: Duration::from_secs(5),
    }
}

/// A connected pair of sockets.
fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let client = TcpStream::connect(addr).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    (client, server)
}

/// What a `Toy` reader makes of `bytes` sent by a raw peer (that then half-closes).
fn read_raw(bytes: Vec<u8>, limits: Limits) -> Result<Option<Toy>, NetError> {
    let (mut raw, server) = pair();
    let writer = thread::spawn(move || {
        let _ = raw.write_all(&bytes);
        let _ = raw.shutdown(Shutdown::Write);
        raw
    });
    let mut chan = Channel::<_, Toy>::new(server, limits).expect("channel");
    let got = chan.recv();
    drop(writer.join());
    got
}

#[test]
fn a_call_is_answered_and_both_sides_count_the_same_bytes() {
    let (client, server) = pair();
    let served = thread::spawn(move || {
        let mut chan = Channel::<_, Toy>::new(server, limits(1 << 20, 2000)).expect("channel");
        while let Some(msg) = chan.recv().expect("recv") {
            let answer = match msg {
                Toy::Ping => Toy::Echo(vec![]),
                Toy::Echo(v) => Toy::Echo(v.into_iter().rev().collect()),
                Toy::Error(_) => break,
            };
            chan.send(&answer).expect("send");
        }
        chan.traffic()
    });
    let mut chan = Channel::<_, Toy>::new(client, limits(1 << 20, 2000)).expect("channel");
    assert_eq!(chan.call(&Toy::Ping).expect("ping"), Toy::Echo(vec![]));
    let v: Vec<u32> = (0..1000).map(|i| i * 7919).collect();
    let back = chan.call(&Toy::Echo(v.clone())).expect("echo");
    assert_eq!(back, Toy::Echo(v.iter().rev().copied().collect()));
    let mine = chan.traffic();
    let (ping, echo) = (
        Toy::Ping.to_frame().expect("frame").len() as u64,
        Toy::Echo(v).to_frame().expect("frame").len() as u64,
    );
    let empty_echo = Toy::Echo(vec![]).to_frame().expect("frame").len() as u64;
    assert_eq!(mine.round_trips, 2);
    assert_eq!((mine.frames_sent, mine.frames_received), (2, 2));
    assert_eq!(mine.bytes_sent, ping + echo);
    assert_eq!(mine.bytes_received, empty_echo + echo);
    drop(chan);
    let theirs = served.join().expect("server");
    assert_eq!(theirs.bytes_received, mine.bytes_sent);
    assert_eq!(theirs.bytes_sent, mine.bytes_received);
}

#[test]
fn header_layout_is_magic_version_kind_length() {
    let frame = Toy::Echo(vec![1, 2]).to_frame().expect("frame");
    assert_eq!(&frame[..4], b"TOY1");
    assert_eq!(u16::from_le_bytes([frame[4], frame[5]]), 3);
    assert_eq!(u16::from_le_bytes([frame[6], frame[7]]), ECHO);
    let len = u32::from_le_bytes([frame[8], frame[9], frame[10], frame[11]]) as usize;
    assert_eq!(frame.len(), HEADER_LEN + len);
    // bincode varint: length 2, then 1 and 2.
    assert_eq!(&frame[HEADER_LEN..], &[2, 1, 2]);
}

#[test]
fn another_protocols_frame_is_bad_magic() {
    let frame = Other.to_frame().expect("frame");
    match read_raw(frame, limits(1024, 1000)) {
        Err(NetError::BadMagic {
            protocol, found, ..
        }) => {
            assert_eq!(protocol, "toy");
            assert_eq!(&found[..1], b"O");
        }
        other => panic!("{other:?}"),
    }
    // A frame whose magic differs only in its last byte is caught at that byte.
    let mut frame = Toy::Ping.to_frame().expect("frame");
    frame[3] = b'2';
    let err = read_raw(frame, limits(1024, 1000)).expect_err("bad magic");
    assert_eq!(err.code(), ErrorCode::BadMagic);
    assert!(err.to_string().contains("\"TOY1\""), "{err}");
}

#[test]
fn wrong_version_and_unknown_kind_are_named() {
    let mut frame = Toy::Ping.to_frame().expect("frame");
    frame[4..6].copy_from_slice(&4u16.to_le_bytes());
    match read_raw(frame, limits(1024, 1000)) {
        Err(NetError::WrongVersion {
            found, supported, ..
        }) => assert_eq!((found, supported), (4, 3)),
        other => panic!("{other:?}"),
    }
    let frame = Toy::PROTOCOL.header(77, 0).to_vec();
    match read_raw(frame, limits(1024, 1000)) {
        Err(NetError::UnknownKind { kind, .. }) => assert_eq!(kind, 77),
        other => panic!("{other:?}"),
    }
}

#[test]
fn oversized_frame_is_refused_from_its_header() {
    // Only the header is sent: the refusal must not wait for (or allocate) the payload.
    let header = Toy::PROTOCOL.header(ECHO, 1025).to_vec();
    let clock = Instant::now();
    match read_raw(header, limits(1024, 5000)) {
        Err(NetError::Oversized { len, max }) => assert_eq!((len, max), (1025, 1024)),
        other => panic!("{other:?}"),
    }
    assert!(clock.elapsed() < Duration::from_secs(2));
    // At the limit exactly, the frame is read.
    let v: Vec<u32> = vec![5; 100];
    let frame = Toy::Echo(v.clone()).to_frame().expect("frame");
    let at_limit = (frame.len() - HEADER_LEN) as u32;
    let got = read_raw(frame, limits(at_limit, 1000)).expect("read");
    assert_eq!(got, Some(Toy::Echo(v)));
}

#[test]
fn truncated_header_and_payload_are_distinct_errors() {
    let frame = Toy::Echo(vec![9; 50]).to_frame().expect("frame");
    for cut in [1, 3, 4, 7, HEADER_LEN - 1] {
        match read_raw(frame[..cut].to_vec(), limits(1024, 2000)) {
            Err(NetError::Truncated { what, got, .. }) => {
                assert_eq!((what, got), ("frame header", cut));
            }
            other => panic!("cut {cut}: {other:?}"),
        }
    }
    let cut = frame.len() - 1;
    match read_raw(frame[..cut].to_vec(), limits(1024, 2000)) {
        Err(NetError::Truncated {
            what,
            expected,
            got,
        }) => assert_eq!(
            (what, expected, got),
            ("frame payload", frame.len() - HEADER_LEN, cut - HEADER_LEN)
        ),
        other => panic!("{other:?}"),
    }
    // Nothing at all is a clean close, not an error.
    assert!(
        read_raw(Vec::new(), limits(1024, 2000))
            .expect("eof")
            .is_none()
    );
}

#[test]
fn a_slow_peer_hits_the_frame_deadline() {
    let (mut raw, server) = pair();
    let frame = Toy::Echo(vec![1; 10]).to_frame().expect("frame");
    let sender = thread::spawn(move || {
        // Header now, payload one byte every 100 ms: the whole frame needs ~1.5 s.
        raw.write_all(&frame[..HEADER_LEN]).expect("write");
        for b in &frame[HEADER_LEN..] {
            thread::sleep(Duration::from_millis(100));
            if raw.write_all(&[*b]).is_err() {
                break;
            }
        }
        raw
    });
    let mut chan = Channel::<_, Toy>::new(server, limits(1024, 300)).expect("channel");
    let clock = Instant::now();
    match chan.recv() {
        Err(NetError::Timeout { what, seconds }) => {
            assert_eq!(what, "a frame payload");
            assert!((seconds - 0.3).abs() < 1e-9);
        }
        other => panic!("{other:?}"),
    }
    let took = clock.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_millis(1200),
        "{took:?}"
    );
    drop(chan);
    drop(sender.join());
}

#[test]
fn an_idle_peer_hits_the_idle_deadline() {
    let (_raw, server) = pair();
    let mut l = limits(1024, 1000);
    l.idle_timeout = Duration::from_millis(200);
    let mut chan = Channel::<_, Toy>::new(server, l).expect("channel");
    match chan.recv() {
        Err(NetError::Timeout { what, .. }) => assert_eq!(what, "the next frame"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_length_prefix_claiming_a_terabyte_is_malformed_not_allocated() {
    // Echo payload: varint 0xFD + u64 = 2^40 elements, then nothing.
    let mut payload = vec![0xFD];
    payload.extend_from_slice(&(1u64 << 40).to_le_bytes());
    let frame = Toy::PROTOCOL.frame(ECHO, &payload).expect("frame");
    let err = read_raw(frame, limits(1024, 1000)).expect_err("malformed");
    assert_eq!(err.code(), ErrorCode::Malformed, "{err}");
    // A byte string claiming 1 GiB inside a 9-byte payload: refused by the limit.
    let mut bytes = vec![0xFC];
    bytes.extend_from_slice(&(1u32 << 30).to_le_bytes());
    let err =
        decode_bounded::<ErrorFrame>(&[&[1u8][..], &bytes].concat(), "error").expect_err("limit");
    assert!(err.to_string().contains("malformed error"), "{err}");
    // Trailing bytes are refused too.
    let mut good = encode(&vec![1u32, 2]).expect("encode");
    good.push(0);
    let err = decode_bounded::<Vec<u32>>(&good, "echo").expect_err("trailing");
    assert!(err.to_string().contains("trailing bytes"), "{err}");
    // An empty message with a payload is malformed.
    let frame = Toy::PROTOCOL.frame(PING, &[1, 2]).expect("frame");
    let err = read_raw(frame, limits(1024, 1000)).expect_err("payload on ping");
    assert_eq!(err.code(), ErrorCode::Malformed);
}

#[test]
fn a_wide_honest_payload_fits_the_bound() {
    // 1-byte varints that decode to 8-byte integers: the worst honest ratio.
    let v: Vec<u64> = vec![1; 100_000];
    let bytes = encode(&v).expect("encode");
    let back: Vec<u64> = decode_bounded(&bytes, "wide").expect("decode");
    assert_eq!(back, v);
}

#[test]
fn fail_sends_an_error_frame_and_closes_cleanly() {
    let (client, server) = pair();
    let closer = thread::spawn(move || {
        let chan = Channel::<_, Toy>::new(server, limits(1024, 1000)).expect("channel");
        chan.fail(ErrorCode::Busy, "come back later".into());
    });
    let mut chan = Channel::<_, Toy>::new(client, limits(1024, 1000)).expect("channel");
    match chan.call(&Toy::Ping) {
        Err(NetError::Remote { code, message }) => {
            assert_eq!(code, ErrorCode::Busy.code());
            assert_eq!(message, "come back later");
        }
        other => panic!("{other:?}"),
    }
    closer.join().expect("closer");
    // After the error frame, a clean end of stream (FIN, not a reset).
    assert!(chan.recv().expect("eof").is_none());
    let mut rest = Vec::new();
    let mut s = chan.get_ref().try_clone().expect("clone");
    assert_eq!(s.read_to_end(&mut rest).expect("read"), 0);
}
