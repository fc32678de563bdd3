//! Slot plans: which (image, position) every SIMD slot of every ciphertext holds in one call of
//! the user's block evaluation, for the batch, spatial and rotated spatial layouts.

use serde::{Deserialize, Serialize};

use crate::block::{BlockShape, IntBlock};
use crate::{HeError, Result};

/// How images and positions are laid out in SIMD slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// Images across slots: throughput over a batch of up to N images.
    Batch,
    /// Output positions (of a few images) across slots: low latency for a single image.
    Spatial,
}

/// Per slot: the (image, position) it holds, if any.
pub(super) type SlotMap = Vec<Option<(u32, u32)>>;

/// One conv2 tap of the rotated spatial layout: the square of a selected channel is computed
/// once on the unshifted map and rotated left by `steps` slots for this tap; `mask` zeroes the
/// slots whose source position lies outside the image (conv2's zero padding), and is folded into
/// the encrypted weight once per session.
#[derive(Debug, Clone)]
pub struct RotationTap {
    /// Tap index `ty·k2 + tx`.
    pub tap: usize,
    /// Left rotation of the slot rows (0 for the centre tap).
    pub steps: usize,
    /// 1 where the tap reads inside the same image, else 0.
    pub mask: Vec<i64>,
}

/// Left rotation, within slot rows of `row` slots, that brings the layer-1 position read through
/// conv2 tap `t` onto the layer-2 position reading it.
fn tap_steps(s: &BlockShape, t: usize, row: usize) -> usize {
    let d = (t / s.k2) as i64 - s.pad2 as i64;
    let e = (t % s.k2) as i64 - s.pad2 as i64;
    (d * s.w1 as i64 + e).rem_euclid(row as i64) as usize
}

/// Layer-1 position (flattened) read by layer-2 position `p` (flattened) through tap `t`.
fn source(s: &BlockShape, p: usize, t: usize) -> Option<usize> {
    s.layer1_at(p / s.w2, p % s.w2, t / s.k2, t % s.k2)
        .map(|(y, x)| y * s.w1 + x)
}

/// Column-rotation amounts the rotated spatial layout of a block needs at ring degree `degree`
/// (empty when the layout does not apply: layer-1 and layer-2 maps of different sizes, or an
/// image larger than a slot row).
pub fn rotation_steps(block: &IntBlock, degree: usize) -> Vec<usize> {
    let s = &block.shape;
    let row = degree / 2;
    if s.h1 != s.h2 || s.w1 != s.w2 || s.h2 * s.w2 > row {
        return Vec::new();
    }
    let mut steps: Vec<usize> = (0..s.k2 * s.k2)
        .map(|t| tap_steps(s, t, row))
        .filter(|&k| k != 0)
        .collect();
    steps.sort_unstable();
    steps.dedup();
    steps
}

/// Which (image, position) each slot of each ciphertext holds, for one call.
#[derive(Debug, Clone)]
pub struct SlotPlan {
    /// The layout.
    pub layout: Layout,
    /// Images covered by this call.
    pub images: usize,
    /// Input maps: per map, the layer-1 position each slot computes.
    pub(super) maps: Vec<SlotMap>,
    /// Output groups: per group, the layer-2 position each slot holds.
    pub(super) groups: Vec<SlotMap>,
    /// Per group: the (tap, input map) pairs summed into it.
    pub(super) terms: Vec<Vec<(usize, usize)>>,
    /// Per group: the input map holding the same positions (for layer-1 outputs), if any.
    pub(super) identity: Vec<Option<usize>>,
    /// Rotated spatial layout: per tap, its rotation and mask (empty for the other layouts).
    pub rotations: Vec<RotationTap>,
}

impl SlotPlan {
    /// Most images one call can hold.
    pub fn capacity(layout: Layout, block: &IntBlock, degree: usize) -> Result<usize> {
        let per = block.shape.h2 * block.shape.w2;
        match layout {
            Layout::Batch => Ok(degree),
            Layout::Spatial if !rotation_steps(block, degree).is_empty() => {
                Ok(2 * ((degree / 2) / per))
            }
            Layout::Spatial if per <= degree => Ok(degree / per),
            Layout::Spatial => Err(HeError::shape(format!(
                "spatial layout needs h2·w2 = {per} ≤ N = {degree}: use the batch layout or a larger degree"
            ))),
        }
    }

    /// Plan for `images` images (at most [`SlotPlan::capacity`]).
    pub fn new(layout: Layout, block: &IntBlock, degree: usize, images: usize) -> Result<Self> {
        let cap = Self::capacity(layout, block, degree)?;
        if images == 0 || images > cap {
            return Err(HeError::shape(format!(
                "{images} images in a call holding at most {cap}"
            )));
        }
        let s = &block.shape;
        Ok(match layout {
            Layout::Batch => Self::batch(s, images),
            Layout::Spatial if !rotation_steps(block, degree).is_empty() => {
                Self::rotated(s, degree, images)
            }
            Layout::Spatial => Self::spatial(s, images),
        })
    }

    /// Images across slots: one map per layer-1 position, one group per layer-2 position.
    fn batch(s: &BlockShape, images: usize) -> Self {
        let (taps, per1, per2) = (s.k2 * s.k2, s.h1 * s.w1, s.h2 * s.w2);
        let same = s.h1 == s.h2 && s.w1 == s.w2;
        let map_of =
            |pos: usize| -> SlotMap { (0..images).map(|n| Some((n as u32, pos as u32))).collect() };
        Self {
            layout: Layout::Batch,
            images,
            maps: (0..per1).map(map_of).collect(),
            groups: (0..per2).map(map_of).collect(),
            terms: (0..per2)
                .map(|p| {
                    (0..taps)
                        .filter_map(|t| source(s, p, t).map(|q| (t, q)))
                        .collect()
                })
                .collect(),
            identity: (0..per2).map(|p| same.then_some(p)).collect(),
            rotations: Vec::new(),
        }
    }

    /// Rotated spatial layout: slot rows of N/2 hold whole images,
    /// slot = row·N/2 + image_in_row·h2·w2 + position.
    fn rotated(s: &BlockShape, degree: usize, images: usize) -> Self {
        let (taps, per2) = (s.k2 * s.k2, s.h2 * s.w2);
        let row = degree / 2;
        let per_row = row / per2;
        let locate = |sl: usize| -> Option<(usize, usize)> {
            let (r, c) = (sl / row, sl % row);
            let (i, p) = (r * per_row + c / per2, c % per2);
            (c / per2 < per_row).then_some((i, p))
        };
        let maps = (0..taps)
            .map(|t| {
                (0..degree)
                    .map(|sl| {
                        let (i, p) = locate(sl)?;
                        if i >= images {
                            return None;
                        }
                        source(s, p, t).map(|q| (i as u32, q as u32))
                    })
                    .collect()
            })
            .collect();
        let group = (0..degree)
            .map(|sl| {
                locate(sl)
                    .filter(|(i, _)| *i < images)
                    .map(|(i, p)| (i as u32, p as u32))
            })
            .collect();
        let rotations = (0..taps)
            .map(|t| RotationTap {
                tap: t,
                steps: tap_steps(s, t, row),
                mask: (0..degree)
                    .map(|sl| {
                        locate(sl)
                            .and_then(|(_, p)| source(s, p, t))
                            .map_or(0, |_| 1)
                    })
                    .collect(),
            })
            .collect();
        Self::per_tap(s, images, (maps, group), true, rotations)
    }

    /// Spatial layout: slot = image·h2·w2 + position, one map per conv2 tap.
    fn spatial(s: &BlockShape, images: usize) -> Self {
        let (taps, per2) = (s.k2 * s.k2, s.h2 * s.w2);
        let slots = images * per2;
        let maps = (0..taps)
            .map(|t| {
                (0..slots)
                    .map(|sl| source(s, sl % per2, t).map(|q| ((sl / per2) as u32, q as u32)))
                    .collect()
            })
            .collect();
        let group = (0..slots)
            .map(|sl| Some(((sl / per2) as u32, (sl % per2) as u32)))
            .collect();
        let same = s.h1 == s.h2 && s.w1 == s.w2;
        Self::per_tap(s, images, (maps, group), same && s.pad2 < s.k2, Vec::new())
    }

    /// A spatial plan with one map per conv2 tap and a single output group summing every tap
    /// over its own map; `identity` says whether the centre tap's map is the layer-1 output.
    fn per_tap(
        s: &BlockShape,
        images: usize,
        (maps, group): (Vec<SlotMap>, SlotMap),
        identity: bool,
        rotations: Vec<RotationTap>,
    ) -> Self {
        let taps = s.k2 * s.k2;
        let centre = s.pad2 * s.k2 + s.pad2;
        Self {
            layout: Layout::Spatial,
            images,
            maps,
            groups: vec![group],
            terms: vec![(0..taps).map(|t| (t, t)).collect()],
            identity: vec![identity.then_some(centre)],
            rotations,
        }
    }

    /// Output ciphertexts per selected filter.
    pub fn groups(&self) -> usize {
        self.groups.len()
    }

    /// Writes decrypted slot values of group `g` into `out[image][position]`.
    pub fn scatter(&self, g: usize, values: &[i64], out: &mut [Vec<i64>]) {
        for (slot, entry) in self.groups[g].iter().enumerate() {
            if let (Some((n, p)), Some(&v)) = (entry, values.get(slot)) {
                out[*n as usize][*p as usize] = v;
            }
        }
    }
}
