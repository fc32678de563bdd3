//! Engine plumbing: dealer random-OT derandomisation, exhaustion and ordering errors, chunk
//! validation, and that results do not depend on chunk or batch size.

use privdnn_gc::ot::{Dealer, EvaluatorRots, GarblerRots};
use privdnn_gc::{Evaluator, GarbledChunk, Garbler, GcConfig, GcError, ReshareSpec, run_local};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;

#[test]
fn rot_derandomisation_gives_exactly_the_chosen_label() {
    let n = 100_000;
    let (gs, es) = Dealer::new([1; 32]).deal_rots(n);
    assert_eq!(es.count(), n);
    assert_eq!(es.corrections.len() as u64, 16 * n);
    let (mut g, mut e) = (
        GarblerRots::new(&gs),
        EvaluatorRots::new(es).expect("setup"),
    );
    let mut rng = ChaCha12Rng::seed_from_u64(2);
    let choices: Vec<bool> = (0..n).map(|_| rng.random()).collect();
    let flips = e.flips(&choices).expect("enough");
    // The flip bits are the choices masked by the dealer's random c: about half differ.
    let differ = flips.iter().zip(&choices).filter(|(a, b)| a != b).count() as f64 / n as f64;
    assert!(
        (0.49..0.51).contains(&differ),
        "flip bits not masked: {differ}"
    );
    let delta: u128 = rng.random::<u128>() | 1;
    for (&b, &f) in choices.iter().zip(&flips) {
        let k0: u128 = rng.random();
        let (y0, y1) = g.answer(f, k0, delta).expect("enough");
        let got = e.receive(b, y0, y1).expect("flipped");
        assert_eq!(got, if b { k0 ^ delta } else { k0 });
        // The evaluator's pad m_c does not open the other answer to the other label.
        let (mine, theirs) = if b { (y1, y0) } else { (y0, y1) };
        assert_ne!(theirs ^ (got ^ mine), if b { k0 } else { k0 ^ delta });
    }
    assert!(matches!(g.next_pair(), Err(GcError::Exhausted(_))));
    assert!(matches!(e.flips(&[true]), Err(GcError::Exhausted(_))));
}

#[test]
fn dealer_is_seeded_and_fresh_per_batch() {
    let (a, _) = Dealer::new([4; 32]).deal_rots(8);
    let (b, _) = Dealer::new([4; 32]).deal_rots(8);
    assert_eq!(a, b);
    let mut d = Dealer::new([4; 32]);
    let (first, _) = d.deal_rots(8);
    let (second, _) = d.deal_rots(8);
    assert_ne!(first.seed, second.seed);
}

#[test]
fn receive_before_flip_and_out_of_order_chunks_fail() {
    let spec = ReshareSpec::relu(16, 2);
    let c = spec.build().expect("builds");
    let n = 10;
    let (gs, es) = Dealer::new([5; 32]).deal_rots((3 * n * c.evaluator_inputs()) as u64);
    let (mut grots, mut erots) = (
        GarblerRots::new(&gs),
        EvaluatorRots::new(es).expect("setup"),
    );
    assert!(matches!(
        erots.receive(false, 0, 0),
        Err(GcError::Exhausted(_))
    ));
    let eb = vec![true; n * c.evaluator_inputs()];
    let gb = vec![false; n * c.garbler_inputs()];
    let flips = erots.flips(&eb).expect("enough");
    let mut garbler = Garbler::new([6; 16], GcConfig::default()).expect("cfg");
    let (mut first, mut second) = (GarbledChunk::default(), GarbledChunk::default());
    garbler
        .garble_chunk(&c, n, &gb, &flips, &mut grots, &mut first)
        .expect("garbles");
    garbler
        .garble_chunk(&c, n, &gb, &flips, &mut grots, &mut second)
        .expect("garbles");
    assert_eq!(second.first_gate, (n * c.and_count()) as u64);
    let mut ev = Evaluator::new(GcConfig::default()).expect("cfg");
    let mut out = Vec::new();
    assert!(matches!(
        ev.evaluate_chunk(&c, &second, &eb, &mut erots, &mut out),
        Err(GcError::Order(_))
    ));
    let mut short = first.clone();
    short.tables.pop();
    assert!(matches!(
        ev.evaluate_chunk(&c, &short, &eb, &mut erots, &mut out),
        Err(GcError::Length(_))
    ));
    ev.evaluate_chunk(&c, &first, &eb, &mut erots, &mut out)
        .expect("in order");
    assert_eq!(out.len(), n * 16);
    assert!(
        garbler
            .garble_chunk(&c, n, &gb[1..], &flips, &mut grots, &mut first)
            .is_err()
    );
    assert!(
        Garbler::new(
            [0; 16],
            GcConfig {
                batch: 0,
                ..GcConfig::default()
            }
        )
        .is_err()
    );
    assert!(
        Evaluator::new(GcConfig {
            threads: 0,
            ..GcConfig::default()
        })
        .is_err()
    );
}

/// Garbling with 1, 2 or 5 threads gives the same chunk byte for byte (same seed, same batch),
/// and an evaluator with any thread count decodes it to the same outputs.
#[test]
fn threads_change_neither_bytes_nor_outputs() {
    let spec = ReshareSpec::relu(64, 12);
    let c = spec.build().expect("builds");
    let n = 203;
    let mut rng = ChaCha12Rng::seed_from_u64(4);
    let gb: Vec<bool> = (0..n * c.garbler_inputs()).map(|_| rng.random()).collect();
    let eb: Vec<bool> = (0..n * c.evaluator_inputs())
        .map(|_| rng.random())
        .collect();
    let (gs, es) = Dealer::new([7; 32]).deal_rots((n * c.evaluator_inputs()) as u64);
    let flips = EvaluatorRots::new(es.clone())
        .expect("setup")
        .flips(&eb)
        .expect("enough");
    let cfg = |threads| GcConfig {
        threads,
        ..GcConfig::default()
    };
    let mut chunks = Vec::new();
    for threads in [1, 2, 5] {
        let mut g = Garbler::new([12; 16], cfg(threads)).expect("cfg");
        let mut chunk = GarbledChunk::default();
        g.garble_chunk(&c, n, &gb, &flips, &mut GarblerRots::new(&gs), &mut chunk)
            .expect("garbles");
        chunks.push(chunk);
    }
    assert_eq!(chunks[0], chunks[1]);
    assert_eq!(chunks[0], chunks[2]);
    let mut outs = Vec::new();
    for threads in [1, 2, 5] {
        let mut erots = EvaluatorRots::new(es.clone()).expect("setup");
        erots.flips(&eb).expect("enough");
        let mut ev = Evaluator::new(cfg(threads)).expect("cfg");
        let mut out = Vec::new();
        ev.evaluate_chunk(&c, &chunks[0], &eb, &mut erots, &mut out)
            .expect("evaluates");
        outs.push(out);
    }
    assert_eq!(outs[0], outs[1]);
    assert_eq!(outs[0], outs[2]);
    let plain: Vec<bool> = (0..n)
        .flat_map(|k| {
            let g = &gb[k * c.garbler_inputs()..][..c.garbler_inputs()];
            let e = &eb[k * c.evaluator_inputs()..][..c.evaluator_inputs()];
            c.eval_plain(g, e).expect("plain")
        })
        .collect();
    assert_eq!(outs[0], plain);
}

#[test]
fn output_independent_of_chunk_and_batch_size_and_labels_fresh() {
    let spec = ReshareSpec::pool_relu(32, 4);
    let c = spec.build().expect("builds");
    let n = 333;
    let mut rng = ChaCha12Rng::seed_from_u64(9);
    let gb: Vec<bool> = (0..n * c.garbler_inputs()).map(|_| rng.random()).collect();
    let eb: Vec<bool> = (0..n * c.evaluator_inputs())
        .map(|_| rng.random())
        .collect();
    let base = run_local(&c, &gb, &eb, n, n, GcConfig::default(), 1).expect("runs");
    for (chunk, batch, threads) in [(1, 1, 1), (50, 3, 2), (128, 64, 3), (333, 16, 2)] {
        let run = run_local(
            &c,
            &gb,
            &eb,
            n,
            chunk,
            GcConfig {
                batch,
                threads,
                ..GcConfig::default()
            },
            2,
        )
        .expect("runs");
        assert_eq!(
            run.outputs, base.outputs,
            "chunk {chunk} batch {batch} threads {threads}"
        );
    }
    // Same inputs, different garbler seeds: different tables (fresh labels per session).
    let (gs, es) = Dealer::new([1; 32]).deal_rots((n * c.evaluator_inputs()) as u64);
    let mut erots = EvaluatorRots::new(es).expect("setup");
    let flips = erots.flips(&eb).expect("enough");
    let mut tables = Vec::new();
    for seed in [10u8, 11] {
        let mut g = Garbler::new([seed; 16], GcConfig::default()).expect("cfg");
        let mut chunk = GarbledChunk::default();
        g.garble_chunk(&c, n, &gb, &flips, &mut GarblerRots::new(&gs), &mut chunk)
            .expect("garbles");
        tables.push(chunk.tables);
    }
    assert_ne!(tables[0], tables[1]);
}
