//! `cargo xtask check-rules`: the workspace's architecture rules, checked on `cargo metadata`.
//!
//! Every rule lives in the tables below ([`CRATES`], [`OWNED_EXTERNALS`], [`NEVER_BUILDS`]) and
//! in [`edge_rule`]: a crate's layer, which layers may depend on which (normal, build and dev
//! dependencies alike), which crates may declare burn, fhe and bincode, and what some crates must
//! never build even indirectly (walked on the resolved graph, `resolve.nodes`). A workspace crate
//! missing from [`CRATES`] is itself a violation. The check lists every violation, then fails.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// Where a crate sits. A crate may depend on crates of lower layers (and of its own layer where
/// [`edge_rule`] allows it), never on higher ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Layer {
    /// Artifacts (types, envelope, run layout, codec), config, data.
    Foundation,
    /// Model (burn), HE (fhe), framing, quantised block, MPC ring, garbled circuits, and the
    /// selection and training libraries shared by stages.
    Engine,
    /// A protocol's roles and messages, usable in-process and over the network.
    Protocol,
    /// A pipeline stage binary (train, select, encrypt, infer, attack).
    Stage,
    /// A deployment binary (party, baselines).
    Deployment,
    /// The result analysis (reads JSON/CSV only).
    Analysis,
    /// xtask.
    Orchestrator,
    /// The end-to-end test crate.
    Tests,
}

impl Layer {
    /// Height in the stack: an edge to a higher rank is upward.
    fn rank(self) -> u8 {
        match self {
            Layer::Foundation => 0,
            Layer::Engine => 1,
            Layer::Protocol => 2,
            Layer::Stage | Layer::Deployment | Layer::Analysis => 3,
            Layer::Orchestrator => 4,
            Layer::Tests => 5,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Layer::Foundation => "foundation",
            Layer::Engine => "engine",
            Layer::Protocol => "protocol library",
            Layer::Stage => "stage",
            Layer::Deployment => "deployment",
            Layer::Analysis => "analysis",
            Layer::Orchestrator => "orchestrator",
            Layer::Tests => "tests",
        }
    }
}

/// Every workspace crate and its layer. A new crate is added here (one line).
pub const CRATES: &[(&str, Layer)] = &[
    ("privdnn-artifacts", Layer::Foundation),
    ("privdnn-config", Layer::Foundation),
    ("privdnn-data", Layer::Foundation),
    ("privdnn-model", Layer::Engine),
    ("privdnn-he", Layer::Engine),
    ("privdnn-net", Layer::Engine),
    ("privdnn-quant", Layer::Engine),
    ("privdnn-mpc", Layer::Engine),
    ("privdnn-gc", Layer::Engine),
    ("privdnn-selection", Layer::Engine),
    ("privdnn-training", Layer::Engine),
    ("privdnn-partial", Layer::Protocol),
    ("privdnn-edge", Layer::Protocol),
    ("privdnn-twoserver", Layer::Protocol),
    ("privdnn-spnn", Layer::Protocol),
    ("privdnn-train", Layer::Stage),
    ("privdnn-select", Layer::Stage),
    ("privdnn-encrypt", Layer::Stage),
    ("privdnn-infer", Layer::Stage),
    ("privdnn-attack", Layer::Stage),
    ("privdnn-party", Layer::Deployment),
    ("privdnn-baselines", Layer::Deployment),
    ("privdnn-analyze", Layer::Analysis),
    ("xtask", Layer::Orchestrator),
    ("privdnn-e2e", Layer::Tests),
    ("privdnn-fuzz", Layer::Tests),
];

/// External crates that only the listed workspace crates may declare (any dependency kind).
pub const OWNED_EXTERNALS: &[(&str, &[&str])] = &[
    ("burn", &["privdnn-model"]),
    ("fhe", &["privdnn-he"]),
    ("fhe-math", &["privdnn-he"]),
    ("fhe-traits", &["privdnn-he"]),
    ("bincode", &["privdnn-artifacts"]),
];

/// Crates a workspace crate must never build, even indirectly (normal and build dependencies
/// of the resolved graph).
pub const NEVER_BUILDS: &[(&str, &[&str])] = &[
    ("privdnn-artifacts", &["burn", "fhe"]),
    ("privdnn-config", &["burn", "fhe"]),
    ("privdnn-data", &["burn", "fhe"]),
    ("privdnn-analyze", &["burn", "fhe"]),
    ("privdnn-quant", &["burn"]),
    ("privdnn-he", &["burn"]),
    ("privdnn-net", &["burn", "fhe"]),
    ("privdnn-mpc", &["burn"]),
    ("privdnn-gc", &["burn"]),
    ("privdnn-partial", &["burn"]),
    ("privdnn-edge", &["burn"]),
    ("privdnn-twoserver", &["burn", "fhe"]),
    ("privdnn-spnn", &["fhe"]),
    ("privdnn-encrypt", &["burn"]),
];

/// Why an edge between two workspace crates is forbidden (`None`: allowed).
pub fn edge_rule(from: Layer, to: Layer) -> Option<&'static str> {
    use Layer::*;
    match (from, to) {
        (Tests, _) => None,
        (Analysis, _) => Some("the analysis builds no privdnn crate (it reads result files only)"),
        (Stage, Stage) => Some(
            "stage crates never depend on each other: move the shared code into a foundation, \
             engine or protocol library",
        ),
        (Deployment, Stage) | (Stage, Deployment) => {
            Some("stage and deployment crates never depend on each other: share a protocol library")
        }
        (Deployment, Deployment) => Some("deployment crates never depend on each other"),
        _ if to.rank() > from.rank() => Some("upward edge: a crate depends only on lower layers"),
        _ => None,
    }
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Violation {
    /// Short rule name.
    pub rule: &'static str,
    /// What breaks it, with the fix.
    pub detail: String,
}

/// A declared dependency of a workspace crate.
#[derive(Debug, Clone)]
struct Declared {
    name: String,
    kind: &'static str,
}

/// What the check needs from `cargo metadata`.
#[derive(Debug, Default)]
pub struct Metadata {
    /// Workspace crate names.
    members: BTreeSet<String>,
    /// Declared dependencies per workspace crate.
    declared: BTreeMap<String, Vec<Declared>>,
    /// Package name per resolve id.
    names: BTreeMap<String, String>,
    /// Resolved normal/build edges: id → dependency ids.
    builds: BTreeMap<String, Vec<String>>,
    /// Resolve id per workspace crate name.
    member_ids: BTreeMap<String, String>,
}

fn str_of<'a>(v: &'a Value, key: &str) -> Result<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .with_context(|| format!("`{key}` missing in cargo metadata"))
}

fn array_of<'a>(v: &'a Value, key: &str) -> Result<&'a Vec<Value>> {
    v.get(key)
        .and_then(Value::as_array)
        .with_context(|| format!("`{key}` missing in cargo metadata"))
}

fn kind_name(kind: &Value) -> &'static str {
    match kind.as_str() {
        Some("dev") => "dev",
        Some("build") => "build",
        _ => "normal",
    }
}

impl Metadata {
    /// Parses the JSON of `cargo metadata --format-version 1`.
    pub fn parse(json: &Value) -> Result<Self> {
        let mut m = Metadata::default();
        let member_ids: BTreeSet<&str> = array_of(json, "workspace_members")?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for p in array_of(json, "packages")? {
            let (id, name) = (str_of(p, "id")?, str_of(p, "name")?);
            m.names.insert(id.to_string(), name.to_string());
            if !member_ids.contains(id) {
                continue;
            }
            m.members.insert(name.to_string());
            m.member_ids.insert(name.to_string(), id.to_string());
            let deps = array_of(p, "dependencies")?
                .iter()
                .map(|d| {
                    Ok(Declared {
                        name: str_of(d, "name")?.to_string(),
                        kind: kind_name(d.get("kind").unwrap_or(&Value::Null)),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            m.declared.insert(name.to_string(), deps);
        }
        let resolve = json
            .get("resolve")
            .context("`resolve` missing: run cargo metadata without --no-deps")?;
        for node in array_of(resolve, "nodes")? {
            let mut out = Vec::new();
            for d in array_of(node, "deps")? {
                let builds = array_of(d, "dep_kinds")?
                    .iter()
                    .any(|k| kind_name(k.get("kind").unwrap_or(&Value::Null)) != "dev");
                if builds {
                    out.push(str_of(d, "pkg")?.to_string());
                }
            }
            m.builds.insert(str_of(node, "id")?.to_string(), out);
        }
        Ok(m)
    }

    /// The chain of crate names from `from` to the first crate named `target` that `from` builds.
    fn build_path(&self, from: &str, target: &str) -> Option<Vec<String>> {
        let start = self.member_ids.get(from)?;
        let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = VecDeque::from([start.as_str()]);
        let mut seen = BTreeSet::from([start.as_str()]);
        while let Some(id) = queue.pop_front() {
            if self.names.get(id).is_some_and(|n| n == target) {
                let mut path = vec![id];
                while let Some(p) = parent.get(path[path.len() - 1]) {
                    path.push(p);
                }
                path.reverse();
                return Some(
                    path.iter()
                        .filter_map(|i| self.names.get(*i).cloned())
                        .collect(),
                );
            }
            for next in self.builds.get(id).into_iter().flatten() {
                if seen.insert(next) {
                    parent.insert(next, id);
                    queue.push_back(next);
                }
            }
        }
        None
    }
}

fn layer_of(name: &str) -> Option<Layer> {
    CRATES.iter().find(|(n, _)| *n == name).map(|(_, l)| *l)
}

/// Every violation of the rules in `meta`, sorted.
pub fn check(meta: &Metadata) -> Vec<Violation> {
    let mut out = Vec::new();
    for name in &meta.members {
        let Some(layer) = layer_of(name) else {
            out.push(Violation {
                rule: "unclassified crate",
                detail: format!(
                    "workspace crate `{name}` has no layer: add `(\"{name}\", Layer::…)` to CRATES \
                     in xtask/src/rules.rs"
                ),
            });
            continue;
        };
        for dep in meta.declared.get(name).into_iter().flatten() {
            if meta.members.contains(&dep.name) {
                let to = layer_of(&dep.name);
                if let Some(why) = to.and_then(|to| edge_rule(layer, to)) {
                    let to = to.map_or("?", Layer::name);
                    out.push(Violation {
                        rule: "layering",
                        detail: format!(
                            "{name} ({}) -> {} ({to}) [{}]: {why}",
                            layer.name(),
                            dep.name,
                            dep.kind
                        ),
                    });
                }
            }
            if let Some((ext, owners)) = OWNED_EXTERNALS.iter().find(|(e, _)| *e == dep.name)
                && !owners.contains(&name.as_str())
            {
                out.push(Violation {
                    rule: "owned external",
                    detail: format!(
                        "{name} declares `{ext}` [{}]; only {} may (use it through that crate)",
                        dep.kind,
                        owners.join(", ")
                    ),
                });
            }
        }
    }
    for (name, forbidden) in NEVER_BUILDS {
        for target in *forbidden {
            if let Some(path) = meta.build_path(name, target) {
                out.push(Violation {
                    rule: "never builds",
                    detail: format!("{name} builds `{target}`: {}", path.join(" -> ")),
                });
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Runs `cargo metadata` in the workspace and checks it; fails when any rule is broken.
pub fn run() -> Result<()> {
    let output = crate::stages::cargo_command()
        .args(["metadata", "--format-version", "1"])
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let json: Value = serde_json::from_slice(&output.stdout).context("parsing cargo metadata")?;
    let meta = Metadata::parse(&json)?;
    let violations = check(&meta);
    let mut layers: BTreeMap<Layer, Vec<&str>> = BTreeMap::new();
    for name in &meta.members {
        if let Some(l) = layer_of(name) {
            layers.entry(l).or_default().push(name);
        }
    }
    for (layer, names) in &layers {
        eprintln!("{:>16}: {}", layer.name(), names.join(", "));
    }
    if violations.is_empty() {
        eprintln!("architecture rules: ok ({} crates)", meta.members.len());
        return Ok(());
    }
    for v in &violations {
        eprintln!("RULE BROKEN [{}] {}", v.rule, v.detail);
    }
    bail!(
        "{} architecture rule violation(s) (rules: xtask/src/rules.rs, ARCHITECTURE.md)",
        violations.len()
    )
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
