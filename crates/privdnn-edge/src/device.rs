//! The IoT device: centres its images, and for every linear layer sends `x + r` to EdgeA and
//! `S_in − r` to EdgeB (fresh `r` from its PRF key per batch, layer and item), recovers
//! `L(x) = L(x + r) + L(S_in − r) − S_out` exactly in Z_2^64, and runs every non-linear step
//! (square, ReLU, pooling, requantisation) itself in the clear. With probability `p` per image and
//! layer it hides a known-answer test item among the real ones (masked the same way, so the
//! edges cannot tell) and checks the edge results on it.
//!
//! This module works only from the device's own bundle: it holds no linear weight.

use std::time::Instant;

use privdnn_mpc::shadow::{apply_clear, center};
use privdnn_mpc::{MaskKey, Prg, RingVec, TensorShape, ring};
use rand::RngCore;

use crate::messages::{DeviceBundle, LayerReply, LayerRequest};
use crate::{EdgeError, Result};

/// The device's connection to both edges: one parallel round trip per linear layer.
pub trait EdgeLink {
    /// Sends `a` to EdgeA and `b` to EdgeB and returns their replies.
    fn exchange(&mut self, a: LayerRequest, b: LayerRequest) -> Result<(LayerReply, LayerReply)>;
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
    /// Seconds spent in device code (masking, unmasking, non-linear steps), link time excluded.
    pub device_seconds: f64,
    /// Round trips made (one per linear layer).
    pub rounds: u64,
}

/// One item of a request: a real image or a hidden test.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Item {
    Real(usize),
    Test(usize),
}

/// The device role.
pub struct Device {
    bundle: DeviceBundle,
    shapes: Vec<TensorShape>,
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
            if k.s_in.len() != shapes[i].len() || k.s_out.len() != shapes[i + 1].len() {
                return Err(EdgeError::protocol(format!(
                    "key pair {l} has the wrong length"
                )));
            }
        }
        Ok(Self { bundle, shapes })
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.shapes.last().map(TensorShape::len).unwrap_or(0)
    }

    /// Classifies a batch of raw images through the edges.
    pub fn infer(&self, images: &[&[u8]], link: &mut dyn EdgeLink) -> Result<BatchOutcome> {
        let mut out = BatchOutcome::default();
        let mut rng = rand::rng();
        let nonce = [rng.next_u64(), rng.next_u64()];
        let mut clock = Instant::now();
        let mut xs = images
            .iter()
            .map(|raw| center(&self.bundle.model, raw))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut layer = 0usize;
        for (i, op) in self.bundle.model.ops.iter().enumerate() {
            if op.is_linear() {
                let (req_a, req_b, items) = self.mask(nonce, layer, &xs);
                out.device_seconds += clock.elapsed().as_secs_f64();
                let ids = (req_a.batch, req_a.layer);
                let (rep_a, rep_b) = link.exchange(req_a, req_b)?;
                clock = Instant::now();
                out.rounds += 1;
                let failed = self.unmask(ids, &items, rep_a, &rep_b, &mut xs)?;
                let tests = items
                    .iter()
                    .filter(|it| matches!(it, Item::Test(_)))
                    .count();
                out.tests += tests as u64;
                out.failed_tests += failed;
                if failed > 0 {
                    out.failed_layers.push(layer as u32);
                }
                layer += 1;
            } else {
                for x in xs.iter_mut() {
                    *x = apply_clear(op, self.shapes[i], x)?;
                }
            }
        }
        out.logits = xs.iter().map(|x| ring::to_signed_vec(x)).collect();
        out.device_seconds += clock.elapsed().as_secs_f64();
        Ok(out)
    }

    fn key(&self) -> &MaskKey {
        &self.bundle.prf_key
    }

    /// Chooses the items of layer `l` (real images plus sampled tests, shuffled) and masks them.
    fn mask(
        &self,
        nonce: [u64; 2],
        l: usize,
        xs: &[Vec<u64>],
    ) -> (LayerRequest, LayerRequest, Vec<Item>) {
        let mut prg = self.key().stream("sample", &[nonce[0], nonce[1], l as u64]);
        let tests = &self.bundle.tests[l];
        let p = self.bundle.integrity.test_probability;
        let mut items: Vec<Item> = Vec::with_capacity(xs.len() + 1);
        for i in 0..xs.len() {
            items.push(Item::Real(i));
            if !tests.is_empty() && prg.unit() < p {
                items.push(Item::Test(prg.below(tests.len())));
            }
        }
        for k in (1..items.len()).rev() {
            items.swap(k, prg.below(k + 1));
        }
        let key = &self.bundle.keys[l];
        let (mut to_a, mut to_b) = (
            Vec::with_capacity(items.len()),
            Vec::with_capacity(items.len()),
        );
        for (pos, item) in items.iter().enumerate() {
            let x = match *item {
                Item::Real(i) => &xs[i],
                Item::Test(t) => &tests[t].input.0,
            };
            // one pass: r is drawn and used at once, never stored
            let mut prg = self.mask_stream(nonce, l, pos);
            let (mut ea, mut eb) = (Vec::with_capacity(x.len()), Vec::with_capacity(x.len()));
            for (xi, si) in x.iter().zip(&key.s_in.0) {
                let r = prg.next_ring();
                ea.push(xi.wrapping_add(r));
                eb.push(si.wrapping_sub(r));
            }
            to_a.push(RingVec(ea));
            to_b.push(RingVec(eb));
        }
        let req = |items| LayerRequest {
            batch: nonce[0],
            layer: l as u32,
            items,
        };
        (req(to_a), req(to_b), items)
    }

    fn mask_stream(&self, nonce: [u64; 2], l: usize, pos: usize) -> Prg {
        self.key()
            .stream("mask", &[nonce[0], nonce[1], l as u64, pos as u64])
    }

    /// Recovers every item's `L(x)`, checks the tests, and stores the real outputs in `xs`.
    /// Returns the number of failed tests.
    fn unmask(
        &self,
        (batch, layer): (u64, u32),
        items: &[Item],
        mut a: LayerReply,
        b: &LayerReply,
        xs: &mut [Vec<u64>],
    ) -> Result<u64> {
        let l = layer as usize;
        let s_out = &self.bundle.keys[l].s_out.0;
        for rep in [&a, b] {
            if rep.batch != batch || rep.layer != layer || rep.items.len() != items.len() {
                return Err(EdgeError::protocol(format!(
                    "reply for batch {} layer {} with {} items, expected batch {} layer {} with {}",
                    rep.batch,
                    rep.layer,
                    rep.items.len(),
                    batch,
                    layer,
                    items.len()
                )));
            }
            if rep.items.iter().any(|v| v.len() != s_out.len()) {
                return Err(EdgeError::protocol(format!(
                    "layer {l}: reply items of the wrong length"
                )));
            }
        }
        let mut failed = 0;
        for (pos, item) in items.iter().enumerate() {
            let mut y = std::mem::take(&mut a.items[pos].0);
            for ((v, w), s) in y.iter_mut().zip(&b.items[pos].0).zip(s_out) {
                *v = v.wrapping_add(*w).wrapping_sub(*s);
            }
            match *item {
                Item::Real(i) => xs[i] = y,
                Item::Test(t) => failed += u64::from(y != self.bundle.tests[l][t].output.0),
            }
        }
        Ok(failed)
    }
}
