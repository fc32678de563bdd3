//! LeNet5 of the MNIST / EMNIST tasks (spec §2.2): conv1 k5 → AvgPool2 → square → conv2 k5 →
//! AvgPool2 → square → fc → ReLU → fc → ReLU → fc. Width scales every layer but the output.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor, activation::relu};
use privdnn_artifacts::ModelSpec;

use crate::error::ModelError;
use crate::layers::{conv, square};

/// LeNet5 with average pooling and square activations.
#[derive(Module, Debug)]
pub struct Lenet5 {
    pub(crate) conv1: Conv2d,
    pub(crate) conv2: Conv2d,
    pool: AvgPool2d,
    fc1: Linear,
    fc2: Linear,
    pub(crate) fc3: Linear,
}

impl Lenet5 {
    /// Builds the network; fc1's input follows from the image size.
    pub fn new(spec: &ModelSpec, device: &Device) -> Result<Self, ModelError> {
        let [b1, b2] = spec.lenet_filters;
        let (c1, c2) = (spec.scaled(b1), spec.scaled(b2));
        let s2 = spec
            .image_size
            .checked_sub(4)
            .map(|s| s / 2)
            .and_then(|s| s.checked_sub(4))
            .map(|s| s / 2)
            .filter(|s| *s > 0)
            .ok_or_else(|| {
                ModelError::InvalidSpec(format!(
                    "LeNet5 needs images of at least 16 pixels, got {}",
                    spec.image_size
                ))
            })?;
        let (h1, h2) = (spec.scaled(120), spec.scaled(84));
        Ok(Self {
            conv1: conv(spec.in_channels, c1, 5, 0, 1, true, device),
            conv2: conv(c1, c2, 5, 0, 1, true, device),
            pool: AvgPool2dConfig::new([2, 2]).init(),
            fc1: LinearConfig::new(c2 * s2 * s2, h1).init(device),
            fc2: LinearConfig::new(h1, h2).init(device),
            fc3: LinearConfig::new(h2, spec.num_classes).init(device),
        })
    }

    pub(crate) fn layer1(&self, z1: Tensor<4>) -> Tensor<4> {
        square(self.pool.forward(z1))
    }

    /// The tail without fc3: fc2's activation (the input of the final layer).
    pub(crate) fn features(&self, _a1: Tensor<4>, z2: Tensor<4>) -> Tensor<2> {
        let x = square(self.pool.forward(z2)).flatten::<2>(1, 3);
        self.features_after_fc1(self.fc1.forward(x))
    }

    /// Per-channel contribution of z2 to fc1's pre-activation, without fc1's bias:
    /// `[C2, n, H1]`, where channel j contributes `square(pool(z2[j])) · W1[block j]`.
    pub(crate) fn fc1_contributions(&self, z2: Tensor<4>) -> Tensor<3> {
        let [n, c, _, _] = z2.dims();
        let h = square(self.pool.forward(z2)); // [n, c, s, s]
        let per = h.dims()[2] * h.dims()[3];
        let h = h.reshape([n, c, per]).swap_dims(0, 1); // [c, n, per]
        let w = self.fc1.weight.val(); // [c·per, H1]
        let hidden = w.dims()[1];
        h.matmul(w.reshape([c, per, hidden]))
    }

    /// fc1's bias, `[H1]`.
    pub(crate) fn fc1_bias(&self) -> Option<Tensor<1>> {
        self.fc1.bias.as_ref().map(|b| b.val())
    }

    /// ReLU → fc2 → ReLU → fc3 applied to fc1's pre-activation.
    pub(crate) fn after_fc1(&self, pre: Tensor<2>) -> Tensor<2> {
        self.fc3.forward(self.features_after_fc1(pre))
    }

    /// ReLU → fc2 → ReLU applied to fc1's pre-activation (fc3's input).
    fn features_after_fc1(&self, pre: Tensor<2>) -> Tensor<2> {
        relu(self.fc2.forward(relu(pre)))
    }
}
