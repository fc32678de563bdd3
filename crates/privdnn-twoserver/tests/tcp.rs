//! All five roles as threads over real TCP sockets on 127.0.0.1 (the processes of
//! `privdnn-baseline twoserver` run the same functions): the client's logits equal the integer
//! shadow on every image, one at a time and pipelined, and every link's payload bytes equal the
//! in-process harness's counts (frames add only their 12-byte headers). A connection whose first
//! message a server does not expect is refused with an error frame.

// The seeded `tiny`-shaped fixture is privdnn-edge's (one copy for both protocols' tests).
#[path = "../../privdnn-edge/tests/common/mod.rs"]
mod common;

use std::net::TcpListener;

use privdnn_mpc::shadow::logits;
use privdnn_mpc::{IntModel, QuantConfig, import_model};
use privdnn_net::Limits;
use privdnn_twoserver::dealer::Dealer;
use privdnn_twoserver::harness::{Harness, QueryOutcome};
use privdnn_twoserver::messages::InputShare;
use privdnn_twoserver::net::{OwnerTraffic, TcpClient, connect, run_dealer, send_shares};
use privdnn_twoserver::owner::share_model;
use privdnn_twoserver::serve::{serve_one, serve_two};
use privdnn_twoserver::wire::{LinkTraffic, Msg, ServerStats};
use rand::SeedableRng;
use rand_chacha::ChaCha12Rng;

struct TcpRun {
    logits: Vec<Vec<i64>>,
    owner: OwnerTraffic,
    dealer: privdnn_twoserver::net::DealerReport,
    client: (LinkTraffic, LinkTraffic),
    servers: (ServerStats, ServerStats),
}

/// Runs the five roles on `images` (the first `single` one at a time, the rest pipelined).
fn run_tcp(model: &IntModel, images: &[&[u8]], single: usize) -> TcpRun {
    let limits = Limits::default();
    let bind = || TcpListener::bind("127.0.0.1:0").expect("bind");
    let (l1, l2) = (bind(), bind());
    let addr = |l: &TcpListener| l.local_addr().expect("addr").to_string();
    let (a1, a2) = (addr(&l1), addr(&l2));
    let mut rng = ChaCha12Rng::seed_from_u64(11);
    let setup = share_model(model, &mut rng).expect("share");
    let mut dealer = Dealer::new(setup.public.clone(), &mut rng).expect("dealer");
    let queries = images.len() as u64;
    std::thread::scope(|s| {
        let h1 = s.spawn(|| serve_one(&l1, &a2, [3; 32], limits));
        let h2 = s.spawn(|| serve_two(&l2, limits));
        // a stranger's first message is refused, and the server carries on
        let mut stray = connect(&a2, limits).expect("connect");
        let bogus = InputShare {
            query: 0,
            share: vec![0u64; 4].into(),
        };
        stray.send(&bogus.into()).expect("send");
        assert!(matches!(stray.recv(), Ok(Some(Msg::Error(_)))));
        let owner = send_shares(&setup, &a1, &a2, limits).expect("owner");
        let hd = s.spawn(|| run_dealer(&mut dealer, &a1, &a2, queries, limits));
        let mut client =
            TcpClient::connect(setup.public.clone(), &a1, &a2, limits).expect("client");
        let t0 = client.traffic();
        let mut logits = client
            .classify(&images[..single], 1, &mut rng)
            .expect("single");
        logits.extend(
            client
                .classify(&images[single..], 4, &mut rng)
                .expect("pipelined"),
        );
        let t1 = client.traffic();
        let servers = client.stats().expect("stats");
        client.shutdown().expect("shutdown");
        let dealer = hd.join().expect("dealer thread").expect("dealer");
        let st1 = h1.join().expect("s1 thread").expect("s1");
        let st2 = h2.join().expect("s2 thread").expect("s2");
        assert_eq!((st1.queries, st2.queries), (queries, queries));
        assert_eq!((servers.0.queries, servers.1.queries), (queries, queries));
        TcpRun {
            logits,
            owner,
            dealer,
            client: (t1.0.since(&t0.0), t1.1.since(&t0.1)),
            servers: (st1, st2),
        }
    })
}

#[test]
fn five_roles_over_tcp_equal_the_shadow_and_the_harness_bytes() {
    let tiny = common::fixture();
    let model = import_model(&tiny.model, &QuantConfig::default()).expect("import");
    let n = 7;
    let images: Vec<&[u8]> = (0..n).map(|i| tiny.test.image(i)).collect();
    let run = run_tcp(&model, &images, 3);
    for (i, raw) in images.iter().enumerate() {
        assert_eq!(
            run.logits[i],
            logits(&model, raw).expect("shadow"),
            "image {i}"
        );
    }

    let mut h = Harness::new(&model, 5).expect("harness");
    let mut sum = QueryOutcome::default();
    for raw in &images {
        let out = h.infer(raw).expect("infer");
        sum.online = sum.online.plus(&out.online);
        sum.offline.dealer_s1 += out.offline.dealer_s1;
        sum.offline.dealer_s2 += out.offline.dealer_s2;
    }
    let (c1, c2) = run.client;
    assert_eq!(c1.payload_sent(), sum.online.client_s1);
    assert_eq!(c2.payload_sent(), sum.online.client_s2);
    assert_eq!(c1.payload_received(), sum.online.s1_client);
    assert_eq!(c2.payload_received(), sum.online.s2_client);
    let (s1, s2) = &run.servers;
    let p1 = s1.peer.since(&s1.peer_setup);
    let p2 = s2.peer.since(&s2.peer_setup);
    assert_eq!(p1.payload_sent(), sum.online.s1_s2);
    assert_eq!(p1.payload_received(), sum.online.s2_s1);
    assert_eq!(p2.payload_sent(), sum.online.s2_s1);
    assert_eq!(p2.payload_received(), sum.online.s1_s2);
    let d = &run.dealer;
    assert_eq!(d.s1.since(&d.seed_s1).payload_sent(), sum.offline.dealer_s1);
    assert_eq!(d.s2.since(&d.seed_s2).payload_sent(), sum.offline.dealer_s2);
    assert_eq!(
        d.seed_s1.payload_sent() + d.seed_s2.payload_sent(),
        h.setup.dealer
    );
    assert_eq!(run.owner.s1.payload_sent(), h.setup.owner_s1);
    assert_eq!(run.owner.s2.payload_sent(), h.setup.owner_s2);
    assert_eq!(
        s1.peer_setup.payload_sent() + s2.peer_setup.payload_sent(),
        h.setup.servers
    );
    assert!(s1.compute_seconds > 0.0 && s2.compute_seconds > 0.0);
}
