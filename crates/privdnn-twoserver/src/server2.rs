//! Server 2, the evaluator: holds its shares, opens masked values with server 1, sends the OT
//! flip bits of its gadget inputs, evaluates server 1's garbled chunks and takes the decoded
//! `g(x) + r` as its new share. It never receives server 1's shares, only openings masked by the
//! dealer's `A`/`a`, garbled labels and tables.

use privdnn_gc::bits::{pack_bits, word_from_bits};
use privdnn_gc::{Circuit, Evaluator, EvaluatorRots};

use crate::core::Core;
use crate::gadget::{circuits, for_each_instance, gc_config};
use crate::messages::{DealerSeed, DealerToS2, Flips, Garbled, InputShare, LogitShare, ModelShare};
use crate::plan::{ELL, Step};
use crate::{Result, TwoServerError};

/// A gadget being evaluated.
struct Run {
    bits: Vec<bool>,
    instances: usize,
    words: Vec<u64>,
    outputs: Vec<bool>,
}

/// The evaluator role.
pub struct ServerTwo {
    core: Core,
    circuits: Vec<Option<Circuit>>,
    evaluator: Option<Evaluator>,
    rots: Option<EvaluatorRots>,
    run: Option<Run>,
}

impl ServerTwo {
    /// Server 2 from the owner's and dealer's setup messages.
    pub fn new(share: ModelShare, dealer: &DealerSeed) -> Result<Self> {
        let core = Core::new(2, share, dealer)?;
        Ok(ServerTwo {
            circuits: circuits(&core.steps)?,
            core,
            evaluator: None,
            rots: None,
            run: None,
        })
    }

    crate::core::core_steps!();

    /// Starts a query from the client's share and the dealer's corrections and random OTs.
    pub fn start(&mut self, input: InputShare, dealer: DealerToS2) -> Result<()> {
        if input.query != dealer.query {
            return Err(TwoServerError::protocol(
                "client and dealer name different queries",
            ));
        }
        self.evaluator = Some(Evaluator::new(gc_config())?);
        self.rots = Some(EvaluatorRots::new(dealer.rots)?);
        self.run = None;
        self.core
            .start(input.query, input.share.0, dealer.corrections)
    }

    /// The OT flip bits of this server's inputs to the current gadget.
    pub fn flips(&mut self) -> Result<Flips> {
        let Some(step) = self.core.current().cloned() else {
            return Err(TwoServerError::protocol("flips after the last step"));
        };
        let Step::Gadget { spec, .. } = step else {
            return Err(TwoServerError::protocol("flips outside a gadget step"));
        };
        let rots = self
            .rots
            .as_mut()
            .ok_or_else(|| TwoServerError::protocol("flips before start"))?;
        let mut bits = Vec::with_capacity(step.gadget_instances() * spec.evaluator_bits());
        for_each_instance(&step, &self.core.x, |s| {
            Ok(spec.push_evaluator_bits(s, &mut bits)?)
        })?;
        let flips = rots.flips(&bits)?;
        let msg = Flips {
            query: self.core.query,
            step: self.core.at as u32,
            count: flips.len() as u64,
            bits: pack_bits(&flips),
        };
        self.run = Some(Run {
            bits,
            instances: step.gadget_instances(),
            words: Vec::with_capacity(step.gadget_instances()),
            outputs: Vec::new(),
        });
        Ok(msg)
    }

    /// Evaluates one garbled chunk; after the last one the decoded words become this server's
    /// share. Returns true when the gadget step is complete.
    pub fn receive(&mut self, g: &Garbled) -> Result<bool> {
        if g.query != self.core.query || g.step as usize != self.core.at {
            return Err(TwoServerError::protocol("garbled chunk of another step"));
        }
        let (Some(run), Some(ev), Some(rots)) = (
            self.run.as_mut(),
            self.evaluator.as_mut(),
            self.rots.as_mut(),
        ) else {
            return Err(TwoServerError::protocol("garbled chunk before the flips"));
        };
        let circuit = self.circuits[self.core.at]
            .as_ref()
            .ok_or_else(|| TwoServerError::protocol("no circuit at this step"))?;
        let (e, start, n) = (
            circuit.evaluator_inputs(),
            run.words.len(),
            g.chunk.instances as usize,
        );
        if start + n > run.instances {
            return Err(TwoServerError::protocol(
                "more garbled instances than the step has",
            ));
        }
        let bits = &run.bits[start * e..(start + n) * e];
        ev.evaluate_chunk(circuit, &g.chunk, bits, rots, &mut run.outputs)?;
        let ell = ELL as usize;
        run.words
            .extend(run.outputs.chunks(ell).map(word_from_bits));
        if run.words.len() < run.instances {
            return Ok(false);
        }
        let words = std::mem::take(&mut run.words);
        self.run = None;
        self.core.gadget_done(words)?;
        Ok(true)
    }

    /// This server's share of the logits.
    pub fn output(&self) -> Result<LogitShare> {
        self.core.output()
    }
}
