//! The model owner: splits every linear op's weights and bias into additive shares in Z_2^64, once
//! per model, and publishes the architecture (the model without linear weights). It is offline
//! afterwards. Deviation, stated: the per-channel requantisation constants (`Rescale` multipliers
//! and addends, e.g. AlexNet's folded BN2) stay in the public part, so both servers know them.

use privdnn_mpc::{IntModel, MaskKey, Op, ring, share};
use rand::Rng;

use crate::Result;
use crate::messages::ModelShare;

/// What the owner hands out.
#[derive(Clone, Debug)]
pub struct OwnerSetup {
    /// The public architecture (also what the client and dealer get).
    pub public: IntModel,
    /// Server 1's shares.
    pub s1: ModelShare,
    /// Server 2's shares.
    pub s2: ModelShare,
}

/// Shares `model` for the two servers with randomness from `rng`.
pub fn share_model<R: Rng + ?Sized>(model: &IntModel, rng: &mut R) -> Result<OwnerSetup> {
    let key = MaskKey::from_rng(rng);
    let public = model.without_linear_weights();
    let mut s1 = ModelShare {
        server: 1,
        public: public.clone(),
        weights: Vec::new(),
        bias: Vec::new(),
    };
    let mut s2 = ModelShare {
        server: 2,
        ..s1.clone()
    };
    for (i, op) in model.ops.iter().enumerate() {
        let (w, b) = match op {
            Op::Conv(c) => (&c.weights, &c.bias),
            Op::Fc(f) => (&f.weights, &f.bias),
            _ => continue,
        };
        for (label, v, out1, out2) in [
            ("owner/w", w, &mut s1.weights, &mut s2.weights),
            ("owner/b", b, &mut s1.bias, &mut s2.bias),
        ] {
            let (a, b) = share::split(
                &ring::from_signed_vec(v),
                &mut key.stream(label, &[i as u64]),
            );
            out1.push(a.into());
            out2.push(b.into());
        }
    }
    Ok(OwnerSetup { public, s1, s2 })
}
