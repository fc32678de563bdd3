//! Slot layouts of the user-keyed mode: which ciphertexts the user sends, which slot holds which
//! (image, position), and which output slots the user may learn.
//!
//! * `Batch` (images across slots): the user sends one ciphertext per input pixel (slot = image)
//!   and one per non-selected layer-1 channel and position (its own clear squares). The owner
//!   needs no rotation; up to N images per request. Cheapest per image for large batches.
//! * `Spatial` (padded frames): each image occupies a frame of the layer-1 map padded by conv2's
//!   padding, `(h1 + 2·pad2) × (w1 + 2·pad2)` slots, frames never straddle a slot row (N/2). The
//!   user sends, per group of frames, one im2col ciphertext per conv1 tap (the pixel each
//!   layer-1 position reads through that tap, 0 on the frame border) and one ciphertext per
//!   non-selected channel. The owner forms, per selected filter and conv2 tap, the channel sum
//!   `V = Σ_c W2[j,c,τ]·A_c` and rotates it left by `ty·W' + tx` (Galois keys from the user);
//!   zero borders make conv2's padding exact without masks. Output `(py, px)` lands on frame
//!   slot `py·W' + px`; every other slot is randomised by the owner before the reply.

use crate::block::BlockShape;
use crate::engine::Layout;
use crate::{HeError, Result};

/// Most ciphertext groups (sets of frames) one spatial request may hold: bounds the owner's
/// memory per request (about 35 ciphertexts of 0.5 MiB per group and residue on CIFAR-10).
pub const MAX_SPATIAL_GROUPS: usize = 16;

/// Frame geometry of the spatial layout.
#[derive(Debug, Clone, Copy)]
struct Frame {
    width: usize,
    size: usize,
    per_row: usize,
}

/// The slot plan of one request.
#[derive(Debug, Clone)]
pub struct KeyedPlan {
    /// The layout.
    pub layout: Layout,
    /// Images in the request.
    pub images: usize,
    degree: usize,
    shape: BlockShape,
    /// Layer-1 channels the user sends (its non-selected channels), in increasing order.
    pub plain_channels: Vec<usize>,
    frame: Option<Frame>,
}

fn frame_of(shape: &BlockShape, degree: usize) -> Result<Frame> {
    let width = shape.w1 + 2 * shape.pad2;
    let size = (shape.h1 + 2 * shape.pad2) * width;
    let row = degree / 2;
    if size > row {
        return Err(HeError::shape(format!(
            "the spatial layout needs a padded layer-1 frame of {size} slots ≤ N/2 = {row}: use \
             the batch layout or a larger degree"
        )));
    }
    Ok(Frame {
        width,
        size,
        per_row: row / size,
    })
}

impl KeyedPlan {
    /// Images per ciphertext group (batch: N; spatial: frames per ciphertext).
    pub fn per_group(layout: Layout, shape: &BlockShape, degree: usize) -> Result<usize> {
        match layout {
            Layout::Batch => Ok(degree),
            Layout::Spatial => Ok(2 * frame_of(shape, degree)?.per_row),
        }
    }

    /// Most images one request may hold.
    pub fn capacity(layout: Layout, shape: &BlockShape, degree: usize) -> Result<usize> {
        let per = Self::per_group(layout, shape, degree)?;
        Ok(match layout {
            Layout::Batch => per,
            Layout::Spatial => per * MAX_SPATIAL_GROUPS,
        })
    }

    /// Plan for `images` images of a block whose selected layer-1 channels are `s1`.
    pub fn new(
        layout: Layout,
        shape: &BlockShape,
        s1: &[usize],
        degree: usize,
        images: usize,
    ) -> Result<Self> {
        let cap = Self::capacity(layout, shape, degree)?;
        if images == 0 || images > cap {
            return Err(HeError::shape(format!(
                "{images} images in a request holding at most {cap}"
            )));
        }
        let frame = match layout {
            Layout::Batch => None,
            Layout::Spatial => Some(frame_of(shape, degree)?),
        };
        Ok(Self {
            layout,
            images,
            degree,
            shape: shape.clone(),
            plain_channels: (0..shape.c1).filter(|c| !s1.contains(c)).collect(),
            frame,
        })
    }

    /// Layer-1 maps: batch, one per layer-1 position; spatial, one per ciphertext group.
    pub fn maps(&self) -> usize {
        match self.frame {
            None => self.shape.h1 * self.shape.w1,
            Some(_) => self.groups(),
        }
    }

    /// Ciphertext groups (spatial) or 1 (batch).
    pub fn groups(&self) -> usize {
        match self.frame {
            None => 1,
            Some(f) => self.images.div_ceil(2 * f.per_row),
        }
    }

    /// Output ciphertexts per selected filter: batch, one per layer-2 position; spatial, one
    /// per group.
    pub fn outputs(&self) -> usize {
        match self.frame {
            None => self.shape.h2 * self.shape.w2,
            Some(_) => self.groups(),
        }
    }

    /// Input (conv1 operand) ciphertexts the user sends.
    pub fn input_count(&self) -> usize {
        match self.frame {
            None => self.shape.input_len(),
            Some(_) => self.shape.w1_len() * self.groups(),
        }
    }

    /// Ciphertexts of the user's non-selected layer-1 squares.
    pub fn a1_count(&self) -> usize {
        self.plain_channels.len() * self.maps()
    }

    /// Index of the a1 ciphertext of plain channel number `pc` in map `m`.
    pub fn a1_index(&self, pc: usize, m: usize) -> usize {
        pc * self.maps() + m
    }

    /// conv1 operands of map `m`: (combined tap κ, input ciphertext index).
    pub fn conv1_sources(&self, m: usize) -> Vec<(usize, usize)> {
        let s = &self.shape;
        let kk = s.k1 * s.k1;
        (0..s.w1_len())
            .filter_map(|kappa| match self.frame {
                None => {
                    let (ci, ky, kx) = (kappa / kk, (kappa % kk) / s.k1, kappa % s.k1);
                    s.input_at(m / s.w1, m % s.w1, ky, kx)
                        .map(|(y, x)| (kappa, (ci * s.height + y) * s.width + x))
                }
                Some(_) => Some((kappa, kappa * self.groups() + m)),
            })
            .collect()
    }

    /// conv2 terms of output `o`: (tap τ, layer-1 map, left rotation).
    pub fn conv2_terms(&self, o: usize) -> Vec<(usize, usize, usize)> {
        let s = &self.shape;
        (0..s.k2 * s.k2)
            .filter_map(|tau| {
                let (ty, tx) = (tau / s.k2, tau % s.k2);
                match self.frame {
                    None => s
                        .layer1_at(o / s.w2, o % s.w2, ty, tx)
                        .map(|(y, x)| (tau, y * s.w1 + x, 0)),
                    Some(f) => Some((tau, o, ty * f.width + tx)),
                }
            })
            .collect()
    }

    /// Left rotations the spatial layout needs (empty for batch).
    pub fn rotation_steps(layout: Layout, shape: &BlockShape, degree: usize) -> Result<Vec<usize>> {
        if layout == Layout::Batch {
            return Ok(Vec::new());
        }
        let f = frame_of(shape, degree)?;
        let mut steps: Vec<usize> = (0..shape.k2 * shape.k2)
            .map(|tau| (tau / shape.k2) * f.width + tau % shape.k2)
            .filter(|&k| k != 0)
            .collect();
        steps.sort_unstable();
        steps.dedup();
        Ok(steps)
    }

    /// Slot of frame position `pos` of image `i` (within its group).
    fn slot(&self, f: Frame, i: usize, pos: usize) -> usize {
        (i / f.per_row) * (self.degree / 2) + (i % f.per_row) * f.size + pos
    }

    /// Images of group `g`: (index in the request, index in the group).
    fn group_images(&self, g: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        let per = match self.frame {
            Some(f) => 2 * f.per_row,
            None => self.degree,
        };
        (0..per)
            .map(move |i| (g * per + i, i))
            .filter(|&(n, _)| n < self.images)
    }

    /// Slots of layer-1 map `m` holding real layer-1 values (None: every slot).
    pub fn layer1_slots(&self, m: usize) -> Option<Vec<bool>> {
        let f = self.frame?;
        let s = &self.shape;
        let mut out = vec![false; self.degree];
        for (_, i) in self.group_images(m) {
            for y in 0..s.h1 {
                for x in 0..s.w1 {
                    out[self.slot(f, i, (y + s.pad2) * f.width + x + s.pad2)] = true;
                }
            }
        }
        Some(out)
    }

    /// Slots of output `o` the user may learn (None: every slot).
    pub fn output_slots(&self, o: usize) -> Option<Vec<bool>> {
        let f = self.frame?;
        let s = &self.shape;
        let mut out = vec![false; self.degree];
        for (_, i) in self.group_images(o) {
            for py in 0..s.h2 {
                for px in 0..s.w2 {
                    out[self.slot(f, i, py * f.width + px)] = true;
                }
            }
        }
        Some(out)
    }

    /// User: slot values of every input ciphertext, from centred images `x` (`[cin·h·w]`).
    pub fn input_slots(&self, x: &[Vec<i64>]) -> Vec<Vec<i64>> {
        let s = &self.shape;
        match self.frame {
            None => (0..s.input_len())
                .map(|idx| x.iter().map(|xi| xi[idx]).collect())
                .collect(),
            Some(f) => {
                let kk = s.k1 * s.k1;
                let mut out = Vec::with_capacity(self.input_count());
                for kappa in 0..s.w1_len() {
                    let (ci, ky, kx) = (kappa / kk, (kappa % kk) / s.k1, kappa % s.k1);
                    for g in 0..self.groups() {
                        let mut v = vec![0i64; self.degree];
                        for (n, i) in self.group_images(g) {
                            for y in 0..s.h1 {
                                for xx in 0..s.w1 {
                                    if let Some((iy, ix)) = s.input_at(y, xx, ky, kx) {
                                        let pos = (y + s.pad2) * f.width + xx + s.pad2;
                                        v[self.slot(f, i, pos)] =
                                            x[n][(ci * s.height + iy) * s.width + ix];
                                    }
                                }
                            }
                        }
                        out.push(v);
                    }
                }
                out
            }
        }
    }

    /// User: slot values of every a1 ciphertext, from its clear squares `a[n][c][h1·w1]`.
    pub fn a1_slots(&self, a: &[Vec<Vec<i64>>]) -> Vec<Vec<i64>> {
        let s = &self.shape;
        let mut out = Vec::with_capacity(self.a1_count());
        for &c in &self.plain_channels {
            for m in 0..self.maps() {
                out.push(match self.frame {
                    None => a.iter().map(|an| an[c][m]).collect(),
                    Some(f) => {
                        let mut v = vec![0i64; self.degree];
                        for (n, i) in self.group_images(m) {
                            for (q, &val) in a[n][c].iter().enumerate().take(s.h1 * s.w1) {
                                let pos = (q / s.w1 + s.pad2) * f.width + q % s.w1 + s.pad2;
                                v[self.slot(f, i, pos)] = val;
                            }
                        }
                        v
                    }
                });
            }
        }
        out
    }

    /// User: writes the decrypted values of output `o` into `out[image][h2·w2]`.
    pub fn scatter_output(&self, o: usize, values: &[i64], out: &mut [Vec<i64>]) {
        let s = &self.shape;
        match self.frame {
            None => {
                for (n, row) in out.iter_mut().enumerate().take(self.images) {
                    row[o] = values[n];
                }
            }
            Some(f) => {
                for (n, i) in self.group_images(o) {
                    for p in 0..s.h2 * s.w2 {
                        out[n][p] = values[self.slot(f, i, (p / s.w2) * f.width + p % s.w2)];
                    }
                }
            }
        }
    }

    /// User: writes the decrypted layer-1 squares of map `m` into `out[image][h1·w1]`.
    pub fn scatter_layer1(&self, m: usize, values: &[i64], out: &mut [Vec<i64>]) {
        let s = &self.shape;
        match self.frame {
            None => {
                for (n, row) in out.iter_mut().enumerate().take(self.images) {
                    row[m] = values[n];
                }
            }
            Some(f) => {
                for (n, i) in self.group_images(m) {
                    for (q, o) in out[n].iter_mut().enumerate().take(s.h1 * s.w1) {
                        let pos = (q / s.w1 + s.pad2) * f.width + q % s.w1 + s.pad2;
                        *o = values[self.slot(f, i, pos)];
                    }
                }
            }
        }
    }
}
