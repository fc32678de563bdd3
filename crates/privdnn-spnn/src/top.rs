//! Holder B's top layer: the last layer of the network and the loss, so the labels never leave
//! holder B ([`privdnn_model::TopNet`] with its own optimiser).

use privdnn_model::TopNet;

use crate::error::SpnnError;
use crate::messages::{FeatureGrad, Features};

/// What the top layer measured in one step.
#[derive(Clone, Debug)]
pub struct TopOutcome {
    /// The gradient for the server.
    pub grad: FeatureGrad,
    /// Mean loss of the batch.
    pub loss: f64,
    /// Top-1 hits of the batch.
    pub correct: usize,
}

/// One step of the top layer on the server's features with holder B's labels.
pub fn top_step(
    top: &mut TopNet,
    f: &Features,
    labels: &[u16],
    lr: f64,
) -> Result<TopOutcome, SpnnError> {
    if labels.is_empty() || !f.h.len().is_multiple_of(labels.len()) {
        return Err(SpnnError::protocol(format!(
            "{} feature values for {} labels",
            f.h.len(),
            labels.len()
        )));
    }
    let y: Vec<i64> = labels.iter().map(|l| i64::from(*l)).collect();
    let s = top.step(f.h.clone(), &y, lr)?;
    Ok(TopOutcome {
        grad: FeatureGrad {
            step: f.step,
            grad: s.grad_h,
        },
        loss: s.loss,
        correct: s.correct,
    })
}
