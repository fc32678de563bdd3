//! A VGG16 w0.25 CIFAR-10-shaped model with seeded weights of PyTorch's default scale
//! (±1/√fan_in, BN variances made positive), no training: the cost-profile tests of both
//! protocols (privdnn-edge, privdnn-twoserver) run on it.

use privdnn_artifacts::{Architecture, ModelSpec, NamedTensor, Normalization, TrainedModel};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The model (32×32×3 inputs, 10 classes, conv widths 16 … 128, fc 128 → 128 → 10).
pub fn vgg_quick() -> TrainedModel {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut tensors = Vec::new();
    let mut add = |name: String, shape: Vec<usize>, fan_in: usize| {
        let b = 1.0 / (fan_in as f32).sqrt();
        let n = shape.iter().product();
        let values = (0..n).map(|_| rng.random_range(-b..b)).collect();
        tensors.push(NamedTensor {
            name,
            shape,
            values,
        });
    };
    let bn = |add: &mut dyn FnMut(String, Vec<usize>, usize), name: &str, c: usize| {
        for part in ["gamma", "beta", "running_mean", "running_var"] {
            add(format!("{name}.{part}"), vec![c], 4);
        }
    };
    add("conv1.weight".into(), vec![16, 3, 3, 3], 27);
    add("conv1.bias".into(), vec![16], 27);
    add("conv2.weight".into(), vec![16, 16, 3, 3], 144);
    add("conv2.bias".into(), vec![16], 144);
    add("obscure.weight".into(), vec![16, 1, 3, 3], 9);
    bn(&mut add, "bn2", 16);
    let plan = [32, 32, 64, 64, 64, 128, 128, 128, 128, 128, 128];
    let mut cin = 16;
    for (i, &c) in plan.iter().enumerate() {
        add(
            format!("blocks.{i}.conv.weight"),
            vec![c, cin, 3, 3],
            cin * 9,
        );
        add(format!("blocks.{i}.conv.bias"), vec![c], cin * 9);
        bn(&mut add, &format!("blocks.{i}.bn"), c);
        cin = c;
    }
    for (name, i, o) in [("fc1", 128, 128), ("fc2", 128, 128), ("fc3", 128, 10)] {
        add(format!("{name}.weight"), vec![i, o], i);
        add(format!("{name}.bias"), vec![o], i);
    }
    for t in tensors
        .iter_mut()
        .filter(|t| t.name.ends_with("running_var"))
    {
        t.values.iter_mut().for_each(|v| *v = v.abs() + 0.5);
    }
    TrainedModel {
        dataset: "synthetic".into(),
        spec: ModelSpec {
            architecture: Architecture::Vgg16,
            in_channels: 3,
            image_size: 32,
            num_classes: 10,
            lenet_filters: [6, 16],
            width: 0.25,
        },
        normalization: Normalization {
            mean: vec![0.49, 0.48, 0.45],
            std: vec![0.25, 0.24, 0.26],
        },
        tensors,
    }
}
