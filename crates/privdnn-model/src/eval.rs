//! Accuracy of a network on a dataset split: top-1, top-5 and per-class counts, in batches on a
//! non-autodiff device. Also the tensor constructors shared with the training loop.

use burn::tensor::{Device, Int, Tensor, TensorData};
use privdnn_artifacts::{DatasetSplit, Normalization};

use crate::convert::tensor_values;
use crate::error::ModelError;
use crate::network::{ChannelMasks, Network};

/// Counts of an evaluation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evaluation {
    /// Images evaluated.
    pub total: usize,
    /// Top-1 hits.
    pub correct: usize,
    /// Top-5 hits.
    pub top5_correct: usize,
    /// Top-1 hits per class.
    pub per_class_correct: Vec<usize>,
    /// Images per class.
    pub per_class_total: Vec<usize>,
    /// Sum of the cross-entropy loss over all images.
    pub loss_sum: f64,
}

impl Evaluation {
    /// Top-1 accuracy in percent.
    pub fn accuracy(&self) -> f64 {
        percent(self.correct, self.total)
    }

    /// Top-5 accuracy in percent.
    pub fn top5_accuracy(&self) -> f64 {
        percent(self.top5_correct, self.total)
    }

    /// Mean cross-entropy loss.
    pub fn mean_loss(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.loss_sum / self.total as f64
        }
    }

    /// Per-class top-1 accuracy in percent.
    pub fn per_class_accuracy(&self) -> Vec<f64> {
        self.per_class_correct
            .iter()
            .zip(&self.per_class_total)
            .map(|(c, t)| percent(*c, *t))
            .collect()
    }

    /// Adds the results of one batch of logits (`[batch, classes]`, row-major).
    pub fn add_logits(&mut self, logits: &[f32], labels: &[i64], classes: usize) {
        if self.per_class_total.len() < classes {
            self.per_class_total.resize(classes, 0);
            self.per_class_correct.resize(classes, 0);
        }
        for (row, &label) in logits.chunks(classes).zip(labels) {
            let label = label as usize;
            let target = row[label];
            let above = row.iter().filter(|v| **v > target).count();
            // ties count against the label, as argmax would pick the first maximal index
            let ties_before = row[..label].iter().filter(|v| **v == target).count();
            let rank = above + ties_before;
            self.total += 1;
            self.per_class_total[label] += 1;
            if rank == 0 {
                self.correct += 1;
                self.per_class_correct[label] += 1;
            }
            if rank < 5 {
                self.top5_correct += 1;
            }
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let log_sum: f64 = row
                .iter()
                .map(|v| ((v - max) as f64).exp())
                .sum::<f64>()
                .ln();
            self.loss_sum += log_sum - (target - max) as f64;
        }
    }
}

fn percent(hits: usize, total: usize) -> f64 {
    if total == 0 {
        0.0
    } else {
        100.0 * hits as f64 / total as f64
    }
}

/// An NCHW float tensor from a flat batch produced by `privdnn_data::make_batch`.
pub fn batch_tensor(
    values: Vec<f32>,
    batch: usize,
    split: &DatasetSplit,
    device: &Device,
) -> Tensor<4> {
    Tensor::from_data(
        TensorData::new(values, [batch, split.channels, split.height, split.width]),
        device,
    )
}

/// A label tensor.
pub fn label_tensor(labels: Vec<i64>, device: &Device) -> Tensor<1, Int> {
    let n = labels.len();
    Tensor::from_data(TensorData::new(labels, [n]), device)
}

/// How many rows of `logits` (`[n, classes]`) have their largest value at the label's index.
pub fn correct_count(logits: Tensor<2>, labels: Tensor<1, Int>) -> i64 {
    logits
        .argmax(1)
        .flatten::<1>(0, 1)
        .equal(labels)
        .int()
        .sum()
        .into_scalar::<i64>()
}

/// Evaluates `net` on every image of `split` (in order) in batches of `batch_size`.
pub fn evaluate(
    net: &Network,
    split: &DatasetSplit,
    normalization: &Normalization,
    batch_size: usize,
    masks: Option<&ChannelMasks>,
    device: &Device,
) -> Result<Evaluation, ModelError> {
    let mut eval = Evaluation::default();
    let classes = split.num_classes();
    let indices: Vec<usize> = (0..split.len()).collect();
    for chunk in indices.chunks(batch_size.max(1)) {
        let (values, labels) = privdnn_data::make_batch(split, chunk, normalization, None);
        let x = batch_tensor(values, chunk.len(), split, device);
        let logits = net.forward_masked(x, masks);
        let logits = tensor_values(logits, "logits")?;
        eval.add_logits(&logits, &labels, classes);
    }
    Ok(eval)
}
