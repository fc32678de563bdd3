//! The fused reshare gadgets (reconstruct → shift → [max-pool of 4] → ReLU → add mask):
//! garbled == plaintext == i64 reference on 100,000 inputs with edge values, AND counts, and
//! measured online bytes == the analytic count.

mod common;

use common::{operands, rng, three_way, words};
use privdnn_gc::cost::{
    LayerShape, circuit_online_bytes, layer_online_bytes, reshare_online_bytes,
};
use privdnn_gc::{AesMode, GcConfig, ReshareSpec, run_local};

/// Random shares of the edge-heavy values `x`: `s1` uniform, `s2 = x − s1`.
fn check_spec(spec: ReshareSpec, n: usize, cfg: GcConfig) {
    let c = spec.build().expect("builds");
    assert_eq!(c.and_count(), spec.and_count_formula());
    let k = spec.arity();
    let mut r = rng(u64::from(spec.ell) * 1000 + u64::from(spec.shift) + k as u64);
    let xs = operands(&mut r, spec.ell, spec.shift, k, n);
    let s1s = words(&mut r, spec.ell, spec.shift, n * k);
    let masks = words(&mut r, spec.ell, spec.shift, n);
    let m = privdnn_gc::bits::ring_mask(spec.ell);
    let (mut gb, mut eb, mut want) = (Vec::new(), Vec::new(), Vec::new());
    for (i, x) in xs.iter().enumerate() {
        // Shares of x − offset, so that the reconstructed value the circuit sees is exactly x.
        let s1 = &s1s[i * k..(i + 1) * k];
        let off = if spec.round {
            1u64 << (spec.shift - 1)
        } else {
            0
        };
        let s2: Vec<u64> = x
            .iter()
            .zip(s1)
            .map(|(&v, &a)| v.wrapping_sub(a).wrapping_sub(off) & m)
            .collect();
        spec.push_garbler_bits(s1, masks[i], &mut gb)
            .expect("arity");
        spec.push_evaluator_bits(&s2, &mut eb).expect("arity");
        want.push(spec.reference(s1, &s2, masks[i]).expect("reference"));
    }
    assert_eq!(three_way(&c, &gb, &eb, n, spec.ell as usize, &want, cfg), n);
}

#[test]
fn relu_reshare_l64() {
    assert_eq!(ReshareSpec::relu(64, 0).and_count_formula(), 189);
    assert_eq!(ReshareSpec::relu(64, 12).and_count_formula(), 177);
    check_spec(ReshareSpec::relu(64, 12), 100_000, GcConfig::default());
    check_spec(ReshareSpec::relu(64, 0), 20_000, GcConfig::default());
    check_spec(
        ReshareSpec {
            round: true,
            ..ReshareSpec::relu(64, 12)
        },
        20_000,
        GcConfig::default(),
    );
}

#[test]
fn pool_relu_reshare_l64() {
    assert_eq!(ReshareSpec::pool_relu(64, 0).and_count_formula(), 762);
    assert_eq!(ReshareSpec::pool_relu(64, 12).and_count_formula(), 678);
    check_spec(ReshareSpec::pool_relu(64, 12), 100_000, GcConfig::default());
    check_spec(
        ReshareSpec {
            round: true,
            ..ReshareSpec::pool_relu(64, 16)
        },
        10_000,
        GcConfig::default(),
    );
    check_spec(
        ReshareSpec {
            relu: false,
            ..ReshareSpec::pool_relu(64, 0)
        },
        10_000,
        GcConfig::default(),
    );
}

#[test]
fn other_widths_batches_and_naive_aes() {
    check_spec(ReshareSpec::relu(40, 8), 20_000, GcConfig::default());
    check_spec(
        ReshareSpec::pool_relu(40, 8),
        10_000,
        GcConfig {
            batch: 7,
            aes: AesMode::Batched,
            threads: 2,
        },
    );
    check_spec(
        ReshareSpec::relu(64, 63),
        2_000,
        GcConfig {
            batch: 1,
            aes: AesMode::PerBlock,
            threads: 1,
        },
    );
    check_spec(
        ReshareSpec {
            relu: false,
            ..ReshareSpec::relu(48, 10)
        },
        5_000,
        GcConfig {
            batch: 33,
            aes: AesMode::Batched,
            threads: 3,
        },
    );
}

#[test]
fn measured_bytes_equal_analytic_count() {
    let spec = ReshareSpec::pool_relu(64, 12);
    let c = spec.build().expect("builds");
    let n = 1_000;
    let gb = vec![true; n * c.garbler_inputs()];
    let eb = vec![false; n * c.evaluator_inputs()];
    let run = run_local(&c, &gb, &eb, n, 300, GcConfig::default(), 1).expect("runs");
    let want = circuit_online_bytes(&c, n as u64);
    assert_eq!(reshare_online_bytes(&spec, n as u64), Ok(want));
    assert_eq!(run.garbler_to_evaluator, want.garbler_to_evaluator());
    assert_eq!(run.evaluator_to_garbler, want.evaluator_to_garbler());
    assert_eq!(want.tables, 32 * 678 * 1_000);
    // LeNet5-sized layer: 204 ReLUs; AlexNet-like: 11,136 pooled outputs.
    let layer = LayerShape {
        ell: 64,
        shift: 12,
        round: false,
        relus: 204,
        pools: 11_136,
        pool_relu: true,
    };
    let bytes = layer_online_bytes(&layer).expect("valid");
    let relu = reshare_online_bytes(&ReshareSpec::relu(64, 12), 204).expect("valid");
    let pool = reshare_online_bytes(&spec, 11_136).expect("valid");
    assert_eq!(bytes.total(), relu.total() + pool.total());
    assert_eq!(relu.tables, 204 * 177 * 32);
    assert_eq!(relu.garbler_labels, 204 * 128 * 16);
    assert_eq!(relu.ot_replies, 204 * 64 * 32);
    assert_eq!(relu.ot_flips, 204 * 64 / 8);
    assert_eq!(relu.decode, 204 * 8);
}
