//! The IoT device: centres its images, and for every linear layer sends `x + r` to EdgeA and
//! recovers `L(x) = L(x + r) + d` exactly in Z_2^64, where the pad `(r, d)` was prepared offline
//! through EdgeB (`d = L(S_in − r) − S_out`, see [`crate::pads`]): the reconstructed protocol's
//! `S_in − r` to EdgeB, moved ahead of the query because it does not depend on it. The device
//! runs every non-linear step (square, ReLU, pooling, requantisation) itself in the clear, in
//! place. With probability `p` per image and layer it hides a known-answer test item among the
//! real ones (masked the same way, so the edges cannot tell) and checks the edge results on it.
//!
//! Online work per image: one add per linear input and output element, the non-linear steps,
//! and one request/reply per linear layer, encoded and decoded in place ([`crate::frames`]).
//!
//! This module works only from the device's own bundle: it holds no linear layer.

use std::sync::Mutex;
use std::time::Instant;

use privdnn_mpc::shadow::center;
use privdnn_mpc::{Op, TensorShape, ring};
use rand::RngCore;

use crate::clear::{apply_in_place, unmask_run};
use crate::frames::{FrameWriter, PART_BYTES, ReplyReader, words};
use crate::messages::DeviceBundle;
use crate::pads::{Pad, Pads, Preparer, check_header};
use crate::{EdgeError, Result};

/// The device's connection to one edge: one request frame (header + payload) out, the reply's
/// payload back (an error frame or a closed connection is an error).
pub trait EdgeLink {
    /// Sends `frame` and returns the reply payload (valid until the next call). After
    /// [`EdgeLink::send_part`] calls, `frame` is the request's last part.
    fn round_trip(&mut self, frame: &[u8]) -> Result<&[u8]>;

    /// Sends a leading part of a request frame (header first); the rest follows in more parts
    /// and [`EdgeLink::round_trip`].
    fn send_part(&mut self, part: &[u8]) -> Result<()>;
}

/// The device's connections to both edges: EdgeA answers queries online, EdgeB prepares pads.
pub trait EdgePair {
    /// The link to EdgeA (online).
    fn a(&mut self) -> &mut dyn EdgeLink;
    /// The link to EdgeB (offline).
    fn b(&mut self) -> &mut dyn EdgeLink;
}

/// Result of one batch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchOutcome {
    /// Integer logits per image.
    pub logits: Vec<Vec<i64>>,
    /// Hidden test items sent.
    pub tests: u64,
    /// Hidden test items whose answer was wrong.
    pub failed_tests: u64,
    /// Linear layers (indices) on which at least one test failed.
    pub failed_layers: Vec<u32>,
    /// Seconds spent in online device code (masking, unmasking, non-linear steps, encoding and
    /// decoding), link time excluded.
    pub device_seconds: f64,
    /// Online round trips made (one per linear layer, to EdgeA).
    pub rounds: u64,
    /// Seconds spent preparing pads inside this call ([`Device::infer`] only; link time
    /// included).
    pub offline_seconds: f64,
    /// Pads prepared inside this call.
    pub pads_prepared: u64,
}

/// One item of a request: a real image or a hidden test.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Item {
    Real(usize),
    Test(usize),
}

/// A batch's plan, drawn before anything is sent: its identifier and, per linear layer, the
/// items of the request (real images plus sampled tests, shuffled). It says how many pads the
/// batch consumes, so the offline phase can prepare them ahead.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    nonce: [u64; 2],
    images: usize,
    items: Vec<Vec<Item>>,
}

impl Plan {
    /// Pads the batch consumes per linear layer.
    pub fn needs(&self) -> Vec<usize> {
        self.items.iter().map(Vec::len).collect()
    }

    /// Images of the batch.
    pub fn images(&self) -> usize {
        self.images
    }
}

/// The device role.
pub struct Device {
    bundle: DeviceBundle,
    shapes: Vec<TensorShape>,
    /// Op indices of the linear layers.
    linear: Vec<usize>,
    scratch: Mutex<Scratch>,
}

/// Buffers reused from batch to batch: the request frame and the activation vectors.
#[derive(Default)]
struct Scratch {
    frame: FrameWriter,
    free: Vec<Vec<u64>>,
}

impl Device {
    /// A device from the bundle its owner made.
    pub fn new(bundle: DeviceBundle) -> Result<Self> {
        let shapes = bundle.model.shapes();
        let linear = bundle.model.linear_indices();
        if bundle.keys.len() != linear.len() || bundle.tests.len() != linear.len() {
            return Err(EdgeError::protocol(format!(
                "bundle has {} key pairs and {} test sets for {} linear layers",
                bundle.keys.len(),
                bundle.tests.len(),
                linear.len()
            )));
        }
        for (l, &i) in linear.iter().enumerate() {
            let k = &bundle.keys[l];
            let wrong = |a: usize, b: usize| a != shapes[i].len() || b != shapes[i + 1].len();
            if wrong(k.s_in.len(), k.s_out.len())
                || bundle.tests[l]
                    .iter()
                    .any(|t| wrong(t.input.len(), t.output.len()))
            {
                return Err(EdgeError::protocol(format!(
                    "key pair or test pair of layer {l} has the wrong length"
                )));
            }
        }
        Ok(Self {
            bundle,
            shapes,
            linear,
            scratch: Mutex::default(),
        })
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.shapes.last().map(TensorShape::len).unwrap_or(0)
    }

    /// Probability per image and layer of a hidden test item.
    pub fn test_probability(&self) -> f64 {
        self.bundle.integrity.test_probability
    }

    /// Linear layers (one key pair and one pad per item each).
    pub fn linear_layers(&self) -> usize {
        self.bundle.keys.len()
    }

    /// The offline preparer of this device's pads (its own PRF stream, derived from the key).
    pub fn preparer(&self) -> Preparer {
        let mut seed = [0u8; 32];
        let mut prg = self.bundle.prf_key.stream("pad key", &[]);
        for chunk in seed.chunks_exact_mut(8) {
            chunk.copy_from_slice(&prg.next_ring().to_le_bytes());
        }
        Preparer::new(self.bundle.keys.clone(), privdnn_mpc::MaskKey(seed))
    }

    /// Draws the plan of a batch of `images` images: a fresh identifier, and per linear layer
    /// the real items plus the sampled hidden tests, shuffled.
    pub fn plan(&self, images: usize) -> Plan {
        let mut rng = rand::rng();
        let nonce = [rng.next_u64(), rng.next_u64()];
        let p = self.bundle.integrity.test_probability;
        let items = (0..self.linear_layers())
            .map(|l| {
                let mut prg = self
                    .bundle
                    .prf_key
                    .stream("sample", &[nonce[0], nonce[1], l as u64]);
                let tests = self.bundle.tests[l].len();
                let mut items: Vec<Item> = Vec::with_capacity(images + 1);
                for i in 0..images {
                    items.push(Item::Real(i));
                    if tests > 0 && prg.unit() < p {
                        items.push(Item::Test(prg.below(tests)));
                    }
                }
                for k in (1..items.len()).rev() {
                    items.swap(k, prg.below(k + 1));
                }
                items
            })
            .collect();
        Plan {
            nonce,
            images,
            items,
        }
    }

    /// Classifies a batch of raw images: plans it, prepares the pads it needs through EdgeB
    /// (timed as offline), then runs it online through EdgeA.
    pub fn infer(&self, images: &[&[u8]], link: &mut dyn EdgePair) -> Result<BatchOutcome> {
        let plan = self.plan(images.len());
        let clock = Instant::now();
        let needs = plan.needs();
        let mut pads = self.preparer().prepare(&needs, link.b())?;
        let offline_seconds = clock.elapsed().as_secs_f64();
        let mut out = self.run(&plan, images, &mut pads, link.a())?;
        out.offline_seconds = offline_seconds;
        out.pads_prepared = needs.iter().sum::<usize>() as u64;
        Ok(out)
    }

    /// The online phase of a planned batch: takes the pads it needs from `pads` (an error if
    /// they are missing) and talks to EdgeA only.
    pub fn run(
        &self,
        plan: &Plan,
        images: &[&[u8]],
        pads: &mut Pads,
        link: &mut dyn EdgeLink,
    ) -> Result<BatchOutcome> {
        if images.len() != plan.images || plan.items.len() != self.linear_layers() {
            return Err(EdgeError::protocol(format!(
                "plan for {} images and {} layers, got {} images",
                plan.images,
                plan.items.len(),
                images.len()
            )));
        }
        if !pads.covers(&plan.needs()) {
            return Err(EdgeError::protocol(
                "not enough prepared pads for the batch",
            ));
        }
        let mut out = BatchOutcome::default();
        let mut clock = Instant::now();
        let mut scratch = self
            .scratch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Scratch { frame, free } = &mut *scratch;
        let mut xs = self.centred(images, free)?;
        for (layer, items) in plan.items.iter().enumerate() {
            let used = pads.take(layer, items.len())?;
            let len = self.bundle.keys[layer].s_in.len();
            frame.begin_sized(plan.nonce[0], layer as u32, items.len(), len)?;
            for (item, pad) in items.iter().zip(&used) {
                let x = match *item {
                    Item::Real(k) => &xs[k],
                    Item::Test(t) => &self.bundle.tests[layer][t].input.0,
                };
                if x.len() != pad.r.len() {
                    return Err(EdgeError::protocol(format!(
                        "layer {layer}: input of {} values, pad of {}",
                        x.len(),
                        pad.r.len()
                    )));
                }
                frame.item_zip(x, &pad.r, true);
                if frame.part().len() >= PART_BYTES {
                    link.send_part(frame.part())?;
                    frame.part_sent();
                }
            }
            out.device_seconds += clock.elapsed().as_secs_f64();
            let reply = link.round_trip(frame.finish()?)?;
            clock = Instant::now();
            out.rounds += 1;
            let failed = self.unmask((plan.nonce[0], layer), items, &used, reply, &mut xs)?;
            pads.recycle(used);
            out.tests += items
                .iter()
                .filter(|it| matches!(it, Item::Test(_)))
                .count() as u64;
            out.failed_tests += failed;
            if failed > 0 {
                out.failed_layers.push(layer as u32);
            }
        }
        out.logits = xs.iter().map(|x| ring::to_signed_vec(x)).collect();
        free.extend(xs);
        out.device_seconds += clock.elapsed().as_secs_f64();
        Ok(out)
    }

    /// The non-linear ops after linear layer `l` up to the next linear one (for `l = None`:
    /// those before the first), with their input shapes.
    fn run_after(&self, l: Option<usize>) -> (&[Op], &[TensorShape]) {
        let start = l.map_or(0, |l| self.linear[l] + 1);
        let end = l
            .map_or(self.linear.first(), |l| self.linear.get(l + 1))
            .copied()
            .unwrap_or(self.bundle.model.ops.len());
        (&self.bundle.model.ops[start..end], &self.shapes[start..end])
    }

    /// Every image centred, with the ops before the first linear layer applied (each in a
    /// vector with room for the widest tensor, reused layer after layer and from `free`, the
    /// vectors of earlier batches).
    fn centred(&self, images: &[&[u8]], free: &mut Vec<Vec<u64>>) -> Result<Vec<Vec<u64>>> {
        let widest = self.shapes.iter().map(TensorShape::len).max().unwrap_or(0);
        let (run, shapes) = self.run_after(None);
        images
            .iter()
            .map(|raw| {
                let mut v = free.pop().unwrap_or_else(|| Vec::with_capacity(widest));
                v.clear();
                v.extend_from_slice(&center(&self.bundle.model, raw)?);
                for (op, &s) in run.iter().zip(shapes) {
                    apply_in_place(op, s, &mut v)?;
                }
                Ok(v)
            })
            .collect()
    }

    /// Recovers every item's `L(x)` from EdgeA's reply and the pads, checks the tests, and
    /// stores the real outputs in `xs` with the non-linear ops up to the next linear layer
    /// applied (fused with the unmasking, [`unmask_run`]). Returns the number of failed tests.
    fn unmask(
        &self,
        (batch, l): (u64, usize),
        items: &[Item],
        used: &[Pad],
        reply: &[u8],
        xs: &mut [Vec<u64>],
    ) -> Result<u64> {
        let len = self.bundle.keys[l].s_out.len();
        let (run, shapes) = self.run_after(Some(l));
        let mut rd = ReplyReader::new(reply);
        check_header(rd.header()?, (batch, l, items.len()))?;
        let mut failed = 0;
        for (item, pad) in items.iter().zip(used) {
            let bytes = rd.item(len)?;
            match *item {
                Item::Real(i) => unmask_run(bytes, &pad.d, run, shapes, &mut xs[i])?,
                Item::Test(t) => {
                    let want = &self.bundle.tests[l][t].output.0;
                    let y = words(bytes).zip(&pad.d).map(|(v, d)| v.wrapping_add(*d));
                    failed += u64::from(!y.eq(want.iter().copied()));
                }
            }
        }
        rd.finish()?;
        Ok(failed)
    }
}
