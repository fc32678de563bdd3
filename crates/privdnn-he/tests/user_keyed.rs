//! User-keyed mode end to end at N = 8192 on small blocks of every architecture's shape: the user
//! encrypts under its own keys, the owner evaluates with plaintext weights and sanitises, the
//! user decrypts — bit-exact with the integer shadow. Also: the owner has no decryption path,
//! hostile requests are errors, and the reply's noise does not depend on the weights.

mod common;

use common::{float_block, params};
use privdnn_he::block::{BlockShape, IntBlock};
use privdnn_he::engine::Layout;
use privdnn_he::params::HeParams;
use privdnn_he::user_keyed::{KeyedOwner, KeyedUser, UserKeyedRequest};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn block(shape: &BlockShape, params: &[HeParams], s2: &[usize], layer1: bool) -> IntBlock {
    let f = float_block(shape, 11);
    IntBlock::quantize_fitting(&f, 8, HeParams::crt_modulus(params), s2, layer1).expect("fits")
}

fn images(shape: &BlockShape, block: &IntBlock, n: usize, seed: u64) -> Vec<Vec<i64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let raw: Vec<u8> = (0..shape.input_len()).map(|_| rng.random()).collect();
            block.center(&raw)
        })
        .collect()
}

/// Runs the mode and compares every output with the shadow of the full block.
fn roundtrip(
    shape: BlockShape,
    layout: Layout,
    (s1, s2): (&[usize], &[usize]),
    n: usize,
    layer1: bool,
) {
    let params = params();
    let full = block(&shape, &params, s2, layer1);
    let owner = KeyedOwner::new(full.clone(), (s1, s2), &params, layer1).expect("owner");
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let user = KeyedUser::new(owner.model(), layout, &mut rng).expect("user");
    let x = images(&shape, &full, n, 9);
    let (request, pending) = user.request(&x, &mut rng).expect("request");
    let reply = owner.answer(&request, &mut rng).expect("answer");
    let out = user.finish(&pending, &reply).expect("finish");
    for (i, xi) in x.iter().enumerate() {
        let a = full.layer1(xi);
        for (jj, &j) in s2.iter().enumerate() {
            let want: Vec<i64> = full.layer2(&a, j).into_iter().map(|v| v as i64).collect();
            assert_eq!(out.z2[i][jj], want, "{layout:?} image {i} filter {j}");
        }
        if layer1 {
            for (cc, &c) in s1.iter().enumerate() {
                assert_eq!(out.layer1[i][cc], a[c], "{layout:?} image {i} channel {c}");
            }
        }
    }
}

#[test]
fn lenet_shaped_block_is_exact_in_both_layouts() {
    // conv1 5×5 → pool 2 → square → conv2 3×3 (no padding), layer-1 and layer-2 maps differ.
    let shape = BlockShape::new(1, 14, 14, 5, 0, 2, 3, 3, 0, 3).expect("shape");
    roundtrip(shape.clone(), Layout::Batch, (&[1], &[0, 2]), 5, false);
    roundtrip(shape.clone(), Layout::Batch, (&[0, 2], &[1]), 3, false);
    roundtrip(shape, Layout::Spatial, (&[1], &[0]), 7, false);
}

#[test]
fn vgg_shaped_block_is_exact_in_both_layouts() {
    // conv1 3×3 pad 1 → square → conv2 3×3 pad 1 on 3-channel 6×6 images.
    let shape = BlockShape::new(3, 6, 6, 3, 1, 1, 4, 3, 1, 3).expect("shape");
    roundtrip(shape.clone(), Layout::Spatial, (&[0, 3], &[1]), 70, false);
    roundtrip(shape.clone(), Layout::Batch, (&[2], &[0, 2]), 4, false);
    // Every channel selected: no a1 ciphertexts at all.
    roundtrip(shape, Layout::Spatial, (&[0, 1, 2, 3], &[2]), 2, false);
}

#[test]
fn alexnet_and_resnet_shaped_blocks_are_exact() {
    let alex = BlockShape::new(3, 8, 8, 5, 1, 2, 3, 3, 1, 2).expect("alexnet");
    roundtrip(alex, Layout::Spatial, (&[0, 1], &[1]), 3, false);
    let resnet = BlockShape::new(3, 5, 5, 3, 1, 1, 3, 3, 1, 3).expect("resnet");
    roundtrip(resnet.clone(), Layout::Spatial, (&[2], &[0, 1]), 3, true);
    roundtrip(resnet, Layout::Batch, (&[2], &[0, 1]), 2, true);
}

#[test]
fn the_owner_is_built_from_public_inputs_and_has_no_decrypt_path() {
    // Only the plaintext block, the selection and the parameters: no key material exists.
    let shape = BlockShape::new(1, 14, 14, 5, 0, 2, 3, 3, 0, 3).expect("shape");
    let params = params();
    let owner = KeyedOwner::new(
        block(&shape, &params, &[0], false),
        (&[1], &[0]),
        &params,
        false,
    )
    .expect("owner");
    let b = &owner.noise_bounds()[0];
    assert!(b.margin_bits >= 0.0 && b.correctness_bits > 0.0, "{b:?}");
    // The published model carries no selected weight.
    let model = owner.model();
    let s = &model.plain.shape;
    assert!(
        model.plain.w1[s.w1_len()..2 * s.w1_len()]
            .iter()
            .all(|&w| w == 0)
    );
    assert!(model.plain.w2[..s.w2_len()].iter().all(|&w| w == 0));
    // The owner's source names no secret key and no decryption.
    let source = include_str!("../src/user_keyed/owner.rs");
    for word in ["SecretKey", "try_decrypt", "FheDecrypter", "OwnerSecret"] {
        assert!(!source.contains(word), "owner.rs mentions {word}");
    }
}

#[test]
fn parameters_that_break_the_smudging_bound_are_refused() {
    // Three primes decrypt correctly, but the switch to one prime removes only 108 bits of
    // evaluation noise: not 2^-40 of the rounding noise. Two primes cannot even decrypt.
    let shape = BlockShape::new(1, 14, 14, 5, 0, 2, 3, 3, 0, 3).expect("shape");
    let full = block(&shape, &params(), &[0], false);
    let three = HeParams::generate_crt(8192, &[54, 54, 54], 24, 2).expect("params");
    let err = KeyedOwner::new(full.clone(), (&[1], &[0]), &three, false)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("2^-40"), "{err}");
    let two = HeParams::generate_crt(8192, &[54, 54], 24, 2).expect("params");
    let err = KeyedOwner::new(full, (&[1], &[0]), &two, false)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("decryption could fail"), "{err}");
}

fn hostile_setup() -> (KeyedOwner, UserKeyedRequest) {
    let shape = BlockShape::new(1, 10, 10, 3, 0, 2, 2, 2, 0, 2).expect("shape");
    let params = params();
    let full = block(&shape, &params, &[0], false);
    let owner = KeyedOwner::new(full.clone(), (&[1], &[0]), &params, false).expect("owner");
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let user = KeyedUser::new(owner.model(), Layout::Batch, &mut rng).expect("user");
    let (request, _) = user
        .request(&images(&shape, &full, 2, 4), &mut rng)
        .expect("request");
    (owner, request)
}

#[test]
fn hostile_requests_are_errors_not_panics() {
    let (owner, good) = hostile_setup();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut cases: Vec<(&str, UserKeyedRequest)> = Vec::new();
    let mut r = good.clone();
    r.residues[0].inputs.pop();
    cases.push(("missing input", r));
    let mut r = good.clone();
    let dup = r.residues[1].a1[0].clone();
    r.residues[1].a1.push(dup);
    cases.push(("extra a1", r));
    let mut r = good.clone();
    r.residues.pop();
    cases.push(("one residue", r));
    let mut r = good.clone();
    r.images = 0;
    cases.push(("no image", r));
    let mut r = good.clone();
    r.images = 9000;
    cases.push(("too many images", r));
    let mut r = good.clone();
    let half = r.residues[0].inputs[3].len() / 2;
    r.residues[0].inputs[3].truncate(half);
    cases.push(("truncated ciphertext", r));
    let mut r = good.clone();
    r.residues[0].keys.relin_key.truncate(100);
    cases.push(("truncated relinearisation key", r));
    let mut r = good.clone();
    r.residues[1].keys.public_key = serde_bytes::ByteBuf::from(vec![7u8; 64]);
    cases.push(("garbage public key", r));
    let mut r = good.clone();
    r.layout = Layout::Spatial;
    cases.push(("wrong layout", r));
    // A ciphertext switched to a lower level (fewer primes): refused, not evaluated.
    let mut r = good.clone();
    r.residues[0].a1[0] = lower_level(&r.residues[0].a1[0]);
    cases.push(("lower level", r));
    for (what, req) in &cases {
        assert!(owner.answer(req, &mut rng).is_err(), "{what} was accepted");
    }
    owner
        .answer(&good, &mut rng)
        .expect("the unmodified request is answered");
}

fn lower_level(bytes: &[u8]) -> serde_bytes::ByteBuf {
    use fhe::bfv::Ciphertext;
    use fhe_traits::{DeserializeParametrized, Serialize};
    let par = params()[0].build().expect("build");
    let mut ct = Ciphertext::from_bytes(bytes, &par).expect("parse");
    ct.switch_down().expect("switch");
    serde_bytes::ByteBuf::from(ct.to_bytes())
}
