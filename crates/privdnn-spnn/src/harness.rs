//! The in-process harness: both holders, the dealer and the server in one process, exchanging
//! the very messages of the TCP roles (encoded, so bytes per link are exact payload sizes).
//! Every first-layer forward is audited against the integer shadow (privdnn-mpc's ring
//! convolution on the opened weights and images) when `audit` is on.

use std::path::Path;
use std::time::Instant;

use privdnn_artifacts::{DatasetSplit, TrainedModel, codec};
use privdnn_model::{Network, TopNet, UpperNet, backend_device, evaluate, import_tensors};
use privdnn_mpc::ring;
use serde::{Deserialize, Serialize};

use crate::dealer::Dealer;
use crate::error::SpnnError;
use crate::fixed::{Geometry, columns_of, encode_pixels};
use crate::holder::{Holder, TripleShare};
use crate::messages::Activations;
use crate::server::Server;
use crate::session::{
    Checkpoint, EpochRecord, Settings, Task, geometry, initial, keys, open_weights, root_key,
};
use crate::top::top_step;

/// Payload bytes per link, summed over steps.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkBytes {
    /// Holder A → holder B.
    pub a_to_b: u64,
    /// Holder B → holder A.
    pub b_to_a: u64,
    /// Holder A → server.
    pub a_to_server: u64,
    /// Holder B → server.
    pub b_to_server: u64,
    /// Server → holder A.
    pub server_to_a: u64,
    /// Server → holder B.
    pub server_to_b: u64,
    /// Dealer → holder B.
    pub dealer_to_b: u64,
}

impl LinkBytes {
    /// Sum over links.
    pub fn total(&self) -> u64 {
        self.a_to_b
            + self.b_to_a
            + self.a_to_server
            + self.b_to_server
            + self.server_to_a
            + self.server_to_b
            + self.dealer_to_b
    }

    /// The analytic payload count of one step of `n` images with `d` top features (ring
    /// vectors of 8 bytes, features of 4, plus the codec's small framing of each message: step
    /// varint and length prefixes, ≤ 32 bytes).
    pub fn analytic(g: &Geometry, n: usize, d: usize) -> Self {
        let (w, x, z) = (g.weights(), g.image(), g.output().len());
        let opening = 8 * (w + n * x) as u64;
        let zb = 8 * (n * z) as u64;
        let hb = 4 * (n * d) as u64;
        Self {
            a_to_b: opening,
            b_to_a: opening,
            a_to_server: zb,
            b_to_server: zb + hb,
            server_to_a: zb,
            server_to_b: zb + hb,
            dealer_to_b: zb,
        }
    }

    /// Adds `o` link by link.
    pub fn add(&mut self, o: &LinkBytes) {
        self.a_to_b += o.a_to_b;
        self.b_to_a += o.b_to_a;
        self.a_to_server += o.a_to_server;
        self.b_to_server += o.b_to_server;
        self.server_to_a += o.server_to_a;
        self.server_to_b += o.server_to_b;
        self.dealer_to_b += o.dealer_to_b;
    }
}

/// Sequential message flights per step: openings (A → B, then B → A), activations (→ server),
/// features (→ holder B), feature gradient (→ server), δ (→ holders); the dealer's correction
/// is sent ahead of the step (offline).
pub const ROUNDS_PER_STEP: u64 = 6;

/// The result of a harness run.
pub struct Outcome {
    /// The trained model as an ordinary artifact.
    pub model: TrainedModel,
    /// One record per epoch (resumed epochs included).
    pub history: Vec<EpochRecord>,
    /// Payload bytes per link of the steps run by this call.
    pub bytes: LinkBytes,
    /// Steps run by this call.
    pub steps: u64,
    /// Both holders' final shares.
    pub checkpoint: Checkpoint,
}

/// All four roles in one process.
pub struct Harness {
    task: Task,
    settings: Settings,
    geometry: Geometry,
    holders: [Holder; 2],
    dealer: Dealer,
    server: Server,
    top: TopNet,
    /// Audit every forward against the shadow.
    pub audit: bool,
    history: Vec<EpochRecord>,
    steps_done: u64,
}

fn len<T: Serialize>(m: &T) -> Result<u64, SpnnError> {
    Ok(codec::encode(m)?.len() as u64)
}

impl Harness {
    /// A fresh run, or the continuation of `checkpoint` when it was written with `settings`.
    pub fn new(
        task: Task,
        settings: Settings,
        checkpoint: Option<&Checkpoint>,
    ) -> Result<Self, SpnnError> {
        let (mut upper, mut top, w0, b0) = initial(&task, &settings)?;
        let geometry = geometry(&task.spec, b0.len(), None)?;
        let [ka, kb] = keys(&root_key(settings.seed));
        let dealer = Dealer::new(geometry, ka.dealer.clone(), kb.dealer.clone());
        let mut holders = [
            Holder::new(0, geometry, settings.encoding, ka, &w0, &b0)?,
            Holder::new(1, geometry, settings.encoding, kb, &w0, &b0)?,
        ];
        let (mut history, mut steps_done) = (Vec::new(), 0);
        if let Some(c) = checkpoint.filter(|c| c.settings == settings) {
            upper = UpperNet::restore(
                &task.spec,
                settings.optimizer,
                settings.weight_decay,
                &c.upper,
            )?;
            top = TopNet::restore(
                &task.spec,
                settings.optimizer,
                settings.weight_decay,
                &c.top,
            )?;
            for (h, s) in holders.iter_mut().zip(&c.holders) {
                h.state = s.clone();
            }
            history = c.history.clone();
            steps_done = c.steps_done;
        }
        for h in &mut holders {
            h.noise_sigma = settings.noise_sigma;
        }
        Ok(Self {
            server: Server::new(upper, settings.encoding),
            top,
            task,
            settings,
            geometry,
            holders,
            dealer,
            audit: true,
            history,
            steps_done,
        })
    }

    /// The first layer's geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// Trains the remaining epochs (at most `max_epochs` more), checkpointing after each epoch
    /// when `checkpoint` is given, and evaluating the opened model on `test`.
    pub fn train(
        &mut self,
        train: &DatasetSplit,
        test: &DatasetSplit,
        checkpoint: Option<&Path>,
        max_epochs: usize,
    ) -> Result<Outcome, SpnnError> {
        let (mut bytes, mut steps) = (LinkBytes::default(), 0u64);
        let first = self.history.len() + 1;
        let last = self
            .settings
            .epochs
            .min(first.saturating_add(max_epochs.saturating_sub(1)));
        for epoch in first..=last {
            let mut record = self.epoch(train, epoch, &mut bytes, &mut steps)?;
            record.test_accuracy = accuracy(&self.model()?, test)?;
            self.history.push(record);
            // snapshot after every epoch, written or not: serialising burn's optimiser state
            // is part of the trajectory (a run and its resumed twin both go through it)
            let snapshot = self.checkpoint()?;
            if let Some(path) = checkpoint {
                snapshot.write(path)?;
            }
        }
        Ok(Outcome {
            model: self.model()?,
            history: self.history.clone(),
            bytes,
            steps,
            checkpoint: self.checkpoint()?,
        })
    }

    /// The resumable state.
    pub fn checkpoint(&self) -> Result<Checkpoint, SpnnError> {
        Ok(Checkpoint {
            settings: self.settings.clone(),
            epochs_done: self.history.len(),
            steps_done: self.steps_done,
            holders: [self.holders[0].state.clone(), self.holders[1].state.clone()],
            upper: self.server.upper.state()?,
            top: self.top.state()?,
            history: self.history.clone(),
        })
    }

    /// The model with the opened first layer.
    pub fn model(&self) -> Result<TrainedModel, SpnnError> {
        let (w, b) = open_weights(
            &self.settings.encoding,
            &self.holders[0].state,
            &self.holders[1].state,
        );
        let t = &self.task;
        Ok(self.server.upper.export_with_head(
            &t.dataset,
            &t.normalization,
            &w,
            &b,
            &self.top.tensors()?,
        )?)
    }

    fn epoch(
        &mut self,
        train: &DatasetSplit,
        epoch: usize,
        bytes: &mut LinkBytes,
        steps: &mut u64,
    ) -> Result<EpochRecord, SpnnError> {
        let started = Instant::now();
        let (lr, lr1) = self.settings.rates(epoch);
        let order = privdnn_data::epoch_order(train.len(), epoch, self.settings.seed);
        let mut r = EpochRecord {
            epoch,
            ..Default::default()
        };
        let (mut loss, mut correct) = (0.0, 0usize);
        for chunk in order.chunks(self.settings.batch_size.max(1)) {
            let step = self.steps_done;
            let (b, z_ok, l, c) = self.step(train, chunk, step, lr, lr1, &mut r)?;
            bytes.add(&b);
            r.forwards_checked += u64::from(z_ok.is_some());
            r.forwards_exact += u64::from(z_ok == Some(true));
            loss += l * chunk.len() as f64;
            correct += c;
            self.steps_done += 1;
            *steps += 1;
        }
        r.train_loss = loss / train.len().max(1) as f64;
        r.train_accuracy = 100.0 * correct as f64 / train.len().max(1) as f64;
        r.seconds = started.elapsed().as_secs_f64();
        r.transfer_seconds = (r.seconds - r.crypto_seconds - r.server_seconds).max(0.0);
        Ok(r)
    }

    /// One step: input shares, triples, openings, forward, server, update.
    #[allow(clippy::type_complexity)]
    fn step(
        &mut self,
        train: &DatasetSplit,
        chunk: &[usize],
        step: u64,
        lr: f64,
        lr1: f64,
        r: &mut EpochRecord,
    ) -> Result<(LinkBytes, Option<bool>, f64, usize), SpnnError> {
        let (g, enc, n) = (self.geometry, self.settings.encoding, chunk.len());
        let t0 = Instant::now();
        let mut x = Vec::with_capacity(2);
        let mut triples: Vec<TripleShare> = Vec::with_capacity(2);
        let correction = self.dealer.correction(step, n)?;
        for (p, h) in self.holders.iter().enumerate() {
            let raw = columns_of(&g, p, train, chunk);
            let own = encode_pixels(&g, p, &raw, &self.task.normalization, enc.input_bits);
            x.push(h.share_images(step, &own, n)?);
            triples.push(h.triple(step, n, Some(&correction))?);
        }
        let o0 = self.holders[0].open(step, &x[0], &triples[0])?;
        let o1 = self.holders[1].open(step, &x[1], &triples[1])?;
        let z0 = self.holders[0].forward(&triples[0], &o0, &o1)?;
        let z1 = self.holders[1].forward(&triples[1], &o1, &o0)?;
        let labels: Vec<u16> = chunk.iter().map(|&i| train.labels[i]).collect();
        let a0 = Activations { step, z: z0.into() };
        let a1 = Activations { step, z: z1.into() };
        r.crypto_seconds += t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let fwd = self.server.forward(&a0, &a1)?;
        let top = top_step(&mut self.top, &fwd.features, &labels, lr)?;
        let grad = self.server.backward(&top.grad, lr)?;
        r.server_seconds += t1.elapsed().as_secs_f64();
        let exact = self.audit.then(|| self.shadow(&x, &fwd.z1)).transpose()?;
        let t2 = Instant::now();
        for (h, xs) in self.holders.iter_mut().zip(&x) {
            h.update(step, xs, &grad.delta.0, lr1)?;
        }
        r.crypto_seconds += t2.elapsed().as_secs_f64();
        let bytes = LinkBytes {
            a_to_b: len(&o0)?,
            b_to_a: len(&o1)?,
            a_to_server: len(&a0)?,
            b_to_server: len(&a1)? + len(&top.grad)?,
            server_to_a: len(&grad)?,
            server_to_b: len(&grad)? + len(&fwd.features)?,
            dealer_to_b: len(&correction)?,
        };
        Ok((bytes, exact, top.loss, top.correct))
    }

    /// The integer shadow of the step: conv(W, X) + b on the opened shares, compared with the
    /// z1 the server reconstructed.
    fn shadow(&self, x: &[Vec<u64>], z1: &[u64]) -> Result<bool, SpnnError> {
        let (a, b) = (&self.holders[0].state, &self.holders[1].state);
        let w = ring::add(&a.weights.0, &b.weights.0);
        let bias = ring::add(&a.bias.0, &b.bias.0);
        let images = ring::add(&x[0], &x[1]);
        Ok(self.geometry.conv(&w, Some(&bias), &images)? == z1)
    }
}

/// Test accuracy (percent) of `model` in the clear (a measurement, not part of the protocol).
pub fn accuracy(model: &TrainedModel, test: &DatasetSplit) -> Result<f64, SpnnError> {
    let device = backend_device(privdnn_config::Backend::Flex, false)?;
    let net = import_tensors(Network::new(&model.spec, &device)?, &model.tensors, None)?;
    Ok(evaluate(&net, test, &model.normalization, 1000, None, &device)?.accuracy())
}
