//! The user's role never names the owner's secret: a source check of `src/user.rs` (the runtime
//! proofs — the secret deleted before the user loads — are in `privdnn-infer/tests/blocks.rs`
//! and `privdnn-party/tests/party.rs`).

#[test]
fn user_code_never_names_the_secret() {
    let source = include_str!("../src/user.rs");
    for forbidden in [
        "OwnerSecret",
        "SecretKey",
        "secret_key",
        "OwnerSide",
        "owner::",
        "owner_secret",
    ] {
        assert!(
            !source.contains(forbidden),
            "user.rs mentions `{forbidden}`"
        );
    }
}
