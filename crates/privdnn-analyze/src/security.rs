//! Security tables: what a malicious user obtains from the owner service. Today one table, the
//! key-recovery attack (`attack/metrics.json` → `key_recovery`, issue 13): a user sends crafted
//! ciphertexts to the owner-keyed service and reads the secret key out of the decrypted reply.

use crate::runs::Run;
use crate::table::{NA, Table, count, num, secs};

fn percent(v: Option<f64>) -> String {
    v.map_or_else(|| NA.to_string(), |f| format!("{:.2} %", 100.0 * f))
}

/// The key-recovery table: one row per run and attack variant.
pub fn key_recovery(runs: &[Run]) -> Table {
    let mut t = Table::new(
        "key_recovery",
        "Key recovery by a malicious user against the owner service",
        &[
            "run",
            "mode",
            "variant",
            "requests",
            "decrypted by owner",
            "bytes sent",
            "bytes received",
            "seconds",
            "key coefficients recovered",
            "encrypted weights recovered exactly",
        ],
    );
    t.note("The attacker holds only what a user holds (the downloaded encrypted model, the public keys, the wire protocol) and talks to a real `privdnn-party serve` over TCP. `direct`: c0 = 0, c1 = round(q0/t) per CRT residue at the last level; `stealth`: an honest-looking blinded request with round(q0/t) added to c1. Recovered values are scored against the owner's files after the attack. Command: `privdnn-attack run --pipeline <name> --only key_recovery [--server ADDR]` (`crates/privdnn-attack/src/key_recovery.rs`).");
    for run in runs {
        let Some(attack) = run.attack.get() else {
            continue;
        };
        for k in &attack.key_recovery {
            t.push(vec![
                run.name.clone(),
                k.mode.clone().unwrap_or_else(|| NA.to_string()),
                k.variant.clone(),
                count(k.requests),
                count(k.requests_decrypted),
                count(k.bytes_sent),
                count(k.bytes_received),
                secs(k.seconds),
                percent(k.key_fraction),
                match (k.weights_fraction, k.encrypted_weights) {
                    (Some(f), Some(n)) => format!("{} of {}", num(Some(f * n), 0), num(Some(n), 0)),
                    (f, _) => percent(f),
                },
            ]);
        }
    }
    if t.rows.is_empty() {
        t.note("No run has a key-recovery record yet: run the command above against a pipeline whose encrypt stage ran.");
    }
    t
}
