//! The ResNet18 variant of the Tiny ImageNet task (spec §2.2): stem conv1 (no bias) → BN1 →
//! square (= x1) → conv2 (no bias) → BN2 → ReLU → conv3 → BN3 → + shortcut(x1) (1×1 conv + BN,
//! no ReLU after the add) → three stages of two basic blocks (128, 256, 512, stride 2) →
//! AvgPool 4 → fc.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor, activation::relu};
use privdnn_artifacts::ModelSpec;

use crate::error::ModelError;
use crate::layers::{conv, square};

/// 1×1 conv + BN projection of a residual shortcut.
#[derive(Module, Debug)]
pub struct Projection {
    conv: Conv2d,
    bn: BatchNorm,
}

impl Projection {
    fn new(c_in: usize, c_out: usize, stride: usize, device: &Device) -> Self {
        Self {
            conv: conv(c_in, c_out, 1, 0, stride, false, device),
            bn: BatchNormConfig::new(c_out).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.bn.forward(self.conv.forward(x))
    }
}

/// Standard basic block: conv3×3-BN-ReLU-conv3×3-BN + shortcut, then ReLU.
#[derive(Module, Debug)]
pub struct BasicBlock {
    conv_a: Conv2d,
    bn_a: BatchNorm,
    conv_b: Conv2d,
    bn_b: BatchNorm,
    shortcut: Option<Projection>,
}

impl BasicBlock {
    fn new(c_in: usize, c_out: usize, stride: usize, device: &Device) -> Self {
        let shortcut =
            (stride != 1 || c_in != c_out).then(|| Projection::new(c_in, c_out, stride, device));
        Self {
            conv_a: conv(c_in, c_out, 3, 1, stride, false, device),
            bn_a: BatchNormConfig::new(c_out).init(device),
            conv_b: conv(c_out, c_out, 3, 1, 1, false, device),
            bn_b: BatchNormConfig::new(c_out).init(device),
            shortcut,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let identity = match &self.shortcut {
            Some(p) => p.forward(x.clone()),
            None => x.clone(),
        };
        let y = relu(self.bn_a.forward(self.conv_a.forward(x)));
        relu(self.bn_b.forward(self.conv_b.forward(y)) + identity)
    }
}

/// ResNet18 variant with the square after BN1 and a custom first block.
#[derive(Module, Debug)]
pub struct Resnet18 {
    pub(crate) conv1: Conv2d,
    bn1: BatchNorm,
    pub(crate) conv2: Conv2d,
    bn2: BatchNorm,
    conv3: Conv2d,
    bn3: BatchNorm,
    shortcut1: Projection,
    stages: Vec<BasicBlock>,
    pool: AvgPool2d,
    pub(crate) fc: Linear,
}

impl Resnet18 {
    /// Builds the network; the fc input is 512·(size/32)² (2048 at 64×64).
    pub fn new(spec: &ModelSpec, device: &Device) -> Result<Self, ModelError> {
        if spec.image_size < 32 || !spec.image_size.is_multiple_of(32) {
            return Err(ModelError::InvalidSpec(format!(
                "ResNet18 needs a multiple of 32 pixels, got {}",
                spec.image_size
            )));
        }
        let c = spec.scaled(64);
        let mut stages = Vec::new();
        let mut c_in = c;
        for base in [128, 256, 512] {
            let c_out = spec.scaled(base);
            stages.push(BasicBlock::new(c_in, c_out, 2, device));
            stages.push(BasicBlock::new(c_out, c_out, 1, device));
            c_in = c_out;
        }
        let side = spec.image_size / 32;
        Ok(Self {
            conv1: conv(spec.in_channels, c, 3, 1, 1, false, device),
            bn1: BatchNormConfig::new(c).init(device),
            conv2: conv(c, c, 3, 1, 1, false, device),
            bn2: BatchNormConfig::new(c).init(device),
            conv3: conv(c, c, 3, 1, 1, false, device),
            bn3: BatchNormConfig::new(c).init(device),
            shortcut1: Projection::new(c, c, 1, device),
            stages,
            pool: AvgPool2dConfig::new([4, 4]).init(),
            fc: LinearConfig::new(c_in * side * side, spec.num_classes).init(device),
        })
    }

    pub(crate) fn layer1(&self, z1: Tensor<4>) -> Tensor<4> {
        square(self.bn1.forward(z1))
    }

    /// The tail without fc: the pooled, flattened feature map (the input of the final layer).
    pub(crate) fn features(&self, a1: Tensor<4>, z2: Tensor<4>) -> Tensor<2> {
        let y = relu(self.bn2.forward(z2));
        let mut x = self.bn3.forward(self.conv3.forward(y)) + self.shortcut1.forward(a1);
        for block in &self.stages {
            x = block.forward(x);
        }
        self.pool.forward(x).flatten::<2>(1, 3)
    }
}
