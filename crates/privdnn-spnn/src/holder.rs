//! A data holder: owns some image columns (holder B also the labels) and an additive share of
//! conv1's weights and bias.
//!
//! Input sharing costs no bytes: the holders agree on a pair key once, and for every step the
//! mask of holder P's columns is the stream ("input", [P, step]) of that key; P keeps x − r, the
//! other holder takes r. The forward pass is a Beaver product of the shared weights and the
//! shared images ([`Holder::open`], then [`Holder::forward`] with both openings); the backward
//! pass is local, because δ is public to both holders: the weight gradient Σ δ·X is bilinear and
//! runs on each holder's share of X ([`Holder::update`]). Optional SGLD noise: each holder adds
//! N(0, σ²/2) to its share of every updated weight, so the sum carries N(0, σ²).

use privdnn_mpc::{MaskKey, RingVec, ring};
use serde::{Deserialize, Serialize};

use crate::error::SpnnError;
use crate::fixed::{Encoding, Geometry, gaussian, scatter_add, truncate_share};
use crate::messages::{Correction, Opening};

/// The keys a holder starts with.
#[derive(Clone, Debug)]
pub struct HolderKeys {
    /// Shared by both holders (input masks, initial weight split).
    pub pair: MaskKey,
    /// Shared with the dealer only (this holder's triple shares).
    pub dealer: MaskKey,
    /// This holder's alone (SGLD noise).
    pub own: MaskKey,
}

/// A holder's Beaver triple share for one step.
#[derive(Clone, Debug, PartialEq)]
pub struct TripleShare {
    /// Share of A (weights-shaped).
    pub a: Vec<u64>,
    /// Shares of B (one image each).
    pub b: Vec<u64>,
    /// Shares of C = conv(A, B).
    pub c: Vec<u64>,
}

/// Holder `party`'s triple share derivable from its dealer seed: everything for holder A,
/// (A₁, B₁) for holder B (whose C₁ comes from the dealer).
pub fn seeded_triple(
    g: &Geometry,
    key: &MaskKey,
    step: u64,
    n: usize,
    party: usize,
) -> TripleShare {
    let a = key.stream("triple-a", &[step]).ring(g.weights());
    let b = key.stream("triple-b", &[step]).ring(n * g.image());
    let c = if party == 0 {
        key.stream("triple-c", &[step]).ring(n * g.output().len())
    } else {
        Vec::new()
    };
    TripleShare { a, b, c }
}

/// A holder's resumable state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HolderState {
    /// 0 = holder A (left columns), 1 = holder B (right columns, labels).
    pub party: usize,
    /// Share of conv1's weights at `weight_bits`.
    pub weights: RingVec,
    /// Share of conv1's bias at `output_bits`.
    pub bias: RingVec,
}

/// One data holder.
pub struct Holder {
    geometry: Geometry,
    encoding: Encoding,
    keys: HolderKeys,
    /// The shares.
    pub state: HolderState,
    /// SGLD noise standard deviation (weight units); 0 = none.
    pub noise_sigma: f64,
}

impl Holder {
    /// A holder with its share of the initial weights `w0` / bias `b0` (public random
    /// initialisation, float): holder A keeps `q(w0) − r`, holder B takes `r`, with `r` from the
    /// pair key.
    pub fn new(
        party: usize,
        geometry: Geometry,
        encoding: Encoding,
        keys: HolderKeys,
        w0: &[f32],
        b0: &[f32],
    ) -> Result<Self, SpnnError> {
        if party > 1 || w0.len() != geometry.weights() || b0.len() != geometry.cout {
            return Err(SpnnError::config(format!(
                "party {party}, {} initial weights for {}, {} biases for {}",
                w0.len(),
                geometry.weights(),
                b0.len(),
                geometry.cout
            )));
        }
        let split = |values: &[f32], bits: u32, label: &str| {
            let r = keys.pair.stream(label, &[]).ring(values.len());
            if party == 0 {
                let q: Vec<u64> = values
                    .iter()
                    .map(|v| ring::encode_fixed(*v as f64, bits))
                    .collect();
                ring::sub(&q, &r)
            } else {
                r
            }
        };
        let state = HolderState {
            party,
            weights: split(w0, encoding.weight_bits, "init-w").into(),
            bias: split(b0, encoding.output_bits(), "init-b").into(),
        };
        Ok(Self {
            geometry,
            encoding,
            keys,
            state,
            noise_sigma: 0.0,
        })
    }

    /// The keys (a checkpoint keeps them).
    pub fn keys(&self) -> &HolderKeys {
        &self.keys
    }

    /// 0 = A, 1 = B.
    pub fn party(&self) -> usize {
        self.state.party
    }

    /// This holder's triple share for a step of `n` images: from its dealer seed, plus the
    /// dealer's correction at holder B.
    pub fn triple(
        &self,
        step: u64,
        n: usize,
        correction: Option<&Correction>,
    ) -> Result<TripleShare, SpnnError> {
        let mut t = seeded_triple(&self.geometry, &self.keys.dealer, step, n, self.party());
        if self.party() == 1 {
            let c = correction
                .filter(|c| c.step == step && c.c.len() == n * self.geometry.output().len())
                .ok_or_else(|| SpnnError::protocol(format!("no correction for step {step}")))?;
            t.c = c.c.0.clone();
        }
        Ok(t)
    }

    /// This holder's share of the full images of a step, from its own fixed-point columns
    /// (`n × [c, h, cols]`).
    pub fn share_images(&self, step: u64, own: &[u64], n: usize) -> Result<Vec<u64>, SpnnError> {
        let g = &self.geometry;
        let p = self.party();
        if own.len() != n * g.part(p) {
            return Err(SpnnError::protocol(format!(
                "{} pixels for {n} images of {} each",
                own.len(),
                g.part(p)
            )));
        }
        let mask = |q: usize| {
            self.keys
                .pair
                .stream("input", &[q as u64, step])
                .ring(n * g.part(q))
        };
        let mut full = vec![0u64; n * g.image()];
        scatter_add(g, p, &ring::sub(own, &mask(p)), &mut full);
        scatter_add(g, 1 - p, &mask(1 - p), &mut full);
        Ok(full)
    }

    /// This holder's shares of the openings E = W − A and F = X − B.
    pub fn open(&self, step: u64, x: &[u64], t: &TripleShare) -> Result<Opening, SpnnError> {
        if t.b.len() != x.len() || t.a.len() != self.state.weights.len() {
            return Err(SpnnError::protocol("triple does not fit the batch"));
        }
        Ok(Opening {
            step,
            e: ring::sub(&self.state.weights.0, &t.a).into(),
            f: ring::sub(x, &t.b).into(),
        })
    }

    /// This holder's share of z1 = conv(W, X) + b from both holders' openings:
    /// [C] + conv(E, [B]) + conv([A], F) (+ conv(E, F) at holder A, folded into the first) + [b].
    pub fn forward(
        &self,
        t: &TripleShare,
        mine: &Opening,
        peer: &Opening,
    ) -> Result<Vec<u64>, SpnnError> {
        if mine.step != peer.step || mine.e.len() != peer.e.len() || mine.f.len() != peer.f.len() {
            return Err(SpnnError::protocol(format!(
                "openings of steps {} and {} do not match",
                mine.step, peer.step
            )));
        }
        let g = &self.geometry;
        let e = ring::add(&mine.e.0, &peer.e.0);
        let f = ring::add(&mine.f.0, &peer.f.0);
        let n = f.len() / g.image().max(1);
        if t.c.len() != n * g.output().len() {
            return Err(SpnnError::protocol("triple C does not fit the batch"));
        }
        let mut z = t.c.clone();
        // conv(E, [B]) + conv(E, F) at holder A is one conv(E, [B] + F) (bilinear)
        let eb = if self.party() == 0 {
            g.conv(&e, Some(&self.state.bias.0), &ring::add(&t.b, &f))?
        } else {
            g.conv(&e, Some(&self.state.bias.0), &t.b)?
        };
        ring::add_assign(&mut z, &eb);
        ring::add_assign(&mut z, &g.conv(&t.a, None, &f)?);
        Ok(z)
    }

    /// The SGD step on the shares: W −= trunc(lr/n · Σ δ·X), b −= lr/n · Σ δ (public, applied by
    /// holder A), plus this holder's half of the SGLD noise.
    pub fn update(
        &mut self,
        step: u64,
        x: &[u64],
        delta: &[u64],
        lr: f64,
    ) -> Result<(), SpnnError> {
        let (g, enc) = (&self.geometry, &self.encoding);
        let n = x.len() / g.image().max(1);
        if n == 0 || delta.len() != n * g.output().len() || x.len() != n * g.image() {
            return Err(SpnnError::protocol(format!(
                "gradient of {} values for {} pixels",
                delta.len(),
                x.len()
            )));
        }
        let rate = enc.rate(lr, n);
        let (party, shift) = (self.party(), enc.update_shift());
        let grad = g.weight_gradient(x, delta);
        let mut noise = self.keys.own.stream("sgld", &[step]);
        let scale = (enc.weight_bits as f64).exp2() * self.noise_sigma / std::f64::consts::SQRT_2;
        for (w, gv) in self.state.weights.0.iter_mut().zip(grad) {
            let mut dw = truncate_share(gv.wrapping_mul(rate), shift, party);
            if self.noise_sigma > 0.0 {
                let z = gaussian(noise.unit(), noise.unit());
                dw = dw.wrapping_sub(ring::from_signed((z * scale).round() as i64));
            }
            *w = w.wrapping_sub(dw);
        }
        if party == 0 {
            for (b, gv) in self.state.bias.0.iter_mut().zip(g.bias_gradient(delta)) {
                let db = (gv.wrapping_mul(rate) as i64) >> enc.bias_shift();
                *b = b.wrapping_sub(db as u64);
            }
        }
        Ok(())
    }
}
