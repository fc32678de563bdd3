//! Privacy of the owner-keyed mode over TCP: the user's cache and every frame it receives hold
//! no secret-key bytes, the owner's view of a request (what it decrypts and returns) differs
//! from the true outputs, and the client's source never names the owner's key material (the
//! user-keyed client's measurement-only shadow check, `src/shadow_check.rs`, is apart on purpose).

mod common;

use common::{
    OwnerProcess, assert_no_secret_in_cache, contains, fixture, secret_windows, spatial_request,
};
use privdnn_artifacts::ArtifactKind;
use privdnn_he::engine::{Layout, SlotPlan};
use privdnn_he::ops::OpCounter;
use privdnn_he::params::HeParams;
use privdnn_he::protocol::{Reply, from_wire};
use privdnn_partial::SelectedOutputs;
use privdnn_partial::user::UserSide;
use privdnn_party::client::fetch_model;
use privdnn_party::wire::{FileData, FileId, HEADER_LEN, Message, WireMessage};

/// Signed CRT values of a reply's slots, with no mask removed: what the owner sees.
fn owner_view(reply: &Reply, params: &[HeParams]) -> Vec<Vec<i64>> {
    let values = reply.slots().expect("packed slots");
    (0..values[0].len())
        .map(|k| {
            (0..values[0][k].len())
                .map(|slot| {
                    let residues: Vec<i64> = params
                        .iter()
                        .enumerate()
                        .map(|(i, p)| p.decode_signed(values[i][k][slot]))
                        .collect();
                    HeParams::crt_combine(params, &residues) as i64
                })
                .collect()
        })
        .collect()
}

/// How many of the true selected outputs of `n` images the owner's `view` shows as they are.
fn true_outputs_in_view(
    user: &UserSide,
    view: &[Vec<i64>],
    truth: &SelectedOutputs,
    n: usize,
) -> (usize, usize) {
    let plain = user.session.plain();
    let degree = user.session.params()[0].degree;
    let plan = SlotPlan::new(Layout::Spatial, plain, degree, n).expect("plan");
    let groups = plan.groups();
    let per = plain.shape.h2 * plain.shape.w2;
    let (mut same, mut total) = (0usize, 0usize);
    for kk in 0..truth.z.first().map_or(0, Vec::len) {
        let mut maps = vec![vec![0i64; per]; n];
        for g in 0..groups {
            plan.scatter(g, &view[kk * groups + g], &mut maps);
        }
        for (img, m) in maps.iter().enumerate() {
            for (p, v) in m.iter().enumerate() {
                total += 1;
                same += usize::from(*v == truth.z[img][kk][p]);
            }
        }
    }
    (same, total)
}

#[test]
fn user_never_receives_the_secret_and_owner_sees_only_masked_values() {
    let fx = fixture();
    let owner = OwnerProcess::start(fx, "privacy-owner", &[]);
    let mut client = owner.client();
    client.record_transcript();
    let cache = tempfile::tempdir().expect("cache");
    let download = fetch_model(&mut client, cache.path()).expect("download");
    assert_eq!(download.downloaded.len(), 2);
    let user = UserSide::load(
        &download.model,
        download.keys.as_deref().expect("keys"),
        20.0,
        &OpCounter::default(),
    )
    .expect("user");
    let n = 3;
    let raw = fx.raw(0..n);
    let (request, pending) = spatial_request(&user, &raw);
    let reply = client.decrypt(request).expect("decrypt");

    // 1. The user: the cache and every frame received hold no secret-key bytes.
    assert_no_secret_in_cache(fx, cache.path());
    assert_eq!(client.transcript().len(), 4, "info, two files, one answer");
    let windows = secret_windows(fx);
    for (i, f) in client.transcript().iter().enumerate() {
        for w in &windows {
            assert!(!contains(f, w), "frame {i} contains secret-key bytes");
        }
        if let Ok(Message::File(FileData { id, bytes })) =
            Message::decode(u16::from_le_bytes([f[6], f[7]]), &f[HEADER_LEN..])
        {
            assert!(FileId::ALL.contains(&id));
            assert_ne!(
                u16::from_le_bytes([bytes[8], bytes[9]]),
                ArtifactKind::OwnerSecretKey.code()
            );
        }
    }

    // 2. The owner: what it decrypted and returned, read as outputs, differs from the true ones.
    let truth = fx.shadow(&raw);
    let parsed: Reply = from_wire(&reply.reply, "reply").expect("reply");
    let view = owner_view(&parsed, &user.session.params());
    let (same, total) = true_outputs_in_view(&user, &view, &truth, n);
    let zeros = view.iter().flatten().filter(|v| **v == 0).count();
    let slots = view.iter().map(Vec::len).sum::<usize>();
    eprintln!(
        "owner's view: {same} of {total} outputs equal the true value, {zeros} of {slots} slots zero"
    );
    assert!(
        total > 0 && same * 100 <= total,
        "the owner sees {same} of {total} true outputs"
    );
    // Unused slots hold 0 in the plaintext; masked, they are uniform.
    assert!(
        zeros * 100 <= slots,
        "{zeros} of {slots} slots are zero in the owner's view"
    );
    // ... while the user recovers them exactly.
    let recovered: SelectedOutputs = user.finish(&reply.reply, pending).expect("finish");
    assert_eq!(recovered, truth);
}

#[test]
fn client_source_never_names_the_secret() {
    for (file, source) in [
        ("client.rs", include_str!("../src/client.rs")),
        ("classify.rs", include_str!("../src/classify.rs")),
        (
            "classify_keyed.rs",
            include_str!("../src/classify_keyed.rs"),
        ),
    ] {
        never_names_the_secret(file, source);
    }
}

fn never_names_the_secret(file: &str, source: &str) {
    for forbidden in [
        "OwnerSecret",
        "SecretKey",
        "secret_key",
        "OwnerSide",
        "owner::",
        "server::",
        "secret:",
    ] {
        assert!(!source.contains(forbidden), "{file} mentions `{forbidden}`");
    }
}
