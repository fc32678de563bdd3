//! The server: reconstructs z1 from the holders' shares, runs the network between conv1 and the
//! label holder's top layer with burn ([`privdnn_model::UpperNet`]), sends the top features to
//! holder B, and from B's ∂loss/∂h back-propagates to δ = ∂(summed loss)/∂z1 in fixed point for
//! both holders. It never sees a label, a pixel or a conv1 weight.

use privdnn_model::UpperNet;
use privdnn_mpc::ring;

use crate::error::SpnnError;
use crate::fixed::Encoding;
use crate::messages::{Activations, FeatureGrad, Features, Gradient};

/// What the server's forward half produced.
pub struct ServerForward {
    /// The features for holder B.
    pub features: Features,
    /// The reconstructed z1 (ring, `n × [c1, h1, w1]`), for audits and the server's view.
    pub z1: Vec<u64>,
}

/// The server role.
pub struct Server {
    /// The network above conv1 (its top layer unused: holder B holds it).
    pub upper: UpperNet,
    encoding: Encoding,
    pending: Option<(u64, usize)>,
}

impl Server {
    /// A server training `upper`.
    pub fn new(upper: UpperNet, encoding: Encoding) -> Self {
        Self {
            upper,
            encoding,
            pending: None,
        }
    }

    /// The forward half of a step from both holders' activation shares.
    pub fn forward(
        &mut self,
        a: &Activations,
        b: &Activations,
    ) -> Result<ServerForward, SpnnError> {
        let per: usize = self.upper.z1_shape()?.iter().product();
        let n = a.z.len() / per.max(1);
        if a.step != b.step || a.z.len() != b.z.len() || n == 0 || a.z.len() != n * per {
            return Err(SpnnError::protocol(format!(
                "activations of steps {} / {} ({} / {} values, {per} per image)",
                a.step,
                b.step,
                a.z.len(),
                b.z.len(),
            )));
        }
        let z1 = ring::add(&a.z.0, &b.z.0);
        let h = self.upper.forward(self.decode(&z1), n)?;
        self.pending = Some((a.step, n));
        Ok(ServerForward {
            features: Features { step: a.step, h },
            z1,
        })
    }

    /// z1 in float (what the server's network reads).
    pub fn decode(&self, z1: &[u64]) -> Vec<f32> {
        let scale = (self.encoding.output_bits() as f64).exp2();
        z1.iter()
            .map(|v| (ring::to_signed(*v) as f64 / scale) as f32)
            .collect()
    }

    /// The backward half: holder B's ∂(mean loss)/∂h → optimiser step → δ for the holders.
    pub fn backward(&mut self, g: &FeatureGrad, lr: f64) -> Result<Gradient, SpnnError> {
        let (step, n) = self
            .pending
            .take()
            .ok_or_else(|| SpnnError::protocol("a feature gradient without a forward"))?;
        if g.step != step {
            return Err(SpnnError::protocol(format!(
                "feature gradient of step {} for step {step}",
                g.step
            )));
        }
        let grad = self.upper.backward(&g.grad, lr)?;
        let delta = grad
            .iter()
            .map(|v| ring::encode_fixed(*v as f64 * n as f64, self.encoding.grad_bits))
            .collect::<Vec<u64>>();
        Ok(Gradient {
            step,
            delta: delta.into(),
        })
    }
}
