//! Import of a hand-built LeNet5 artifact (no burn): the block ops reproduce PrivDNN's
//! [`IntBlock`] outputs exactly, the tail has the documented op sequence, and a device copy holds
//! no weight.

use privdnn_artifacts::{Architecture, ModelSpec, NamedTensor, Normalization, TrainedModel};

use crate::prg::MaskKey;
use crate::shadow::{logits, op_counts, trace};
use crate::{Op, QuantConfig, import_model, ring};

fn tensor(name: &str, shape: Vec<usize>, prg: &mut crate::Prg, amp: f32) -> NamedTensor {
    let n = shape.iter().product();
    let values = prg
        .ring(n)
        .into_iter()
        .map(|v| ((v >> 11) as f64 / (1u64 << 53) as f64 - 0.5) as f32 * 2.0 * amp)
        .collect();
    NamedTensor {
        name: name.into(),
        shape,
        values,
    }
}

pub(crate) fn lenet_model() -> TrainedModel {
    let mut prg = MaskKey([5; 32]).stream("lenet", &[]);
    let t = |n: &str, s: Vec<usize>, a: f32, prg: &mut crate::Prg| tensor(n, s, prg, a);
    TrainedModel {
        dataset: "synthetic".into(),
        spec: ModelSpec {
            architecture: Architecture::Lenet5,
            in_channels: 1,
            image_size: 28,
            num_classes: 10,
            lenet_filters: [3, 4],
            width: 1.0,
        },
        normalization: Normalization {
            mean: vec![0.5],
            std: vec![0.25],
        },
        tensors: vec![
            t("conv1.weight", vec![3, 1, 5, 5], 0.3, &mut prg),
            t("conv1.bias", vec![3], 0.1, &mut prg),
            t("conv2.weight", vec![4, 3, 5, 5], 0.2, &mut prg),
            t("conv2.bias", vec![4], 0.1, &mut prg),
            t("fc1.weight", vec![64, 12], 0.2, &mut prg),
            t("fc1.bias", vec![12], 0.1, &mut prg),
            t("fc2.weight", vec![12, 8], 0.3, &mut prg),
            t("fc2.bias", vec![8], 0.1, &mut prg),
            t("fc3.weight", vec![8, 10], 0.3, &mut prg),
            t("fc3.bias", vec![10], 0.1, &mut prg),
        ],
    }
}

#[test]
fn block_ops_are_privdnns_block_bit_for_bit() {
    let model = import_model(&lenet_model(), &QuantConfig::default()).expect("import");
    let names: Vec<&str> = model.ops.iter().map(Op::name).collect();
    assert_eq!(
        names,
        [
            "conv", "square", "conv", "sumpool", "rescale", "square", "rescale", "fc", "rescale",
            "relu", "fc", "rescale", "relu", "fc", "rescale"
        ]
    );
    let mut prg = MaskKey([6; 32]).stream("img", &[]);
    for _ in 0..3 {
        let raw: Vec<u8> = prg.ring(784).into_iter().map(|v| v as u8).collect();
        let tr = trace(&model, &raw).expect("trace");
        let b = &model.block;
        let a = b.layer1(&b.center(&raw));
        let a_flat: Vec<i64> = a.iter().flatten().copied().collect();
        assert_eq!(ring::to_signed_vec(&tr[2]), a_flat);
        let z: Vec<i64> = (0..b.shape.c2)
            .flat_map(|j| b.layer2(&a, j))
            .map(|v| i64::try_from(v).expect("|Z| < 2^47"))
            .collect();
        assert_eq!(ring::to_signed_vec(&tr[3]), z);
        assert_eq!(logits(&model, &raw).expect("logits").len(), 10);
    }
    let counts = op_counts(&model);
    // conv1 (combined 6×6 stride 2) 3·144·36 + conv2 4·64·75 + fc 64·12 + 12·8 + 8·10.
    assert_eq!(
        counts.linear_macs,
        3 * 144 * 36 + 4 * 64 * 75 + 64 * 12 + 96 + 80
    );
    assert_eq!(counts.linear_layers, 5);
    let bare = model.without_linear_weights();
    assert!(bare.block.w1.is_empty() && bare.block.w2.is_empty());
    assert!(bare.ops.iter().all(|op| match op {
        Op::Conv(c) => c.weights.is_empty() && c.bias.is_empty(),
        Op::Fc(f) => f.weights.is_empty() && f.bias.is_empty(),
        _ => true,
    }));
}

#[test]
fn resnet_is_refused_by_name() {
    let mut m = lenet_model();
    m.spec.architecture = Architecture::Resnet18;
    m.tensors.truncate(4);
    let err = import_model(&m, &QuantConfig::default()).expect_err("resnet");
    assert!(err.to_string().contains("resnet18"), "{err}");
}

/// A small AlexNet (18×18 RGB, 4/6/4/4/4 channels, 5 classes) with BN2 = (1, 0, 0, 1).
fn alexnet_model() -> TrainedModel {
    let mut prg = MaskKey([7; 32]).stream("alexnet", &[]);
    let t = |n: &str, s: Vec<usize>, a: f32, prg: &mut crate::Prg| tensor(n, s, prg, a);
    let fill = |n: &str, v: f32| NamedTensor {
        name: n.into(),
        shape: vec![6],
        values: vec![v; 6],
    };
    let mut tensors = vec![
        t("conv1.weight", vec![4, 3, 5, 5], 0.3, &mut prg),
        t("conv1.bias", vec![4], 0.1, &mut prg),
        t("conv2.weight", vec![6, 4, 3, 3], 0.3, &mut prg),
        t("conv2.bias", vec![6], 0.1, &mut prg),
        fill("bn2.gamma", 1.0),
        fill("bn2.beta", 0.0),
        fill("bn2.running_mean", 0.0),
        fill("bn2.running_var", 1.0),
    ];
    for (name, cin) in [("conv3", 6), ("conv4", 4), ("conv5", 4)] {
        tensors.push(t(
            &format!("{name}.weight"),
            vec![4, cin, 3, 3],
            0.3,
            &mut prg,
        ));
        tensors.push(t(&format!("{name}.bias"), vec![4], 0.1, &mut prg));
    }
    for (name, i, o) in [("fc1", 16, 8), ("fc2", 8, 8), ("fc3", 8, 5)] {
        tensors.push(t(&format!("{name}.weight"), vec![i, o], 0.3, &mut prg));
        tensors.push(t(&format!("{name}.bias"), vec![o], 0.1, &mut prg));
    }
    TrainedModel {
        dataset: "synthetic".into(),
        spec: ModelSpec {
            architecture: Architecture::Alexnet,
            in_channels: 3,
            image_size: 18,
            num_classes: 5,
            lenet_filters: [4, 6],
            width: 1.0,
        },
        normalization: Normalization {
            mean: vec![0.4, 0.45, 0.5],
            std: vec![0.25, 0.22, 0.2],
        },
        tensors,
    }
}

fn set_values(m: &mut TrainedModel, name: &str, values: Vec<f32>) {
    let t = m.tensors.iter_mut().find(|t| t.name == name).expect(name);
    t.values = values;
}

/// AlexNet's BN2 is folded into the requantisation of PrivDNN's block output, whose scale is
/// near 2^36; with a trained model's statistics (conv2 reads squares, so |mean| ≫ std) the
/// shift `β − μ·γ/σ` is several units, and its addend at `2^(frac_bits + k)` once saturated the
/// i64 cast (shifts clipped to ±0.125: GTSRB quick's float/integer agreement fell to 65 %).
/// The requantised values must equal `γ·(Z/out_scale − μ)/σ + β` to the fixed-point step.
#[test]
fn alexnet_bn2_requantisation_keeps_large_shifts() {
    let raw_images: Vec<Vec<u8>> = {
        let mut prg = MaskKey([8; 32]).stream("img", &[]);
        (0..4)
            .map(|_| prg.ring(3 * 18 * 18).into_iter().map(|v| v as u8).collect())
            .collect()
    };
    let mut m = alexnet_model();
    // conv2's statistics measured on the images, as training would leave them in BN2
    let plain = import_model(&m, &QuantConfig::default()).expect("import");
    let plane = 64;
    let z: Vec<Vec<f64>> = raw_images
        .iter()
        .map(|raw| {
            let tr = trace(&plain, raw).expect("trace");
            let s = plain.block.out_scale;
            tr[3]
                .iter()
                .map(|&v| ring::to_signed(v) as f64 / s)
                .collect()
        })
        .collect();
    let (mut mean, mut var) = (vec![0f32; 6], vec![0f32; 6]);
    for c in 0..6 {
        let vals: Vec<f64> = z
            .iter()
            .flat_map(|x| x[c * plane..(c + 1) * plane].to_vec())
            .collect();
        let mu = vals.iter().sum::<f64>() / vals.len() as f64;
        let v = vals.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / vals.len() as f64;
        (mean[c], var[c]) = (mu as f32, v as f32);
    }
    let (gamma, beta) = (
        vec![0.5, 1.0, 2.0, 1.5, 0.8, 1.2],
        vec![1.5, -1.0, 0.3, -1.5, 0.0, 2.0],
    );
    set_values(&mut m, "bn2.running_mean", mean.clone());
    set_values(&mut m, "bn2.running_var", var.clone());
    set_values(&mut m, "bn2.gamma", gamma.clone());
    set_values(&mut m, "bn2.beta", beta.clone());
    let model = import_model(&m, &QuantConfig::default()).expect("import");
    assert_eq!(
        model.block, plain.block,
        "BN2 must not touch PrivDNN's block"
    );
    let mut worst = 0f64;
    for raw in &raw_images {
        let tr = trace(&model, raw).expect("trace");
        for (j, (&zi, &yi)) in tr[3].iter().zip(&tr[4]).enumerate() {
            let c = j / plane;
            let zf = ring::to_signed(zi) as f64 / model.block.out_scale;
            let sd = (var[c] as f64 + 1e-5).sqrt();
            let want = (zf - mean[c] as f64) / sd * gamma[c] as f64 + beta[c] as f64;
            worst = worst.max((ring::decode_fixed(yi, model.frac_bits) - want).abs());
        }
    }
    assert!(worst < 4.0 / 4096.0, "BN2 requantisation off by {worst}");
}
