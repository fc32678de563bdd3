//! The two-edge baseline on the `tiny` pipeline's trained model (trained here in a temporary
//! root, seconds): the protocol's logits equal the integer shadow on every test image, and the
//! integer model agrees with burn's float model (prediction agreement, accuracy difference).

use std::path::Path;

use privdnn_artifacts::{DatasetSplit, TrainedModel, read_artifact};
use privdnn_edge::device::Device;
use privdnn_edge::edge::EdgeServer;
use privdnn_edge::harness::InProcessLink;
use privdnn_edge::messages::IntegrityConfig;
use privdnn_edge::owner::setup;
use privdnn_model::burn::tensor::{Device as BurnDevice, Tensor, TensorData};
use privdnn_model::{Network, import_tensors};
use privdnn_mpc::shadow::{argmax, logits};
use privdnn_mpc::{QuantConfig, import_model};

fn train_tiny(root: &Path) -> (TrainedModel, DatasetSplit) {
    let pipelines = root.join("pipelines");
    std::fs::create_dir_all(&pipelines).expect("mkdir");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipelines/tiny.toml");
    std::fs::copy(shipped, pipelines.join("tiny.toml")).expect("copy tiny.toml");
    let args = privdnn_train::cli::RunArgs {
        target: privdnn_config::PipelineArgs::new("tiny", root),
        fresh: false,
    };
    let path = privdnn_train::cli::run_stage(&args).expect("train tiny");
    let model: TrainedModel = read_artifact(&path).expect("model");
    let cfg = args.target.load().expect("config");
    let (splits, _) = privdnn_data::load_splits(root, &cfg.pipeline).expect("splits");
    (model, splits.test)
}

/// burn's float predictions (argmax) of every image of `split`.
fn float_predictions(model: &TrainedModel, split: &DatasetSplit) -> Vec<usize> {
    let device = BurnDevice::flex();
    let net = import_tensors(
        Network::new(&model.spec, &device).expect("network"),
        &model.tensors,
        None,
    )
    .expect("import");
    let norm = &model.normalization;
    let plane = split.height * split.width;
    let n = split.len();
    let mut values = Vec::with_capacity(n * split.image_len());
    for i in 0..n {
        for (j, &p) in split.image(i).iter().enumerate() {
            let c = (j / plane) % norm.mean.len();
            values.push((p as f32 / 255.0 - norm.mean[c]) / norm.std[c]);
        }
    }
    let x = Tensor::<4>::from_data(
        TensorData::new(values, [n, split.channels, split.height, split.width]),
        &device,
    );
    let logits: Vec<f32> = net
        .forward(x)
        .to_data()
        .try_into_vec::<f32>()
        .expect("logits");
    logits
        .chunks(logits.len() / n)
        .map(|row| {
            let mut best = 0;
            for (k, v) in row.iter().enumerate() {
                if *v > row[best] {
                    best = k;
                }
            }
            best
        })
        .collect()
}

#[test]
fn edge_protocol_on_the_trained_tiny_model() {
    let root = tempfile::tempdir().expect("tempdir");
    let (trained, test) = train_tiny(root.path());
    let model = import_model(&trained, &QuantConfig::default()).expect("integer model");

    // float vs integer
    let float = float_predictions(&trained, &test);
    let n = test.len();
    let (mut agree, mut fc, mut ic) = (0, 0, 0);
    let mut shadow = Vec::with_capacity(n);
    for (i, f) in float.iter().enumerate() {
        let l = logits(&model, test.image(i)).expect("shadow");
        let p = argmax(&l);
        let label = test.labels[i] as usize;
        agree += usize::from(p == *f);
        fc += usize::from(*f == label);
        ic += usize::from(p == label);
        shadow.push(l);
    }
    let pct = |c: usize| 100.0 * c as f64 / n as f64;
    eprintln!(
        "tiny: float {:.2} %, integer {:.2} %, agreement {:.2} % on {n} images",
        pct(fc),
        pct(ic),
        pct(agree)
    );
    assert!(pct(fc) > 50.0, "the tiny model trained");
    assert!(pct(agree) >= 99.0, "agreement {:.2} %", pct(agree));
    assert!(
        (pct(fc) - pct(ic)).abs() <= 0.67,
        "float {} vs integer {}",
        pct(fc),
        pct(ic)
    );

    // the protocol equals the shadow on every image (batches of 32, hidden tests on)
    let integrity = IntegrityConfig {
        test_probability: 0.2,
        tests_per_layer: 2,
    };
    let s = setup(&model, &integrity, &mut rand::rng()).expect("setup");
    let device = Device::new(s.device).expect("device");
    let mut link = InProcessLink::new(EdgeServer::new(s.edge_a), EdgeServer::new(s.edge_b));
    for start in (0..n).step_by(32) {
        let imgs: Vec<&[u8]> = (start..(start + 32).min(n))
            .map(|i| test.image(i))
            .collect();
        let out = device.infer(&imgs, &mut link).expect("protocol");
        assert_eq!(out.failed_tests, 0);
        for (k, l) in out.logits.iter().enumerate() {
            assert_eq!(l, &shadow[start + k], "image {}", start + k);
        }
    }
}
