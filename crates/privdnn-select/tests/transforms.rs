//! The selection transforms against hand computation and the fast evaluator against the
//! straightforward whole-network transforms, on a model trained by the real training stage.

use std::path::Path;

use privdnn_artifacts::{Architecture, ModelSpec, NeuronSelection, Normalization, TrainedModel};
use privdnn_model::burn::tensor::{Device, Tensor, TensorData};
use privdnn_model::{Network, export_tensors};
use privdnn_select::evaluator::Evaluator;
use privdnn_select::transform::{network, reference_evaluations, separate_weights};

fn selection(layer1: Vec<usize>, layer2: Vec<usize>, channels: [usize; 2]) -> NeuronSelection {
    NeuronSelection {
        layer1,
        layer2,
        channels,
        algorithm: "test".into(),
    }
}

/// LeNet5 with 2/3 filters whose conv weights are constants: on a constant image every map is
/// constant, so z2 can be computed by hand.
fn hand_model(device: &Device) -> TrainedModel {
    let spec = ModelSpec {
        architecture: Architecture::Lenet5,
        in_channels: 1,
        image_size: 28,
        num_classes: 10,
        lenet_filters: [2, 3],
        width: 1.0,
    };
    let (mut tensors, _) =
        export_tensors(&Network::new(&spec, device).expect("net")).expect("export");
    for t in &mut tensors {
        match t.name.as_str() {
            // conv1 filter c has all 25 taps = 0.01·(c+1), bias c
            "conv1.weight" => t.values = (0..50).map(|i| 0.01 * ((i / 25) + 1) as f32).collect(),
            "conv1.bias" => t.values = vec![0.0, 1.0],
            // conv2 weight W2[j, c, :, :] = (j + 1) · (c + 1) / 100 on every tap
            "conv2.weight" => {
                t.values = (0..150)
                    .map(|i| ((i / 50 + 1) * ((i / 25) % 2 + 1)) as f32 / 100.0)
                    .collect()
            }
            "conv2.bias" => t.values = vec![0.5, -0.5, 1.0],
            _ => {}
        }
    }
    TrainedModel {
        dataset: "hand".into(),
        spec,
        normalization: Normalization {
            mean: vec![0.0],
            std: vec![1.0],
        },
        tensors,
    }
}

#[test]
fn separate_and_remove_match_hand_computation() {
    let device = Device::flex();
    let model = hand_model(&device);
    let x = Tensor::<4>::from_data(TensorData::new(vec![1.0f32; 784], [1, 1, 28, 28]), &device);
    // z1[c] = 25 · 0.01(c+1) + b1[c] → [0.25, 1.5]; pool keeps it; a1 = z1² → [0.0625, 2.25]
    let a1 = [0.0625f32, 2.25];
    let w2 = |j: usize, c: usize| 25.0 * ((j + 1) * (c + 1)) as f32 / 100.0; // summed over taps
    let b2 = [0.5f32, -0.5, 1.0];
    let sel = selection(vec![1], vec![2], [2, 3]);
    let separated =
        network(&separate_weights(&model, &sel).expect("separate"), &device).expect("net");
    let z2 = separated.conv2(separated.layer1(separated.conv1(x.clone())));
    let got = z2.into_data().try_into_vec::<f32>().expect("vec");
    for j in 0..3 {
        // j ∉ S2 lose the input from the selected conv1 channel 1
        let expected = b2[j] + w2(j, 0) * a1[0] + if j == 2 { w2(j, 1) * a1[1] } else { 0.0 };
        let v = got[j * 64];
        assert!(
            (v - expected).abs() < 1e-4,
            "channel {j}: {v} vs {expected}"
        );
        assert!(
            got[j * 64..(j + 1) * 64]
                .iter()
                .all(|g| (g - v).abs() < 1e-4)
        );
    }
    // only W2[0..2, 1] were zeroed
    let w = separate_weights(&model, &sel).expect("separate");
    let sep = w.tensor("conv2.weight").expect("w2");
    let orig = model.tensor("conv2.weight").expect("w2");
    let changed: Vec<usize> = (0..150)
        .filter(|&i| sep.values[i] != orig.values[i])
        .map(|i| i / 25)
        .collect();
    let mut blocks = changed.clone();
    blocks.dedup();
    assert_eq!(blocks, vec![1, 3], "blocks (j=0,c=1) and (j=1,c=1) only");
}

#[test]
fn bad_selections_are_refused() {
    let device = Device::flex();
    let model = hand_model(&device);
    for (sel, needle) in [
        (selection(vec![2], vec![0], [2, 3]), "filter 2"),
        (selection(vec![], vec![0], [2, 3]), "no filter"),
        (selection(vec![0], vec![1, 1], [2, 3]), "twice"),
        (selection(vec![0], vec![0], [6, 16]), "6/16"),
    ] {
        let err = separate_weights(&model, &sel)
            .expect_err("refused")
            .to_string();
        assert!(err.contains(needle), "{err}");
    }
    let err = NeuronSelection::from_reference_json(r#"{"1": [0], "3": [1]}"#, [2, 3], "x")
        .expect_err("key");
    assert!(err.contains("\"3\""), "{err}");
    let ok = NeuronSelection::from_reference_json(r#"{"1": [1], "2": [2, 0]}"#, [2, 3], "x")
        .expect("valid");
    assert_eq!(ok.layer2, vec![2, 0]);
}

#[test]
fn fast_evaluator_equals_whole_network_evaluation_on_a_trained_model() {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let cfg = privdnn_config::load(&root.join("pipelines/tiny.toml"), None).expect("tiny config");
    let (splits, _) = privdnn_data::load_splits(root, &cfg.pipeline).expect("splits");
    let trained = privdnn_train_free_model(&cfg, &splits);
    let device = Device::flex();
    let ev = Evaluator::new(&trained, &splits.validation, 128, &device).expect("evaluator");
    let channels = ev.channels();
    assert_eq!(channels, [3, 8]);
    for (s1, s2) in [
        (vec![0], vec![0]),
        (vec![2, 1], vec![7, 3, 0]),
        (vec![0, 1, 2], vec![5]),
    ] {
        let sel = selection(s1, s2, channels);
        let (fast_s, fast_r) = ev.evaluate(&sel).expect("fast");
        let (slow_s, slow_r) =
            reference_evaluations(&trained, &splits.validation, &sel, 128, &device).expect("slow");
        assert_eq!(fast_s.correct, slow_s.correct, "A_s of {sel:?}");
        assert_eq!(fast_r.correct, slow_r.correct, "A_r of {sel:?}");
        assert_eq!(fast_s.per_class_correct, slow_s.per_class_correct);
    }
    assert!(ev.original().accuracy() > 50.0, "the model is trained");
    // Half-width LeNet5 on 28 px: a1 3×12×12, z2 8×8×8, fc1 shares 8×60 per image; a layer-1
    // cache holds a1, two z2 maps and totals (60) plus diffs (8×60) for both models.
    let (a1, z2, shares) = (3 * 12 * 12, 8 * 8 * 8, 8 * 60);
    assert_eq!(
        ev.bytes_per_image(),
        [
            4 * (a1 + z2 + shares),
            4 * (a1 + 2 * z2 + 2 * (60 + shares))
        ]
    );
}

/// Trains the tiny pipeline's model with the real training stage.
fn privdnn_train_free_model(
    cfg: &privdnn_config::ResolvedConfig,
    splits: &privdnn_data::Splits,
) -> TrainedModel {
    privdnn_training::run(cfg, splits, None, &mut privdnn_training::QuietObserver)
        .expect("train")
        .model
}
