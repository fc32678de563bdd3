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
//!
//! [`plan`] lays images and positions out in slots; this file evaluates a call step by step:
//! input plaintexts, encrypted layer-1 squares, plaintext squares of the other channels, then
//! each selected conv2 filter.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use fhe::bfv::{BfvParameters, Ciphertext, Plaintext, RelinearizationKey, dot_product_scalar};
use rayon::prelude::*;

use crate::block::IntBlock;
use crate::lazy::{LazyMultiplier, Lifted};
use crate::ops::{OpCounter, encode_simd};
use crate::rotation::RotationKeys;
use crate::{HeError, Result};

pub mod plan;
pub mod weights;

use plan::SlotMap;
pub use plan::{Layout, RotationTap, SlotPlan, rotation_steps};
pub use weights::{DEFAULT_MEMORY_BUDGET, PackedWeights, Residency};
use weights::{FILTERS_IN_FLIGHT, WeightStream};

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
    /// Per selected channel: `w1_len` weights then the bias (empty when packed).
    pub w1: Vec<Vec<Ciphertext>>,
    /// Per selected filter: `w2_len` weights then the bias (empty when packed).
    pub w2: Vec<Vec<Ciphertext>>,
    /// How the weights are held between calls.
    residency: Residency,
    /// The packed weights ([`Residency::Packed`]).
    packed: Option<PackedWeights>,
    /// conv2 weights on encrypted channels (`[jj][cc·taps + t]`), moved out of `w2` (which holds
    /// empty ciphertexts there); freed once no lifted variant can still be needed.
    encrypted_w2: Mutex<Option<Vec<Vec<Ciphertext>>>>,
    /// The same, lifted, made on first use.
    lifted_w2: Mutex<Option<Arc<Vec<Vec<Lifted>>>>>,
    /// The same multiplied by each tap's mask (rotated spatial layout), made on first use.
    masked_w2: Mutex<Option<Arc<Vec<Vec<Lifted>>>>>,
    rk: RelinearizationKey,
    rotations: Option<RotationKeys>,
    lazy: LazyMultiplier,
}

/// The selected weights a [`UserBlock`] is built from.
pub enum BlockWeights {
    /// Expanded per selected channel (`w1`) and filter (`w2`), each with its bias last, held as
    /// `residency` ([`Residency::Lifted`] or [`Residency::Expanded`]).
    Expanded {
        /// Per selected channel.
        w1: Vec<Vec<Ciphertext>>,
        /// Per selected filter.
        w2: Vec<Vec<Ciphertext>>,
        /// Lift the conv2 weights once per session, or per call.
        residency: Residency,
    },
    /// Packed as shipped, expanded per call ([`Residency::Packed`]).
    Packed(PackedWeights),
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
    /// Assembles the user's block from its selected weights. `rotations` holds the Galois keys
    /// of the rotated spatial layout when the block supports it.
    pub fn new(
        par: Arc<BfvParameters>,
        block: IntBlock,
        (s1, s2): (Vec<usize>, Vec<usize>),
        weights: BlockWeights,
        rk: RelinearizationKey,
        rotations: Option<RotationKeys>,
    ) -> Result<Self> {
        let s = &block.shape;
        let lazy = LazyMultiplier::for_terms(&par, max_terms(s, s1.len()))?;
        let (w1, w2, residency) = match weights {
            BlockWeights::Packed(packed) => {
                let count = s1.len() * (s.w1_len() + 1) + s2.len() * (s.w2_len() + 1);
                if packed.count != count || packed.packed.len() != count.div_ceil(packed.chunk) {
                    return Err(HeError::shape("packed weights do not match the selection"));
                }
                return Ok(Self {
                    par,
                    block,
                    s1,
                    s2,
                    w1: Vec::new(),
                    w2: Vec::new(),
                    residency: Residency::Packed,
                    packed: Some(packed),
                    encrypted_w2: Mutex::new(None),
                    lifted_w2: Mutex::new(None),
                    masked_w2: Mutex::new(None),
                    rk,
                    rotations,
                    lazy,
                });
            }
            BlockWeights::Expanded { w1, w2, residency } => (w1, w2, residency),
        };
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
        let taps = s.k2 * s.k2;
        let mut w2 = w2;
        // Lifted once per session: the originals move out of `w2` and are freed after lifting.
        let encrypted_w2 = (residency == Residency::Lifted).then(|| {
            w2.iter_mut()
                .map(|ws| {
                    s1.iter()
                        .flat_map(|&c| (0..taps).map(move |t| c * taps + t))
                        .map(|i| std::mem::replace(&mut ws[i], Ciphertext::zero(&par)))
                        .collect()
                })
                .collect()
        });
        Ok(Self {
            par,
            block,
            s1,
            s2,
            w1,
            w2,
            residency: if residency == Residency::Packed {
                Residency::Expanded
            } else {
                residency
            },
            packed: None,
            encrypted_w2: Mutex::new(encrypted_w2),
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
        if originals.is_none() {
            return Err(HeError::shape(
                "this session freed its conv2 weights after a rotated spatial evaluation: load the \
                 model again to evaluate in the batch layout",
            ));
        }
        let masks = self.tap_masks(rotations)?;
        let lift =
            |ws: &Vec<Ciphertext>| self.lift_weights(&ws.iter().collect::<Vec<_>>(), &masks, ops);
        // Last variant needed: each filter's originals are freed as soon as they are lifted.
        let lifted: Result<Vec<_>> = match originals.take_if(|_| masked || self.rotations.is_none())
        {
            Some(sources) => sources.into_iter().map(|ws| lift(&ws)).collect(),
            None => originals.iter().flatten().map(lift).collect(),
        };
        let lifted = Arc::new(lifted?);
        *guard = Some(lifted.clone());
        Ok(lifted)
    }

    /// Per conv2 tap: its mask in the rotated spatial layout (None: no mask).
    fn tap_masks(&self, rotations: &[RotationTap]) -> Result<Vec<Option<Plaintext>>> {
        let taps = self.block.shape.k2 * self.block.shape.k2;
        (0..taps)
            .map(|t| match rotations.iter().find(|r| r.tap == t) {
                Some(r) => encode_simd(&r.mask, &self.par).map(Some),
                None => Ok(None),
            })
            .collect()
    }

    /// Lifts conv2 weights on encrypted channels (`ws[cc·taps + t]`), each multiplied by its
    /// tap's mask first when it has one.
    fn lift_weights(
        &self,
        ws: &[&Ciphertext],
        masks: &[Option<Plaintext>],
        ops: &OpCounter,
    ) -> Result<Vec<Lifted>> {
        let taps = masks.len().max(1);
        ws.par_iter()
            .enumerate()
            .map(|(i, w)| {
                OpCounter::add(&ops.lifts, 1);
                match masks.get(i % taps).and_then(Option::as_ref) {
                    Some(mask) => {
                        OpCounter::add(&ops.ct_pt_mul, 1);
                        self.lazy.lift(&(*w * mask))
                    }
                    None => self.lazy.lift(w),
                }
            })
            .collect()
    }

    /// The conv2 weights on encrypted channels of one filter's full row (`[c·taps + t]`), in
    /// lifting order (`[cc·taps + t]`).
    fn encrypted_taps<'r>(&self, row: &'r [Ciphertext]) -> Vec<&'r Ciphertext> {
        self.encrypted_tap_indices()
            .filter_map(|i| row.get(i))
            .collect()
    }

    /// Indices in a filter's row of its weights on encrypted channels, in lifting order.
    fn encrypted_tap_indices(&self) -> impl Iterator<Item = usize> + '_ {
        let taps = self.block.shape.k2 * self.block.shape.k2;
        self.s1
            .iter()
            .flat_map(move |&c| (0..taps).map(move |t| c * taps + t))
    }

    /// How this block holds its weights between calls.
    pub fn residency(&self) -> Residency {
        self.residency
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
        let split = self.s2.len() * plan.groups();
        let mut z =
            self.evaluate_into(plan, x, plain_a, want_layer1, ops, progress, &|_, ct| {
                Ok(ct)
            })?;
        let a1 = z.split_off(split.min(z.len()));
        Ok(BlockOutput { z, a1 })
    }

    /// [`UserBlock::evaluate`], handing every output to `sink(k, ct)` as soon as it exists
    /// (`k = jj·groups + g` for the filters, then `s2·groups + cc·groups + g` for the layer-1
    /// outputs), so that a caller can shrink it (blind, switch down) before the next ones are
    /// made. Returns the sink's results in that order.
    #[allow(clippy::too_many_arguments)]
    pub fn evaluate_into<C: Send>(
        &self,
        plan: &SlotPlan,
        x: &[Vec<i64>],
        plain_a: &[Vec<Vec<i64>>],
        want_layer1: bool,
        ops: &OpCounter,
        progress: &(dyn Fn(u64) + Sync),
        sink: &(dyn Fn(usize, Ciphertext) -> Result<C> + Sync),
    ) -> Result<Vec<C>> {
        if x.len() != plan.images || plain_a.len() != plan.images {
            return Err(HeError::shape("inputs do not match the slot plan"));
        }
        let s = &self.block.shape;
        let mut stream = match &self.packed {
            Some(p) => WeightStream::packed(p, ops),
            None => WeightStream::Resident {
                w1: &self.w1,
                w2: &self.w2,
            },
        };
        let inputs = self.input_plaintexts(plan, x, ops)?;
        let keep = want_layer1 || !plan.rotations.is_empty();
        let squares = self.layer1_squares(plan, inputs, &mut stream, keep, ops)?;
        let plain_channels: Vec<usize> = (0..s.c1).filter(|c| !self.s1.contains(c)).collect();
        let plain = self.plain_squares(plan, plain_a, &plain_channels, ops)?;
        let operands = Conv2Operands {
            squares: &squares,
            plain: &plain,
            plain_channels: &plain_channels,
            selected: self.s1.len(),
        };
        let cached = match self.residency {
            Residency::Lifted => Some(self.conv2_operands(&plan.rotations, ops)?),
            _ => None,
        };
        let masks = self.tap_masks(&plan.rotations)?;
        let groups = plan.groups();
        // Filters per step: all at once with cached lifts, else enough to keep every thread busy.
        let step = match &cached {
            Some(_) => self.s2.len().max(1),
            None => rayon::current_num_threads()
                .div_ceil(groups)
                .clamp(1, FILTERS_IN_FLIGHT as usize),
        };
        let mut out = Vec::with_capacity(self.s2.len() * groups);
        for first in (0..self.s2.len()).step_by(step) {
            let filters: Vec<usize> = (first..(first + step).min(self.s2.len())).collect();
            let mut rows = filters
                .iter()
                .map(|&jj| stream.filter(jj, s.w2_len() + 1))
                .collect::<Result<Vec<_>>>()?;
            let lifted: Vec<Cow<'_, [Lifted]>> = match &cached {
                Some(w) => filters
                    .iter()
                    .map(|&jj| Cow::Borrowed(w[jj].as_slice()))
                    .collect(),
                None => rows
                    .iter()
                    .map(|row| {
                        self.lift_weights(&self.encrypted_taps(row), &masks, ops)
                            .map(Cow::Owned)
                    })
                    .collect::<Result<_>>()?,
            };
            // Expanded here: the lifted copies replace the originals.
            for row in rows.iter_mut() {
                if let Cow::Owned(v) = row {
                    for i in self.encrypted_tap_indices() {
                        if let Some(w) = v.get_mut(i) {
                            *w = Ciphertext::zero(&self.par);
                        }
                    }
                }
            }
            let jobs: Vec<(usize, usize)> = (0..filters.len())
                .flat_map(|f| (0..groups).map(move |g| (f, g)))
                .collect();
            let done = jobs
                .par_iter()
                .map(|&(f, g)| {
                    let filter = FilterWeights {
                        lifted: &lifted[f],
                        row: &rows[f],
                    };
                    let ct = self.filter_output(plan, &operands, &filter, g, ops)?;
                    progress(1);
                    sink(filters[f] * groups + g, ct)
                })
                .collect::<Result<Vec<_>>>()?;
            out.extend(done);
        }
        if want_layer1 {
            let base = out.len();
            for (i, ct) in self
                .layer1_outputs(plan, &operands)?
                .into_iter()
                .enumerate()
            {
                out.push(sink(base + i, ct)?);
            }
        }
        Ok(out)
    }

    /// Step A: the input plaintexts of every squared map ([`encrypted_maps`]: the rotated
    /// layout's unshifted map alone) and layer-1 weight (the bias last, on the valid slots),
    /// deduplicated by content (the batch layout reuses each pixel map). The slot vectors of a
    /// few maps are built side by side, then merged by hash and content.
    fn input_plaintexts(&self, plan: &SlotPlan, x: &[Vec<i64>], ops: &OpCounter) -> Result<Inputs> {
        let per = self.block.shape.w1_len() + 1;
        let maps = encrypted_maps(plan);
        let mut unique = Dedup::default();
        // maps never squared (the rotated layout's shifted ones) keep an empty row
        let mut index: Vec<Vec<Option<usize>>> = vec![Vec::new(); plan.maps.len()];
        for group in maps.chunks(INPUT_MAPS_IN_FLIGHT) {
            let built: Vec<Vec<Option<HashedSlots>>> = group
                .par_iter()
                .map(|&m| {
                    (0..per)
                        .map(|kappa| {
                            let v = self.input_cell(&plan.maps[m], x, kappa)?;
                            Some((content_hash(&v), v))
                        })
                        .collect()
                })
                .collect();
            for (&m, row) in group.iter().zip(built) {
                index[m] = row
                    .into_iter()
                    .map(|c| c.map(|(h, v)| unique.insert(h, v)))
                    .collect();
            }
        }
        let keys = unique.values;
        if self.residency == Residency::Packed {
            return Ok(Inputs {
                index,
                plaintexts: Vec::new(),
                values: keys,
            });
        }
        let plaintexts = keys
            .par_iter()
            .map(|v| {
                OpCounter::add(&ops.encodes, 1);
                encode_simd(v, &self.par)
            })
            .collect::<Result<_>>()?;
        Ok(Inputs {
            index,
            plaintexts,
            values: Vec::new(),
        })
    }

    /// The slot values of layer-1 weight `kappa` (the bias: `w1_len`) on map `m`: the input
    /// pixel each slot's position reads (1 on valid slots for the bias); None when all zero.
    fn input_cell(&self, m: &SlotMap, x: &[Vec<i64>], kappa: usize) -> Option<Vec<i64>> {
        let s = &self.block.shape;
        let kk = s.k1 * s.k1;
        let v = if kappa == s.w1_len() {
            slots(m, |_, _| 1)
        } else {
            let (ci, ky, kx) = (kappa / kk, (kappa % kk) / s.k1, kappa % s.k1);
            slots(m, |n, q| {
                s.input_at(q / s.w1, q % s.w1, ky, kx)
                    .map_or(0, |(y, xx)| x[n][(ci * s.height + y) * s.width + xx])
            })
        };
        v.iter().any(|&e| e != 0).then_some(v)
    }

    /// Step B: encrypted layer 1 per (map, selected channel): `U` by ct×pt dot product,
    /// `A = U²` (lazy), lifted for conv2, `[map · selected + channel]`. The rotated layout
    /// squares only the unshifted map and rotates the square per tap. Packed weights are
    /// expanded a group of channels at a time ([`weights::layer1_group`]).
    fn layer1_squares(
        &self,
        plan: &SlotPlan,
        inputs: Inputs,
        stream: &mut WeightStream<'_>,
        keep: bool,
        ops: &OpCounter,
    ) -> Result<Vec<Square>> {
        let rotated = !plan.rotations.is_empty();
        let enc_maps = encrypted_maps(plan);
        let (s1, per) = (self.s1.len(), self.block.shape.w1_len() + 1);
        let group = match stream {
            WeightStream::Packed { .. } => {
                let ct = weights::Sizes::new(&self.par, 0).ciphertext;
                weights::layer1_group(s1, per, ct)
            }
            WeightStream::Resident { .. } => s1.max(1),
        };
        // [channel][map], filled a group of channels at a time
        let mut by_channel: Vec<Vec<Square>> = Vec::with_capacity(s1);
        for first in (0..s1).step_by(group) {
            let w1 = stream.layer1(first..(first + group).min(s1), per)?;
            by_channel.extend(self.channel_squares(&enc_maps, &inputs, &w1, keep, ops)?);
        }
        stream.end_layer1();
        drop(inputs);
        let mut computed = Vec::with_capacity(enc_maps.len() * s1);
        for mi in 0..enc_maps.len() {
            for channel in by_channel.iter_mut() {
                computed.push(channel[mi].take());
            }
        }
        if rotated {
            self.rotate_squares(plan, &computed, ops)
        } else {
            Ok(computed)
        }
    }

    /// The squares of the channels whose conv1 weights are `w1` on the maps `enc_maps`,
    /// `[channel][map]`.
    fn channel_squares(
        &self,
        enc_maps: &[usize],
        inputs: &Inputs,
        w1: &[Vec<Ciphertext>],
        keep: bool,
        ops: &OpCounter,
    ) -> Result<Vec<Vec<Square>>> {
        // One map (the rotated layout's centre): its channels side by side; many maps: the maps
        // side by side, each map's channels in turn, so that only the maps in flight hold
        // their plaintexts (encoded per map for packed weights).
        let wide = enc_maps.len() == 1;
        let per_map: Vec<Vec<Square>> = enc_maps
            .par_iter()
            .map(|&m| {
                let encoded;
                let (index, plaintexts) = if inputs.values.is_empty() {
                    (inputs.index[m].as_slice(), inputs.plaintexts.as_slice())
                } else {
                    encoded = self.map_plaintexts(inputs, m, ops)?;
                    (encoded.0.as_slice(), encoded.1.as_slice())
                };
                let square = |w: &Vec<Ciphertext>| self.square((index, plaintexts), w, keep, ops);
                if wide {
                    w1.par_iter().map(square).collect::<Result<Vec<_>>>()
                } else {
                    w1.iter().map(square).collect::<Result<Vec<_>>>()
                }
            })
            .collect::<Result<_>>()?;
        let mut by_channel: Vec<Vec<Square>> = (0..w1.len())
            .map(|_| Vec::with_capacity(enc_maps.len()))
            .collect();
        for row in per_map {
            for (channel, sq) in by_channel.iter_mut().zip(row) {
                channel.push(sq);
            }
        }
        Ok(by_channel)
    }

    /// `A = U²` of a selected channel (conv1 weights `w1`, bias last) on map `m`, with its lift
    /// (None: the map is empty); `A` itself is kept only when `keep` (rotations, layer-1
    /// outputs).
    fn square(
        &self,
        (index, plaintexts): (&[Option<usize>], &[Plaintext]),
        w1: &[Ciphertext],
        keep: bool,
        ops: &OpCounter,
    ) -> Result<Square> {
        let pairs: Vec<(&Ciphertext, &Plaintext)> = index
            .iter()
            .zip(w1)
            .filter_map(|(idx, w)| idx.and_then(|i| plaintexts.get(i)).map(|p| (w, p)))
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
        Ok(Some((keep.then_some(a), la)))
    }

    /// The input plaintexts of map `m` alone (index into the returned list), encoded now.
    fn map_plaintexts(
        &self,
        inputs: &Inputs,
        m: usize,
        ops: &OpCounter,
    ) -> Result<(Vec<Option<usize>>, Vec<Plaintext>)> {
        let mut used = Vec::new();
        let index = inputs.index[m]
            .iter()
            .map(|e| {
                e.map(|i| {
                    used.push(i);
                    used.len() - 1
                })
            })
            .collect();
        let local = used
            .iter()
            .map(|&i| {
                OpCounter::add(&ops.encodes, 1);
                encode_simd(&inputs.values[i], &self.par)
            })
            .collect::<Result<_>>()?;
        Ok((index, local))
    }

    /// Rotated layout: the centre squares (`computed[cc]`) rotated for every tap's map, each
    /// square's rotations from one shared decomposition ([`RotationKeys`]).
    fn rotate_squares(
        &self,
        plan: &SlotPlan,
        computed: &[Square],
        ops: &OpCounter,
    ) -> Result<Vec<Square>> {
        let key = self.rotations.as_ref().ok_or_else(|| {
            HeError::Parameters("the rotated spatial layout needs rotation keys".into())
        })?;
        let decomposed = computed
            .par_iter()
            .map(|sq| match sq {
                Some((Some(a), _)) => key.decompose(a).map(Some),
                _ => Ok(None),
            })
            .collect::<Result<Vec<_>>>()?;
        let jobs: Vec<(usize, usize)> = (0..plan.maps.len())
            .flat_map(|m| (0..self.s1.len()).map(move |cc| (m, cc)))
            .collect();
        jobs.par_iter()
            .map(|&(m, cc)| {
                let (Some((Some(a), la)), Some(dec)) = (computed[cc].as_ref(), &decomposed[cc])
                else {
                    return Ok(None);
                };
                let steps = plan.rotations[m].steps;
                if steps == 0 {
                    return Ok(Some((Some(a.clone()), la.clone())));
                }
                let r = key.rotate(a, dec, steps)?;
                OpCounter::add(&ops.rotations, 1);
                OpCounter::add(&ops.lifts, 1);
                let lr = self.lazy.lift(&r)?;
                Ok(Some((Some(r), lr)))
            })
            .collect()
    }

    /// Step C: the user's plaintext squares of the other channels, per (map, plain channel)
    /// (None where every slot is zero).
    fn plain_squares(
        &self,
        plan: &SlotPlan,
        plain_a: &[Vec<Vec<i64>>],
        plain_channels: &[usize],
        ops: &OpCounter,
    ) -> Result<Vec<Option<Plaintext>>> {
        let cells: Vec<(usize, usize)> = (0..plan.maps.len())
            .flat_map(|m| plain_channels.iter().map(move |&c| (m, c)))
            .collect();
        cells
            .par_iter()
            .map(|&(m, c)| {
                let v = slots(&plan.maps[m], |n, q| plain_a[n][c][q]);
                if v.iter().all(|&e| e == 0) {
                    return Ok(None);
                }
                OpCounter::add(&ops.encodes, 1);
                Ok(Some(encode_simd(&v, &self.par)?))
            })
            .collect()
    }

    /// Step D: one selected conv2 filter on output group `g`: its encrypted bias, the lazy
    /// ct×ct sum over encrypted squares (relinearised once) and the ct×pt sum over plaintext
    /// squares.
    fn filter_output(
        &self,
        plan: &SlotPlan,
        operands: &Conv2Operands<'_>,
        filter: &FilterWeights<'_>,
        g: usize,
        ops: &OpCounter,
    ) -> Result<Ciphertext> {
        let s = &self.block.shape;
        let taps = s.k2 * s.k2;
        let mut lazy_terms = Vec::new();
        let mut pt_terms: Vec<(&Ciphertext, &Plaintext)> = Vec::new();
        for &(t, m) in &plan.terms[g] {
            for cc in 0..self.s1.len() {
                if let Some((_, la)) = operands.square(m, cc) {
                    lazy_terms.push((&filter.lifted[cc * taps + t], la));
                }
            }
            for (pc, &c) in operands.plain_channels.iter().enumerate() {
                if let Some(p) = operands.plain_square(m, pc) {
                    pt_terms.push((&filter.row[c * taps + t], p));
                }
            }
        }
        let mut acc = filter.row[s.w2_len()].clone();
        if !lazy_terms.is_empty() {
            OpCounter::add(&ops.ct_ct_mul, lazy_terms.len() as u64);
            OpCounter::add(&ops.relins, 1);
            acc += &self.lazy.dot(&lazy_terms, &self.rk)?;
            OpCounter::add(&ops.ct_add, 1);
        }
        if !pt_terms.is_empty() {
            OpCounter::add(&ops.ct_pt_mul, pt_terms.len() as u64);
            acc += &dot_product_scalar(pt_terms.iter().map(|p| p.0), pt_terms.iter().map(|p| p.1))?;
            OpCounter::add(&ops.ct_add, 1);
        }
        Ok(acc)
    }

    /// The encrypted layer-1 squares on the output positions, `[cc * groups + g]` (ResNet's
    /// shortcut).
    fn layer1_outputs(
        &self,
        plan: &SlotPlan,
        operands: &Conv2Operands<'_>,
    ) -> Result<Vec<Ciphertext>> {
        let mut a1 = Vec::new();
        for cc in 0..self.s1.len() {
            for g in 0..plan.groups() {
                let m = plan.identity[g].ok_or_else(|| {
                    HeError::shape("layer-1 outputs need equal layer-1 and layer-2 sizes")
                })?;
                match operands.square(m, cc) {
                    Some((Some(a), _)) => a1.push(a.clone()),
                    _ => return Err(HeError::shape("layer-1 output map is empty")),
                }
            }
        }
        Ok(a1)
    }
}

/// An encrypted layer-1 square (kept only where needed) and its lift (None where the map is
/// empty).
type Square = Option<(Option<Ciphertext>, Lifted)>;

/// One selected conv2 filter's weights in a call.
struct FilterWeights<'a> {
    /// Lifted weights on encrypted channels (`[cc·taps + t]`).
    lifted: &'a [Lifted],
    /// The full row (`[c·taps + t]`, bias last); read on plaintext channels and for the bias.
    row: &'a [Ciphertext],
}

/// Input plaintexts of one call: `index[m][κ]` points into `plaintexts`, or into `values` when
/// they are encoded per map (packed residency: bounded memory); None: all slots zero.
struct Inputs {
    index: Vec<Vec<Option<usize>>>,
    plaintexts: Vec<Plaintext>,
    values: Vec<Vec<i64>>,
}

/// What the conv2 filters of one call read besides their weights.
struct Conv2Operands<'a> {
    /// Encrypted squares, `[m · selected + cc]`.
    squares: &'a [Square],
    /// Plaintext squares, `[m · plain_channels.len() + pc]`.
    plain: &'a [Option<Plaintext>],
    /// The non-selected layer-1 channels.
    plain_channels: &'a [usize],
    /// Number of selected layer-1 channels.
    selected: usize,
}

impl Conv2Operands<'_> {
    fn square(&self, m: usize, cc: usize) -> Option<&(Option<Ciphertext>, Lifted)> {
        self.squares[m * self.selected + cc].as_ref()
    }

    fn plain_square(&self, m: usize, pc: usize) -> Option<&Plaintext> {
        self.plain[m * self.plain_channels.len() + pc].as_ref()
    }
}

/// Maps whose input slot vectors are built side by side in [`UserBlock::input_plaintexts`]
/// (each holds `w1_len + 1` vectors of N values until merged).
const INPUT_MAPS_IN_FLIGHT: usize = 16;

/// A slot vector with its [`content_hash`].
type HashedSlots = (u64, Vec<i64>);

/// Distinct slot vectors, found by a cheap hash and confirmed by content.
#[derive(Default)]
struct Dedup {
    by_hash: HashMap<u64, Vec<usize>>,
    values: Vec<Vec<i64>>,
}

impl Dedup {
    /// The index of `v` (of [`content_hash`] `h`) among the distinct vectors, adding it when new.
    fn insert(&mut self, h: u64, v: Vec<i64>) -> usize {
        let bucket = self.by_hash.entry(h).or_default();
        if let Some(&i) = bucket.iter().find(|&&i| self.values[i] == v) {
            return i;
        }
        bucket.push(self.values.len());
        self.values.push(v);
        self.values.len() - 1
    }
}

/// FNV-1a over the values (a collision only costs a comparison in [`Dedup::insert`]).
fn content_hash(v: &[i64]) -> u64 {
    v.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &e| {
        (h ^ e as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The maps whose encrypted layer-1 squares are computed: every map, or only the unshifted one
/// in the rotated layout (the others are its rotations).
fn encrypted_maps(plan: &SlotPlan) -> Vec<usize> {
    if plan.rotations.is_empty() {
        (0..plan.maps.len()).collect()
    } else {
        vec![plan.identity.first().copied().flatten().unwrap_or(0)]
    }
}

/// Slot values of map `m`: `f(image, position)` on every occupied slot, 0 elsewhere.
fn slots(m: &SlotMap, f: impl Fn(usize, usize) -> i64) -> Vec<i64> {
    m.iter()
        .map(|e| e.map_or(0, |(n, q)| f(n as usize, q as usize)))
        .collect()
}

/// Most terms of one lazy dot product of a block with `s1` selected channels (a conv2 output:
/// every tap of every selected channel).
pub fn max_terms(s: &crate::block::BlockShape, s1: usize) -> usize {
    (s1 * s.k2 * s.k2).max(1)
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
