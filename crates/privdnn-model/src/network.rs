//! [`Network`]: one enum over the four model families with a uniform staged forward pass.
//!
//! Parameter names are uniform across families for the encryptable block: `conv1.weight`,
//! `conv1.bias`, `conv2.weight`, `conv2.bias` (ResNet18's stem convs have no bias), so the
//! selection and HE stages can work on any architecture by name.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use privdnn_artifacts::{Architecture, ModelSpec};

use crate::alexnet::Alexnet;
use crate::error::ModelError;
use crate::lenet::Lenet5;
use crate::resnet::Resnet18;
use crate::vgg::Vgg16;

/// Any of the PrivDNN architectures.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Network {
    /// LeNet5 (MNIST, EMNIST / Fashion-MNIST).
    Lenet5(Lenet5),
    /// AlexNet variant (GTSRB).
    Alexnet(Alexnet),
    /// VGG16 variant (CIFAR-10).
    Vgg16(Vgg16),
    /// ResNet18 variant (Tiny ImageNet / CIFAR-10 at 64×64).
    Resnet18(Resnet18),
}

/// Per-channel multipliers applied to the raw outputs of conv1 and conv2 (the *remove*
/// transform of spec §3.1: 0 removes a channel, 1 keeps it).
#[derive(Clone, Debug)]
pub struct ChannelMasks {
    /// Shape `[1, C1, 1, 1]`.
    pub conv1: Tensor<4>,
    /// Shape `[1, C2, 1, 1]`.
    pub conv2: Tensor<4>,
}

impl ChannelMasks {
    /// Masks that zero the listed channels of conv1 and conv2.
    pub fn removing(
        c1: usize,
        removed1: &[usize],
        c2: usize,
        removed2: &[usize],
        device: &Device,
    ) -> Self {
        let mask = |c: usize, removed: &[usize]| {
            let values: Vec<f32> = (0..c)
                .map(|i| if removed.contains(&i) { 0.0 } else { 1.0 })
                .collect();
            Tensor::<4>::from_data(TensorData::new(values, [1, c, 1, 1]), device)
        };
        Self {
            conv1: mask(c1, removed1),
            conv2: mask(c2, removed2),
        }
    }
}

macro_rules! each {
    ($self:expr, $net:ident => $body:expr) => {
        match $self {
            Network::Lenet5($net) => $body,
            Network::Alexnet($net) => $body,
            Network::Vgg16($net) => $body,
            Network::Resnet18($net) => $body,
        }
    };
}

impl Network {
    /// A freshly initialised network of shape `spec` on `device`.
    pub fn new(spec: &ModelSpec, device: &Device) -> Result<Self, ModelError> {
        if spec.in_channels == 0 || spec.num_classes == 0 {
            return Err(ModelError::InvalidSpec(
                "in_channels and num_classes must be positive".to_string(),
            ));
        }
        Ok(match spec.architecture {
            Architecture::Lenet5 => Network::Lenet5(Lenet5::new(spec, device)?),
            Architecture::Alexnet => Network::Alexnet(Alexnet::new(spec, device)?),
            Architecture::Vgg16 => Network::Vgg16(Vgg16::new(spec, device)?),
            Architecture::Resnet18 => Network::Resnet18(Resnet18::new(spec, device)?),
        })
    }

    /// The same network with dropout probability `prob` in its fully connected layers
    /// (AlexNet, VGG16); LeNet5 and ResNet18 have no dropout and are returned unchanged.
    pub fn with_dropout(mut self, prob: f64) -> Self {
        match &mut self {
            Network::Alexnet(n) => n.set_dropout(prob),
            Network::Vgg16(n) => n.set_dropout(prob),
            Network::Lenet5(_) | Network::Resnet18(_) => {}
        }
        self
    }

    /// Raw output of conv1 (after bias, before pooling / BN / activation): z1.
    pub fn conv1(&self, x: Tensor<4>) -> Tensor<4> {
        each!(self, n => n.conv1.forward(x))
    }

    /// Layer-1 activation block (pool / BN / square) turning z1 into conv2's input a1.
    pub fn layer1(&self, z1: Tensor<4>) -> Tensor<4> {
        each!(self, n => n.layer1(z1))
    }

    /// Raw output of conv2 (after bias): z2.
    pub fn conv2(&self, a1: Tensor<4>) -> Tensor<4> {
        each!(self, n => n.conv2.forward(a1))
    }

    /// Everything after conv2, evaluated in clear: logits from z2 (and a1, which ResNet18's
    /// shortcut reads). Exactly `head(features(a1, z2))`.
    pub fn tail(&self, a1: Tensor<4>, z2: Tensor<4>) -> Tensor<2> {
        self.head(self.features(a1, z2))
    }

    /// The tail without its final linear layer: the `[n, d]` input of the logits layer (LeNet5,
    /// AlexNet, VGG16: fc3's input; ResNet18: fc's input).
    pub fn features(&self, a1: Tensor<4>, z2: Tensor<4>) -> Tensor<2> {
        each!(self, n => n.features(a1, z2))
    }

    /// The final linear layer: logits `[n, classes]` from features `[n, d]`.
    pub fn head(&self, h: Tensor<2>) -> Tensor<2> {
        self.head_layer().forward(h)
    }

    /// Artifact names (as [`crate::export_tensors`] writes them) of the final layer's weight
    /// (`[d, classes]`) and bias (`[classes]`).
    pub fn head_names(&self) -> [&'static str; 2] {
        match self {
            Network::Resnet18(_) => ["fc.weight", "fc.bias"],
            Network::Lenet5(_) | Network::Alexnet(_) | Network::Vgg16(_) => {
                ["fc3.weight", "fc3.bias"]
            }
        }
    }

    /// Width `d` of [`Network::features`] (the final layer's input), without initialising it.
    pub fn feature_dim(&self) -> usize {
        self.head_layer().weight.lazy_shape()[0]
    }

    /// The final linear layer.
    pub(crate) fn head_layer(&self) -> &Linear {
        match self {
            Network::Lenet5(n) => &n.fc3,
            Network::Alexnet(n) => &n.fc3,
            Network::Vgg16(n) => &n.fc3,
            Network::Resnet18(n) => &n.fc,
        }
    }

    /// The final linear layer, taken out of the network.
    pub(crate) fn into_head(self) -> Linear {
        match self {
            Network::Lenet5(n) => n.fc3,
            Network::Alexnet(n) => n.fc3,
            Network::Vgg16(n) => n.fc3,
            Network::Resnet18(n) => n.fc,
        }
    }

    /// LeNet5 only: the tail is per-channel (pool, square) up to fc1, which is linear, so each
    /// conv2 channel's share of fc1's pre-activation can be cached. Returns `[C2, n, H1]`
    /// (without bias) and fc1's bias.
    pub fn lenet_fc1_contributions(&self, z2: Tensor<4>) -> Option<(Tensor<3>, Tensor<1>)> {
        match self {
            Network::Lenet5(n) => Some((n.fc1_contributions(z2), n.fc1_bias()?)),
            _ => None,
        }
    }

    /// LeNet5 only: logits from fc1's pre-activation (ReLU → fc2 → ReLU → fc3).
    pub fn lenet_after_fc1(&self, pre: Tensor<2>) -> Option<Tensor<2>> {
        match self {
            Network::Lenet5(n) => Some(n.after_fc1(pre)),
            _ => None,
        }
    }

    /// Full forward pass: logits.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_masked(x, None)
    }

    /// Forward pass with the raw conv1/conv2 outputs multiplied by `masks` (remove transform).
    pub fn forward_masked(&self, x: Tensor<4>, masks: Option<&ChannelMasks>) -> Tensor<2> {
        let mut z1 = self.conv1(x);
        if let Some(m) = masks {
            z1 = z1 * m.conv1.clone();
        }
        let a1 = self.layer1(z1);
        let mut z2 = self.conv2(a1.clone());
        if let Some(m) = masks {
            z2 = z2 * m.conv2.clone();
        }
        self.tail(a1, z2)
    }
}
