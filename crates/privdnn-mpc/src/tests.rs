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
