//! VGG16 of the CIFAR-10 task (spec §2.2): conv1 → square (no BN) → conv2 → per-channel 3×3
//! "obscure" conv (depthwise, no bias) → BN → ReLU → MaxPool → 11 conv-BN-ReLU blocks with
//! pools → fc 512 → fc 512 → fc.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::tensor::{Device, Tensor, activation::relu};
use privdnn_artifacts::ModelSpec;

use crate::error::ModelError;
use crate::layers::{ConvBnRelu, conv, square};

/// Channel plan of conv3..conv13; a pool follows the convs whose index is in `POOL_AFTER`.
const PLAN: [usize; 11] = [128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512];
const POOL_AFTER: [usize; 4] = [1, 4, 7, 10];

/// VGG16 with the square after conv1 and the obscure conv after conv2.
#[derive(Module, Debug)]
pub struct Vgg16 {
    pub(crate) conv1: Conv2d,
    pub(crate) conv2: Conv2d,
    obscure: Conv2d,
    bn2: BatchNorm,
    pool: MaxPool2d,
    blocks: Vec<ConvBnRelu>,
    fc1: Linear,
    fc2: Linear,
    pub(crate) fc3: Linear,
    dropout: Dropout,
}

impl Vgg16 {
    /// Builds the network; fc1's input is 512·(size/32)² channels-times-pixels.
    pub fn new(spec: &ModelSpec, device: &Device) -> Result<Self, ModelError> {
        if spec.image_size < 32 || !spec.image_size.is_multiple_of(32) {
            return Err(ModelError::InvalidSpec(format!(
                "VGG16 needs a multiple of 32 pixels, got {}",
                spec.image_size
            )));
        }
        let c1 = spec.scaled(64);
        let mut blocks = Vec::new();
        let mut c_in = c1;
        for base in PLAN {
            let c_out = spec.scaled(base);
            blocks.push(ConvBnRelu::new(c_in, c_out, device));
            c_in = c_out;
        }
        let side = spec.image_size / 32;
        let hidden = spec.scaled(512);
        Ok(Self {
            conv1: conv(spec.in_channels, c1, 3, 1, 1, true, device),
            conv2: conv(c1, c1, 3, 1, 1, true, device),
            obscure: Conv2dConfig::new([c1, c1], [3, 3])
                .with_groups(c1)
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .init(device),
            bn2: BatchNormConfig::new(c1).init(device),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            blocks,
            fc1: LinearConfig::new(c_in * side * side, hidden).init(device),
            fc2: LinearConfig::new(hidden, hidden).init(device),
            fc3: LinearConfig::new(hidden, spec.num_classes).init(device),
            dropout: DropoutConfig::new(0.5).init(),
        })
    }

    pub(crate) fn layer1(&self, z1: Tensor<4>) -> Tensor<4> {
        square(z1)
    }

    /// Replaces the dropout probability of the fully connected layers.
    pub(crate) fn set_dropout(&mut self, prob: f64) {
        self.dropout = DropoutConfig::new(prob).init();
    }

    /// The tail without fc3: fc2's activation after dropout (the input of the final layer).
    pub(crate) fn features(&self, _a1: Tensor<4>, z2: Tensor<4>) -> Tensor<2> {
        let mut x = self
            .pool
            .forward(relu(self.bn2.forward(self.obscure.forward(z2))));
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(x);
            if POOL_AFTER.contains(&i) {
                x = self.pool.forward(x);
            }
        }
        let x = x.flatten::<2>(1, 3);
        let x = self.dropout.forward(relu(self.fc1.forward(x)));
        self.dropout.forward(relu(self.fc2.forward(x)))
    }
}
