//! The float block of a trained model: conv1/conv2 read from the model's named tensors,
//! ResNet18's BN1 folded into conv1, the input normalisation kept separate (quantisation folds
//! it), and the per-architecture geometry of the block (paddings, the pool folded into conv1).

use privdnn_artifacts::{Architecture, NamedTensor, TrainedModel};

use crate::{BlockShape, FloatBlock, QuantError, Result};

/// Geometry of the encrypted block per architecture: (conv1 padding, pool, conv2 padding).
/// The infer crate's tests check it against the burn models' layers.
pub fn block_geometry(arch: Architecture) -> (usize, usize, usize) {
    match arch {
        Architecture::Lenet5 => (0, 2, 0),
        Architecture::Alexnet => (1, 2, 1),
        Architecture::Vgg16 | Architecture::Resnet18 => (1, 1, 1),
    }
}

/// Whether the tail reads layer 1's output (ResNet18's shortcut), so the selected layer-1
/// squares must be decrypted too.
pub fn needs_layer1_outputs(arch: Architecture) -> bool {
    arch == Architecture::Resnet18
}

fn tensor<'a>(model: &'a TrainedModel, name: &str) -> Result<&'a NamedTensor> {
    model
        .tensor(name)
        .ok_or_else(|| QuantError::Model(format!("no tensor `{name}` in the model")))
}

/// A 4-d convolution weight's `[out, in, k, k]`, or an error naming the tensor.
fn conv_dims(t: &NamedTensor) -> Result<(usize, usize, usize)> {
    match t.shape[..] {
        [o, i, k, k2] if k == k2 && t.values.len() == o * i * k * k => Ok((o, i, k)),
        _ => Err(QuantError::Model(format!(
            "`{}` has shape {:?}, expected a square convolution kernel",
            t.name, t.shape
        ))),
    }
}

/// A per-channel vector of length `n`, or an error naming the tensor.
fn channel_values<'a>(model: &'a TrainedModel, name: &str, n: usize) -> Result<&'a [f32]> {
    let t = tensor(model, name)?;
    if t.values.len() != n {
        return Err(QuantError::Model(format!(
            "`{name}` has {} values, expected {n}",
            t.values.len()
        )));
    }
    Ok(&t.values)
}

/// The float block of a trained model (normalisation still separate, BN1 folded for ResNet18).
pub fn float_block(model: &TrainedModel) -> Result<FloatBlock> {
    let w1 = tensor(model, "conv1.weight")?;
    let w2 = tensor(model, "conv2.weight")?;
    let (c1, cin, k1) = conv_dims(w1)?;
    let (c2, _, k2) = conv_dims(w2)?;
    let (pad1, pool, pad2) = block_geometry(model.spec.architecture);
    let size = model.spec.image_size;
    let shape = BlockShape::new(cin, size, size, k1, pad1, pool, c1, k2, pad2, c2)?;
    let bias = |name: &str, n: usize| -> Result<Vec<f32>> {
        match model.tensor(name) {
            None => Ok(vec![0.0; n]),
            Some(_) => channel_values(model, name, n).map(<[f32]>::to_vec),
        }
    };
    let mut w1v = w1.values.clone();
    let mut b1 = bias("conv1.bias", c1)?;
    if model.spec.architecture == Architecture::Resnet18 {
        let (g, b, m, v) = (
            channel_values(model, "bn1.gamma", c1)?,
            channel_values(model, "bn1.beta", c1)?,
            channel_values(model, "bn1.running_mean", c1)?,
            channel_values(model, "bn1.running_var", c1)?,
        );
        let per = cin * k1 * k1;
        for c in 0..c1 {
            let scale = g[c] / (v[c] + 1e-5).sqrt();
            w1v[c * per..(c + 1) * per]
                .iter_mut()
                .for_each(|w| *w *= scale);
            b1[c] = scale * (b1[c] - m[c]) + b[c];
        }
    }
    let norm = &model.normalization;
    if norm.mean.is_empty() || norm.std.is_empty() {
        return Err(QuantError::Model(
            "the model has no input normalisation".into(),
        ));
    }
    let pick = |v: &[f32], c: usize| v[c % v.len()];
    Ok(FloatBlock {
        shape,
        w1: w1v,
        b1,
        w2: w2.values.clone(),
        b2: bias("conv2.bias", c2)?,
        mean: (0..cin).map(|c| pick(&norm.mean, c)).collect(),
        std: (0..cin).map(|c| pick(&norm.std, c)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use privdnn_artifacts::{ModelSpec, Normalization};

    fn model(arch: Architecture, tensors: Vec<NamedTensor>) -> TrainedModel {
        TrainedModel {
            dataset: "synthetic".into(),
            spec: ModelSpec {
                architecture: arch,
                in_channels: 1,
                image_size: 8,
                num_classes: 10,
                lenet_filters: [2, 2],
                width: 1.0,
            },
            normalization: Normalization {
                mean: vec![0.5],
                std: vec![0.25],
            },
            tensors,
        }
    }

    fn t(name: &str, shape: Vec<usize>, value: f32) -> NamedTensor {
        let n = shape.iter().product();
        NamedTensor {
            name: name.into(),
            shape,
            values: vec![value; n],
        }
    }

    #[test]
    fn resnet_bn1_is_folded_into_conv1() {
        let m = model(
            Architecture::Resnet18,
            vec![
                t("conv1.weight", vec![2, 1, 3, 3], 1.0),
                t("conv2.weight", vec![2, 2, 3, 3], 1.0),
                t("bn1.gamma", vec![2], 2.0),
                t("bn1.beta", vec![2], 0.5),
                t("bn1.running_mean", vec![2], 1.0),
                t("bn1.running_var", vec![2], 4.0 - 1e-5),
            ],
        );
        let fb = float_block(&m).expect("float block");
        // scale = 2 / sqrt(4) = 1; bias = 1·(0 − 1) + 0.5.
        assert!(fb.w1.iter().all(|w| (w - 1.0).abs() < 1e-6));
        assert!(fb.b1.iter().all(|b| (b + 0.5).abs() < 1e-6));
        assert_eq!((fb.shape.h1, fb.shape.h2), (8, 8));
    }

    #[test]
    fn missing_or_misshaped_tensors_are_named() {
        let m = model(
            Architecture::Lenet5,
            vec![t("conv1.weight", vec![2, 1, 3, 3], 1.0)],
        );
        let err = float_block(&m).expect_err("no conv2");
        assert!(err.to_string().contains("conv2.weight"), "{err}");
        let m = model(
            Architecture::Lenet5,
            vec![
                t("conv1.weight", vec![2, 1, 3, 3], 1.0),
                t("conv2.weight", vec![2, 2, 3, 3], 1.0),
                t("conv1.bias", vec![3], 1.0),
            ],
        );
        let err = float_block(&m).expect_err("bias length");
        assert!(err.to_string().contains("conv1.bias"), "{err}");
    }
}
