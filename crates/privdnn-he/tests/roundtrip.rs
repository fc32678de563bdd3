//! End to end with small parameters: owner setup → user evaluation → blinded owner decryption →
//! unblinding, for block shapes of every architecture and both layouts, compared bit for bit
//! with the integer shadow.

mod common;

use common::{float_block, params};
use privdnn_he::block::{BlockShape, IntBlock};
use privdnn_he::engine::weights::{Selection, Sizes, weight_bytes, working_set};
use privdnn_he::engine::{Layout, Residency, SlotPlan};
use privdnn_he::ops::OpCounter;
use privdnn_he::params::HeParams;
use privdnn_he::protocol::{
    OwnerSession, blind, evaluate_blinded, owner_setup, unblind, user_load, user_load_within,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Runs the protocol with the weights held in every residency (a budget chosen to get each)
/// and checks every value against the shadow.
fn roundtrip(
    shape: BlockShape,
    layout: Layout,
    s1: &[usize],
    s2: &[usize],
    images: usize,
    layer1: bool,
) {
    for residency in [Residency::Lifted, Residency::Expanded, Residency::Packed] {
        let setup = Setup {
            params: params(),
            chunk: 64,
        };
        roundtrip_in(
            &setup,
            shape.clone(),
            layout,
            (s1, s2),
            images,
            layer1,
            residency,
        );
    }
}

/// Parameter sets and packing chunk of a run.
struct Setup {
    params: Vec<HeParams>,
    chunk: usize,
}

/// Budget (bytes) under which the planner picks `residency` for this selection.
fn budget_for(
    setup: &Setup,
    shape: &BlockShape,
    sel: (&[usize], &[usize]),
    layout: Layout,
    r: Residency,
) -> u64 {
    let par = setup.params[0].build().expect("params");
    let terms = privdnn_he::engine::max_terms(shape, sel.0.len());
    let sizes = Sizes::new(&par, privdnn_he::lazy::extended_moduli(&par, terms));
    let sel = Selection {
        shape,
        s1: sel.0.len(),
        s2: sel.1.len(),
        chunk: setup.chunk,
    };
    let residues = setup.params.len() as u64;
    match r {
        Residency::Lifted => u64::MAX,
        Residency::Expanded => {
            weight_bytes(&sel, &sizes, residues, r) + working_set(&sel, &sizes, layout)
        }
        Residency::Packed => 0,
    }
}

/// One run of the protocol with the weights held in `residency`.
fn roundtrip_in(
    setup: &Setup,
    shape: BlockShape,
    layout: Layout,
    (s1, s2): (&[usize], &[usize]),
    images: usize,
    layer1: bool,
    residency: Residency,
) {
    let params = &setup.params;
    let block = IntBlock::quantize_fitting(
        &float_block(&shape, 11),
        8,
        HeParams::crt_modulus(params),
        s2,
        layer1,
    )
    .expect("fits");
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (secret, keys, enc) =
        owner_setup(params, &block, (s1, s2), setup.chunk, layer1, &mut rng).expect("setup");
    let ops = OpCounter::default();
    let budget = budget_for(setup, &shape, (s1, s2), layout, residency);
    let user = if residency == Residency::Lifted {
        user_load(&enc, &keys, 20.0, &ops).expect("load")
    } else {
        user_load_within(&enc, &keys, 20.0, (budget, Some(layout)), &ops).expect("load")
    };
    let got = user.residues[0].block.residency();
    // With a single selected filter the lifted cache costs what per-call lifting does.
    assert!(
        got == residency || (residency == Residency::Expanded && got == Residency::Lifted),
        "{residency:?} wanted, {got:?} planned"
    );
    assert!(
        user.residues.iter().all(|r| r.out_level == 3),
        "results should be switched to one prime"
    );
    let plan = SlotPlan::new(layout, user.plain(), 8192, images).expect("plan");
    let raw: Vec<Vec<u8>> = (0..images)
        .map(|_| (0..shape.input_len()).map(|_| rng.random::<u8>()).collect())
        .collect();
    // What the user can compute: centred pixels and the plaintext channels' squares.
    let x: Vec<Vec<i64>> = raw.iter().map(|r| user.plain().center(r)).collect();
    let plain_a: Vec<Vec<Vec<i64>>> = x.iter().map(|xi| user.plain().layer1(xi)).collect();
    let groups = plan.groups();
    let (request, masks) = if residency == Residency::Lifted {
        let outs: Vec<_> = user
            .residues
            .iter()
            .map(|r| {
                r.block
                    .evaluate(&plan, &x, &plain_a, layer1, &ops, &|_| {})
                    .expect("evaluate")
            })
            .collect();
        assert_eq!(outs[0].z.len(), s2.len() * groups);
        blind(&user, outs, &mut rng, &ops).expect("blind")
    } else {
        evaluate_blinded(&user, &plan, &x, &plain_a, layer1, &mut rng, &ops, &|_| {})
            .expect("evaluate and blind")
    };
    let owner = OwnerSession::new(&secret).expect("owner");
    let reply = owner.answer(&request).expect("answer");
    let values = unblind(&reply, &masks, params).expect("unblind");
    // The shadow with the full (secret) block.
    let per2 = shape.h2 * shape.w2;
    for (jj, &j) in s2.iter().enumerate() {
        let mut got = vec![vec![0i64; per2]; images];
        for g in 0..groups {
            plan.scatter(g, &values[jj * groups + g], &mut got);
        }
        for (n, xi) in x.iter().enumerate() {
            let want: Vec<i64> = block
                .layer2(&block.layer1(xi), j)
                .into_iter()
                .map(|v| v as i64)
                .collect();
            assert_eq!(
                got[n], want,
                "filter {j}, image {n}, {layout:?}, {residency:?}"
            );
        }
    }
    if layer1 {
        let per1 = shape.h1 * shape.w1;
        let base = s2.len() * groups;
        for (cc, &c) in s1.iter().enumerate() {
            let mut got = vec![vec![0i64; per1]; images];
            for g in 0..groups {
                plan.scatter(g, &values[base + cc * groups + g], &mut got);
            }
            for (n, xi) in x.iter().enumerate() {
                assert_eq!(
                    got[n],
                    block.layer1(xi)[c],
                    "layer-1 channel {c}, image {n}"
                );
            }
        }
    }
    // The masks hide the values: the owner's view differs from the plaintext.
    let seen = reply.values[0][0].unpack().expect("packed slots");
    assert_ne!(seen[0], params[0].encode_signed(values[0][0]));
}

#[test]
fn lenet_block_batch_layout_is_exact() {
    // conv1 5×5 (no pad) → avg-pool 2 → square → conv2 5×5 (no pad), 12×12 input.
    let shape = BlockShape::new(1, 14, 14, 5, 0, 2, 3, 3, 0, 3).expect("shape");
    roundtrip(shape.clone(), Layout::Batch, &[1], &[0, 2], 5, false);
    // Layer-1 and layer-2 maps differ in size: the spatial layout uses shifted copies, not rotations.
    roundtrip(shape, Layout::Spatial, &[1], &[0], 3, false);
}

#[test]
fn lenet_block_fresh_weights_under_one_residue_is_exact() {
    // MNIST's parameters: one ciphertext per weight (no expansion noise), one 40-bit plaintext
    // prime, the first ciphertext prime wide enough for t and the reply's headroom.
    let setup = Setup {
        params: HeParams::generate_crt(8192, &[62, 52, 52, 52], 40, 1).expect("params"),
        chunk: 1,
    };
    let shape = BlockShape::new(1, 14, 14, 5, 0, 2, 3, 3, 0, 3).expect("shape");
    let (s1, s2): (&[usize], &[usize]) = (&[0, 1], &[1]);
    for residency in [Residency::Lifted, Residency::Packed] {
        roundtrip_in(
            &setup,
            shape.clone(),
            Layout::Batch,
            (s1, s2),
            5,
            false,
            residency,
        );
    }
}

#[test]
fn vgg_block_rotated_spatial_layout_is_exact() {
    // conv1 3×3 pad 1 → square → conv2 3×3 pad 1 on 3-channel 6×6 images.
    let shape = BlockShape::new(3, 6, 6, 3, 1, 1, 4, 3, 1, 3).expect("shape");
    roundtrip(shape, Layout::Spatial, &[0, 3], &[1], 3, false);
}

#[test]
fn alexnet_block_padding_and_pool_batch_layout_is_exact() {
    // conv1 5×5 pad 1 → avg-pool 2 → square → conv2 3×3 pad 1.
    let shape = BlockShape::new(3, 8, 8, 5, 1, 2, 3, 3, 1, 2).expect("shape");
    roundtrip(shape, Layout::Batch, &[0, 1], &[1], 4, false);
}

#[test]
fn resnet_block_with_layer1_outputs_is_exact() {
    // conv1 3×3 pad 1 (BN folded by the caller) → square → conv2 3×3 pad 1; the shortcut needs
    // the selected layer-1 squares too.
    let shape = BlockShape::new(3, 5, 5, 3, 1, 1, 3, 3, 1, 3).expect("shape");
    roundtrip(shape.clone(), Layout::Spatial, &[2], &[0, 1], 2, true);
    roundtrip(shape, Layout::Batch, &[2], &[0, 1], 2, true);
}

#[test]
fn hostile_length_prefixes_are_decode_errors_not_aborts() {
    use privdnn_he::protocol::{Request, from_wire};
    // A request claiming a 1 TB byte string: must fail cleanly.
    let mut bytes = vec![1u8, 1, 3, 30, 10, 0xFD];
    bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(from_wire::<Request>(&bytes, "request").is_err());
}
