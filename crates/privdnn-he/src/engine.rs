//! The user's homomorphic evaluation of the encrypted block.
//!
//! A *slot plan* says which (image, position) every SIMD slot of every ciphertext holds:
//! * `Batch` (images across slots, the throughput layout): one ciphertext per layer-1 position
//!   and channel, slot = image; up to N images per call.
//! * `Spatial` (the latency layout): one ciphertext per conv2 tap and channel, slot = (image,
//!   output position), so a call covers ⌊N / (h2·w2)⌋ images — a single image costs one call.
//!
//! Layer 1 of a selected channel is `U = Σ Enc(W1)·PT(X) + Enc(B1)·PT(valid)` (ct×pt dot product
//! on the user's own pixels), then `A = U²` (lazy ct×ct). A selected conv2 filter sums lazy
//! ct×ct products with the squares of selected channels, ct×pt products with the user's
//! plaintext squares of the other channels, and its encrypted bias; it is relinearised once, then
//! blinded and switched down by [`crate::protocol`]. This module never sees a secret key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use fhe::bfv::{
    BfvParameters, Ciphertext, EvaluationKey, Plaintext, RelinearizationKey, dot_product_scalar,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::block::IntBlock;
use crate::lazy::{LazyMultiplier, Lifted};
use crate::ops::{OpCounter, encode_simd};
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

type SlotMap = Vec<Option<(u32, u32)>>;

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
        .map(|t| {
            let d = (t / s.k2) as i64 - s.pad2 as i64;
            let e = (t % s.k2) as i64 - s.pad2 as i64;
            (d * s.w1 as i64 + e).rem_euclid(row as i64) as usize
        })
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
    maps: Vec<SlotMap>,
    groups: Vec<SlotMap>,
    terms: Vec<Vec<(usize, usize)>>,
    identity: Vec<Option<usize>>,
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
        let (taps, per1, per2) = (s.k2 * s.k2, s.h1 * s.w1, s.h2 * s.w2);
        let same = s.h1 == s.h2 && s.w1 == s.w2;
        let at = |p: usize, t: usize| {
            s.layer1_at(p / s.w2, p % s.w2, t / s.k2, t % s.k2)
                .map(|(y, x)| y * s.w1 + x)
        };
        let plan = match layout {
            Layout::Batch => {
                let map_of = |pos: usize| -> SlotMap {
                    (0..images).map(|n| Some((n as u32, pos as u32))).collect()
                };
                Self {
                    layout,
                    images,
                    maps: (0..per1).map(map_of).collect(),
                    groups: (0..per2).map(map_of).collect(),
                    terms: (0..per2)
                        .map(|p| (0..taps).filter_map(|t| at(p, t).map(|q| (t, q))).collect())
                        .collect(),
                    identity: (0..per2).map(|p| same.then_some(p)).collect(),
                    rotations: Vec::new(),
                }
            }
            Layout::Spatial if !rotation_steps(block, degree).is_empty() => {
                // Slot rows of N/2 hold whole images: slot = row·N/2 + image_in_row·per2 + p.
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
                                at(p, t).map(|q| (i as u32, q as u32))
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
                    .map(|t| {
                        let d = (t / s.k2) as i64 - s.pad2 as i64;
                        let e = (t % s.k2) as i64 - s.pad2 as i64;
                        RotationTap {
                            tap: t,
                            steps: (d * s.w1 as i64 + e).rem_euclid(row as i64) as usize,
                            mask: (0..degree)
                                .map(|sl| locate(sl).and_then(|(_, p)| at(p, t)).map_or(0, |_| 1))
                                .collect(),
                        }
                    })
                    .collect();
                let centre = s.pad2 * s.k2 + s.pad2;
                Self {
                    layout,
                    images,
                    maps,
                    groups: vec![group],
                    terms: vec![(0..taps).map(|t| (t, t)).collect()],
                    identity: vec![Some(centre)],
                    rotations,
                }
            }
            Layout::Spatial => {
                let slots = images * per2;
                let maps = (0..taps)
                    .map(|t| {
                        (0..slots)
                            .map(|sl| at(sl % per2, t).map(|q| ((sl / per2) as u32, q as u32)))
                            .collect()
                    })
                    .collect();
                let group = (0..slots)
                    .map(|sl| Some(((sl / per2) as u32, (sl % per2) as u32)))
                    .collect();
                let centre = s.pad2 * s.k2 + s.pad2;
                Self {
                    layout,
                    images,
                    maps,
                    groups: vec![group],
                    terms: vec![(0..taps).map(|t| (t, t)).collect()],
                    identity: vec![(same && s.pad2 < s.k2).then_some(centre)],
                    rotations: Vec::new(),
                }
            }
        };
        Ok(plan)
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

/// What the user holds after loading the encrypted model: expanded weight ciphertexts and the
/// plaintext remainder of the block.
pub struct UserBlock {
    /// fhe parameters.
    pub par: Arc<BfvParameters>,
    /// Plaintext part of the quantised block (selected weights are zero here).
    pub block: IntBlock,
    /// Selected layer-1 channels.
    pub s1: Vec<usize>,
    /// Selected layer-2 filters.
    pub s2: Vec<usize>,
    /// Per selected channel: `w1_len` weights then the bias.
    pub w1: Vec<Vec<Ciphertext>>,
    /// Per selected filter: `w2_len` weights then the bias.
    pub w2: Vec<Vec<Ciphertext>>,
    /// conv2 weights on encrypted channels (`[jj][cc·taps + t]`), moved out of `w2` (which holds
    /// empty ciphertexts there); freed once no lifted variant can still be needed.
    encrypted_w2: Mutex<Option<Vec<Vec<Ciphertext>>>>,
    /// The same, lifted, made on first use.
    lifted_w2: Mutex<Option<Arc<Vec<Vec<Lifted>>>>>,
    /// The same multiplied by each tap's mask (rotated spatial layout), made on first use.
    masked_w2: Mutex<Option<Arc<Vec<Vec<Lifted>>>>>,
    rk: RelinearizationKey,
    rotations: Option<EvaluationKey>,
    lazy: LazyMultiplier,
}

/// Level-0 ciphertexts for the owner (blinded and switched down by [`crate::protocol`]): per
/// selected filter and group, and optionally per selected layer-1 channel and group (ResNet's
/// shortcut).
pub struct BlockOutput {
    /// `z[jj * groups + g]`.
    pub z: Vec<Ciphertext>,
    /// `a1[cc * groups + g]` (empty unless requested).
    pub a1: Vec<Ciphertext>,
}

impl UserBlock {
    /// Assembles the user's block from expanded weights (`w1`: per selected channel,
    /// `w2`: per selected filter, each with its bias last). `rotations` holds the Galois keys of
    /// the rotated spatial layout when the block supports it.
    pub fn new(
        par: Arc<BfvParameters>,
        block: IntBlock,
        (s1, s2): (Vec<usize>, Vec<usize>),
        (w1, w2): (Vec<Vec<Ciphertext>>, Vec<Vec<Ciphertext>>),
        rk: RelinearizationKey,
        rotations: Option<EvaluationKey>,
    ) -> Result<Self> {
        let s = &block.shape;
        if w1.len() != s1.len() || w2.len() != s2.len() {
            return Err(HeError::shape(
                "encrypted weights do not match the selection",
            ));
        }
        if w1.iter().any(|v| v.len() != s.w1_len() + 1)
            || w2.iter().any(|v| v.len() != s.w2_len() + 1)
        {
            return Err(HeError::shape(
                "encrypted filters do not match the block's kernel sizes",
            ));
        }
        let lazy = LazyMultiplier::new(&par)?;
        let taps = s.k2 * s.k2;
        let mut w2 = w2;
        let encrypted_w2 = w2
            .iter_mut()
            .map(|ws| {
                s1.iter()
                    .flat_map(|&c| (0..taps).map(move |t| c * taps + t))
                    .map(|i| std::mem::replace(&mut ws[i], Ciphertext::zero(&par)))
                    .collect()
            })
            .collect();
        Ok(Self {
            par,
            block,
            s1,
            s2,
            w1,
            w2,
            encrypted_w2: Mutex::new(Some(encrypted_w2)),
            lifted_w2: Mutex::new(None),
            masked_w2: Mutex::new(None),
            rk,
            rotations,
            lazy,
        })
    }

    /// conv2 weights on encrypted channels, lifted (and masked per tap for the rotated layout),
    /// computed once per session. The unlifted originals are freed as soon as no other variant
    /// can be needed: after the plain variant when the block has no rotated layout, after the
    /// masked variant otherwise (a batch evaluation after a rotated one then needs a new session).
    fn conv2_operands(
        &self,
        rotations: &[RotationTap],
        ops: &OpCounter,
    ) -> Result<Arc<Vec<Vec<Lifted>>>> {
        let masked = !rotations.is_empty();
        let cache = if masked {
            &self.masked_w2
        } else {
            &self.lifted_w2
        };
        let mut guard = cache
            .lock()
            .map_err(|_| HeError::shape("poisoned weight cache"))?;
        if let Some(done) = guard.as_ref() {
            return Ok(done.clone());
        }
        let mut originals = self
            .encrypted_w2
            .lock()
            .map_err(|_| HeError::shape("poisoned weight cache"))?;
        let Some(sources) = originals.as_ref() else {
            return Err(HeError::shape(
                "this session freed its conv2 weights after a rotated spatial evaluation: load the \
                 model again to evaluate in the batch layout",
            ));
        };
        let taps = self.block.shape.k2 * self.block.shape.k2;
        let masks: Vec<Option<Plaintext>> = (0..taps)
            .map(|t| match rotations.iter().find(|r| r.tap == t) {
                Some(r) => encode_simd(&r.mask, &self.par).map(Some),
                None => Ok(None),
            })
            .collect::<Result<_>>()?;
        let lifted = sources
            .par_iter()
            .map(|ws| {
                (0..self.s1.len())
                    .flat_map(|cc| (0..taps).map(move |t| (cc * taps + t, t)))
                    .map(|(i, t)| {
                        OpCounter::add(&ops.lifts, 1);
                        match &masks[t] {
                            Some(mask) => {
                                OpCounter::add(&ops.ct_pt_mul, 1);
                                self.lazy.lift(&(&ws[i] * mask))
                            }
                            None => self.lazy.lift(&ws[i]),
                        }
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let lifted = Arc::new(lifted);
        *guard = Some(lifted.clone());
        if masked || self.rotations.is_none() {
            *originals = None;
        }
        Ok(lifted)
    }

    /// Evaluates the block on centred images `x` (`[cin·h·w]` each). `plain_a[n][c]` holds the
    /// user's plaintext squares of every non-selected channel (`[h1·w1]`, others may be empty).
    pub fn evaluate(
        &self,
        plan: &SlotPlan,
        x: &[Vec<i64>],
        plain_a: &[Vec<Vec<i64>>],
        want_layer1: bool,
        ops: &OpCounter,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<BlockOutput> {
        let s = &self.block.shape;
        if x.len() != plan.images || plain_a.len() != plan.images {
            return Err(HeError::shape("inputs do not match the slot plan"));
        }
        let slots = |m: &SlotMap, f: &dyn Fn(usize, usize) -> i64| -> Vec<i64> {
            m.iter()
                .map(|e| e.map_or(0, |(n, q)| f(n as usize, q as usize)))
                .collect()
        };
        // A. Input plaintexts, deduplicated by content (the batch layout reuses each pixel map).
        let mut unique: HashMap<Vec<i64>, usize> = HashMap::new();
        let mut px_index: Vec<Vec<Option<usize>>> = Vec::with_capacity(plan.maps.len());
        let kk = s.k1 * s.k1;
        for m in &plan.maps {
            let mut row = Vec::with_capacity(s.w1_len() + 1);
            for kappa in 0..=s.w1_len() {
                let v = if kappa == s.w1_len() {
                    slots(m, &|_, _| 1)
                } else {
                    let (ci, ky, kx) = (kappa / kk, (kappa % kk) / s.k1, kappa % s.k1);
                    slots(m, &|n, q| {
                        s.input_at(q / s.w1, q % s.w1, ky, kx)
                            .map_or(0, |(y, xx)| x[n][(ci * s.height + y) * s.width + xx])
                    })
                };
                if v.iter().all(|&e| e == 0) {
                    row.push(None);
                } else {
                    let next = unique.len();
                    row.push(Some(*unique.entry(v).or_insert(next)));
                }
            }
            px_index.push(row);
        }
        let mut keys: Vec<(Vec<i64>, usize)> = unique.into_iter().collect();
        keys.sort_by_key(|(_, i)| *i);
        let px: Vec<Plaintext> = keys
            .par_iter()
            .map(|(v, _)| {
                OpCounter::add(&ops.encodes, 1);
                encode_simd(v, &self.par)
            })
            .collect::<Result<_>>()?;
        drop(keys);
        // B. Encrypted layer 1: U by ct×pt dot product, A = U² (lazy), lifted for conv2. The
        // rotated layout squares only the unshifted map and rotates the square per tap.
        let rotated = !plan.rotations.is_empty();
        let centre = plan.identity.first().copied().flatten().unwrap_or(0);
        let enc_maps: Vec<usize> = if rotated {
            vec![centre]
        } else {
            (0..plan.maps.len()).collect()
        };
        let weights = self.conv2_operands(&plan.rotations, ops)?;
        let cells: Vec<(usize, usize)> = enc_maps
            .iter()
            .flat_map(|&m| (0..self.s1.len()).map(move |cc| (m, cc)))
            .collect();
        let computed: Vec<Option<(Ciphertext, Lifted)>> = cells
            .par_iter()
            .map(|&(m, cc)| {
                let pairs: Vec<(&Ciphertext, &Plaintext)> = px_index[m]
                    .iter()
                    .enumerate()
                    .filter_map(|(k, idx)| idx.map(|i| (&self.w1[cc][k], &px[i])))
                    .collect();
                if pairs.is_empty() {
                    return Ok(None);
                }
                OpCounter::add(&ops.ct_pt_mul, pairs.len() as u64);
                let u = dot_product_scalar(pairs.iter().map(|p| p.0), pairs.iter().map(|p| p.1))?;
                let lu = self.lazy.lift(&u)?;
                let a = self.lazy.dot(&[(&lu, &lu)], &self.rk)?;
                let la = self.lazy.lift(&a)?;
                OpCounter::add(&ops.lifts, 2);
                OpCounter::add(&ops.ct_ct_mul, 1);
                OpCounter::add(&ops.relins, 1);
                Ok(Some((a, la)))
            })
            .collect::<Result<_>>()?;
        drop(px);
        let squares: Vec<Option<(Ciphertext, Lifted)>> = if rotated {
            let key = self.rotations.as_ref().ok_or_else(|| {
                HeError::Parameters("the rotated spatial layout needs rotation keys".into())
            })?;
            let jobs: Vec<(usize, usize)> = (0..plan.maps.len())
                .flat_map(|m| (0..self.s1.len()).map(move |cc| (m, cc)))
                .collect();
            jobs.par_iter()
                .map(|&(m, cc)| {
                    let Some((a, la)) = computed[cc].as_ref() else {
                        return Ok(None);
                    };
                    let steps = plan.rotations[m].steps;
                    if steps == 0 {
                        return Ok(Some((a.clone(), la.clone())));
                    }
                    let r = key.rotates_columns_by(a, steps)?;
                    OpCounter::add(&ops.rotations, 1);
                    OpCounter::add(&ops.lifts, 1);
                    let lr = self.lazy.lift(&r)?;
                    Ok(Some((r, lr)))
                })
                .collect::<Result<_>>()?
        } else {
            computed
        };
        let square = |m: usize, cc: usize| squares[m * self.s1.len() + cc].as_ref();
        // C. Plaintext squares of the other channels.
        let plain_channels: Vec<usize> = (0..s.c1).filter(|c| !self.s1.contains(c)).collect();
        let pa_cells: Vec<(usize, usize)> = (0..plan.maps.len())
            .flat_map(|m| plain_channels.iter().map(move |&c| (m, c)))
            .collect();
        let pa: Vec<Option<Plaintext>> = pa_cells
            .par_iter()
            .map(|&(m, c)| {
                let v = slots(&plan.maps[m], &|n, q| plain_a[n][c][q]);
                if v.iter().all(|&e| e == 0) {
                    return Ok(None);
                }
                OpCounter::add(&ops.encodes, 1);
                Ok(Some(encode_simd(&v, &self.par)?))
            })
            .collect::<Result<_>>()?;
        let plain_sq = |m: usize, pc: usize| pa[m * plain_channels.len() + pc].as_ref();
        // D. Selected conv2 filters.
        let taps = s.k2 * s.k2;
        let outputs: Vec<(usize, usize)> = (0..self.s2.len())
            .flat_map(|jj| (0..plan.groups()).map(move |g| (jj, g)))
            .collect();
        let z = outputs
            .par_iter()
            .map(|&(jj, g)| {
                let mut lazy_terms = Vec::new();
                let mut pt_terms: Vec<(&Ciphertext, &Plaintext)> = Vec::new();
                for &(t, m) in &plan.terms[g] {
                    for cc in 0..self.s1.len() {
                        if let Some((_, la)) = square(m, cc) {
                            lazy_terms.push((&weights[jj][cc * taps + t], la));
                        }
                    }
                    for (pc, &c) in plain_channels.iter().enumerate() {
                        if let Some(p) = plain_sq(m, pc) {
                            pt_terms.push((&self.w2[jj][c * taps + t], p));
                        }
                    }
                }
                let bias = &self.w2[jj][s.w2_len()];
                let mut acc = bias.clone();
                if !lazy_terms.is_empty() {
                    OpCounter::add(&ops.ct_ct_mul, lazy_terms.len() as u64);
                    OpCounter::add(&ops.relins, 1);
                    acc += &self.lazy.dot(&lazy_terms, &self.rk)?;
                    OpCounter::add(&ops.ct_add, 1);
                }
                if !pt_terms.is_empty() {
                    OpCounter::add(&ops.ct_pt_mul, pt_terms.len() as u64);
                    acc += &dot_product_scalar(
                        pt_terms.iter().map(|p| p.0),
                        pt_terms.iter().map(|p| p.1),
                    )?;
                    OpCounter::add(&ops.ct_add, 1);
                }
                progress(1);
                Ok(acc)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut a1 = Vec::new();
        if want_layer1 {
            for cc in 0..self.s1.len() {
                for g in 0..plan.groups() {
                    let m = plan.identity[g].ok_or_else(|| {
                        HeError::shape("layer-1 outputs need equal layer-1 and layer-2 sizes")
                    })?;
                    match square(m, cc) {
                        Some((a, _)) => a1.push(a.clone()),
                        None => return Err(HeError::shape("layer-1 output map is empty")),
                    }
                }
            }
        }
        Ok(BlockOutput { z, a1 })
    }
}

/// Deepest level whose remaining modulus keeps `headroom` bits above t (decryption stays exact).
pub fn output_level(par: &BfvParameters, headroom: f64) -> usize {
    let bits: Vec<f64> = par.moduli().iter().map(|&q| (q as f64).log2()).collect();
    let need = (par.plaintext() as f64).log2() + headroom;
    (0..bits.len())
        .rev()
        .find(|&l| bits[..bits.len() - l].iter().sum::<f64>() >= need)
        .unwrap_or(0)
}
