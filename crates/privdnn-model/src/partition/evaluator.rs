//! The fast evaluator of candidate selections.
//!
//! Only layers 1–2 change between candidates, so the evaluator runs conv1 → layer1 → conv2 once
//! per image and caches `a1` (conv2's input) and `z2` (conv2's raw output). For a layer-1 set S1
//! it computes, once, the conv2 outputs of the *separated* model (conv2 over `a1` with the S1
//! channels zeroed, which is exactly `W2[j, c] = 0` for `c ∈ S1`) and of the *removed* model
//! (conv2 over `a1` whose S1 channels hold `layer1(0)`, the value a zeroed conv1 output turns
//! into — 0 for pooling+square, a BN-shifted constant for ResNet18). Every layer-2 candidate is
//! then a per-channel choice between cached maps followed by one pass of the plaintext tail:
//!
//! * A_s: `z2[j]` for `j ∈ S2`, the separated map otherwise; tail input `a1`.
//! * A_r: 0 for `j ∈ S2`, the removed map otherwise; tail input the removed `a1`.
//!
//! LeNet5 goes further: its tail is per channel (pool, square) up to fc1, which is linear, so
//! the cache holds each conv2 channel's share of fc1's pre-activation and a candidate costs a
//! sum of cached shares plus fc2/fc3 (about 4× less work than the tail, which matters for the
//! 312,492-member exhaustive search).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::eval::{Evaluation, batch_tensor};
use crate::network::Network;
use burn::tensor::{Device, Int, Tensor, TensorData};
use privdnn_artifacts::{DatasetSplit, NeuronSelection, TrainedModel};

use super::score::point;
use super::{channels, network};
use crate::convert::tensor_values;
use crate::error::ModelError;

struct Batch {
    a1: Tensor<4>,
    z2: Tensor<4>,
    labels: Vec<i64>,
    /// LeNet5: per-channel fc1 shares of `z2`, `[C2, n, H1]`.
    fc1_shares: Option<Tensor<3>>,
}

/// LeNet5 fast path of one batch: fc1 pre-activation = `total + Σ_{j∈S2} diff[j]`.
struct LenetShares {
    separate_total: Tensor<2>,
    separate_diff: Tensor<3>,
    removed_total: Tensor<2>,
    removed_diff: Tensor<3>,
}

/// Cached conv2 outputs for one layer-1 set.
pub struct Layer1Cache {
    s1: Vec<usize>,
    a1_removed: Vec<Tensor<4>>,
    z2_separate: Vec<Tensor<4>>,
    z2_removed: Vec<Tensor<4>>,
    lenet: Vec<LenetShares>,
}

impl Layer1Cache {
    /// The layer-1 set this cache was built for.
    pub fn layer1(&self) -> &[usize] {
        &self.s1
    }
}

/// A_s, A_r and their point for one selection.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scores {
    /// Accuracy of the separated model, percent.
    pub separate: f64,
    /// Accuracy with the selected filters removed, percent.
    pub removed: f64,
    /// point(A_s, A_r) against the evaluator's base accuracy.
    pub point: f64,
}

/// Evaluates selections of one model on one split.
pub struct Evaluator {
    net: Network,
    device: Device,
    channels: [usize; 2],
    batches: Vec<Batch>,
    a1_zero: Tensor<4>,
    classes: usize,
    base: Evaluation,
    evaluations: AtomicUsize,
    /// The first tensor conversion that failed during a candidate's evaluation (the candidate
    /// then counts no image); [`Evaluator::check`] turns it into an error.
    failure: Mutex<Option<String>>,
}

fn channel_mask(c: usize, selected: &[usize], device: &Device) -> Tensor<4> {
    let values: Vec<f32> = (0..c)
        .map(|i| if selected.contains(&i) { 1.0 } else { 0.0 })
        .collect();
    Tensor::from_data(TensorData::new(values, [1, c, 1, 1]), device)
}

impl Evaluator {
    /// Runs layers 1–2 once over `split` (in batches of `batch_size`) and caches them.
    pub fn new(
        model: &TrainedModel,
        split: &DatasetSplit,
        batch_size: usize,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let net = network(model, device)?;
        let channels = channels(model)?;
        let indices: Vec<usize> = (0..split.len()).collect();
        let mut batches = Vec::new();
        for chunk in indices.chunks(batch_size.max(1)) {
            let (values, labels) =
                privdnn_data::make_batch(split, chunk, &model.normalization, None);
            let a1 = net.layer1(net.conv1(batch_tensor(values, chunk.len(), split, device)));
            let z2 = net.conv2(a1.clone());
            let fc1_shares = net.lenet_fc1_contributions(z2.clone()).map(|(g, _)| g);
            batches.push(Batch {
                a1,
                z2,
                labels,
                fc1_shares,
            });
        }
        let mut shape = batches
            .first()
            .map(|b| b.a1.dims())
            .ok_or_else(|| ModelError::Input("the evaluation split is empty".to_string()))?;
        shape[0] = 1;
        let z1_shape = {
            let x = batch_tensor(vec![0.0; split.image_len()], 1, split, device);
            net.conv1(x).dims()
        };
        let a1_zero = net.layer1(Tensor::zeros(z1_shape, device));
        debug_assert_eq!(a1_zero.dims(), shape);
        let mut evaluator = Self {
            net,
            device: device.clone(),
            channels,
            batches,
            a1_zero,
            classes: split.num_classes(),
            base: Evaluation::default(),
            evaluations: AtomicUsize::new(0),
            failure: Mutex::new(None),
        };
        let base = evaluator.run_tail(|i| {
            (
                evaluator.batches[i].a1.clone(),
                evaluator.batches[i].z2.clone(),
            )
        });
        evaluator.base = base;
        evaluator.check()?;
        Ok(evaluator)
    }

    /// Filters of conv1 and conv2.
    pub fn channels(&self) -> [usize; 2] {
        self.channels
    }

    /// Bytes per image of the cached tensors (f32): `[this evaluator, one Layer1Cache]`, from
    /// their shapes (the memory model of `cargo xtask estimate`; allocator reuse hides them from
    /// resident-size deltas on a few hundred images).
    pub fn bytes_per_image(&self) -> [usize; 2] {
        let Some(b) = self.batches.first() else {
            return [0, 0];
        };
        let per = |dims: &[usize], image_axis: usize| {
            dims.iter().product::<usize>() / dims[image_axis].max(1)
        };
        let (a1, z2) = (per(&b.a1.dims(), 0), per(&b.z2.dims(), 0));
        // LeNet5 shares `[C2, n, H1]`; a cache holds totals `[n, H1]` and diffs for both models.
        let shares = b.fc1_shares.as_ref().map_or([0, 0], |t| {
            let d = t.dims();
            [per(&d, 1), 2 * (d[2] + per(&d, 1))]
        });
        [4 * (a1 + z2 + shares[0]), 4 * (a1 + 2 * z2 + shares[1])]
    }

    /// Accuracy of the unmodified model on this split (A_o, the base of the point).
    pub fn original(&self) -> &Evaluation {
        &self.base
    }

    /// Number of tail evaluations performed so far.
    pub fn evaluations(&self) -> usize {
        self.evaluations.load(Ordering::Relaxed)
    }

    /// Errors if any evaluation so far could not read its logits back (callers of the scoring
    /// methods check once at the end instead of per candidate).
    pub fn check(&self) -> Result<(), ModelError> {
        match self.failure.lock().map(|f| f.clone()) {
            Ok(None) => Ok(()),
            Ok(Some(e)) => Err(ModelError::Tensor(e)),
            Err(_) => Err(ModelError::Tensor("evaluator state poisoned".into())),
        }
    }

    /// Logits of one batch, or no logits with the failure recorded for [`Evaluator::check`].
    fn logits(&self, t: Option<Tensor<2>>) -> Vec<f32> {
        let result = t
            .ok_or_else(|| ModelError::Input("not a LeNet5 tail".into()))
            .and_then(|t| tensor_values(t, "evaluator logits"));
        result.unwrap_or_else(|e| {
            if let Ok(mut f) = self.failure.lock() {
                f.get_or_insert_with(|| e.to_string());
            }
            Vec::new()
        })
    }

    fn run_tail(&self, inputs: impl Fn(usize) -> (Tensor<4>, Tensor<4>)) -> Evaluation {
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        let mut eval = Evaluation::default();
        for (i, batch) in self.batches.iter().enumerate() {
            let (a1, z2) = inputs(i);
            let logits = self.logits(Some(self.net.tail(a1, z2)));
            eval.add_logits(&logits, &batch.labels, self.classes);
        }
        eval
    }

    fn run_lenet(&self, pre: impl Fn(usize) -> Tensor<2>) -> Evaluation {
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        let mut eval = Evaluation::default();
        for (i, batch) in self.batches.iter().enumerate() {
            let logits = self.logits(self.net.lenet_after_fc1(pre(i)));
            eval.add_logits(&logits, &batch.labels, self.classes);
        }
        eval
    }

    fn lenet_shares(
        &self,
        z2_separate: Tensor<4>,
        z2_removed: Tensor<4>,
        full: &Tensor<3>,
    ) -> Option<LenetShares> {
        let (g_sep, bias) = self.net.lenet_fc1_contributions(z2_separate)?;
        let (g_rem, _) = self.net.lenet_fc1_contributions(z2_removed)?;
        let total = |g: &Tensor<3>| {
            let [_, n, h] = g.dims();
            g.clone().sum_dim(0).reshape([n, h]) + bias.clone().unsqueeze_dim(0)
        };
        Some(LenetShares {
            separate_total: total(&g_sep),
            separate_diff: full.clone() - g_sep,
            removed_total: total(&g_rem),
            removed_diff: g_rem.neg(),
        })
    }

    fn lenet_pre(&self, total: &Tensor<2>, diff: &Tensor<3>, s2: &[usize]) -> Tensor<2> {
        if s2.is_empty() {
            return total.clone();
        }
        let [_, n, h] = diff.dims();
        let idx: Vec<i64> = s2.iter().map(|&j| j as i64).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [s2.len()]), &self.device);
        total.clone() + diff.clone().select(0, idx).sum_dim(0).reshape([n, h])
    }

    /// Builds the conv2 caches for layer-1 set `s1`.
    pub fn layer1(&self, s1: &[usize]) -> Layer1Cache {
        let keep = channel_mask(self.channels[0], s1, &self.device)
            .neg()
            .add_scalar(1.0);
        let zero_part = self.a1_zero.clone() * (keep.clone().neg().add_scalar(1.0));
        let mut cache = Layer1Cache {
            s1: s1.to_vec(),
            a1_removed: Vec::new(),
            z2_separate: Vec::new(),
            z2_removed: Vec::new(),
            lenet: Vec::new(),
        };
        for b in &self.batches {
            let kept = b.a1.clone() * keep.clone();
            let removed = kept.clone() + zero_part.clone();
            let z2_separate = self.net.conv2(kept);
            let z2_removed = self.net.conv2(removed.clone());
            if let Some(shares) = b
                .fc1_shares
                .as_ref()
                .and_then(|full| self.lenet_shares(z2_separate.clone(), z2_removed.clone(), full))
            {
                cache.lenet.push(shares);
            }
            cache.z2_separate.push(z2_separate);
            cache.z2_removed.push(z2_removed);
            cache.a1_removed.push(removed);
        }
        cache
    }

    /// A_s of (S1 of `cache`, `s2`).
    pub fn separate(&self, cache: &Layer1Cache, s2: &[usize]) -> Evaluation {
        if !cache.lenet.is_empty() {
            return self.run_lenet(|i| {
                self.lenet_pre(
                    &cache.lenet[i].separate_total,
                    &cache.lenet[i].separate_diff,
                    s2,
                )
            });
        }
        let m = channel_mask(self.channels[1], s2, &self.device);
        let not_m = m.clone().neg().add_scalar(1.0);
        self.run_tail(|i| {
            let b = &self.batches[i];
            (
                b.a1.clone(),
                b.z2.clone() * m.clone() + cache.z2_separate[i].clone() * not_m.clone(),
            )
        })
    }

    /// A_r of (S1 of `cache`, `s2`); with an empty `s2` this is the layer-1-only removal.
    pub fn removed(&self, cache: &Layer1Cache, s2: &[usize]) -> Evaluation {
        if !cache.lenet.is_empty() {
            return self.run_lenet(|i| {
                self.lenet_pre(
                    &cache.lenet[i].removed_total,
                    &cache.lenet[i].removed_diff,
                    s2,
                )
            });
        }
        let keep = channel_mask(self.channels[1], s2, &self.device)
            .neg()
            .add_scalar(1.0);
        self.run_tail(|i| {
            (
                cache.a1_removed[i].clone(),
                cache.z2_removed[i].clone() * keep.clone(),
            )
        })
    }

    /// A_s, A_r and point of a layer-2 set under `cache`.
    pub fn scores(&self, cache: &Layer1Cache, s2: &[usize]) -> Scores {
        let separate = self.separate(cache, s2).accuracy();
        let removed = self.removed(cache, s2).accuracy();
        Scores {
            separate,
            removed,
            point: point(separate, removed, self.base.accuracy()),
        }
    }

    /// A_s and A_r evaluations of a complete selection (builds its layer-1 cache).
    pub fn evaluate(
        &self,
        selection: &NeuronSelection,
    ) -> Result<(Evaluation, Evaluation), ModelError> {
        selection
            .validate(self.channels)
            .map_err(ModelError::Selection)?;
        let cache = self.layer1(&selection.layer1);
        let both = (
            self.separate(&cache, &selection.layer2),
            self.removed(&cache, &selection.layer2),
        );
        self.check()?;
        Ok(both)
    }
}
