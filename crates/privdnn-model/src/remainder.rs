//! The user's clear remainder network of PrivDNN's partial encryption: the float model without
//! the secret weights, evaluated with the block's selected outputs (decrypted or shadow)
//! injected into the selected conv2 filters (and, for ResNet18's shortcut, into the selected
//! layer-1 channels). The integer outputs and their scales come from `privdnn-quant`.

use burn::tensor::{Device, Tensor, TensorData};
use privdnn_artifacts::{DatasetSplit, Normalization, TrainedModel};
use privdnn_quant::Injection;

use crate::convert::tensor_values;
use crate::error::ModelError;
use crate::eval::batch_tensor;
use crate::network::Network;
use crate::weights::import_tensors;

/// The float remainder model, ready to finish the network in clear.
pub struct RemainderNet {
    net: Network,
    normalization: Normalization,
    device: Device,
}

impl RemainderNet {
    /// Builds the network of `model` (the remainder shipped to the user) on `device`.
    pub fn new(model: &TrainedModel, device: Device) -> Result<Self, ModelError> {
        let net = import_tensors(Network::new(&model.spec, &device)?, &model.tensors, None)?;
        Ok(Self {
            net,
            normalization: model.normalization.clone(),
            device,
        })
    }

    /// Logits (`[images × classes]`, row-major) of images `indices` of `split`, with the
    /// selected outputs of `inject` (one entry per index, in order) in place of the block's.
    pub fn logits(
        &self,
        split: &DatasetSplit,
        indices: &[usize],
        inject: &Injection<'_>,
    ) -> Result<Vec<f32>, ModelError> {
        let outputs = inject.outputs;
        if outputs.z.len() != indices.len() || (inject.layer1 && outputs.a1.len() != indices.len())
        {
            return Err(ModelError::Input(format!(
                "{} images but {} decrypted outputs",
                indices.len(),
                outputs.z.len()
            )));
        }
        let (values, _) = privdnn_data::make_batch(split, indices, &self.normalization, None);
        let x = batch_tensor(values, indices.len(), split, &self.device);
        let mut a1 = self.net.layer1(self.net.conv1(x));
        if inject.layer1 {
            a1 = self.inject(a1, inject.s1, &outputs.a1, inject.layer1_scale)?;
        }
        let z2 = self.net.conv2(a1.clone());
        let z2 = self.inject(z2, inject.s2, &outputs.z, inject.out_scale)?;
        tensor_values(self.net.tail(a1, z2), "logits")
    }

    /// Replaces channels `chosen` of an NCHW tensor with `values[img][k][pos] / scale`.
    fn inject(
        &self,
        t: Tensor<4>,
        chosen: &[usize],
        values: &[Vec<Vec<i64>>],
        scale: f64,
    ) -> Result<Tensor<4>, ModelError> {
        let dims = t.dims();
        let [n, c, h, w] = dims;
        let mut data = tensor_values(t, "block output")?;
        for (img, per_img) in values.iter().enumerate().take(n) {
            if per_img.len() != chosen.len() {
                return Err(ModelError::Input(format!(
                    "{} injected channels for {} selected",
                    per_img.len(),
                    chosen.len()
                )));
            }
            for (k, &ch) in chosen.iter().enumerate() {
                if ch >= c || per_img[k].len() != h * w {
                    return Err(ModelError::Input(format!(
                        "injected channel {ch} ({} values) does not fit {c} channels of {h}×{w}",
                        per_img[k].len()
                    )));
                }
                let base = (img * c + ch) * h * w;
                for (pos, &v) in per_img[k].iter().enumerate() {
                    data[base + pos] = (v as f64 / scale) as f32;
                }
            }
        }
        Ok(Tensor::from_data(TensorData::new(data, dims), &self.device))
    }
}
