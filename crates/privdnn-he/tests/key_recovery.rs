//! The key-recovery attack in process against `OwnerSession::answer` (what the owner service
//! calls for every request), on small but real parameters: one crafted request recovers every
//! key coefficient and every encrypted weight, for both crafted-ciphertext variants; a reply
//! from another owner does not verify.

use privdnn_he::block::{BlockShape, FloatBlock, IntBlock};
use privdnn_he::key_recovery::{CraftVariant, Exchanged, run_attack};
use privdnn_he::params::HeParams;
use privdnn_he::protocol::{
    EncryptedBlock, OwnerSecret, OwnerSession, PublicKeys, Request, from_wire, owner_setup, to_wire,
};
use privdnn_he::{HeError, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn setup(
    seed: u64,
) -> (
    Vec<HeParams>,
    IntBlock,
    OwnerSecret,
    PublicKeys,
    EncryptedBlock,
) {
    // Parameters that can run the block (the owner refuses a set without noise budget).
    let params = HeParams::generate_crt(8192, &[54, 54, 54, 54], 24, 2).expect("params");
    let shape = BlockShape::new(1, 12, 12, 3, 0, 2, 4, 3, 0, 4).expect("shape");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let k_raw = shape.k1 + 1 - shape.pool;
    let mut v = |n: usize, s: f32| (0..n).map(|_| rng.random_range(-s..s)).collect::<Vec<_>>();
    let float = FloatBlock {
        w1: v(shape.c1 * shape.cin * k_raw * k_raw, 0.4),
        b1: v(shape.c1, 0.2),
        w2: v(shape.c2 * shape.w2_len(), 0.3),
        b2: v(shape.c2, 0.5),
        mean: vec![0.45],
        std: vec![0.25],
        shape,
    };
    let (s1, s2) = (vec![1usize], vec![0usize, 2]);
    let block = IntBlock::quantize_fitting(&float, 8, HeParams::crt_modulus(&params), &s2, false)
        .expect("fits");
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 100);
    let (secret, keys, enc) =
        owner_setup(&params, &block, (&s1, &s2), 16, false, &mut rng).expect("setup");
    (params, block, secret, keys, enc)
}

/// The owner service's decryption path, in process.
fn owner_exchange(owner: &OwnerSession) -> impl FnOnce(Vec<u8>) -> Result<Exchanged> + '_ {
    move |request: Vec<u8>| {
        let req: Request = from_wire(&request, "request")?;
        let reply = to_wire(&owner.answer(&req)?)?;
        Ok::<_, HeError>(Exchanged {
            bytes_sent: request.len() as u64,
            bytes_received: reply.len() as u64,
            reply,
        })
    }
}

#[test]
fn one_request_recovers_every_key_coefficient_and_weight() {
    let (_, block, secret, keys, enc) = setup(1);
    let owner = OwnerSession::new(&secret).expect("owner");
    for variant in CraftVariant::ALL {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut outcome =
            run_attack(&enc, &keys, variant, &mut rng, owner_exchange(&owner)).expect("attack");
        let mut report = outcome.report.clone();
        report.score(&outcome, &secret, &block).expect("score");
        outcome.report = report.clone();
        assert_eq!(report.requests, 1);
        assert_eq!(
            report.ciphertexts, 2,
            "one crafted ciphertext per CRT residue"
        );
        assert_eq!(report.key_coefficients, 2 * 8192);
        assert!(report.key_verified_with_public_key, "{variant:?}");
        assert!(
            report.max_abs_coefficient <= 20,
            "{}",
            report.max_abs_coefficient
        );
        assert_eq!(
            report.key_coefficients_recovered,
            Some(2 * 8192),
            "{variant:?}"
        );
        assert_eq!(report.key_fraction, Some(1.0));
        assert_eq!(report.key_bytes_identical, Some(true));
        assert_eq!(report.encrypted_weights, enc.weight_count());
        assert_eq!(report.weights_fraction, Some(1.0), "{variant:?}");
        // The attacker's view of the selected filters, checked directly against the block.
        let w2 = block.shape.w2_len();
        for (k, &j) in enc.s2.iter().enumerate() {
            let (w, b) = outcome.weights.layer2(k).expect("filter");
            assert_eq!(w, &block.w2[j * w2..(j + 1) * w2]);
            assert_eq!(b, block.b2[j]);
        }
        let (w, b) = outcome.weights.layer1(0).expect("channel");
        let w1 = block.shape.w1_len();
        assert_eq!((w, b), (&block.w1[w1..2 * w1], block.b1[1]));
        assert!(outcome.weights.layer2(enc.s2.len()).is_none());
    }
}

#[test]
fn another_owners_reply_does_not_verify() {
    let (_, block, secret, keys, enc) = setup(2);
    let (_, _, other_secret, _, _) = setup(3);
    let other = OwnerSession::new(&other_secret).expect("owner");
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let outcome = run_attack(
        &enc,
        &keys,
        CraftVariant::Direct,
        &mut rng,
        owner_exchange(&other),
    )
    .expect("attack runs");
    assert!(!outcome.report.key_verified_with_public_key);
    let mut report = outcome.report.clone();
    report.score(&outcome, &secret, &block).expect("score");
    let fraction = report.key_fraction.expect("scored");
    // Two independent CBD(10) keys agree on about 13 % of the coefficients.
    assert!(fraction < 0.3, "{fraction}");
    assert!(report.weights_fraction.expect("scored") < 0.5);
    assert_eq!(report.key_bytes_identical, Some(false));
}
