//! The cost model of `cargo xtask estimate`: pure functions from the pipeline's shapes (split
//! sizes, channels, the HE block's geometry and memory plan, all measured or planned by the
//! stage binaries' `calibrate` commands) and unit costs to operation counts, then to wall time,
//! peak memory and bytes written per stage. No I/O here; `estimate.rs` feeds it.

use serde::{Deserialize, Serialize};

/// Measured (wall, CPU) seconds of one unit.
pub type Unit = [f64; 2];

/// The selection evaluator's unit costs (`privdnn-train calibrate`), per image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SelectUnits {
    /// Images the evaluator was built on.
    pub images: usize,
    /// Caching layers 1–2 with the base tail pass.
    pub cache_s: Unit,
    /// One greedy layer-1 candidate (layer-1 cache + A_r).
    pub layer1_candidate_s: Unit,
    /// One greedy layer-2 candidate (A_s + A_r).
    pub layer2_candidate_s: Unit,
    /// Resident bytes of the evaluator's cache.
    pub evaluator_bytes_per_image: f64,
    /// Resident bytes of one layer-1 cache.
    pub layer1_cache_bytes_per_image: f64,
}

/// `privdnn-train calibrate` output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainUnits {
    /// Cores.
    pub threads: usize,
    /// 1-minute load average when it started.
    pub load_average: f64,
    /// Train / validation / test images.
    pub split_sizes: [usize; 3],
    /// Bytes per image.
    pub image_len: usize,
    /// conv1 / conv2 filters.
    pub channels: [usize; 2],
    /// Scalar parameters.
    pub parameters: usize,
    /// Loading the splits.
    pub data_load_s: Unit,
    /// Resident bytes with the splits loaded.
    pub data_rss_bytes: u64,
    /// One training image.
    pub train_s_per_image: Unit,
    /// One evaluated image.
    pub eval_s_per_image: Unit,
    /// Peak resident bytes of the training loop.
    pub train_peak_rss_bytes: u64,
    /// Selection units.
    pub select: SelectUnits,
}

/// HE kernel costs, ms on one thread (`privdnn_he::bench_kernels::UnitCosts`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Kernels {
    /// One lift to the extended basis.
    pub lift_ms: f64,
    /// One lazy product with its share of a scale-down per 25 terms.
    pub product_ms: f64,
    /// Lift, tensor, scale-down + relinearise, lift.
    pub square_ms: f64,
    /// One key switch (expansion or rotation).
    pub expansion_key_switch_ms: f64,
    /// Owner-assisted refresh (blind, compact, decrypt, re-encrypt).
    pub refresh_ms: f64,
}

/// Geometry of the encrypted block, as the infer stage's calibration reports it.
pub use privdnn_quant::BlockShape as Shape;

/// Valid (position, tap) pairs of conv2 over the whole layer-2 map (zero padding excluded).
pub fn conv2_terms(s: &Shape) -> usize {
    let taps = |py: usize, px: usize| {
        (0..s.k2 * s.k2)
            .filter(|t| s.layer1_at(py, px, t / s.k2, t % s.k2).is_some())
            .count()
    };
    (0..s.h2)
        .flat_map(|y| (0..s.w2).map(move |x| (y, x)))
        .map(|(y, x)| taps(y, x))
        .sum()
}

/// The HE engine's memory plan for one selection (`privdnn_he::engine::weights`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemoryPlan {
    /// Selected conv1 channels.
    pub s1: usize,
    /// Selected conv2 filters.
    pub s2: usize,
    /// Weights per packed ciphertext.
    pub chunk: usize,
    /// `lifted`, `expanded` or `packed`.
    pub residency: String,
    /// Weight bytes in that residency.
    pub weight_bytes: u64,
    /// One call's working set.
    pub working_set_bytes: u64,
}

/// `privdnn-infer calibrate` output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeUnits {
    /// Kernel costs.
    pub units: Option<Kernels>,
    /// One ct×pt product, ms.
    pub ct_pt_ms: Option<f64>,
    /// One SIMD encoding, ms.
    pub encode_ms: Option<f64>,
    /// CPU seconds per wall second while the kernels ran.
    pub cpu_fraction: f64,
    /// Speed-up of HE work over every core against one thread.
    #[serde(default = "one")]
    pub parallel_speedup: f64,
    /// Resident bytes of an fhe + burn process with a model built.
    pub baseline_rss_bytes: u64,
    /// Ciphertext, lifted ciphertext and plaintext bytes.
    pub sizes: [u64; 3],
    /// Block geometry.
    pub shape: Shape,
    /// Plan of the configured selection.
    pub selected: MemoryPlan,
    /// Plan of the 100 % block.
    pub full_block: MemoryPlan,
}

fn one() -> f64 {
    1.0
}

/// Homomorphic operations of one evaluation (all residues).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeOps {
    /// ct×pt products.
    pub ct_pt: u64,
    /// Lazy ct×ct products.
    pub ct_ct: u64,
    /// Scale-down + relinearisations.
    pub relins: u64,
    /// Lifts to the extended basis.
    pub lifts: u64,
    /// Plaintext encodings.
    pub encodes: u64,
    /// Key switches: expansion of packed weights and rotations.
    pub key_switches: u64,
    /// Ciphertexts the owner decrypts.
    pub decrypts: u64,
}

impl HeOps {
    fn scaled(self, k: u64) -> Self {
        Self {
            ct_pt: self.ct_pt * k,
            ct_ct: self.ct_ct * k,
            relins: self.relins * k,
            lifts: self.lifts * k,
            encodes: self.encodes * k,
            key_switches: self.key_switches * k,
            decrypts: self.decrypts * k,
        }
    }

    fn plus(self, o: Self) -> Self {
        Self {
            ct_pt: self.ct_pt + o.ct_pt,
            ct_ct: self.ct_ct + o.ct_ct,
            relins: self.relins + o.relins,
            lifts: self.lifts + o.lifts,
            encodes: self.encodes + o.encodes,
            key_switches: self.key_switches + o.key_switches,
            decrypts: self.decrypts + o.decrypts,
        }
    }
}

/// Tail evaluations of the greedy search for (|S1|, |S2|) = `sizes` over `channels` filters,
/// `step` filters per iteration, candidates limited to `pool` per layer when given
/// (`privdnn_selection::greedy`): (layer-1 candidates, layer-2 candidates).
pub fn greedy_candidates(
    channels: [usize; 2],
    sizes: [usize; 2],
    step: usize,
    pool: Option<[usize; 2]>,
) -> [usize; 2] {
    let layer = |l: usize| {
        let avail = pool.map_or(channels[l], |p| p[l].min(channels[l]));
        let (mut chosen, mut total) = (0, 0);
        while chosen < sizes[l].min(avail) {
            total += avail - chosen;
            chosen += step.max(1).min(sizes[l] - chosen);
        }
        total
    };
    [layer(0), layer(1)]
}

/// Key switches of the oblivious expansion of `count` weights packed `chunk` per ciphertext:
/// each packed ciphertext costs (its chunk) − 1.
pub fn expansion_key_switches(count: usize, chunk: usize) -> u64 {
    // the owner's chunk (`privdnn_he::packing::chunk_size`): a power of two, no larger than the
    // selection needs; fhe expands every packed ciphertext to the whole chunk, the last too
    let chunk = chunk.max(1).min(count.max(1).next_power_of_two());
    count.div_ceil(chunk) as u64 * (chunk.next_power_of_two() - 1) as u64
}

/// Weights of the selection, biases included (layer-1 channels, then layer-2 filters).
pub fn selected_weights(shape: &Shape, s1: usize, s2: usize) -> usize {
    s1 * (shape.w1_len() + 1) + s2 * (shape.w2_len() + 1)
}

/// Operations of one call of the batch layout for one residue (`privdnn_he::engine`): squares
/// on every layer-1 position, the selected filters on every layer-2 position.
pub fn batch_call_ops(shape: &Shape, plan: &MemoryPlan) -> HeOps {
    let (s1, s2) = (plan.s1 as u64, plan.s2 as u64);
    let maps = (shape.h1 * shape.w1) as u64;
    let plain = (shape.c1 - plan.s1) as u64;
    let terms = conv2_terms(shape) as u64;
    let taps = (shape.k2 * shape.k2) as u64;
    let weight_lifts = if plan.residency == "lifted" {
        0
    } else {
        s2 * s1 * taps
    };
    let inputs = (shape.cin * shape.height * shape.width + 1) as u64;
    let outputs = s2 * (shape.h2 * shape.w2) as u64;
    HeOps {
        ct_pt: maps * s1 * (shape.w1_len() as u64 + 1) + s2 * terms * plain,
        ct_ct: maps * s1 + s2 * terms * s1,
        relins: maps * s1 + outputs,
        lifts: 2 * maps * s1 + weight_lifts,
        encodes: inputs.min(maps * (shape.w1_len() as u64 + 1)) + maps * plain + outputs,
        key_switches: 0,
        decrypts: outputs,
    }
}

/// Operations of one call of the (rotated) spatial layout for one residue: squares on the
/// centre map only, rotated per tap, one output group per filter.
pub fn spatial_call_ops(shape: &Shape, plan: &MemoryPlan) -> HeOps {
    let (s1, s2) = (plan.s1 as u64, plan.s2 as u64);
    let taps = (shape.k2 * shape.k2) as u64;
    let plain = (shape.c1 - plan.s1) as u64;
    let weight_lifts = if plan.residency == "lifted" {
        0
    } else {
        s2 * s1 * taps
    };
    HeOps {
        ct_pt: s1 * (shape.w1_len() as u64 + 1) + s2 * taps * plain,
        ct_ct: s1 + s2 * taps * s1,
        relins: s1 + s2,
        lifts: 2 * s1 + (taps - 1) * s1 + weight_lifts,
        encodes: shape.w1_len() as u64 + 1 + taps * plain + s2,
        key_switches: (taps - 1) * s1,
        decrypts: s2,
    }
}

/// Images one call holds: N in the batch layout; whole images in slot rows of N/2 in the
/// rotated spatial layout (`privdnn_he::engine::SlotPlan::capacity`).
pub fn capacity(shape: &Shape, degree: usize, batch: bool) -> usize {
    let per = (shape.h2 * shape.w2).max(1);
    if batch {
        degree
    } else if shape.h1 == shape.h2 && shape.w1 == shape.w2 && per <= degree / 2 {
        2 * ((degree / 2) / per)
    } else {
        (degree / per).max(1)
    }
}

/// Operations of evaluating `images` images in `residues` residues, with the expansion of the
/// packed weights at load (once, or once per call when they stay packed).
pub fn he_ops(
    shape: &Shape,
    plan: &MemoryPlan,
    (images, residues, degree): (usize, usize, usize),
    batch: bool,
) -> HeOps {
    let calls = images.div_ceil(capacity(shape, degree, batch)) as u64;
    let call = if batch {
        batch_call_ops(shape, plan)
    } else {
        spatial_call_ops(shape, plan)
    };
    let count = selected_weights(shape, plan.s1, plan.s2);
    let expand = expansion_key_switches(count, plan.chunk);
    let packed = plan.residency == "packed";
    let expansions = if packed { calls } else { 1 };
    // a packed stream releases after layer 1 and expands the chunk it stopped in again
    let layer1 = plan.s1 * (shape.w1_len() + 1);
    let again = if packed && !layer1.is_multiple_of(plan.chunk.max(1)) {
        (plan.chunk.next_power_of_two() - 1) as u64
    } else {
        0
    };
    let load = HeOps {
        key_switches: (expand + again) * expansions,
        lifts: if plan.residency == "lifted" {
            (plan.s2 * plan.s1 * shape.k2 * shape.k2) as u64
        } else {
            0
        },
        ..HeOps::default()
    };
    call.scaled(calls).plus(load).scaled(residues as u64)
}

#[cfg(test)]
#[path = "estimate_tests.rs"]
mod tests;
