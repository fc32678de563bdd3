//! The AlexNet variant of the GTSRB task (spec §2.2): conv1 k5 p1 → AvgPool2 → square →
//! conv2 k3 p1 → BN → ReLU → MaxPool2 → conv3..5 (ReLU) → MaxPool2 → fc 512 → fc 128 → fc.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor, activation::relu};
use privdnn_artifacts::ModelSpec;

use crate::error::ModelError;
use crate::layers::{conv, square};

/// AlexNet variant with an average pool and a square after conv1.
#[derive(Module, Debug)]
pub struct Alexnet {
    pub(crate) conv1: Conv2d,
    pub(crate) conv2: Conv2d,
    avg: AvgPool2d,
    bn2: BatchNorm,
    max: MaxPool2d,
    conv3: Conv2d,
    conv4: Conv2d,
    conv5: Conv2d,
    fc1: Linear,
    fc2: Linear,
    pub(crate) fc3: Linear,
    dropout: Dropout,
}

impl Alexnet {
    /// Builds the network; fc1's input follows from the image size (2304 at 32×32).
    pub fn new(spec: &ModelSpec, device: &Device) -> Result<Self, ModelError> {
        let [c1, c2, c3, c4, c5] = [96, 256, 384, 384, 256].map(|c| spec.scaled(c));
        let side = (spec.image_size.saturating_sub(2) / 2) / 2 / 2;
        if side == 0 {
            return Err(ModelError::InvalidSpec(format!(
                "AlexNet needs images of at least 18 pixels, got {}",
                spec.image_size
            )));
        }
        let (h1, h2) = (spec.scaled(512), spec.scaled(128));
        Ok(Self {
            conv1: conv(spec.in_channels, c1, 5, 1, 1, true, device),
            conv2: conv(c1, c2, 3, 1, 1, true, device),
            avg: AvgPool2dConfig::new([2, 2]).init(),
            bn2: BatchNormConfig::new(c2).init(device),
            max: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            conv3: conv(c2, c3, 3, 1, 1, true, device),
            conv4: conv(c3, c4, 3, 1, 1, true, device),
            conv5: conv(c4, c5, 3, 1, 1, true, device),
            fc1: LinearConfig::new(c5 * side * side, h1).init(device),
            fc2: LinearConfig::new(h1, h2).init(device),
            fc3: LinearConfig::new(h2, spec.num_classes).init(device),
            dropout: DropoutConfig::new(0.5).init(),
        })
    }

    pub(crate) fn layer1(&self, z1: Tensor<4>) -> Tensor<4> {
        square(self.avg.forward(z1))
    }

    /// Replaces the dropout probability of the fully connected layers.
    pub(crate) fn set_dropout(&mut self, prob: f64) {
        self.dropout = DropoutConfig::new(prob).init();
    }

    /// The tail without fc3: fc2's activation after dropout (the input of the final layer).
    pub(crate) fn features(&self, _a1: Tensor<4>, z2: Tensor<4>) -> Tensor<2> {
        let x = self.max.forward(relu(self.bn2.forward(z2)));
        let x = relu(self.conv3.forward(x));
        let x = relu(self.conv4.forward(x));
        let x = self.max.forward(relu(self.conv5.forward(x)));
        let x = x.flatten::<2>(1, 3);
        let x = self.dropout.forward(relu(self.fc1.forward(x)));
        self.dropout.forward(relu(self.fc2.forward(x)))
    }
}
