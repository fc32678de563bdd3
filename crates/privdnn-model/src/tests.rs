//! Tests of the architectures: output and stage shapes of all five task models, weight
//! export/import round trip, rejection of mismatching weights, and the remove masks.

use burn::tensor::{Device, Tensor, TensorData};
use privdnn_artifacts::{Architecture, ModelSpec};

use crate::{ChannelMasks, Network, export_tensors, import_tensors};

fn spec(
    architecture: Architecture,
    in_channels: usize,
    image_size: usize,
    num_classes: usize,
    lenet: [usize; 2],
    width: f64,
) -> ModelSpec {
    ModelSpec {
        architecture,
        in_channels,
        image_size,
        num_classes,
        lenet_filters: lenet,
        width,
    }
}

fn input(spec: &ModelSpec, batch: usize, device: &Device) -> Tensor<4> {
    let n = batch * spec.in_channels * spec.image_size * spec.image_size;
    let values: Vec<f32> = (0..n)
        .map(|i| ((i * 37) % 101) as f32 / 101.0 - 0.5)
        .collect();
    Tensor::from_data(
        TensorData::new(
            values,
            [batch, spec.in_channels, spec.image_size, spec.image_size],
        ),
        device,
    )
}

/// (name, spec, conv1 output shape, layer-1 output shape, conv2 output shape).
type TaskModel = (&'static str, ModelSpec, [usize; 3], [usize; 3], [usize; 3]);

/// One [`TaskModel`] per task at full width.
fn task_models() -> Vec<TaskModel> {
    vec![
        (
            "mnist lenet5",
            spec(Architecture::Lenet5, 1, 28, 10, [6, 16], 1.0),
            [6, 24, 24],
            [6, 12, 12],
            [16, 8, 8],
        ),
        (
            "emnist lenet5",
            spec(Architecture::Lenet5, 1, 28, 27, [10, 20], 1.0),
            [10, 24, 24],
            [10, 12, 12],
            [20, 8, 8],
        ),
        (
            "gtsrb alexnet",
            spec(Architecture::Alexnet, 3, 32, 43, [6, 16], 1.0),
            [96, 30, 30],
            [96, 15, 15],
            [256, 15, 15],
        ),
        (
            "cifar10 vgg16",
            spec(Architecture::Vgg16, 3, 32, 10, [6, 16], 1.0),
            [64, 32, 32],
            [64, 32, 32],
            [64, 32, 32],
        ),
        (
            "tiny resnet18",
            spec(Architecture::Resnet18, 3, 64, 200, [6, 16], 1.0),
            [64, 64, 64],
            [64, 64, 64],
            [64, 64, 64],
        ),
    ]
}

#[test]
fn every_task_model_has_the_paper_shapes() {
    let device = Device::flex();
    for (name, spec, z1_shape, a1_shape, z2_shape) in task_models() {
        let net = Network::new(&spec, &device).expect(name);
        let x = input(&spec, 2, &device);
        let z1 = net.conv1(x.clone());
        assert_eq!(z1.dims()[1..], z1_shape, "{name} conv1");
        let a1 = net.layer1(z1);
        assert_eq!(a1.dims()[1..], a1_shape, "{name} layer1");
        let z2 = net.conv2(a1.clone());
        assert_eq!(z2.dims()[1..], z2_shape, "{name} conv2");
        let logits = net.tail(a1, z2);
        assert_eq!(logits.dims(), [2, spec.num_classes], "{name} logits");
        assert_eq!(
            net.forward(x).dims(),
            [2, spec.num_classes],
            "{name} forward"
        );
    }
}

#[test]
fn width_multiplier_scales_channels() {
    let device = Device::flex();
    let s = spec(Architecture::Vgg16, 3, 32, 10, [6, 16], 0.25);
    let net = Network::new(&s, &device).expect("vgg");
    let z1 = net.conv1(input(&s, 1, &device));
    assert_eq!(z1.dims()[1], 16);
    assert_eq!(net.forward(input(&s, 1, &device)).dims(), [1, 10]);
}

#[test]
fn invalid_specs_are_refused() {
    let device = Device::flex();
    assert!(
        Network::new(
            &spec(Architecture::Lenet5, 1, 12, 10, [6, 16], 1.0),
            &device
        )
        .is_err()
    );
    assert!(Network::new(&spec(Architecture::Vgg16, 3, 40, 10, [6, 16], 1.0), &device).is_err());
    assert!(
        Network::new(
            &spec(Architecture::Resnet18, 3, 64, 0, [6, 16], 1.0),
            &device
        )
        .is_err()
    );
}

#[test]
fn weights_round_trip_through_named_tensors() {
    let device = Device::flex();
    let s = spec(Architecture::Resnet18, 3, 32, 10, [6, 16], 0.125);
    let a = Network::new(&s, &device).expect("a");
    let b = Network::new(&s, &device).expect("b");
    let x = input(&s, 2, &device);
    let (tensors, ids) = export_tensors(&a).expect("export");
    assert!(tensors.iter().any(|t| t.name == "conv1.weight"));
    assert!(
        tensors.iter().any(|t| t.name == "bn1.running_var"),
        "buffers are exported"
    );
    assert!(
        !tensors.iter().any(|t| t.name == "conv1.bias"),
        "ResNet18 stem has no bias"
    );
    let before = b
        .forward(x.clone())
        .into_data()
        .try_to_vec::<f32>()
        .expect("vec");
    let b = import_tensors(b, &tensors, Some(&ids)).expect("import");
    let out_a = a
        .forward(x.clone())
        .into_data()
        .try_to_vec::<f32>()
        .expect("vec");
    let out_b = b.forward(x).into_data().try_to_vec::<f32>().expect("vec");
    assert_eq!(out_a, out_b);
    assert_ne!(before, out_b, "import changed the weights");
    // trainable parameters keep their ids (the optimiser state is keyed by them); burn's
    // running-statistics buffers have ids of their own that the optimiser never sees
    let trainable = |ids: Vec<(String, u64)>| -> Vec<(String, u64)> {
        ids.into_iter()
            .filter(|(n, _)| !n.contains("running_"))
            .collect()
    };
    let (_, ids_b) = export_tensors(&b).expect("export");
    assert_eq!(trainable(ids), trainable(ids_b), "parameter ids restored");
}

#[test]
fn mismatching_weights_are_refused() {
    let device = Device::flex();
    let s = spec(Architecture::Lenet5, 1, 28, 10, [6, 16], 1.0);
    let (mut tensors, _) =
        export_tensors(&Network::new(&s, &device).expect("net")).expect("export");
    let other = spec(Architecture::Lenet5, 1, 28, 10, [10, 20], 1.0);
    let err = import_tensors(
        Network::new(&other, &device).expect("other"),
        &tensors,
        None,
    )
    .expect_err("shape");
    assert!(err.to_string().contains("conv1.weight"), "{err}");
    tensors.pop();
    let err = import_tensors(Network::new(&s, &device).expect("net"), &tensors, None)
        .expect_err("missing");
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn remove_masks_zero_the_selected_channels() {
    let device = Device::flex();
    let s = spec(Architecture::Lenet5, 1, 28, 10, [6, 16], 1.0);
    let net = Network::new(&s, &device).expect("net");
    let x = input(&s, 2, &device);
    let masks = ChannelMasks::removing(6, &[0, 5], 16, &[3], &device);
    let z1 = net.conv1(x.clone()) * masks.conv1.clone();
    let z1 = z1.into_data().try_to_vec::<f32>().expect("vec");
    let per_channel = 24 * 24;
    assert!(z1[..per_channel].iter().all(|v| *v == 0.0));
    assert!(z1[per_channel..2 * per_channel].iter().any(|v| *v != 0.0));
    let masked = net
        .forward_masked(x.clone(), Some(&masks))
        .into_data()
        .try_to_vec::<f32>()
        .expect("vec");
    let keep_all = ChannelMasks::removing(6, &[], 16, &[], &device);
    let unmasked = net
        .forward_masked(x.clone(), Some(&keep_all))
        .into_data()
        .try_to_vec::<f32>()
        .expect("vec");
    assert_eq!(
        unmasked,
        net.forward(x).into_data().try_to_vec::<f32>().expect("vec")
    );
    assert_ne!(masked, unmasked);
}

#[test]
fn dropout_setting_reaches_the_classifier_in_training_mode() {
    let device = Device::flex().autodiff();
    for arch in [Architecture::Alexnet, Architecture::Vgg16] {
        let s = spec(arch, 3, 32, 10, [6, 16], 0.125);
        let x = input(&s, 4, &device);
        let net = Network::new(&s, &device).expect("network");
        let outputs = |net: &Network| -> Vec<Vec<f32>> {
            (0..2)
                .map(|_| {
                    net.forward(x.clone())
                        .into_data()
                        .try_to_vec::<f32>()
                        .expect("f32")
                })
                .collect()
        };
        let kept = outputs(&net.clone().with_dropout(0.0));
        assert_eq!(kept[0], kept[1], "{arch:?}: no dropout, same output twice");
        let dropped = outputs(&net.with_dropout(0.9));
        assert_ne!(
            dropped[0], dropped[1],
            "{arch:?}: dropout 0.9 draws new masks"
        );
    }
}
