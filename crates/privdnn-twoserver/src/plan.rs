//! The public schedule of one inference: the integer model's ops compiled into protocol steps that
//! both servers (and the dealer) derive from the architecture alone.
//!
//! * conv / FC → [`Step::Linear`] (Beaver triple, one opening of `E = x − A`);
//! * square → [`Step::Square`] (square pair, one opening of `e = x − a`);
//! * sum pool → a local step on shares ([`Step::SumPool`]); a requantisation with a per-channel
//!   multiplier or addend → the exact split of [`wide_rescale`] (the product may exceed 64 bits:
//!   PrivDNN's block output times a 30-bit multiplier), or a local [`Step::Affine`] when it does
//!   not shift (then the shadow's `i128` result truncates to the same wrapping word);
//! * a requantisation's rounding shift, ReLU and 2×2 max pooling → one fused garbled-circuit
//!   [`Step::Gadget`] (privdnn-gc's [`ReshareSpec`]: shift → max of 4 → ReLU → re-share). A run
//!   `Rescale → ReLU → MaxPool` (or any sub-run) fuses into one gadget: the floor shift, max and
//!   ReLU are monotone and ReLU commutes with max, so the order inside the circuit gives the
//!   shadow's values bit for bit.

use privdnn_gc::ReshareSpec;
use privdnn_mpc::{IntModel, Op, Rescale, TensorShape};

use crate::{Result, TwoServerError};

/// Ring width of every share and circuit word.
pub const ELL: u32 = 64;

/// Split position of a wide requantisation (see [`wide_rescale`]).
pub const WIDE_SPLIT: u32 = 24;

/// One protocol step.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// `ops[op]` (conv or FC) on shares with a Beaver triple; `input` is the input shape.
    Linear {
        /// Index into the model's ops.
        op: usize,
        /// Input shape.
        input: TensorShape,
        /// Output elements.
        outputs: usize,
    },
    /// Elementwise square with a square pair over `len` values.
    Square {
        /// Elements.
        len: usize,
    },
    /// Local `k×k` sum pooling of a `shape` tensor.
    SumPool {
        /// Window.
        k: usize,
        /// Input shape.
        shape: TensorShape,
    },
    /// Local per-channel `x·mul + add` (server 1 adds `add`).
    Affine {
        /// Multiplier per channel (one value = all).
        mul: Vec<i64>,
        /// Addend per channel (one value = all).
        add: Vec<i64>,
        /// Shape.
        shape: TensorShape,
    },
    /// Local: keep a copy of the current share (the "stash").
    Stash,
    /// Local, after the floor shift by `t` of the stashed `x`: with `x_hi` the current share and
    /// `x_lo = stash − x_hi·2^t`, the share becomes `x_lo·mul + c_lo` and the stash
    /// `x_hi·mul + c_hi` (per channel; server 1 adds the constants).
    WideSplit {
        /// Split position.
        t: u32,
        /// Multiplier per channel.
        mul: Vec<i64>,
        /// High part of `add + 2^(shift−1)` per channel.
        c_hi: Vec<i64>,
        /// Low `t` bits of `add + 2^(shift−1)` per channel.
        c_lo: Vec<i64>,
        /// Shape.
        shape: TensorShape,
    },
    /// Local: add the stash to the current share.
    AddStash,
    /// A fused garbled-circuit gadget over a `input` tensor (pooled 2×2 when `spec.pool4`).
    Gadget {
        /// The gadget.
        spec: ReshareSpec,
        /// Input shape.
        input: TensorShape,
    },
}

impl Step {
    /// Output elements of a gadget step (instances); 0 for the others.
    pub fn gadget_instances(&self) -> usize {
        match self {
            Step::Gadget { spec, input } if spec.pool4 => input.c * (input.h / 2) * (input.w / 2),
            Step::Gadget { input, .. } => input.len(),
            _ => 0,
        }
    }
}

/// Indices of the 4 values of every 2×2 window of `s` (floor of the size), output-major.
pub fn pool_windows(s: TensorShape) -> Vec<[usize; 4]> {
    let (oh, ow) = (s.h / 2, s.w / 2);
    let mut out = Vec::with_capacity(s.c * oh * ow);
    for c in 0..s.c {
        for oy in 0..oh {
            for ox in 0..ow {
                let at = |dy: usize, dx: usize| c * s.plane() + (2 * oy + dy) * s.w + 2 * ox + dx;
                out.push([at(0, 0), at(0, 1), at(1, 0), at(1, 1)]);
            }
        }
    }
    out
}

/// The gadget being collected: shift, pool, ReLU over an input shape.
struct Pending {
    spec: ReshareSpec,
    input: TensorShape,
}

fn pending(input: TensorShape, shift: u32, round: bool) -> Pending {
    Pending {
        spec: floor_shift(shift, round && shift > 0),
        input,
    }
}

fn floor_shift(shift: u32, round: bool) -> ReshareSpec {
    ReshareSpec {
        ell: ELL,
        pool4: false,
        relu: false,
        shift,
        round,
    }
}

/// A per-channel requantisation `⌊(x·mul + add + 2^(s−1)) / 2^s⌋` whose product `x·mul` may not
/// fit in 64 bits (the shadow computes it in `i128`), made exact in Z_2^64 by splitting `x` at
/// bit `t = min(s, WIDE_SPLIT)`: with `x = x_hi·2^t + x_lo` (`0 ≤ x_lo < 2^t`) and
/// `c = add + 2^(s−1) = c_hi·2^t + c_lo`,
/// `⌊(x·mul + c)/2^s⌋ = ⌊(x_hi·mul + c_hi + ⌊(x_lo·mul + c_lo)/2^t⌋) / 2^(s−t)⌋`.
/// Two floor-shift gadgets (by `t`) and local steps; the last shift by `s − t` (returned) fuses
/// with a following ReLU / max pool. Exact while `|x| < 2^(62 − 31 + t)` and `|mul| < 2^31`.
fn wide_rescale(r: &Rescale, s: TensorShape, steps: &mut Vec<Step>) -> Result<u32> {
    if r.mul.is_empty() || r.add.is_empty() {
        return Err(TwoServerError::Unsupported("empty requantisation".into()));
    }
    let t = r.shift.min(WIDE_SPLIT);
    let half = 1i128 << (r.shift - 1);
    let c: Vec<i128> = (0..s.c)
        .map(|ch| i128::from(r.add[ch % r.add.len()]) + half)
        .collect();
    steps.push(Step::Stash);
    steps.push(Step::Gadget {
        spec: floor_shift(t, false),
        input: s,
    });
    steps.push(Step::WideSplit {
        t,
        mul: (0..s.c).map(|ch| r.mul[ch % r.mul.len()]).collect(),
        c_hi: c.iter().map(|v| (v >> t) as i64).collect(),
        c_lo: c.iter().map(|v| (v & ((1i128 << t) - 1)) as i64).collect(),
        shape: s,
    });
    steps.push(Step::Gadget {
        spec: floor_shift(t, false),
        input: s,
    });
    steps.push(Step::AddStash);
    Ok(r.shift - t)
}

fn flush(p: &mut Option<Pending>, steps: &mut Vec<Step>) {
    if let Some(p) = p.take() {
        steps.push(Step::Gadget {
            spec: p.spec,
            input: p.input,
        });
    }
}

/// Compiles the model's ops into protocol steps.
pub fn compile(model: &IntModel) -> Result<Vec<Step>> {
    let shapes = model.shapes();
    let mut steps = Vec::new();
    let mut open: Option<Pending> = None;
    for (i, op) in model.ops.iter().enumerate() {
        let s = shapes[i];
        match op {
            Op::Conv(_) | Op::Fc(_) => {
                flush(&mut open, &mut steps);
                steps.push(Step::Linear {
                    op: i,
                    input: s,
                    outputs: shapes[i + 1].len(),
                });
            }
            Op::Square => {
                flush(&mut open, &mut steps);
                steps.push(Step::Square { len: s.len() });
            }
            Op::SumPool(k) => {
                flush(&mut open, &mut steps);
                steps.push(Step::SumPool { k: *k, shape: s });
            }
            Op::Rescale(r) => {
                flush(&mut open, &mut steps);
                if r.shift >= ELL {
                    return Err(TwoServerError::Unsupported(format!(
                        "requantisation shift {} ≥ {ELL}",
                        r.shift
                    )));
                }
                let affine = r.mul != [1] || r.add != [0];
                if affine && r.shift > 0 {
                    let rest = wide_rescale(r, s, &mut steps)?;
                    if rest > 0 {
                        open = Some(pending(s, rest, false));
                    }
                } else {
                    if affine {
                        steps.push(Step::Affine {
                            mul: r.mul.clone(),
                            add: r.add.clone(),
                            shape: s,
                        });
                    }
                    if r.shift > 0 {
                        open = Some(pending(s, r.shift, true));
                    }
                }
            }
            Op::Relu => open.get_or_insert_with(|| pending(s, 0, false)).spec.relu = true,
            Op::MaxPool(k) => {
                if *k != 2 {
                    return Err(TwoServerError::Unsupported(format!("max pool {k}×{k}")));
                }
                if open.as_ref().is_some_and(|p| p.spec.pool4) {
                    flush(&mut open, &mut steps);
                }
                open.get_or_insert_with(|| pending(s, 0, false)).spec.pool4 = true;
            }
        }
    }
    flush(&mut open, &mut steps);
    Ok(steps)
}
