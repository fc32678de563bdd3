//! The naive split network (issue 18's second baseline): SPNN's vertical split and roles with no
//! cryptography at all, for the accuracy and time reference.
//!
//! Holder A owns the left columns, holder B the right columns, the labels and the top layer,
//! exactly as in SPNN ([`Geometry::columns`]). There is no secret sharing and no dealer: each
//! holder keeps its OWN conv1 weights in the clear (both start from the same seeded initial conv1
//! as SPNN, [`crate::session::initial`]) and applies them to its own columns only (the other
//! holder's columns are zeros); holder A adds the bias. The server receives z_A and z_B, adds
//! them to z1 = conv(W_A, x_A) + conv(W_B, x_B) + b, trains the middle of the network
//! ([`Server`]), holder B trains the last layer on the loss ([`top_step`]), and each holder
//! updates its own weights with δ and its own columns: W_p −= lr/n · Σ δ·x_p (holder A also
//! b −= lr/n · Σ δ). So the model is not an ordinary LeNet (two conv1 weight sets); its test
//! accuracy is evaluated here ([`NaiveRun::accuracy`]).
//!
//! Arithmetic: the fixed-point ring of SPNN ([`crate::fixed::Encoding`], [`Geometry::conv`],
//! [`Geometry::weight_gradient`]), so the only difference from SPNN is the missing
//! cryptography and the per-holder weights. A holder's weights are its own value, not a share,
//! so the update is truncated with a plain arithmetic shift (not
//! [`crate::fixed::truncate_share`]). No SGLD noise (settings with σ > 0 are refused), no
//! checkpoint: the run trains every epoch in one call.
//!
//! Everything runs in one process; bytes per link are the encoded sizes of the messages the
//! roles would send ([`naive_bytes`]: z_A / z_B → server, features → holder B, ∂loss/∂h →
//! server, δ → both holders), in [`LinkBytes`]'s conventions, next to the payload-only
//! [`naive_analytic`].

use std::time::Instant;

use privdnn_artifacts::{DatasetSplit, codec};
use privdnn_model::TopNet;
use privdnn_mpc::ring;
use serde::{Deserialize, Serialize};

use crate::error::SpnnError;
use crate::fixed::{Encoding, Geometry, columns_of, encode_pixels, scatter_add};
use crate::harness::LinkBytes;
use crate::messages::{Activations, FeatureGrad, Features, Gradient};
use crate::server::Server;
use crate::session::{Settings, Task, geometry, initial};
use crate::top::top_step;

/// Sequential message flights per step: z_A and z_B (→ server, in parallel), features
/// (→ holder B), feature gradient (→ server), δ (→ both holders).
pub const NAIVE_ROUNDS_PER_STEP: u64 = 4;

/// Test images evaluated per batch.
const EVAL_BATCH: usize = 1000;

/// One epoch of the naive split.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NaiveEpoch {
    /// 1-based epoch.
    pub epoch: usize,
    /// Test accuracy after the epoch (percent).
    pub test_accuracy: f64,
    /// Mean training loss.
    pub train_loss: f64,
    /// Training accuracy of the steps (percent).
    pub train_accuracy: f64,
    /// Wall seconds of the epoch's steps (evaluation excluded).
    pub seconds: f64,
    /// Holders' compute (pixel encoding, conv1 forward, update; seconds, both holders).
    pub holder_seconds: f64,
    /// Server's and holder B's top-layer compute (seconds), as the harness's `server_seconds`.
    pub server_seconds: f64,
}

/// The result of a naive run.
#[derive(Clone, Debug)]
pub struct NaiveOutcome {
    /// One record per epoch.
    pub history: Vec<NaiveEpoch>,
    /// Encoded bytes per link of every message, summed over the steps.
    pub bytes: LinkBytes,
    /// Payload bytes per link ([`naive_analytic`]), summed over the steps.
    pub analytic: LinkBytes,
    /// Steps run.
    pub steps: u64,
}

/// What one step produced.
#[derive(Clone, Debug)]
pub struct NaiveStep {
    /// The z1 the server added up (`n × [c1, h1, w1]` at `output_bits`).
    pub z1: Vec<u64>,
    /// δ the server returned (at `grad_bits`).
    pub delta: Vec<u64>,
    /// Mean loss of the batch.
    pub loss: f64,
    /// Top-1 hits of the batch.
    pub correct: usize,
}

/// A holder's own conv1, in the clear.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NaiveHolder {
    /// 0 = holder A (left columns, bias), 1 = holder B (right columns).
    pub party: usize,
    /// conv1 weights `[cout, c, k, k]` at `weight_bits`.
    pub weights: Vec<u64>,
    /// conv1 bias at `output_bits` (holder A's; zeros at holder B).
    pub bias: Vec<u64>,
}

impl NaiveHolder {
    /// Holder `party` starting from the initial float weights `w0` / bias `b0`.
    pub fn new(
        party: usize,
        g: &Geometry,
        enc: &Encoding,
        w0: &[f32],
        b0: &[f32],
    ) -> Result<Self, SpnnError> {
        if party > 1 || w0.len() != g.weights() || b0.len() != g.cout {
            return Err(SpnnError::config(format!(
                "naive holder {party}: {} initial weights for {}, {} biases for {}",
                w0.len(),
                g.weights(),
                b0.len(),
                g.cout
            )));
        }
        let q = |v: &[f32], bits: u32| -> Vec<u64> {
            v.iter()
                .map(|x| ring::encode_fixed(*x as f64, bits))
                .collect()
        };
        let bias = if party == 0 {
            q(b0, enc.output_bits())
        } else {
            vec![0; g.cout]
        };
        Ok(Self {
            party,
            weights: q(w0, enc.weight_bits),
            bias,
        })
    }

    /// This holder's fixed-point columns of images `indices` of `split`, placed in full images
    /// of zeros (`n × [c, h, w]`).
    pub fn images(
        &self,
        g: &Geometry,
        task: &Task,
        enc: &Encoding,
        split: &DatasetSplit,
        indices: &[usize],
    ) -> Vec<u64> {
        let raw = columns_of(g, self.party, split, indices);
        let own = encode_pixels(g, self.party, &raw, &task.normalization, enc.input_bits);
        let mut full = vec![0u64; indices.len() * g.image()];
        scatter_add(g, self.party, &own, &mut full);
        full
    }

    /// z_p = conv(W_p, x_p) (+ b at holder A) for the images `x` from [`NaiveHolder::images`].
    pub fn forward(&self, g: &Geometry, x: &[u64]) -> Result<Vec<u64>, SpnnError> {
        let bias = (self.party == 0).then_some(self.bias.as_slice());
        g.conv(&self.weights, bias, x)
    }

    /// The SGD step on this holder's own weights: W −= (lr/n · Σ δ·x) >> shift (arithmetic
    /// shift: the weights are a value, not a share); holder A: b −= lr/n · Σ δ.
    pub fn update(
        &mut self,
        g: &Geometry,
        enc: &Encoding,
        x: &[u64],
        delta: &[u64],
        lr: f64,
    ) -> Result<(), SpnnError> {
        let n = x.len() / g.image().max(1);
        if n == 0 || delta.len() != n * g.output().len() || x.len() != n * g.image() {
            return Err(SpnnError::protocol(format!(
                "naive update: gradient of {} values for {} pixels",
                delta.len(),
                x.len()
            )));
        }
        let rate = enc.rate(lr, n);
        for (w, gv) in self.weights.iter_mut().zip(g.weight_gradient(x, delta)) {
            let dw = (gv.wrapping_mul(rate) as i64) >> enc.update_shift();
            *w = w.wrapping_sub(dw as u64);
        }
        if self.party == 0 {
            for (b, gv) in self.bias.iter_mut().zip(g.bias_gradient(delta)) {
                let db = (gv.wrapping_mul(rate) as i64) >> enc.bias_shift();
                *b = b.wrapping_sub(db as u64);
            }
        }
        Ok(())
    }
}

/// Payload bytes per link of one naive step of `n` images with `d` top features (ring vectors
/// of 8 bytes, features of 4; no framing): [`LinkBytes::analytic`] without the openings and the
/// dealer.
pub fn naive_analytic(g: &Geometry, n: usize, d: usize) -> LinkBytes {
    LinkBytes {
        a_to_b: 0,
        b_to_a: 0,
        dealer_to_b: 0,
        ..LinkBytes::analytic(g, n, d)
    }
}

/// Encoded bytes per link (the codec's size of each message, framing included, as the harness
/// counts them) of step `step` with `n` images and `d` top features.
pub fn naive_bytes(g: &Geometry, n: usize, d: usize, step: u64) -> Result<LinkBytes, SpnnError> {
    let z = n * g.output().len();
    let act = Activations {
        step,
        z: vec![0u64; z].into(),
    };
    let feat = Features {
        step,
        h: vec![0.0; n * d],
    };
    let fgrad = FeatureGrad {
        step,
        grad: vec![0.0; n * d],
    };
    let delta = Gradient {
        step,
        delta: vec![0u64; z].into(),
    };
    let (a, f, fg, dl) = (len(&act)?, len(&feat)?, len(&fgrad)?, len(&delta)?);
    Ok(LinkBytes {
        a_to_server: a,
        b_to_server: a + fg,
        server_to_a: dl,
        server_to_b: dl + f,
        ..LinkBytes::default()
    })
}

/// Encoded length of a message (the codec's, as the harness counts it).
fn len<T: Serialize>(m: &T) -> Result<u64, SpnnError> {
    Ok(codec::encode(m)?.len() as u64)
}

/// All roles of the naive split in one process.
pub struct NaiveRun {
    task: Task,
    settings: Settings,
    geometry: Geometry,
    /// Holder A's and holder B's own conv1.
    pub holders: [NaiveHolder; 2],
    server: Server,
    top: TopNet,
    steps_done: u64,
}

impl NaiveRun {
    /// A fresh run: the server's network, holder B's top layer and both holders' conv1 as SPNN
    /// initialises them with `settings.seed`.
    pub fn new(task: Task, settings: Settings) -> Result<Self, SpnnError> {
        if settings.noise_sigma != 0.0 {
            return Err(SpnnError::config(format!(
                "the naive split has no SGLD noise (σ = {}); run it with --noise 0",
                settings.noise_sigma
            )));
        }
        let (upper, top, w0, b0) = initial(&task, &settings)?;
        let g = geometry(&task.spec, b0.len(), None)?;
        let enc = settings.encoding;
        let holders = [
            NaiveHolder::new(0, &g, &enc, &w0, &b0)?,
            NaiveHolder::new(1, &g, &enc, &w0, &b0)?,
        ];
        Ok(Self {
            server: Server::new(upper, enc),
            top,
            task,
            settings,
            geometry: g,
            holders,
            steps_done: 0,
        })
    }

    /// The first layer's geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// Width of the top features (holder B's input).
    pub fn feature_dim(&self) -> usize {
        self.top.feature_dim()
    }

    /// Trains every epoch of the settings, evaluating on `test` after each.
    pub fn train(
        &mut self,
        train: &DatasetSplit,
        test: &DatasetSplit,
    ) -> Result<NaiveOutcome, SpnnError> {
        let mut out = NaiveOutcome {
            history: Vec::new(),
            bytes: LinkBytes::default(),
            analytic: LinkBytes::default(),
            steps: 0,
        };
        for epoch in 1..=self.settings.epochs {
            let mut record = self.epoch(train, epoch, &mut out)?;
            record.test_accuracy = self.accuracy(test)?;
            out.history.push(record);
        }
        Ok(out)
    }

    fn epoch(
        &mut self,
        train: &DatasetSplit,
        epoch: usize,
        out: &mut NaiveOutcome,
    ) -> Result<NaiveEpoch, SpnnError> {
        let (lr, lr1) = self.settings.rates(epoch);
        let order = privdnn_data::epoch_order(train.len(), epoch, self.settings.seed);
        let batches: Vec<&[usize]> = order.chunks(self.settings.batch_size.max(1)).collect();
        self.count_bytes(&batches, out)?;
        let mut r = NaiveEpoch {
            epoch,
            ..Default::default()
        };
        let (mut loss, mut correct) = (0.0, 0usize);
        let started = Instant::now();
        for chunk in batches {
            let s = self.step_timed(train, chunk, lr, lr1, &mut r)?;
            loss += s.loss * chunk.len() as f64;
            correct += s.correct;
            out.steps += 1;
        }
        r.seconds = started.elapsed().as_secs_f64();
        r.train_loss = loss / train.len().max(1) as f64;
        r.train_accuracy = 100.0 * correct as f64 / train.len().max(1) as f64;
        Ok(r)
    }

    /// Adds the bytes of an epoch's `batches` to `out` (outside the timed steps).
    fn count_bytes(&self, batches: &[&[usize]], out: &mut NaiveOutcome) -> Result<(), SpnnError> {
        let (g, d) = (&self.geometry, self.feature_dim());
        let mut sizes: Vec<(usize, LinkBytes)> = Vec::new();
        for (i, chunk) in batches.iter().enumerate() {
            let n = chunk.len();
            if !sizes.iter().any(|(m, _)| *m == n) {
                sizes.push((n, naive_bytes(g, n, d, self.steps_done + i as u64)?));
            }
            if let Some((_, b)) = sizes.iter().find(|(m, _)| *m == n) {
                out.bytes.add(b);
            }
            out.analytic.add(&naive_analytic(g, n, d));
        }
        Ok(())
    }

    /// One training step on images `chunk` of `train` at learning rates `lr` (server, top) and
    /// `lr1` (the holders' conv1).
    pub fn step(
        &mut self,
        train: &DatasetSplit,
        chunk: &[usize],
        lr: f64,
        lr1: f64,
    ) -> Result<NaiveStep, SpnnError> {
        self.step_timed(train, chunk, lr, lr1, &mut NaiveEpoch::default())
    }

    fn step_timed(
        &mut self,
        train: &DatasetSplit,
        chunk: &[usize],
        lr: f64,
        lr1: f64,
        r: &mut NaiveEpoch,
    ) -> Result<NaiveStep, SpnnError> {
        let (g, enc, step) = (self.geometry, self.settings.encoding, self.steps_done);
        let t0 = Instant::now();
        let x = self
            .holders
            .clone()
            .map(|h| h.images(&g, &self.task, &enc, train, chunk));
        let a = Activations {
            step,
            z: self.holders[0].forward(&g, &x[0])?.into(),
        };
        let b = Activations {
            step,
            z: self.holders[1].forward(&g, &x[1])?.into(),
        };
        r.holder_seconds += t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let labels: Vec<u16> = chunk.iter().map(|&i| train.labels[i]).collect();
        let fwd = self.server.forward(&a, &b)?;
        let top = top_step(&mut self.top, &fwd.features, &labels, lr)?;
        let grad = self.server.backward(&top.grad, lr)?;
        r.server_seconds += t1.elapsed().as_secs_f64();
        let t2 = Instant::now();
        for (h, xs) in self.holders.iter_mut().zip(&x) {
            h.update(&g, &enc, xs, &grad.delta.0, lr1)?;
        }
        r.holder_seconds += t2.elapsed().as_secs_f64();
        self.steps_done += 1;
        Ok(NaiveStep {
            z1: fwd.z1,
            delta: grad.delta.0,
            loss: top.loss,
            correct: top.correct,
        })
    }

    /// z1 = conv(W_A, x_A) + conv(W_B, x_B) + b of images `indices` of `split` (ring, at
    /// `output_bits`), as the server would add it up.
    pub fn z1(&self, split: &DatasetSplit, indices: &[usize]) -> Result<Vec<u64>, SpnnError> {
        let (g, enc) = (&self.geometry, &self.settings.encoding);
        let mut z = vec![0u64; indices.len() * g.output().len()];
        for h in &self.holders {
            let x = h.images(g, &self.task, enc, split, indices);
            ring::add_assign(&mut z, &h.forward(g, &x)?);
        }
        Ok(z)
    }

    /// Test accuracy (percent) of the two-holder model: z1 → the server's features
    /// ([`privdnn_model::UpperNet::features_eval`]) → holder B's logits
    /// ([`TopNet::logits`]). A measurement, not part of the protocol.
    pub fn accuracy(&self, test: &DatasetSplit) -> Result<f64, SpnnError> {
        let idx: Vec<usize> = (0..test.len()).collect();
        let mut correct = 0usize;
        for chunk in idx.chunks(EVAL_BATCH) {
            let z = self.server.decode(&self.z1(test, chunk)?);
            let h = self.server.upper.features_eval(z, chunk.len())?;
            let logits = self.top.logits(h, chunk.len())?;
            let classes = logits.len() / chunk.len().max(1);
            for (row, &i) in logits.chunks(classes.max(1)).zip(chunk) {
                correct += usize::from(argmax(row) == usize::from(test.labels[i]));
            }
        }
        Ok(100.0 * correct as f64 / test.len().max(1) as f64)
    }
}

/// Index of the largest value (the first on ties).
fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv { (i, v) } else { (bi, bv) }
        })
        .0
}
