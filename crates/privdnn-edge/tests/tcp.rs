//! The roles over real TCP sockets on 127.0.0.1 (edges on threads here; the deployment binary
//! runs them as processes): logits equal the shadow, bytes are counted per link, both edges stop
//! on the device's shutdown and report their counters.

mod common;

use std::net::TcpListener;

use privdnn_edge::device::Device;
use privdnn_edge::edge::EdgeServer;
use privdnn_edge::messages::IntegrityConfig;
use privdnn_edge::net::{TcpLink, serve};
use privdnn_edge::owner::setup;
use privdnn_mpc::shadow::logits;
use privdnn_mpc::{QuantConfig, import_model};
use privdnn_net::Limits;

#[test]
fn tcp_roles_match_the_shadow_and_count_bytes() {
    let f = common::fixture();
    let model = import_model(&f.model, &QuantConfig::default()).expect("import");
    let s = setup(&model, &IntegrityConfig::default(), &mut rand::rng()).expect("setup");
    let mut servers = Vec::new();
    let mut addrs = Vec::new();
    for bundle in [s.edge_a, s.edge_b] {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        addrs.push(listener.local_addr().expect("addr").to_string());
        servers.push(std::thread::spawn(move || {
            serve(&listener, EdgeServer::new(bundle), Limits::default())
        }));
    }
    let device = Device::new(s.device).expect("device");
    let mut link = TcpLink::connect(&addrs[0], &addrs[1], Limits::default()).expect("connect");
    let imgs: Vec<&[u8]> = (0..20).map(|i| f.test.image(i)).collect();
    let out = device.infer(&imgs, &mut link).expect("infer");
    for (k, raw) in imgs.iter().enumerate() {
        assert_eq!(out.logits[k], logits(&model, raw).expect("shadow"));
    }
    let (ta, tb) = link.traffic();
    // 20 images × (784 + 432 + 128 + 60 + 42) input words × 8 bytes, plus hidden tests
    let words = 20 * (784 + 432 + 128 + 60 + 42) * 8;
    assert!(
        ta.bytes_sent >= words && tb.bytes_sent >= words,
        "{ta:?} {tb:?}"
    );
    assert_eq!(ta.frames_sent, 5);
    let (sa, sb) = link.stats().expect("stats");
    assert_eq!((sa.requests, sb.requests), (5, 5));
    link.shutdown().expect("shutdown");
    for h in servers {
        let stats = h.join().expect("thread").expect("serve");
        assert_eq!(stats.requests, 5);
    }
}
