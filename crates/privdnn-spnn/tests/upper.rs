//! The server's network resumes exactly from its state.

use privdnn_artifacts::{Architecture, ModelSpec};
use privdnn_model::{UpperNet, UpperOptimizer};

#[test]
fn a_restored_upper_network_steps_like_the_original() {
    let spec = ModelSpec {
        architecture: Architecture::Lenet5,
        in_channels: 1,
        image_size: 16,
        num_classes: 10,
        lenet_filters: [2, 4],
        width: 1.0,
    };
    let mut a = UpperNet::new(&spec, 1, UpperOptimizer::Adam, 0.0).expect("net");
    let [c, h, w] = a.z1_shape().expect("shape");
    let z: Vec<f32> = (0..4 * c * h * w)
        .map(|i| ((i * 37) % 11) as f32 / 7.0 - 0.7)
        .collect();
    let labels = [1i64, 2, 3, 4];
    a.step(z.clone(), &labels, 0.01).expect("step");
    let mut b = UpperNet::restore(&spec, UpperOptimizer::Adam, 0.0, &a.state().expect("state"))
        .expect("restore");
    assert_eq!(a.state().expect("a").tensors, b.state().expect("b").tensors);
    let ga = a.step(z.clone(), &labels, 0.01).expect("a2");
    let gb = b.step(z, &labels, 0.01).expect("b2");
    assert_eq!(ga.grad, gb.grad);
    assert_eq!(a.state().expect("a").tensors, b.state().expect("b").tensors);
}
