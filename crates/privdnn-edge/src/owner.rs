//! The owner's one-time setup: the linear layers to both edges; to the device the model without
//! linear weights, one key pair `(S_in, S_out = L(S_in))` per linear layer, known-answer test
//! pairs `(t, L(t))` per layer and a PRF key. No per-query material exists.

use std::time::Instant;

use privdnn_mpc::{IntModel, MaskKey, RingVec, linear};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::messages::{DeviceBundle, EdgeBundle, EdgeRole, IntegrityConfig, KeyPair, TestPair};

/// Everything the owner hands out.
pub struct Setup {
    /// EdgeA's layers.
    pub edge_a: EdgeBundle,
    /// EdgeB's layers (the same plaintext layers).
    pub edge_b: EdgeBundle,
    /// The device's keys and weight-free model.
    pub device: DeviceBundle,
    /// Cost of the setup.
    pub cost: SetupCost,
}

/// What the setup cost the owner and what the device must store.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SetupCost {
    /// Owner CPU seconds (key pairs and test pairs: one evaluation of every linear layer each).
    pub owner_seconds: f64,
    /// Ring elements of the key pairs (device storage for its whole life).
    pub key_elements: u64,
    /// Ring elements of the test pairs.
    pub test_elements: u64,
}

/// Runs the owner's setup for `model` with randomness from `rng`.
pub fn setup<R: Rng + ?Sized>(
    model: &IntModel,
    integrity: &IntegrityConfig,
    rng: &mut R,
) -> Result<Setup> {
    let clock = Instant::now();
    let shapes = model.shapes();
    let layers: Vec<_> = model
        .linear_indices()
        .into_iter()
        .map(|i| (shapes[i].len(), model.ops[i].clone()))
        .collect();
    let pair = |n: usize, op: &privdnn_mpc::Op, rng: &mut R| -> Result<(RingVec, RingVec)> {
        let input = MaskKey::from_rng(rng).stream("setup", &[]).ring(n);
        let output = linear::apply(op, &input)?;
        Ok((RingVec(input), RingVec(output)))
    };
    let mut keys = Vec::with_capacity(layers.len());
    let mut tests = Vec::with_capacity(layers.len());
    let mut cost = SetupCost::default();
    for (n, op) in &layers {
        let (s_in, s_out) = pair(*n, op, rng)?;
        cost.key_elements += (s_in.len() + s_out.len()) as u64;
        keys.push(KeyPair { s_in, s_out });
        let mut layer_tests = Vec::with_capacity(integrity.tests_per_layer);
        for _ in 0..integrity.tests_per_layer {
            let (input, output) = pair(*n, op, rng)?;
            cost.test_elements += (input.len() + output.len()) as u64;
            layer_tests.push(TestPair { input, output });
        }
        tests.push(layer_tests);
    }
    let ops: Vec<_> = layers.into_iter().map(|(_, op)| op).collect();
    cost.owner_seconds = clock.elapsed().as_secs_f64();
    Ok(Setup {
        edge_a: EdgeBundle {
            role: EdgeRole::A,
            layers: ops.clone(),
        },
        edge_b: EdgeBundle {
            role: EdgeRole::B,
            layers: ops,
        },
        device: DeviceBundle {
            model: model.without_linear_weights(),
            keys,
            tests,
            prf_key: MaskKey::from_rng(rng),
            integrity: integrity.clone(),
        },
        cost,
    })
}
