//! Analytic online and offline byte counts, to compare the protocol's measured traffic against.
//!
//! Per instance of a circuit with `A` ANDs, `g` garbler and `e` evaluator input bits and `o` output
//! bits: garbler → evaluator `32A` (tables) `+ 16g` (garbler labels) `+ 32e` (OT answers) `+ o/8`
//! (decode bits); evaluator → garbler `e/8` (OT flip bits). Bit fields are rounded up to whole bytes
//! over the whole count here (the protocol packs flips per layer and decode bits per chunk, so it
//! may differ by < 1 byte per chunk). Framing is not counted. Offline (dealer, [`crate::ot`]): 24 B
//! to the garbler (seed + count), 16 B + 16 B per OT to the evaluator.

use crate::circuit::Circuit;
use crate::error::GcError;
use crate::reshare::ReshareSpec;

/// Online bytes of some garbled computation, by message part.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OnlineBytes {
    /// Half-gates tables (garbler → evaluator).
    pub tables: u64,
    /// Labels of the garbler's inputs (garbler → evaluator).
    pub garbler_labels: u64,
    /// Derandomised OT answers (garbler → evaluator).
    pub ot_replies: u64,
    /// Output decoding bits (garbler → evaluator).
    pub decode: u64,
    /// OT flip bits (evaluator → garbler).
    pub ot_flips: u64,
}

impl OnlineBytes {
    /// Garbler → evaluator bytes.
    pub fn garbler_to_evaluator(&self) -> u64 {
        self.tables + self.garbler_labels + self.ot_replies + self.decode
    }
    /// Evaluator → garbler bytes.
    pub fn evaluator_to_garbler(&self) -> u64 {
        self.ot_flips
    }
    /// Both directions.
    pub fn total(&self) -> u64 {
        self.garbler_to_evaluator() + self.evaluator_to_garbler()
    }
    /// Part-wise sum.
    pub fn plus(self, o: OnlineBytes) -> OnlineBytes {
        OnlineBytes {
            tables: self.tables + o.tables,
            garbler_labels: self.garbler_labels + o.garbler_labels,
            ot_replies: self.ot_replies + o.ot_replies,
            decode: self.decode + o.decode,
            ot_flips: self.ot_flips + o.ot_flips,
        }
    }
}

fn counts(ands: u64, g: u64, e: u64, outs: u64, n: u64) -> OnlineBytes {
    OnlineBytes {
        tables: 32 * ands * n,
        garbler_labels: 16 * g * n,
        ot_replies: 32 * e * n,
        decode: (outs * n).div_ceil(8),
        ot_flips: (e * n).div_ceil(8),
    }
}

/// Online bytes for `instances` instances of a built circuit.
pub fn circuit_online_bytes(c: &Circuit, instances: u64) -> OnlineBytes {
    counts(
        c.and_count() as u64,
        c.garbler_inputs() as u64,
        c.evaluator_inputs() as u64,
        c.outputs().len() as u64,
        instances,
    )
}

/// Online bytes for `instances` reshare gadgets, from the closed-form AND count (no circuit built).
pub fn reshare_online_bytes(spec: &ReshareSpec, instances: u64) -> Result<OnlineBytes, GcError> {
    spec.validate()?;
    Ok(counts(
        spec.and_count_formula() as u64,
        spec.garbler_bits() as u64,
        spec.evaluator_bits() as u64,
        u64::from(spec.ell),
        instances,
    ))
}

/// A nonlinear layer as the protocol sees it: `relus` plain ReLU outputs and `pools` 2×2 max-pool
/// outputs (ReLU fused if `pool_relu`), all requantised by `shift` and re-shared in Z_2^ℓ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerShape {
    /// Ring width ℓ.
    pub ell: u32,
    /// Requantisation shift.
    pub shift: u32,
    /// Round to nearest instead of floor.
    pub round: bool,
    /// Number of ReLU outputs (one reshare gadget each).
    pub relus: u64,
    /// Number of max-pool outputs (one 4-input reshare gadget each).
    pub pools: u64,
    /// Whether the pool gadgets include the ReLU.
    pub pool_relu: bool,
}

/// Online bytes of a layer, from its shape.
pub fn layer_online_bytes(shape: &LayerShape) -> Result<OnlineBytes, GcError> {
    let base = ReshareSpec {
        ell: shape.ell,
        pool4: false,
        relu: true,
        shift: shape.shift,
        round: shape.round,
    };
    let relu = reshare_online_bytes(&base, shape.relus)?;
    let pool = reshare_online_bytes(
        &ReshareSpec {
            pool4: true,
            relu: shape.pool_relu,
            ..base
        },
        shape.pools,
    )?;
    Ok(relu.plus(pool))
}

/// Dealer bytes for one batch of random OTs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OfflineBytes {
    /// Dealer → garbler (seed + count).
    pub to_garbler: u64,
    /// Dealer → evaluator (seed + corrections).
    pub to_evaluator: u64,
}

/// Dealer bytes for `ots` random OTs dealt as one batch.
pub fn dealer_rot_bytes(ots: u64) -> OfflineBytes {
    OfflineBytes {
        to_garbler: 24,
        to_evaluator: 16 + 16 * ots,
    }
}
