//! Regression test of a fuzz finding in `privdnn-net`'s frame reader: the payload buffer grew
//! by `resize`, which doubles the capacity, so a frame just over a power of two (1 MiB + 1 here,
//! read in 1 MiB chunks) allocated twice what it announced, beyond the frame limit.

use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use privdnn_net::{Channel, Limits, WireMessage};
use privdnn_partial::wire::{FileData, FileId, Message};

#[test]
fn a_frame_never_allocates_more_than_its_length() {
    let len = (1 << 20) + (1 << 19) + 1;
    let msg = Message::File(FileData {
        id: FileId::EncryptedModel,
        bytes: vec![7; len],
    });
    let frame = msg.to_frame().expect("frame");
    let payload_len = frame.len() - privdnn_net::HEADER_LEN;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let writer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        std::io::Write::write_all(&mut s, &frame).expect("write");
    });
    let stream = TcpStream::connect(addr).expect("connect");
    let limits = Limits {
        max_frame: payload_len as u32,
        idle_timeout: Duration::from_secs(30),
        frame_timeout: Duration::from_secs(30),
        write_timeout: Duration::from_secs(30),
    };
    let mut ch = Channel::<TcpStream, Message>::new(stream, limits).expect("channel");
    let (frame, alloc) = privdnn_fuzz::alloc::limited(payload_len, || ch.read_frame());
    let frame = frame.expect("read").expect("a frame");
    writer.join().expect("writer");
    assert_eq!(frame.payload.len(), payload_len);
    assert!(
        !alloc.exceeded(),
        "reading a {payload_len}-byte frame allocated {} bytes in one piece",
        alloc.largest
    );
}
