//! The rules check on hand-made `cargo metadata` JSON: a clean graph passes, and each kind of
//! forbidden edge (stage → stage, also as a dev dependency; deployment → stage; upward; fhe or
//! bincode outside their crate; analyze on a privdnn crate; burn reached indirectly by encrypt;
//! an unclassified crate) is reported, all at once.

use serde_json::{Value, json};

use super::{Metadata, Violation, check};

/// A workspace: `(crate, [(dependency, kind)])`; a dependency that is not a crate of the list
/// is an external crate. Every declared dependency is also resolved (except dev ones, which
/// the resolved graph marks as such).
fn workspace(crates: &[(&str, &[(&str, &str)])]) -> Value {
    let id = |n: &str| format!("path+file:///w/{n}#0.1.0");
    let mut externals = std::collections::BTreeSet::new();
    let mut packages = Vec::new();
    let mut nodes = Vec::new();
    for (name, deps) in crates {
        let declared: Vec<Value> = deps
            .iter()
            .map(|(d, k)| {
                let kind = if *k == "normal" {
                    Value::Null
                } else {
                    json!(k)
                };
                json!({"name": d, "kind": kind})
            })
            .collect();
        packages.push(json!({"id": id(name), "name": name, "dependencies": declared}));
        let resolved: Vec<Value> = deps
            .iter()
            .map(|(d, k)| {
                let kind = if *k == "normal" {
                    Value::Null
                } else {
                    json!(k)
                };
                json!({"name": d, "pkg": id(d), "dep_kinds": [{"kind": kind, "target": null}]})
            })
            .collect();
        nodes.push(json!({"id": id(name), "deps": resolved}));
        for (d, _) in *deps {
            if !crates.iter().any(|(n, _)| n == d) {
                externals.insert(d.to_string());
            }
        }
    }
    for e in externals {
        // `fhe` pulls in nothing; `burn-core` is a stand-in for an external that builds burn.
        let deps = if e == "burn-core" {
            vec![json!({"name": "burn", "pkg": id("burn"), "dep_kinds": [{"kind": null}]})]
        } else {
            vec![]
        };
        packages.push(json!({"id": id(&e), "name": e, "dependencies": []}));
        nodes.push(json!({"id": id(&e), "deps": deps}));
    }
    packages.push(json!({"id": id("burn"), "name": "burn", "dependencies": []}));
    nodes.push(json!({"id": id("burn"), "deps": []}));
    let members: Vec<String> = crates.iter().map(|(n, _)| id(n)).collect();
    json!({"packages": packages, "workspace_members": members, "resolve": {"nodes": nodes}})
}

fn violations(ws: &Value) -> Vec<Violation> {
    check(&Metadata::parse(ws).expect("metadata"))
}

fn has(v: &[Violation], rule: &str, needle: &str) -> bool {
    v.iter()
        .any(|x| x.rule == rule && x.detail.contains(needle))
}

const N: &str = "normal";

#[test]
fn the_intended_layering_passes() {
    let ws = workspace(&[
        ("privdnn-artifacts", &[("bincode", N), ("serde", N)]),
        ("privdnn-config", &[("privdnn-artifacts", N)]),
        ("privdnn-model", &[("privdnn-artifacts", N), ("burn", N)]),
        (
            "privdnn-he",
            &[("privdnn-artifacts", N), ("fhe", N), ("fhe-math", N)],
        ),
        ("privdnn-net", &[("privdnn-artifacts", N)]),
        ("privdnn-partial", &[("privdnn-he", N), ("privdnn-net", N)]),
        (
            "privdnn-encrypt",
            &[("privdnn-he", N), ("privdnn-config", N)],
        ),
        ("privdnn-infer", &[("privdnn-partial", N)]),
        (
            "privdnn-party",
            &[("privdnn-partial", N), ("privdnn-net", N)],
        ),
        ("privdnn-analyze", &[("serde_json", N)]),
        ("xtask", &[("privdnn-config", N)]),
        (
            "privdnn-e2e",
            &[("privdnn-infer", "dev"), ("privdnn-config", "dev")],
        ),
    ]);
    assert_eq!(violations(&ws), vec![]);
}

#[test]
fn every_forbidden_edge_is_reported() {
    let ws = workspace(&[
        ("privdnn-artifacts", &[("bincode", N)]),
        ("privdnn-he", &[("privdnn-artifacts", N), ("fhe", N)]),
        ("privdnn-model", &[("burn", N)]),
        (
            "privdnn-select",
            &[("privdnn-model", N), ("privdnn-train", "dev")],
        ),
        ("privdnn-train", &[("privdnn-model", N), ("burn", N)]),
        ("privdnn-encrypt", &[("privdnn-he", N), ("burn-core", N)]),
        ("privdnn-infer", &[("privdnn-encrypt", N), ("fhe", N)]),
        ("privdnn-party", &[("privdnn-infer", N), ("bincode", N)]),
        ("privdnn-net", &[("privdnn-party", N)]),
        ("privdnn-analyze", &[("privdnn-artifacts", N)]),
        ("privdnn-unlisted", &[("privdnn-artifacts", N)]),
    ]);
    let v = violations(&ws);
    let expected = [
        (
            "layering",
            "privdnn-infer (stage) -> privdnn-encrypt (stage) [normal]",
        ),
        (
            "layering",
            "privdnn-select (stage) -> privdnn-train (stage) [dev]",
        ),
        (
            "layering",
            "privdnn-party (deployment) -> privdnn-infer (stage)",
        ),
        (
            "layering",
            "privdnn-net (engine) -> privdnn-party (deployment) [normal]: upward",
        ),
        (
            "layering",
            "privdnn-analyze (analysis) -> privdnn-artifacts",
        ),
        ("owned external", "privdnn-infer declares `fhe`"),
        ("owned external", "privdnn-train declares `burn`"),
        ("owned external", "privdnn-party declares `bincode`"),
        (
            "never builds",
            "privdnn-encrypt builds `burn`: privdnn-encrypt -> burn-core -> burn",
        ),
        // The upward edge also drags the deployment's whole tree into the framing crate.
        (
            "never builds",
            "privdnn-net builds `burn`: privdnn-net -> privdnn-party ->",
        ),
        (
            "never builds",
            "privdnn-net builds `fhe`: privdnn-net -> privdnn-party ->",
        ),
        ("unclassified crate", "`privdnn-unlisted`"),
    ];
    for (rule, needle) in expected {
        assert!(has(&v, rule, needle), "missing [{rule}] {needle} in {v:#?}");
    }
    assert_eq!(v.len(), expected.len(), "{v:#?}");
}

#[test]
fn fhe_in_a_stage_crate_fails_and_in_the_he_crate_passes() {
    let bad = workspace(&[("privdnn-train", &[("fhe-traits", "dev")])]);
    let v = violations(&bad);
    assert!(
        has(
            &v,
            "owned external",
            "privdnn-train declares `fhe-traits` [dev]"
        ),
        "{v:#?}"
    );
    let good = workspace(&[("privdnn-he", &[("fhe-traits", N)])]);
    assert_eq!(violations(&good), vec![]);
}

#[test]
fn dev_only_paths_do_not_count_as_building() {
    // encrypt's tests may use a crate that builds burn; the encrypt binary still does not.
    let ws = workspace(&[("privdnn-encrypt", &[("burn-core", "dev")])]);
    assert_eq!(violations(&ws), vec![]);
}
