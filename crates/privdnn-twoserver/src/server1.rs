//! Server 1, the garbler: holds its shares, opens masked values with server 2, and garbles every
//! fused gadget (its input shares and a fresh mask `r` per instance as garbler inputs), keeping
//! `−r` as its new share. It never receives server 2's shares, only openings masked by the
//! dealer's `A`/`a` and the OT flip bits.

use privdnn_gc::bits::unpack_bits;
use privdnn_gc::{Circuit, GarbledChunk, Garbler, GarblerRots};
use privdnn_mpc::MaskKey;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha12Rng;

use crate::client::LABEL_INPUT;
use crate::core::Core;
use crate::gadget::{CHUNK_INSTANCES, circuits, for_each_instance, gc_config};
use crate::messages::{DealerSeed, DealerToS1, Flips, Garbled, InputSeed, LogitShare, ModelShare};
use crate::plan::Step;
use crate::{Result, TwoServerError};

/// A gadget being garbled.
struct Run {
    garbler_bits: Vec<bool>,
    flips: Vec<bool>,
    masks: Vec<u64>,
    next: usize,
}

/// The garbler role.
pub struct ServerOne {
    core: Core,
    circuits: Vec<Option<Circuit>>,
    rng: ChaCha12Rng,
    garbler: Option<Garbler>,
    rots: Option<GarblerRots>,
    run: Option<Run>,
}

impl ServerOne {
    /// Server 1 from the owner's and dealer's setup messages; `seed` seeds its own randomness
    /// (garbling seeds, re-share masks).
    pub fn new(share: ModelShare, dealer: &DealerSeed, seed: [u8; 32]) -> Result<Self> {
        let core = Core::new(1, share, dealer)?;
        Ok(ServerOne {
            circuits: circuits(&core.steps)?,
            core,
            rng: ChaCha12Rng::from_seed(seed),
            garbler: None,
            rots: None,
            run: None,
        })
    }

    crate::core::core_steps!();

    /// Starts a query from the client's seed and the dealer's random OTs.
    pub fn start(&mut self, input: &InputSeed, dealer: &DealerToS1) -> Result<()> {
        if input.query != dealer.query {
            return Err(TwoServerError::protocol(
                "client and dealer name different queries",
            ));
        }
        let n = self.core.public.input_shape().len();
        let x = MaskKey(input.seed).stream(LABEL_INPUT, &[]).ring(n);
        let mut gseed = [0u8; 16];
        self.rng.fill_bytes(&mut gseed);
        self.garbler = Some(Garbler::new(gseed, gc_config())?);
        self.rots = Some(GarblerRots::new(&dealer.rots));
        self.run = None;
        self.core.start(input.query, x, Vec::new())
    }

    /// Takes server 2's flip bits for the current gadget step and prepares the garbler inputs.
    pub fn accept_flips(&mut self, flips: &Flips) -> Result<()> {
        let Some(step) = self.core.current().cloned() else {
            return Err(TwoServerError::protocol("flip bits after the last step"));
        };
        let Step::Gadget { spec, .. } = step else {
            return Err(TwoServerError::protocol("flip bits outside a gadget step"));
        };
        if flips.query != self.core.query || flips.step as usize != self.core.at {
            return Err(TwoServerError::protocol("flip bits of another step"));
        }
        let n = step.gadget_instances();
        if flips.count != (n * spec.evaluator_bits()) as u64 {
            return Err(TwoServerError::protocol("wrong number of flip bits"));
        }
        let mut run = Run {
            garbler_bits: Vec::with_capacity(n * spec.garbler_bits()),
            flips: unpack_bits(&flips.bits, flips.count as usize)?,
            masks: Vec::with_capacity(n),
            next: 0,
        };
        let rng = &mut self.rng;
        let x = &self.core.x;
        for_each_instance(&step, x, |s| {
            let r = rng.next_u64();
            run.masks.push(r);
            Ok(spec.push_garbler_bits(s, r, &mut run.garbler_bits)?)
        })?;
        self.run = Some(run);
        Ok(())
    }

    /// The next garbled chunk of the current gadget (`None` when none is pending); after the last
    /// chunk this server's share becomes `−r`.
    pub fn next_chunk(&mut self) -> Result<Option<Garbled>> {
        let (Some(run), Some(garbler), Some(rots)) =
            (self.run.as_mut(), self.garbler.as_mut(), self.rots.as_mut())
        else {
            return Ok(None);
        };
        let at = self.core.at;
        let circuit = self.circuits[at]
            .as_ref()
            .ok_or_else(|| TwoServerError::protocol("no circuit at this step"))?;
        let (g, e) = (circuit.garbler_inputs(), circuit.evaluator_inputs());
        let total = run.masks.len();
        let (start, n) = (run.next, CHUNK_INSTANCES.min(total - run.next));
        let mut chunk = GarbledChunk::default();
        garbler.garble_chunk(
            circuit,
            n,
            &run.garbler_bits[start * g..(start + n) * g],
            &run.flips[start * e..(start + n) * e],
            rots,
            &mut chunk,
        )?;
        run.next += n;
        let msg = Garbled {
            query: self.core.query,
            step: at as u32,
            chunk,
        };
        if run.next == total {
            let share = run.masks.iter().map(|r| r.wrapping_neg()).collect();
            self.run = None;
            self.core.gadget_done(share)?;
        }
        Ok(Some(msg))
    }

    /// This server's share of the logits.
    pub fn output(&self) -> Result<LogitShare> {
        self.core.output()
    }
}
