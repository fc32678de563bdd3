//! Cost profile on a VGG16 w0.25 CIFAR-10-shaped model with seeded weights (no training): the
//! device's CPU per image in the protocol against the integer shadow (the device running the
//! whole model alone). Ignored by default (seconds of CPU); run with
//! `cargo test --release -p privdnn-edge --test cost -- --ignored --nocapture`.

use std::time::Instant;

use privdnn_artifacts::{Architecture, ModelSpec, NamedTensor, Normalization, TrainedModel};
use privdnn_edge::device::Device;
use privdnn_edge::edge::EdgeServer;
use privdnn_edge::harness::InProcessLink;
use privdnn_edge::messages::IntegrityConfig;
use privdnn_edge::owner::setup;
use privdnn_mpc::shadow::{logits, op_counts};
use privdnn_mpc::{QuantConfig, import_model};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn vgg_quick() -> TrainedModel {
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

#[test]
#[ignore]
fn vgg_quick_cost_profile() {
    let model = import_model(&vgg_quick(), &QuantConfig::default()).expect("import");
    let counts = op_counts(&model);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let images: Vec<Vec<u8>> = (0..16)
        .map(|_| (0..3 * 32 * 32).map(|_| rng.random::<u8>()).collect())
        .collect();
    let clock = Instant::now();
    let shadow: Vec<Vec<i64>> = images
        .iter()
        .map(|i| logits(&model, i).expect("shadow"))
        .collect();
    let alone = clock.elapsed().as_secs_f64() / images.len() as f64;
    let s = setup(&model, &IntegrityConfig::default(), &mut rand::rng()).expect("setup");
    let device = Device::new(s.device).expect("device");
    let mut link = InProcessLink::new(EdgeServer::new(s.edge_a), EdgeServer::new(s.edge_b));
    let refs: Vec<&[u8]> = images.iter().map(Vec::as_slice).collect();
    let out = device.infer(&refs, &mut link).expect("infer");
    assert_eq!(out.logits, shadow);
    let dev = out.device_seconds / images.len() as f64;
    eprintln!(
        "VGG16 w0.25: {} MACs, {} linear I/O words, {} clear ops; shadow {:.2} ms/image, \
         device {:.3} ms/image ({:.2} %), bytes to A {} per image",
        counts.linear_macs,
        counts.linear_io,
        counts.clear_ops,
        1e3 * alone,
        1e3 * dev,
        100.0 * dev / alone,
        link.bytes.to_a / images.len() as u64
    );
}
