//! Real-shaped tiny models of every architecture through the real stage code: the integer block
//! read from the model's tensors (pool folded, ResNet18's BN1 folded) tracks burn's own layer-2
//! output, and the encrypted protocol (encrypt files → user → owner → user) reproduces the integer
//! shadow bit for bit — with the owner's secret file deleted before the user starts.

use privdnn_artifacts::{
    Architecture, ModelSpec, NeuronSelection, Normalization, RunLayout, TrainedModel,
};
use privdnn_config::HeConfig;
use privdnn_he::engine::Layout;
use privdnn_he::ops::OpCounter;
use privdnn_model::burn::tensor::{Device, Tensor, TensorData};
use privdnn_model::{Network, export_tensors, import_tensors};
use privdnn_partial::owner::OwnerSide;
use privdnn_partial::setup::{encrypt, write_outputs};
use privdnn_partial::shadow_outputs;
use privdnn_partial::user::UserSide;
use privdnn_quant::{IntBlock, float_block};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn tiny(arch: Architecture, cin: usize, size: usize) -> (TrainedModel, Network, Device) {
    let device = Device::flex();
    let spec = ModelSpec {
        architecture: arch,
        in_channels: cin,
        image_size: size,
        num_classes: 10,
        lenet_filters: [4, 5],
        width: if arch == Architecture::Lenet5 {
            1.0
        } else {
            0.0625
        },
    };
    let net = Network::new(&spec, &device).expect("network");
    let (mut tensors, _) = export_tensors(&net).expect("export");
    // Non-trivial BN statistics, so folding BN1 into conv1 is exercised.
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for t in tensors.iter_mut().filter(|t| t.name.starts_with("bn1.")) {
        for v in t.values.iter_mut() {
            *v = match t.name.as_str() {
                "bn1.running_var" => rng.random_range(0.5..2.0),
                "bn1.gamma" => rng.random_range(0.5..1.5),
                _ => rng.random_range(-0.3..0.3),
            };
        }
    }
    let net = import_tensors(
        Network::new(&spec, &device).expect("network"),
        &tensors,
        None,
    )
    .expect("import");
    let normalization = Normalization {
        mean: vec![0.4; cin],
        std: vec![0.25; cin],
    };
    (
        TrainedModel {
            dataset: "synthetic".into(),
            spec,
            normalization,
            tensors,
        },
        net,
        device,
    )
}

fn images(n: usize, len: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| (0..len).map(|_| rng.random::<u8>()).collect())
        .collect()
}

fn burn_z2(net: &Network, model: &TrainedModel, raw: &[u8], device: &Device) -> Vec<f32> {
    let s = &model.spec;
    let x: Vec<f32> = raw
        .iter()
        .map(|&p| (p as f32 / 255.0 - 0.4) / 0.25)
        .collect();
    let x = Tensor::from_data(
        TensorData::new(x, [1, s.in_channels, s.image_size, s.image_size]),
        device,
    );
    net.conv2(net.layer1(net.conv1(x)))
        .into_data()
        .try_into_vec::<f32>()
        .expect("data")
}

fn check(arch: Architecture, cin: usize, size: usize, layout: Layout) {
    let (model, net, device) = tiny(arch, cin, size);
    // 1. The integer block tracks burn's layer 2 (geometry, pooling, BN folding, normalisation).
    let fb = float_block(&model).expect("float block");
    let block = IntBlock::quantize(&fb, 14, 14).expect("quantize");
    let s = &block.shape;
    let raw = images(3, s.input_len(), 4);
    for r in &raw {
        let want = burn_z2(&net, &model, r, &device);
        let a = block.layer1(&block.center(r));
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-3);
        for j in 0..s.c2 {
            let got = block.layer2(&a, j);
            for (p, z) in got.iter().enumerate() {
                let diff = (*z as f64 / block.out_scale) as f32 - want[j * s.h2 * s.w2 + p];
                assert!(
                    diff.abs() < 0.01 * scale,
                    "{arch:?} filter {j} pos {p}: off by {diff} (scale {scale})"
                );
            }
        }
    }
    // 2. The protocol is exact against the shadow.
    let sel = NeuronSelection {
        layer1: vec![1],
        layer2: vec![0, 2],
        channels: [s.c1, s.c2],
        algorithm: "test".into(),
    };
    let he = HeConfig {
        max_chunk: 64,
        ..HeConfig::default()
    };
    let out = encrypt(&model, &sel, &he).expect("encrypt");
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = RunLayout::new(dir.path());
    write_outputs(&paths, &out, None).expect("write");
    let secret = paths.owner_secret();
    let owner = OwnerSide::load(&secret).expect("owner");
    std::fs::remove_dir_all(secret.parent().expect("owner dir")).expect("remove the secret");
    let ops = OpCounter::default();
    let user = UserSide::load(
        &paths.encrypted_model(),
        &paths.evaluation_keys(),
        he.headroom_bits,
        &ops,
    )
    .expect("user");
    let refs: Vec<&[u8]> = raw.iter().map(|r| r.as_slice()).collect();
    let (request, pending) = user
        .request(layout, &refs, &ops, &|_| {}, &mut rand::rng())
        .expect("request");
    let reply = owner.answer(&request).expect("answer");
    let got = user.finish(&reply, pending).expect("finish");
    let want = shadow_outputs(&out.secret.block, &sel, &refs, out.model.layer1_outputs);
    let mut bad = 0;
    for (n, (g, w)) in got.z.iter().zip(&want.z).enumerate() {
        for (k, (gk, wk)) in g.iter().zip(w).enumerate() {
            for (p, (a, b)) in gk.iter().zip(wk).enumerate() {
                if a != b {
                    if bad < 5 {
                        eprintln!(
                            "image {n} filter {k} pos {p}: got {a} want {b} diff {}",
                            a - b
                        );
                    }
                    bad += 1;
                }
            }
        }
    }
    assert_eq!(
        bad, 0,
        "{arch:?}: {bad} decrypted outputs differ from the shadow"
    );
    assert_eq!(
        got, want,
        "{arch:?}: decrypted outputs differ from the shadow"
    );
    assert_eq!(out.model.layer1_outputs, arch == Architecture::Resnet18);
}

#[test]
fn lenet5_block_with_average_pool_is_exact() {
    check(Architecture::Lenet5, 1, 28, Layout::Batch);
}

#[test]
fn alexnet_block_is_exact() {
    check(Architecture::Alexnet, 3, 32, Layout::Spatial);
}

#[test]
fn vgg16_block_is_exact() {
    check(Architecture::Vgg16, 3, 32, Layout::Spatial);
}

#[test]
fn resnet18_block_with_bn_before_square_is_exact() {
    check(Architecture::Resnet18, 3, 32, Layout::Spatial);
}
