//! The dealer: knows both holders' dealer seeds, so it regenerates their triple shares and sends
//! holder B only the correction C₁ = conv(A₀ + A₁, B₀ + B₁) − C₀ (one z1-sized vector per image).
//! It sees no data, no weights and no activation.

use privdnn_mpc::{MaskKey, ring};

use crate::error::SpnnError;
use crate::fixed::Geometry;
use crate::holder::seeded_triple;
use crate::messages::Correction;

/// The triple dealer.
pub struct Dealer {
    geometry: Geometry,
    /// Dealer seeds shared with holder A and holder B.
    keys: [MaskKey; 2],
}

impl Dealer {
    /// A dealer for `geometry` with the two holders' seeds.
    pub fn new(geometry: Geometry, key_a: MaskKey, key_b: MaskKey) -> Self {
        Self {
            geometry,
            keys: [key_a, key_b],
        }
    }

    /// Holder B's correction for a step of `n` images.
    pub fn correction(&self, step: u64, n: usize) -> Result<Correction, SpnnError> {
        let g = &self.geometry;
        let t0 = seeded_triple(g, &self.keys[0], step, n, 0);
        let t1 = seeded_triple(g, &self.keys[1], step, n, 1);
        let a = ring::add(&t0.a, &t1.a);
        let b = ring::add(&t0.b, &t1.b);
        let c = g.conv(&a, None, &b)?;
        Ok(Correction {
            step,
            c: ring::sub(&c, &t0.c).into(),
        })
    }
}
