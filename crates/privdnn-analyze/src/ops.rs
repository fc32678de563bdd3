//! Analytic operation counts (Fig. 5): how much of a network's arithmetic runs under
//! homomorphic encryption for a selection of |S1| conv1 and |S2| conv2 filters, computed from the
//! layer shapes (the same shapes `privdnn-model` builds: architecture, width multiplier, image
//! size, input channels, classes).
//!
//! Formulas (inference, per image; one multiply-accumulate = 1 multiplication + 1 addition):
//!
//! * convolution C_in → C_out, k×k, padding p, stride s: for every output pixel, one
//!   multiplication per *valid* tap (taps that fall on zero padding are skipped, as the HE code
//!   does), taps − 1 additions to accumulate, +1 for the bias. The valid taps of one
//!   (output channel, input channel) pair are T = T_y · T_x with
//!   T_y = Σ_{y < H_out} #{ky < k : 0 ≤ y·s + ky − p < H_in} (likewise T_x), so
//!   mults = C_out · C_in · T and adds = C_out · (C_in · T − H_out·W_out·[no bias]).
//!   The reference's scripts counted H_out·W_out·C_in·k² (padding taps included) and, for VGG16,
//!   conv2 at 16×16 instead of 32×32 (spec §6): our VGG16 fractions are about 4× theirs.
//! * average pooling w×w: per output, w² − 1 additions and 1 multiplication (by 1/w²);
//! * square: 1 multiplication per element (a ciphertext × ciphertext product under HE);
//! * batch norm (inference, folded): 1 multiplication + 1 addition per element;
//! * fully connected in → out: in · out multiplications and in · out additions (bias included);
//! * residual addition: 1 addition per element; ReLU and max pooling are comparisons (0 here).
//!
//! Encrypted work of a selection (S1, S2) in the *separate* mode (spec §5.3–5.4): the |S1|
//! selected conv1 filters (encrypted weights × plaintext pixels), their layer-1 operations
//! (pool + square for LeNet5 / AlexNet, square for VGG16, BN1 + square for ResNet18), and the
//! |S2| selected conv2 filters over *all* C1 input channels: ciphertext × ciphertext for the
//! |S1| encrypted inputs, ciphertext × plaintext for the others. Non-selected conv2 filters read
//! only non-selected inputs (the separate transform), so they do no HE work. The fraction is
//! encrypted / whole network in plaintext; full encryption would be 100 %. Encrypted neurons:
//! (|S1| + |S2|) / all conv filters (VGG16's per-channel "obscure" conv excluded, ResNet18's 1×1
//! shortcut projections included).

/// A network family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    /// LeNet5 (MNIST / EMNIST).
    Lenet5,
    /// AlexNet variant (GTSRB).
    Alexnet,
    /// VGG16 variant (CIFAR-10).
    Vgg16,
    /// ResNet18 variant (Tiny ImageNet).
    Resnet18,
}

impl Arch {
    /// From the config's `model.architecture`.
    pub fn parse(name: &str) -> Option<Arch> {
        Some(match name {
            "lenet5" => Arch::Lenet5,
            "alexnet" => Arch::Alexnet,
            "vgg16" => Arch::Vgg16,
            "resnet18" => Arch::Resnet18,
            _ => return None,
        })
    }
}

/// The shape parameters of a model.
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    /// Family.
    pub arch: Arch,
    /// Input channels.
    pub in_channels: usize,
    /// Image side.
    pub image_size: usize,
    /// Classes.
    pub classes: usize,
    /// Width multiplier.
    pub width: f64,
    /// LeNet5 conv1 / conv2 filters before the width multiplier.
    pub lenet_filters: [usize; 2],
}

impl Shape {
    fn scaled(&self, base: usize) -> u64 {
        ((base as f64 * self.width).round() as u64).max(1)
    }

    /// A key equal for identical shapes.
    pub fn key(&self) -> String {
        format!(
            "{:?}/{}/{}/{}/{}/{:?}",
            self.arch,
            self.in_channels,
            self.image_size,
            self.classes,
            self.width,
            self.lenet_filters
        )
    }
}

/// Multiplications and additions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Multiplications.
    pub mults: u64,
    /// Additions.
    pub adds: u64,
}

impl std::ops::Add for Counts {
    type Output = Counts;
    fn add(self, o: Counts) -> Counts {
        Counts {
            mults: self.mults + o.mults,
            adds: self.adds + o.adds,
        }
    }
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        *self = *self + o;
    }
}

impl std::ops::Mul<u64> for Counts {
    type Output = Counts;
    fn mul(self, n: u64) -> Counts {
        Counts {
            mults: self.mults * n,
            adds: self.adds * n,
        }
    }
}

/// A convolution's geometry along one axis: output size and valid taps summed over outputs.
fn axis(input: u64, k: u64, pad: u64, stride: u64) -> (u64, u64) {
    let out = (input + 2 * pad - k) / stride + 1;
    let taps = (0..out)
        .map(|y| {
            (0..k)
                .filter(|ky| {
                    let pos = (y * stride + ky) as i64 - pad as i64;
                    pos >= 0 && pos < input as i64
                })
                .count() as u64
        })
        .sum();
    (out, taps)
}

/// One convolution layer: output side, counts, valid taps per (out, in) channel pair.
#[derive(Clone, Copy, Debug)]
struct Conv {
    out_side: u64,
    counts: Counts,
    taps: u64,
}

fn conv(side: u64, c_in: u64, c_out: u64, k: u64, pad: u64, stride: u64, bias: bool) -> Conv {
    let (out_side, t) = axis(side, k, pad, stride);
    let taps = t * t;
    let pixels = out_side * out_side;
    Conv {
        out_side,
        taps,
        counts: Counts {
            mults: c_out * c_in * taps,
            adds: c_out * (c_in * taps - if bias { 0 } else { pixels }),
        },
    }
}

fn avgpool(channels: u64, out_side: u64, w: u64) -> Counts {
    let n = channels * out_side * out_side;
    Counts {
        mults: n,
        adds: n * (w * w - 1),
    }
}

fn square(n: u64) -> Counts {
    Counts { mults: n, adds: 0 }
}

fn bn(n: u64) -> Counts {
    Counts { mults: n, adds: n }
}

fn fc(i: u64, o: u64) -> Counts {
    Counts {
        mults: i * o,
        adds: i * o,
    }
}

/// Per-network constants of the count model.
#[derive(Clone, Debug)]
pub struct Network {
    /// conv1 / conv2 filters.
    pub channels: [u64; 2],
    /// One conv1 filter (all its input channels).
    pub conv1_filter: Counts,
    /// Layer-1 operations on one channel (pool / BN / square).
    pub layer1_channel: Counts,
    /// Of which ciphertext × ciphertext multiplications (the square; BN1's encrypted γ′ too).
    pub layer1_ct_ct: u64,
    /// Valid taps of one conv2 (output, input) channel pair.
    pub conv2_taps: u64,
    /// conv2 has a bias.
    pub conv2_bias: bool,
    /// conv2 output pixels per channel.
    pub conv2_pixels: u64,
    /// The whole network in plaintext.
    pub total: Counts,
    /// All conv filters.
    pub conv_neurons: u64,
}

/// Encrypted work of one selection.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Encrypted {
    /// (|S1|, |S2|).
    pub sizes: [u64; 2],
    /// HE multiplications and additions.
    pub counts: Counts,
    /// Of which ciphertext × ciphertext multiplications.
    pub ct_ct_mults: u64,
    /// Percent of the network's multiplications.
    pub mult_percent: f64,
    /// Percent of the network's additions.
    pub add_percent: f64,
    /// Percent of conv filters encrypted.
    pub neuron_percent: f64,
}

impl Network {
    /// The count model of `shape`.
    pub fn new(shape: &Shape) -> Network {
        let s = shape.image_size as u64;
        let cin = shape.in_channels as u64;
        let classes = shape.classes as u64;
        match shape.arch {
            Arch::Lenet5 => Network::lenet5(shape, s, cin, classes),
            Arch::Alexnet => Network::alexnet(shape, s, cin, classes),
            Arch::Vgg16 => Network::vgg16(shape, s, cin, classes),
            Arch::Resnet18 => Network::resnet18(shape, s, cin, classes),
        }
    }

    /// LeNet5: conv1, pool + square, conv2, pool + square, three FC layers.
    fn lenet5(shape: &Shape, s: u64, cin: u64, classes: u64) -> Network {
        let mut total = Counts::default();
        let (c1, c2) = (
            shape.scaled(shape.lenet_filters[0]),
            shape.scaled(shape.lenet_filters[1]),
        );
        let k1 = conv(s, cin, c1, 5, 0, 1, true);
        let p1 = k1.out_side / 2;
        let l1 = avgpool(1, p1, 2) + square(p1 * p1);
        let k2 = conv(p1, c1, c2, 5, 0, 1, true);
        let p2 = k2.out_side / 2;
        let (h1, h2) = (shape.scaled(120), shape.scaled(84));
        total += k1.counts + l1 * c1 + k2.counts;
        total += avgpool(c2, p2, 2) + square(c2 * p2 * p2);
        total += fc(c2 * p2 * p2, h1) + fc(h1, h2) + fc(h2, classes);
        Network::from_parts([c1, c2], &k1, (l1, p1 * p1), &k2, true, total, c1 + c2)
    }

    /// The AlexNet variant: conv1, pool + square, conv2 + BN, conv3–5, two FC hidden layers.
    fn alexnet(shape: &Shape, s: u64, cin: u64, classes: u64) -> Network {
        let mut total = Counts::default();
        let [c1, c2, c3, c4, c5] = [96, 256, 384, 384, 256].map(|c| shape.scaled(c));
        let k1 = conv(s, cin, c1, 5, 1, 1, true);
        let p1 = k1.out_side / 2;
        let l1 = avgpool(1, p1, 2) + square(p1 * p1);
        let k2 = conv(p1, c1, c2, 3, 1, 1, true);
        let o2 = k2.out_side;
        total += k1.counts + l1 * c1 + k2.counts + bn(c2 * o2 * o2);
        let m1 = o2 / 2;
        let k3 = conv(m1, c2, c3, 3, 1, 1, true);
        let k4 = conv(m1, c3, c4, 3, 1, 1, true);
        let k5 = conv(m1, c4, c5, 3, 1, 1, true);
        total += k3.counts + k4.counts + k5.counts;
        let m2 = m1 / 2;
        let (h1, h2) = (shape.scaled(512), shape.scaled(128));
        total += fc(c5 * m2 * m2, h1) + fc(h1, h2) + fc(h2, classes);
        Network::from_parts(
            [c1, c2],
            &k1,
            (l1, p1 * p1),
            &k2,
            true,
            total,
            c1 + c2 + c3 + c4 + c5,
        )
    }

    /// The VGG16 variant: conv1, square, conv2 with its per-channel obscure conv and BN, then eleven conv + BN layers and three FC layers.
    fn vgg16(shape: &Shape, s: u64, cin: u64, classes: u64) -> Network {
        let mut total = Counts::default();
        let c1 = shape.scaled(64);
        let k1 = conv(s, cin, c1, 3, 1, 1, true);
        let l1 = square(s * s);
        let k2 = conv(s, c1, c1, 3, 1, 1, true);
        // per-channel 3×3 obscure conv (no bias): one input channel per output
        let obscure = conv(s, 1, 1, 3, 1, 1, false).counts * c1;
        total += k1.counts + l1 * c1 + k2.counts + obscure + bn(c1 * s * s);
        let mut side = s / 2;
        let mut c_in = c1;
        let mut neurons = 2 * c1;
        for (i, base) in [128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
            .into_iter()
            .enumerate()
        {
            let c_out = shape.scaled(base);
            total += conv(side, c_in, c_out, 3, 1, 1, true).counts + bn(c_out * side * side);
            neurons += c_out;
            c_in = c_out;
            if [1, 4, 7, 10].contains(&i) {
                side /= 2;
            }
        }
        let hidden = shape.scaled(512);
        total += fc(c_in * side * side, hidden) + fc(hidden, hidden) + fc(hidden, classes);
        Network::from_parts([c1, c1], &k1, (l1, s * s), &k2, true, total, neurons)
    }

    /// The ResNet18 variant: conv1, BN + square, the first residual block, three stages of two blocks, average pool and FC.
    fn resnet18(shape: &Shape, s: u64, cin: u64, classes: u64) -> Network {
        let mut total = Counts::default();
        let c = shape.scaled(64);
        let k1 = conv(s, cin, c, 3, 1, 1, false);
        let l1 = bn(s * s) + square(s * s);
        let k2 = conv(s, c, c, 3, 1, 1, false);
        let plane = c * s * s;
        total += k1.counts + l1 * c + k2.counts + bn(plane);
        total += conv(s, c, c, 3, 1, 1, false).counts + bn(plane); // conv3, BN3
        total += conv(s, c, c, 1, 0, 1, false).counts + bn(plane); // shortcut1
        total += Counts {
            mults: 0,
            adds: plane,
        }; // residual add
        let mut neurons = 4 * c;
        let mut side = s;
        let mut c_in = c;
        for base in [128, 256, 512] {
            let c_out = shape.scaled(base);
            for stride in [2, 1] {
                let a = conv(side, c_in, c_out, 3, 1, stride, false);
                let out = a.out_side;
                let n = c_out * out * out;
                total += a.counts + bn(n);
                total += conv(out, c_out, c_out, 3, 1, 1, false).counts + bn(n);
                neurons += 2 * c_out;
                if stride != 1 || c_in != c_out {
                    total += conv(side, c_in, c_out, 1, 0, stride, false).counts + bn(n);
                    neurons += c_out;
                }
                total += Counts { mults: 0, adds: n };
                side = out;
                c_in = c_out;
            }
        }
        let pooled = side / 4;
        total += avgpool(c_in, pooled, 4) + fc(c_in * pooled * pooled, classes);
        Network::from_parts([c, c], &k1, (l1, 2 * s * s), &k2, false, total, neurons)
    }

    #[allow(clippy::too_many_arguments)]
    fn from_parts(
        channels: [u64; 2],
        k1: &Conv,
        (layer1_channel, layer1_ct_ct): (Counts, u64),
        k2: &Conv,
        conv2_bias: bool,
        total: Counts,
        conv_neurons: u64,
    ) -> Network {
        Network {
            channels,
            conv1_filter: Counts {
                mults: k1.counts.mults / channels[0],
                adds: k1.counts.adds / channels[0],
            },
            layer1_channel,
            layer1_ct_ct,
            conv2_taps: k2.taps,
            conv2_bias,
            conv2_pixels: k2.out_side * k2.out_side,
            total,
            conv_neurons,
        }
    }

    /// Encrypted work of a selection of `s1` conv1 and `s2` conv2 filters.
    pub fn encrypted(&self, s1: u64, s2: u64) -> Encrypted {
        let c1 = self.channels[0];
        let conv2_filter = Counts {
            mults: c1 * self.conv2_taps,
            adds: c1 * self.conv2_taps
                - if self.conv2_bias {
                    0
                } else {
                    self.conv2_pixels
                },
        };
        let counts = self.conv1_filter * s1 + self.layer1_channel * s1 + conv2_filter * s2;
        let ct_ct_mults = s2 * s1 * self.conv2_taps + self.layer1_ct_ct * s1;
        let pct = |a: u64, b: u64| {
            if b == 0 {
                0.0
            } else {
                100.0 * a as f64 / b as f64
            }
        };
        Encrypted {
            sizes: [s1, s2],
            counts,
            ct_ct_mults,
            mult_percent: pct(counts.mults, self.total.mults),
            add_percent: pct(counts.adds, self.total.adds),
            neuron_percent: pct(s1 + s2, self.conv_neurons),
        }
    }

    /// Sizes of a percent point: |S_k| = max(1, ⌊C_k · p / 100⌋) (spec §3.3).
    pub fn percent_sizes(&self, percent: f64) -> [u64; 2] {
        self.channels
            .map(|c| ((c as f64 * percent / 100.0).floor() as u64).clamp(1, c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runs::RefDataset;

    #[test]
    fn lenet5_matches_the_reference_formula() {
        // spec §7.4: MNIST (1,1) 8.6 %, (2,6) 30.7 % of multiplications; LeNet5 has no padding,
        // so the valid-tap count equals the reference's H·W·C_in·k²
        let n = Network::new(&RefDataset::Mnist.paper_shape());
        assert_eq!(n.channels, [6, 16]);
        assert_eq!(n.total.mults, 283_880);
        assert_eq!(n.conv1_filter.mults, 24 * 24 * 25);
        let a = n.encrypted(1, 1);
        assert_eq!(a.counts.mults, 14_400 + 144 + 144 + 9_600);
        assert!((a.mult_percent - 8.6).abs() < 0.1, "{}", a.mult_percent);
        let b = n.encrypted(2, 6);
        assert!((b.mult_percent - 30.7).abs() < 0.1, "{}", b.mult_percent);
        assert_eq!(b.ct_ct_mults, 6 * 2 * 64 * 25 + 2 * 144);
        assert!((b.neuron_percent - 100.0 * 8.0 / 22.0).abs() < 1e-9);
    }

    #[test]
    fn padding_taps_are_skipped() {
        // 3×3 pad 1 on 4×4: per axis, outputs 0 and 3 see 2 taps, 1 and 2 see 3 → 10; 100 total
        assert_eq!(axis(4, 3, 1, 1), (4, 10));
        let c = conv(4, 2, 3, 3, 1, 1, false);
        assert_eq!(c.counts.mults, 3 * 2 * 100);
        assert_eq!(c.counts.adds, 3 * (2 * 100 - 16));
        // stride 2, 1×1: 8 → 4 outputs, one tap each
        assert_eq!(axis(8, 1, 0, 2), (4, 4));
    }

    #[test]
    fn full_selection_and_families() {
        for d in RefDataset::ALL {
            let n = Network::new(&d.paper_shape());
            let [c1, c2] = n.channels;
            let all = n.encrypted(c1, c2);
            assert!(all.mult_percent > 0.0 && all.mult_percent < 100.0, "{d:?}");
            assert!(n.encrypted(1, 1).mult_percent < all.mult_percent);
            assert_eq!(n.percent_sizes(100.0), [c1, c2]);
            assert_eq!(n.percent_sizes(0.1), [1, 1]);
        }
        let vgg = Network::new(&RefDataset::Cifar10.paper_shape());
        assert_eq!(vgg.channels, [64, 64]);
        assert_eq!(vgg.conv_neurons, 4224);
        // 3×3 pad 1 on 32: 32·3 − 2 valid taps per axis
        assert_eq!(vgg.conv2_taps, 94 * 94);
        let gtsrb = Network::new(&RefDataset::Gtsrb.paper_shape());
        assert_eq!(gtsrb.conv_neurons, 1376);
    }
}
