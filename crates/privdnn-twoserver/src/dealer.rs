//! The dealer T — an **extra non-colluding party** (CrypTen-TTP style, seed-systems.md §2): it
//! shares one PRG seed with each server, from which the server derives its shares `[B]_i` (per
//! model), `[A]_i`, `[a]_i` (per query and step) and, for server 1, `[C]_1` and `[a²]_1`. Per query
//! T sends server 2 only the corrections `[C]_2 = A∗B − [C]_1` (linear steps) and `[a²]_2 = a² −
//! [a²]_1` (squares), plus the random OTs of the garbled gadgets (privdnn-gc's [`ot`] dealer:
//! seed + count to S1, seed + 16 B per OT to S2). T never sees an opened value, a weight or an
//! input; if it colluded with a server, that server would learn everything.
//!
//! [`ot`]: privdnn_gc::ot

use privdnn_mpc::{IntModel, MaskKey, ring};
use rand::Rng;

use crate::Result;
use crate::arith::{LABEL_A, LABEL_B, LABEL_C, linear_with, stream, weight_count};
use crate::messages::{DealerSeed, DealerToS1, DealerToS2};
use crate::plan::{Step, compile};

/// The dealer role.
pub struct Dealer {
    public: IntModel,
    steps: Vec<Step>,
    keys: [MaskKey; 2],
    /// `B = [B]_1 + [B]_2` per step (empty for non-linear steps).
    b: Vec<Vec<u64>>,
    rots: privdnn_gc::Dealer,
}

impl Dealer {
    /// A dealer for the public architecture, with fresh seeds from `rng`.
    pub fn new<R: Rng + ?Sized>(public: IntModel, rng: &mut R) -> Result<Self> {
        let steps = compile(&public)?;
        let keys = [MaskKey::from_rng(rng), MaskKey::from_rng(rng)];
        let mut rot_seed = [0u8; 32];
        rng.fill_bytes(&mut rot_seed);
        let b = steps
            .iter()
            .map(|s| match s {
                Step::Linear { op, input, .. } => {
                    let n = weight_count(&public.ops[*op], *input);
                    let idx = [*op as u64];
                    ring::add(
                        &stream(&keys[0], LABEL_B, &idx, n),
                        &stream(&keys[1], LABEL_B, &idx, n),
                    )
                }
                _ => Vec::new(),
            })
            .collect();
        Ok(Dealer {
            public,
            steps,
            keys,
            b,
            rots: privdnn_gc::Dealer::new(rot_seed),
        })
    }

    /// The one-time seeds for server 1 and server 2.
    pub fn seeds(&self) -> (DealerSeed, DealerSeed) {
        let seed = |i: usize| DealerSeed {
            server: i as u8 + 1,
            seed: self.keys[i].0,
        };
        (seed(0), seed(1))
    }

    /// Random OTs one query needs (one per evaluator input bit of every gadget).
    pub fn rot_count(&self) -> u64 {
        self.steps
            .iter()
            .map(|s| match s {
                Step::Gadget { spec, .. } => (s.gadget_instances() * spec.evaluator_bits()) as u64,
                _ => 0,
            })
            .sum()
    }

    /// The offline material of query `query`.
    pub fn deal(&mut self, query: u64) -> Result<(DealerToS1, DealerToS2)> {
        let mut corrections = Vec::new();
        for (k, step) in self.steps.iter().enumerate() {
            let idx = [query, k as u64];
            let a_of = |n: usize| {
                ring::add(
                    &stream(&self.keys[0], LABEL_A, &idx, n),
                    &stream(&self.keys[1], LABEL_A, &idx, n),
                )
            };
            let c = match step {
                Step::Linear { op, input, .. } => {
                    linear_with(&self.public.ops[*op], &self.b[k], None, &a_of(input.len()))?
                }
                Step::Square { len } => a_of(*len).iter().map(|v| v.wrapping_mul(*v)).collect(),
                _ => continue,
            };
            let c1 = stream(&self.keys[0], LABEL_C, &idx, c.len());
            corrections.push(ring::sub(&c, &c1).into());
        }
        let (g, e) = self.rots.deal_rots(self.rot_count());
        Ok((
            DealerToS1 { query, rots: g },
            DealerToS2 {
                query,
                corrections,
                rots: e,
            },
        ))
    }
}
