//! The two-server protocol on a real-shaped LeNet5 (the `tiny` pipeline's shape, seeded weights,
//! its synthetic images) and on an AlexNet-like tail with fused requantise → ReLU → 2×2 max-pool
//! gadgets: logits equal the integer shadow bit for bit; measured online bytes within ±5 % of the
//! analytic count; each server's received words uniform and fresh across identical queries.

// The seeded `tiny`-shaped fixture is privdnn-edge's (one copy for both protocols' tests).
#[path = "../../privdnn-edge/tests/common/mod.rs"]
mod common;

use common::uniform::{byte_chi_square, worst_bit_deviation};

use privdnn_mpc::shadow::logits;
use privdnn_mpc::{ConvLayer, FcLayer, IntModel, Op, QuantConfig, Rescale, import_model};
use privdnn_twoserver::cost::analytic;
use privdnn_twoserver::harness::Harness;
use privdnn_twoserver::plan::{Step, compile};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn lenet() -> IntModel {
    import_model(&common::fixture().model, &QuantConfig::default()).expect("import")
}

/// LeNet's block, then an AlexNet-like tail: per-channel requantisation → ReLU → max-pool →
/// conv 3×3 → shift → ReLU → max-pool → FC → shift (seeded small weights).
fn pooled() -> IntModel {
    let mut m = lenet();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let s = m.shapes()[3];
    let mut ops: Vec<Op> = m.ops[..3].to_vec();
    let (mul, add) = match &m.ops[4] {
        Op::Rescale(r) => (r.mul.clone(), r.add.clone()),
        _ => panic!("lenet op 4 is its block requantisation"),
    };
    let k = match &m.ops[4] {
        Op::Rescale(r) => r.shift,
        _ => 0,
    };
    let c = s.c;
    ops.push(Op::Rescale(Rescale {
        mul: (0..c).map(|i| mul[i % mul.len()] + i as i64).collect(),
        add: (0..c)
            .map(|i| add[i % add.len()] - 4096 * i as i64)
            .collect(),
        shift: k,
    }));
    ops.extend([Op::Relu, Op::MaxPool(2)]);
    let s2 = privdnn_mpc::TensorShape::new(c, s.h / 2, s.w / 2);
    let cout = 6;
    let mut w = |n: usize| -> Vec<i64> { (0..n).map(|_| rng.random_range(-2047..2048)).collect() };
    ops.push(Op::Conv(ConvLayer {
        input: s2,
        cout,
        k: 3,
        stride: 1,
        pad: 1,
        groups: 1,
        weights: w(cout * c * 9),
        bias: w(cout).iter().map(|b| b << 12).collect(),
    }));
    ops.extend([Op::Rescale(Rescale::shift(11)), Op::Relu, Op::MaxPool(2)]);
    let inputs = cout * (s2.h / 2) * (s2.w / 2);
    ops.push(Op::Fc(FcLayer {
        inputs,
        outputs: 10,
        weights: w(10 * inputs),
        bias: w(10),
    }));
    ops.push(Op::Rescale(Rescale::shift(11)));
    m.ops = ops;
    m
}

/// Runs every test image through the protocol; checks logits and bytes.
fn exact_and_costed(model: &IntModel, images: usize) {
    let tiny = common::fixture();
    let mut h = Harness::new(model, 7).expect("harness");
    let a = analytic(model).expect("analytic");
    let mut distinct = std::collections::HashSet::new();
    for i in 0..images.min(tiny.test.len()) {
        let raw = tiny.test.image(i);
        let out = h.infer(raw).expect("infer");
        let shadow = logits(model, raw).expect("shadow");
        assert_eq!(out.logits, shadow, "image {i}");
        distinct.insert(shadow);
        assert_eq!(out.rounds, a.rounds, "flights");
        let (m, e) = (out.online.total() as f64, a.bytes.total() as f64);
        assert!(
            (m - e).abs() <= 0.05 * e,
            "image {i}: measured {m} B, analytic {e} B"
        );
        assert!(out.online.s1_s2 >= a.bytes.s1_s2 && out.online.s2_s1 >= a.bytes.s2_s1);
    }
    assert!(distinct.len() > 1, "the images give different logits");
}

#[test]
fn lenet_protocol_equals_the_shadow_on_every_test_image() {
    let model = lenet();
    let steps = compile(&model).expect("plan");
    assert!(steps.iter().any(|s| matches!(s, Step::Square { .. })));
    exact_and_costed(&model, usize::MAX);
}

#[test]
fn pooled_tail_equals_the_shadow() {
    let model = pooled();
    let steps = compile(&model).expect("plan");
    let pools = steps
        .iter()
        .filter(|s| matches!(s, Step::Gadget { spec, .. } if spec.pool4 && spec.relu))
        .count();
    assert_eq!(pools, 2, "{steps:?}");
    exact_and_costed(&model, 40);
}

#[test]
fn server_views_are_uniform_and_fresh() {
    let model = pooled();
    let raw = common::fixture().test.image(3);
    let mut h = Harness::new(&model, 9).expect("harness");
    h.record = true;
    let (a, b) = (h.infer(raw).expect("first"), h.infer(raw).expect("second"));
    assert_eq!(a.logits, b.logits);
    for (name, v, w) in [
        ("S1", &a.view_s1, &b.view_s1),
        ("S2", &a.view_s2, &b.view_s2),
    ] {
        assert_eq!(v.len(), w.len(), "{name}: same shape of view");
        assert!(v.len() > 1000, "{name}: {} words", v.len());
        let same = v.iter().zip(w.iter()).filter(|(x, y)| x == y).count();
        assert!(
            same <= 2,
            "{name}: {same} words repeat across identical queries"
        );
        for view in [v, w] {
            let (bits, chi) = (worst_bit_deviation(view), byte_chi_square(view));
            assert!(bits < 5.0, "{name}: bit bias {bits:.2} σ");
            assert!(chi < 5.0, "{name}: byte χ² {chi:.2} σ");
        }
    }
    // the test detects a non-uniform view: the plain input image is far from uniform
    let plain: Vec<u64> = raw.iter().map(|&p| u64::from(p)).collect();
    assert!(byte_chi_square(&plain) > 5.0);
}
