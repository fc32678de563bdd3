//! The server: reconstructs z1 from the holders' shares, trains the upper network with burn
//! ([`privdnn_model::UpperNet`]) and returns δ = ∂(summed loss)/∂z1 in fixed point.

use privdnn_model::{UpperNet, UpperStep};
use privdnn_mpc::ring;

use crate::error::SpnnError;
use crate::fixed::Encoding;
use crate::messages::{Activations, Gradient};

/// What the server computed in one step.
pub struct ServerStep {
    /// The gradient for both holders.
    pub gradient: Gradient,
    /// Loss and hits of the batch.
    pub outcome: UpperStep,
    /// The reconstructed z1 (ring, `n × [c1, h1, w1]`), for audits.
    pub z1: Vec<u64>,
}

/// The server role.
pub struct Server {
    /// The network above conv1.
    pub upper: UpperNet,
    encoding: Encoding,
}

impl Server {
    /// A server training `upper`.
    pub fn new(upper: UpperNet, encoding: Encoding) -> Self {
        Self { upper, encoding }
    }

    /// One step from both holders' activation shares (holder B's carry the labels).
    pub fn step(
        &mut self,
        a: &Activations,
        b: &Activations,
        lr: f64,
    ) -> Result<ServerStep, SpnnError> {
        if a.step != b.step || a.z.len() != b.z.len() || b.labels.is_empty() {
            return Err(SpnnError::protocol(format!(
                "activations of steps {} / {} ({} / {} values, {} labels)",
                a.step,
                b.step,
                a.z.len(),
                b.z.len(),
                b.labels.len()
            )));
        }
        let n = b.labels.len();
        let z1 = ring::add(&a.z.0, &b.z.0);
        let scale = (self.encoding.output_bits() as f64).exp2();
        let z: Vec<f32> = z1
            .iter()
            .map(|v| (ring::to_signed(*v) as f64 / scale) as f32)
            .collect();
        let labels: Vec<i64> = b.labels.iter().map(|l| *l as i64).collect();
        let outcome = self.upper.step(z, &labels, lr)?;
        let delta = outcome
            .grad
            .iter()
            .map(|g| ring::encode_fixed(*g as f64 * n as f64, self.encoding.grad_bits))
            .collect::<Vec<u64>>();
        Ok(ServerStep {
            gradient: Gradient {
                step: a.step,
                delta: delta.into(),
            },
            outcome,
            z1,
        })
    }
}
