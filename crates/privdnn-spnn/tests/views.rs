//! What each holder receives is uniform and fresh: holder A's view of holder B's openings, holder
//! B's view of holder A's, and holder B's view of the dealer's correction carry no pixel and no
//! weight in the clear — every bit position is balanced, and two steps on the same images with
//! the same weights give unrelated values.

use privdnn_mpc::ir::TensorShape;
use privdnn_spnn::dealer::Dealer;
use privdnn_spnn::fixed::{Encoding, Geometry};
use privdnn_spnn::holder::Holder;
use privdnn_spnn::session::{keys, root_key};

/// Every one of the 64 bit positions is set in about half of `values` (within 6 σ).
fn assert_uniform(values: &[u64], what: &str) {
    let n = values.len() as f64;
    let sigma = (n * 0.25).sqrt();
    for bit in 0..64 {
        let ones = values.iter().filter(|v| (*v >> bit) & 1 == 1).count() as f64;
        assert!(
            (ones - n / 2.0).abs() < 6.0 * sigma,
            "{what}: bit {bit} set in {ones} of {n}"
        );
    }
}

/// Two views of the same data at two steps share (almost) no value.
fn assert_fresh(a: &[u64], b: &[u64], what: &str) {
    let same = a.iter().zip(b).filter(|(x, y)| x == y).count();
    assert!(
        same <= a.len() / 1000,
        "{what}: {same} of {} values repeat",
        a.len()
    );
}

#[test]
fn openings_and_corrections_are_uniform_and_fresh_across_identical_steps() {
    let g = Geometry::new(TensorShape::new(1, 12, 12), 3, 5, 1, 0, 6).expect("geometry");
    let enc = Encoding::default();
    let [ka, kb] = keys(&root_key(3));
    let dealer = Dealer::new(g, ka.dealer.clone(), kb.dealer.clone());
    // structured, far from uniform: small weights, a constant image
    let w0: Vec<f32> = (0..g.weights()).map(|i| (i % 5) as f32 * 0.01).collect();
    let b0 = vec![0.1f32; g.cout];
    let holders = [
        Holder::new(0, g, enc, ka, &w0, &b0).expect("a"),
        Holder::new(1, g, enc, kb, &w0, &b0).expect("b"),
    ];
    let n = 8;
    let own: Vec<Vec<u64>> = (0..2)
        .map(|p| vec![1 << enc.input_bits; n * g.part(p)])
        .collect();
    let view = |step: u64| {
        let c = dealer.correction(step, n).expect("correction");
        let o: Vec<_> = (0..2)
            .map(|p| {
                let h = &holders[p];
                let x = h.share_images(step, &own[p], n).expect("share");
                let t = h.triple(step, n, (p == 1).then_some(&c)).expect("triple");
                h.open(step, &x, &t).expect("open")
            })
            .collect();
        (o, c)
    };
    let ((o1, c1), (o2, c2)) = (view(10), view(11));
    for (p, who) in [(1, "holder A's view of B"), (0, "holder B's view of A")] {
        let all1 = [o1[p].e.0.as_slice(), o1[p].f.0.as_slice()].concat();
        let all2 = [o2[p].e.0.as_slice(), o2[p].f.0.as_slice()].concat();
        assert_uniform(&all1, who);
        assert_fresh(&all1, &all2, who);
        // the weights and pixels themselves never appear
        let share = &holders[p].state.weights.0;
        assert_fresh(&o1[p].e.0, share, "weight share in the opening");
    }
    assert_uniform(&c1.c.0, "holder B's view of the dealer");
    assert_fresh(&c1.c.0, &c2.c.0, "dealer correction");
}
