//! Cost profile on a VGG16 w0.25 CIFAR-10-shaped model with seeded weights (the builder of
//! privdnn-edge's cost test, no training): exact against the shadow, measured online bytes and
//! flights against the analytic count, seconds per party. Ignored by default (seconds of CPU);
//! `cargo test --release -p privdnn-twoserver --test cost -- --ignored --nocapture`.

use privdnn_artifacts::{Architecture, ModelSpec, NamedTensor, Normalization, TrainedModel};
use privdnn_mpc::{QuantConfig, import_model};
use privdnn_twoserver::harness::Harness;
use privdnn_twoserver::metrics::run;
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
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let images: Vec<Vec<u8>> = (0..2)
        .map(|_| (0..3 * 32 * 32).map(|_| rng.random::<u8>()).collect())
        .collect();
    let refs: Vec<&[u8]> = images.iter().map(Vec::as_slice).collect();
    let mut h = Harness::new(&model, 4).expect("harness");
    let m = run(&mut h, &model, &refs, &[0, 0]).expect("run");
    println!("{}", serde_json::to_string_pretty(&m).expect("json"));
    assert_eq!(m.exact_match_rate, 100.0);
    let (meas, ana) = (
        m.online_per_image.total() as f64,
        m.analytic.bytes.total() as f64,
    );
    assert!((meas - ana).abs() <= 0.05 * ana, "{meas} vs {ana}");
}
