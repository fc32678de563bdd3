//! Analytic online bytes per image, from the schedule's shapes and privdnn-gc's circuit counts
//! ([`privdnn_gc::cost`]): what the measured traffic of the harness is checked against (payload
//! only; the codec's length prefixes and message headers are not counted).

use privdnn_gc::cost::reshare_online_bytes;
use privdnn_mpc::IntModel;
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::plan::{Step, compile};

/// Bytes per online link of one query.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkBytes {
    /// Client → S1 (input seed).
    pub client_s1: u64,
    /// Client → S2 (input share).
    pub client_s2: u64,
    /// S1 → S2 (openings, garbled chunks).
    pub s1_s2: u64,
    /// S2 → S1 (openings, OT flips).
    pub s2_s1: u64,
    /// S1 → client (logits share).
    pub s1_client: u64,
    /// S2 → client (logits share).
    pub s2_client: u64,
}

impl LinkBytes {
    /// All links.
    pub fn total(&self) -> u64 {
        self.client_s1 + self.client_s2 + self.s1_s2 + self.s2_s1 + self.s1_client + self.s2_client
    }

    /// Link-wise sum.
    pub fn plus(&self, o: &LinkBytes) -> LinkBytes {
        LinkBytes {
            client_s1: self.client_s1 + o.client_s1,
            client_s2: self.client_s2 + o.client_s2,
            s1_s2: self.s1_s2 + o.s1_s2,
            s2_s1: self.s2_s1 + o.s2_s1,
            s1_client: self.s1_client + o.s1_client,
            s2_client: self.s2_client + o.s2_client,
        }
    }
}

/// Analytic online bytes and flights of one query.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Analytic {
    /// Bytes per link.
    pub bytes: LinkBytes,
    /// Sequential flights: upload, one per opening, two per gadget (flips, tables), logits.
    pub rounds: u64,
    /// AND gates garbled per query.
    pub and_gates: u64,
    /// Random OTs per query (dealer, offline).
    pub rots: u64,
}

/// The analytic count of `model`'s schedule.
pub fn analytic(model: &IntModel) -> Result<Analytic> {
    let steps = compile(model)?;
    let classes = model.spec.num_classes as u64;
    let mut a = Analytic {
        bytes: LinkBytes {
            client_s1: 32,
            client_s2: 8 * model.input_shape().len() as u64,
            s1_client: 8 * classes,
            s2_client: 8 * classes,
            ..LinkBytes::default()
        },
        rounds: 2,
        ..Analytic::default()
    };
    for s in &steps {
        match s {
            Step::Linear { input, .. } => {
                a.bytes.s1_s2 += 8 * input.len() as u64;
                a.bytes.s2_s1 += 8 * input.len() as u64;
                a.rounds += 1;
            }
            Step::Square { len } => {
                a.bytes.s1_s2 += 8 * *len as u64;
                a.bytes.s2_s1 += 8 * *len as u64;
                a.rounds += 1;
            }
            Step::Gadget { spec, .. } => {
                let n = s.gadget_instances() as u64;
                let g = reshare_online_bytes(spec, n)?;
                a.bytes.s1_s2 += g.garbler_to_evaluator();
                a.bytes.s2_s1 += g.evaluator_to_garbler();
                a.and_gates += spec.and_count_formula() as u64 * n;
                a.rots += spec.evaluator_bits() as u64 * n;
                a.rounds += 2;
            }
            _ => {}
        }
    }
    Ok(a)
}
