//! Small layer helpers shared by the architectures (conv constructors, square, conv-BN-ReLU).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor, activation::relu};

/// A `k×k` convolution with symmetric zero padding `pad`.
pub fn conv(
    c_in: usize,
    c_out: usize,
    k: usize,
    pad: usize,
    stride: usize,
    bias: bool,
    device: &Device,
) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [k, k])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_stride([stride, stride])
        .with_bias(bias)
        .init(device)
}

/// The square activation x², the only non-linearity inside the encrypted block.
pub fn square(x: Tensor<4>) -> Tensor<4> {
    x.clone() * x
}

/// conv 3×3 (pad 1) → batch norm → ReLU, the building block of VGG16's plaintext stack.
#[derive(Module, Debug)]
pub struct ConvBnRelu {
    conv: Conv2d,
    bn: BatchNorm,
}

impl ConvBnRelu {
    /// A block from `c_in` to `c_out` channels.
    pub fn new(c_in: usize, c_out: usize, device: &Device) -> Self {
        Self {
            conv: conv(c_in, c_out, 3, 1, 1, true, device),
            bn: BatchNormConfig::new(c_out).init(device),
        }
    }

    /// Applies the block.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.bn.forward(self.conv.forward(x)))
    }
}
