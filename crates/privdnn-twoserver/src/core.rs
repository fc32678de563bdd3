//! The state both servers share in shape (never in content): the public schedule, this server's
//! weight shares and dealer seed, the opened `F = W − B`, and the current share of the running
//! query. Linear steps: `[y]_i = E∗([B]_i + δ_i F) + [A]_i∗F + [b]_i + [C]_i` with `E = x − A`
//! opened per query and `F` opened once; squares: `[x²]_i = [a²]_i + 2e[a]_i + δ_i e²` with
//! `e = x − a` (`δ_1 = 1`, `δ_2 = 0`).

use privdnn_mpc::{IntModel, MaskKey, RingVec, ring};

use crate::arith::{
    LABEL_A, LABEL_B, LABEL_C, bias_count, linear_with, local, stream, weight_count,
};
use crate::messages::{DealerSeed, LogitShare, ModelShare, Opening, WeightOpening};
use crate::plan::{Step, compile};
use crate::{Result, TwoServerError};

/// One linear step's per-model material.
#[derive(Default)]
struct LinearShare {
    w: Vec<u64>,
    bias: Vec<u64>,
    b: Vec<u64>,
    /// `F = W − B` (after setup).
    f: Vec<u64>,
    /// `[B]_i + δ_i F` (after setup).
    g: Vec<u64>,
}

/// The public methods both servers delegate to their [`Core`] unchanged (setup opening, step
/// cursor, linear / square openings): one copy for [`crate::ServerOne`] and [`crate::ServerTwo`],
/// expanded inside their `impl` blocks (each has a `core: Core` field).
macro_rules! core_steps {
    () => {
        /// Setup: this server's `[W]_i − [B]_i` for the other server.
        pub fn weight_opening(&self) -> $crate::messages::WeightOpening {
            self.core.weight_opening()
        }

        /// Setup: learns `F = W − B` from the other server's opening.
        pub fn finish_setup(
            &mut self,
            other: &$crate::messages::WeightOpening,
        ) -> $crate::Result<()> {
            self.core.finish_setup(other)
        }

        /// The current step (`None`: logits share ready).
        pub fn current(&self) -> Option<&$crate::plan::Step> {
            self.core.current()
        }

        /// This server's share of the masked value of the current linear / square step.
        pub fn open(&mut self) -> $crate::Result<$crate::messages::Opening> {
            self.core.open()
        }

        /// Completes the current linear / square step with the other server's opening.
        pub fn close(&mut self, other: &$crate::messages::Opening) -> $crate::Result<()> {
            self.core.close(other)
        }
    };
}
pub(crate) use core_steps;

/// A server's share state (used by [`crate::ServerOne`] and [`crate::ServerTwo`]).
pub(crate) struct Core {
    pub(crate) id: u8,
    pub(crate) public: IntModel,
    pub(crate) steps: Vec<Step>,
    key: MaskKey,
    layers: Vec<LinearShare>,
    ready: bool,
    pub(crate) query: u64,
    pub(crate) at: usize,
    pub(crate) x: Vec<u64>,
    own_masked: Vec<u64>,
    corrections: Vec<RingVec>,
    used: usize,
    stash: Vec<u64>,
}

/// The local part of [`Step::WideSplit`] on server `id`'s shares: `(x_lo·mul + δc_lo,
/// x_hi·mul + δc_hi)` from `x_hi` and the stashed `x`.
fn wide_split(s: &Step, id: u8, hi: &[u64], x: &[u64]) -> Result<(Vec<u64>, Vec<u64>)> {
    let Step::WideSplit {
        t,
        mul,
        c_hi,
        c_lo,
        shape,
    } = s
    else {
        return Err(TwoServerError::protocol("not a wide split"));
    };
    let n = shape.len();
    if hi.len() != n || x.len() != n || mul.len() != shape.c || c_hi.len() != shape.c {
        return Err(TwoServerError::protocol("wide split of the wrong size"));
    }
    let plane = shape.plane().max(1);
    let d = u64::from(id == 1);
    let (mut lo_out, mut hi_out) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let c = i / plane;
        let m = mul[c] as u64;
        let lo = x[i].wrapping_sub(hi[i] << t);
        lo_out.push(
            lo.wrapping_mul(m)
                .wrapping_add(d.wrapping_mul(c_lo[c] as u64)),
        );
        hi_out.push(
            hi[i]
                .wrapping_mul(m)
                .wrapping_add(d.wrapping_mul(c_hi[c] as u64)),
        );
    }
    Ok((lo_out, hi_out))
}

impl Core {
    /// The state of server `id` from the owner's and dealer's setup messages.
    pub(crate) fn new(id: u8, share: ModelShare, seed: &DealerSeed) -> Result<Self> {
        if share.server != id || seed.server != id {
            return Err(TwoServerError::protocol(
                "setup message for the other server",
            ));
        }
        let steps = compile(&share.public)?;
        let key = MaskKey(seed.seed);
        let (mut ws, mut bs) = (share.weights.into_iter(), share.bias.into_iter());
        let mut layers = Vec::with_capacity(steps.len());
        for s in &steps {
            let mut l = LinearShare::default();
            if let Step::Linear { op, input, .. } = s {
                let o = &share.public.ops[*op];
                let (w, b) = (ws.next(), bs.next());
                let (Some(w), Some(b)) = (w, b) else {
                    return Err(TwoServerError::protocol(
                        "fewer weight shares than linear ops",
                    ));
                };
                if w.len() != weight_count(o, *input) || b.len() != bias_count(o) {
                    return Err(TwoServerError::protocol("weight share of the wrong size"));
                }
                l.b = stream(&key, LABEL_B, &[*op as u64], w.len());
                (l.w, l.bias) = (w.0, b.0);
            }
            layers.push(l);
        }
        Ok(Core {
            id,
            public: share.public,
            steps,
            key,
            layers,
            ready: false,
            query: 0,
            at: 0,
            x: Vec::new(),
            own_masked: Vec::new(),
            corrections: Vec::new(),
            used: 0,
            stash: Vec::new(),
        })
    }

    /// `[W]_i − [B]_i` of every linear step.
    pub(crate) fn weight_opening(&self) -> WeightOpening {
        WeightOpening {
            layers: self
                .steps
                .iter()
                .zip(&self.layers)
                .filter(|(s, _)| matches!(s, Step::Linear { .. }))
                .map(|(_, l)| ring::sub(&l.w, &l.b).into())
                .collect(),
        }
    }

    /// Opens `F = W − B` with the other server's opening.
    pub(crate) fn finish_setup(&mut self, other: &WeightOpening) -> Result<()> {
        let mine = self.weight_opening();
        if mine.layers.len() != other.layers.len() {
            return Err(TwoServerError::protocol("weight opening: layer count"));
        }
        let mut it = mine.layers.iter().zip(&other.layers);
        for (s, l) in self.steps.iter().zip(self.layers.iter_mut()) {
            if !matches!(s, Step::Linear { .. }) {
                continue;
            }
            let Some((a, b)) = it.next() else { break };
            if a.len() != b.len() {
                return Err(TwoServerError::protocol("weight opening: layer size"));
            }
            l.f = ring::add(&a.0, &b.0);
            l.g = if self.id == 1 {
                ring::add(&l.b, &l.f)
            } else {
                l.b.clone()
            };
        }
        self.ready = true;
        Ok(())
    }

    /// Starts query `query` on input share `x`; `corrections` are the dealer's (server 2).
    pub(crate) fn start(
        &mut self,
        query: u64,
        x: Vec<u64>,
        corrections: Vec<RingVec>,
    ) -> Result<()> {
        if !self.ready {
            return Err(TwoServerError::protocol("query before the weight opening"));
        }
        if x.len() != self.public.input_shape().len() {
            return Err(TwoServerError::protocol("input share of the wrong size"));
        }
        (self.query, self.at, self.x, self.corrections, self.used) = (query, 0, x, corrections, 0);
        self.run_local()
    }

    fn run_local(&mut self) -> Result<()> {
        loop {
            match self.steps.get(self.at) {
                Some(s @ (Step::SumPool { .. } | Step::Affine { .. })) => {
                    self.x = local(s, self.id, &self.x)?
                }
                Some(Step::Stash) => self.stash = self.x.clone(),
                Some(Step::AddStash) => {
                    if self.stash.len() != self.x.len() {
                        return Err(TwoServerError::protocol("stash of the wrong size"));
                    }
                    ring::add_assign(&mut self.x, &self.stash);
                }
                Some(s @ Step::WideSplit { .. }) => {
                    let (lo, hi) = wide_split(s, self.id, &self.x, &self.stash)?;
                    (self.x, self.stash) = (lo, hi);
                }
                _ => return Ok(()),
            }
            self.at += 1;
        }
    }

    /// The current step (`None` when the logits share is ready).
    pub(crate) fn current(&self) -> Option<&Step> {
        self.steps.get(self.at)
    }

    fn mask(&self) -> Vec<u64> {
        stream(
            &self.key,
            LABEL_A,
            &[self.query, self.at as u64],
            self.x.len(),
        )
    }

    /// This server's share of `x − A` (linear) or `x − a` (square).
    pub(crate) fn open(&mut self) -> Result<Opening> {
        if !matches!(
            self.current(),
            Some(Step::Linear { .. } | Step::Square { .. })
        ) {
            return Err(TwoServerError::protocol("no opening at this step"));
        }
        self.own_masked = ring::sub(&self.x, &self.mask());
        Ok(Opening {
            query: self.query,
            step: self.at as u32,
            words: self.own_masked.clone().into(),
        })
    }

    fn c_share(&mut self, n: usize) -> Result<Vec<u64>> {
        let c = if self.id == 1 {
            stream(&self.key, LABEL_C, &[self.query, self.at as u64], n)
        } else {
            let c = self.corrections.get(self.used).map(|c| c.0.clone());
            self.used += 1;
            c.ok_or_else(|| TwoServerError::protocol("dealer sent too few corrections"))?
        };
        if c.len() != n {
            return Err(TwoServerError::protocol(
                "dealer correction of the wrong size",
            ));
        }
        Ok(c)
    }

    /// Completes the current linear or square step with the other server's opening.
    pub(crate) fn close(&mut self, other: &Opening) -> Result<()> {
        if other.query != self.query || other.step as usize != self.at {
            return Err(TwoServerError::protocol("opening of another step"));
        }
        if other.words.len() != self.own_masked.len() {
            return Err(TwoServerError::protocol("opening of the wrong size"));
        }
        let e = ring::add(&self.own_masked, &other.words.0);
        let a = self.mask();
        let step = self.steps[self.at].clone();
        self.x = match step {
            Step::Linear { op, outputs, .. } => {
                let l = &self.layers[self.at];
                let op = &self.public.ops[op];
                let y = ring::add(
                    &linear_with(op, &l.g, None, &e)?,
                    &linear_with(op, &l.f, Some(&l.bias), &a)?,
                );
                ring::add(&y, &self.c_share(outputs)?)
            }
            Step::Square { len } => {
                let c = self.c_share(len)?;
                let d = u64::from(self.id == 1);
                (0..len)
                    .map(|i| {
                        let t = e[i].wrapping_mul(2).wrapping_mul(a[i]);
                        c[i].wrapping_add(t)
                            .wrapping_add(d.wrapping_mul(e[i].wrapping_mul(e[i])))
                    })
                    .collect()
            }
            _ => return Err(TwoServerError::protocol("close at a non-opening step")),
        };
        self.at += 1;
        self.run_local()
    }

    /// Replaces the share after a gadget step.
    pub(crate) fn gadget_done(&mut self, x: Vec<u64>) -> Result<()> {
        self.x = x;
        self.at += 1;
        self.run_local()
    }

    /// The logits share once every step ran.
    pub(crate) fn output(&self) -> Result<LogitShare> {
        if self.current().is_some() {
            return Err(TwoServerError::protocol(
                "logits requested before the last step",
            ));
        }
        Ok(LogitShare {
            query: self.query,
            server: self.id,
            words: self.x.clone().into(),
        })
    }
}
