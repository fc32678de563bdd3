//! The integer model follows burn's float model on every architecture the baselines import
//! (LeNet5, AlexNet, VGG16 at small width, seeded non-trivial batch-norm statistics, random
//! images): integer logits / 2^frac within 2 % of the largest float logit. This checks the
//! importer's layer order, padding, pooling, BN folding and FC weight layout against burn itself.

use privdnn_artifacts::TrainedModel;
use privdnn_model::burn::tensor::{Device as BurnDevice, Tensor, TensorData};
use privdnn_model::{Network, import_tensors};
use privdnn_mpc::shadow::logits;
use privdnn_mpc::{QuantConfig, import_model};

/// burn's float logits of `images` (raw bytes) for `net` with `norm`.
fn burn_logits(
    net: &Network,
    spec: &privdnn_artifacts::ModelSpec,
    norm: &privdnn_artifacts::Normalization,
    images: &[Vec<u8>],
) -> Vec<Vec<f32>> {
    let device = BurnDevice::flex();
    let plane = spec.image_size * spec.image_size;
    let values: Vec<f32> = images
        .iter()
        .flat_map(|img| {
            img.iter().enumerate().map(move |(j, &p)| {
                let c = (j / plane) % norm.mean.len();
                (p as f32 / 255.0 - norm.mean[c]) / norm.std[c]
            })
        })
        .collect();
    let x = Tensor::<4>::from_data(
        TensorData::new(
            values,
            [
                images.len(),
                spec.in_channels,
                spec.image_size,
                spec.image_size,
            ],
        ),
        &device,
    );
    let l: Vec<f32> = net
        .forward(x)
        .to_data()
        .try_into_vec::<f32>()
        .expect("logits");
    l.chunks(spec.num_classes).map(<[f32]>::to_vec).collect()
}

#[test]
fn integer_model_follows_burn_on_every_architecture() {
    use privdnn_artifacts::{Architecture, ModelSpec, Normalization};
    use privdnn_model::export_tensors;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for (arch, cin, size, width) in [
        (Architecture::Lenet5, 1, 28, 1.0),
        (Architecture::Alexnet, 3, 32, 0.0625),
        (Architecture::Vgg16, 3, 32, 0.0625),
    ] {
        let spec = ModelSpec {
            architecture: arch,
            in_channels: cin,
            image_size: size,
            num_classes: 10,
            lenet_filters: [4, 6],
            width,
        };
        let device = BurnDevice::flex();
        let (mut tensors, _) =
            export_tensors(&Network::new(&spec, &device).expect("net")).expect("export");
        // non-trivial batch-norm statistics, so every fold is exercised
        for t in tensors.iter_mut().filter(|t| t.name.contains("bn")) {
            for v in t.values.iter_mut() {
                *v = if t.name.ends_with("running_var") || t.name.ends_with("gamma") {
                    rng.random_range(0.5..1.5)
                } else {
                    rng.random_range(-0.3..0.3)
                };
            }
        }
        let net = import_tensors(Network::new(&spec, &device).expect("net"), &tensors, None)
            .expect("import tensors");
        let norm = Normalization {
            mean: vec![0.45; cin],
            std: vec![0.25; cin],
        };
        let trained = TrainedModel {
            dataset: "synthetic".into(),
            spec: spec.clone(),
            normalization: norm.clone(),
            tensors,
        };
        let model = import_model(&trained, &QuantConfig::default()).expect("integer model");
        let images: Vec<Vec<u8>> = (0..4)
            .map(|_| (0..cin * size * size).map(|_| rng.random::<u8>()).collect())
            .collect();
        let float = burn_logits(&net, &spec, &norm, &images);
        let scale = (model.logit_frac_bits as f64).exp2();
        for (img, fl) in images.iter().zip(&float) {
            let il = logits(&model, img).expect("shadow");
            let peak = fl.iter().fold(0f64, |m, v| m.max((*v as f64).abs()));
            let worst = il
                .iter()
                .zip(fl)
                .map(|(i, f)| (*i as f64 / scale - *f as f64).abs())
                .fold(0.0, f64::max);
            assert!(
                worst <= 0.02 * peak + 1e-3,
                "{arch:?}: integer logits {:?} vs float {fl:?}",
                il.iter().map(|i| *i as f64 / scale).collect::<Vec<_>>()
            );
        }
    }
}
