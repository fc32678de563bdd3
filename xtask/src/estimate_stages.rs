//! Per-stage predictions of `cargo xtask estimate`: wall seconds, peak resident memory and bytes
//! written or transferred for data, train, select, encrypt, infer and attack, from the
//! configuration, the calibrations ([`crate::estimate_model`]) and the machine's load.
//!
//! Times are predicted as CPU work divided by the parallelism the stage will get: calibration
//! units are (wall, CPU) pairs; their ratio, against the fair share of the cores at the load of
//! the calibration, gives the workload's parallel efficiency; the share at the load now gives
//! the cores it will have.

use privdnn_config::{
    AttackConfig, HeConfig, HeLayout, OptimizerKind, ResolvedConfig, SelectAlgorithm,
};

use crate::estimate_model::{HeOps, HeUnits, Kernels, MemoryPlan, TrainUnits, Unit, he_ops};

/// One stage's prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct StageEstimate {
    /// Stage name.
    pub stage: &'static str,
    /// Wall seconds.
    pub seconds: f64,
    /// Peak resident bytes of the stage's process.
    pub peak_bytes: u64,
    /// Bytes written to results/ (and, for infer, sent between user and owner).
    pub bytes: u64,
    /// What the numbers cover.
    pub note: String,
}

/// Seconds a stage binary spends starting (process, config, logging).
const PROCESS_S: f64 = 0.3;

/// Cores a process with `threads` busy threads gets beside `load` other runnable ones.
pub fn share(threads: usize, load: f64) -> f64 {
    let t = threads.max(1) as f64;
    t * t / (t + load.max(0.0))
}

/// Converts calibrated units into wall seconds at the load now.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Cores.
    pub threads: usize,
    /// Load average at the calibration.
    pub load_then: f64,
    /// Load average now (other processes).
    pub load_now: f64,
}

impl Clock {
    /// How much slower the machine is now than at the calibration, for a process with every
    /// core busy.
    fn slowdown(&self) -> f64 {
        share(self.threads, self.load_then) / share(self.threads, self.load_now)
    }

    /// Wall seconds of `count` units `u`, measured at the calibration's load, at the load now.
    pub fn wall(&self, u: Unit, count: f64) -> f64 {
        count * u[0].max(0.0) * self.slowdown()
    }

    /// Wall seconds of work measured as `serial_s` on one thread, at the load now.
    pub fn serial_wall(&self, serial_s: f64) -> f64 {
        let one = |load: f64| (self.threads.max(1) as f64 / (1.0 + load.max(0.0))).min(1.0);
        serial_s * one(self.load_then) / one(self.load_now)
    }

    /// Wall seconds of HE work measured as `serial_s` on one thread, spread over the cores with
    /// the calibrated `speedup` (a measured speed-up below 1 is noise: one core at least).
    pub fn he_wall(&self, serial_s: f64, speedup: f64) -> f64 {
        serial_s / speedup.clamp(1.0, self.threads.max(1) as f64) * self.slowdown()
    }
}

/// Images the selection scores candidates on (`select.eval_images`, 0 = all of validation).
fn select_images(cfg: &ResolvedConfig, validation: usize) -> usize {
    match cfg.pipeline.select.eval_images {
        0 => validation,
        n => n.min(validation),
    }
}

/// Training images per epoch (`data.train_limit`).
fn train_images(cfg: &ResolvedConfig, train: usize) -> usize {
    match cfg.pipeline.data.train_limit {
        0 => train,
        n => n.min(train),
    }
}

/// The data stage: reading (and, when missing, converting) the cache.
pub fn data(t: &TrainUnits, clock: &Clock, cached: bool) -> StageEstimate {
    let [train, val, test] = t.split_sizes;
    let bytes = ((train + val + test) * (t.image_len + 2)) as u64;
    StageEstimate {
        stage: "data",
        seconds: clock.wall(t.data_load_s, 1.0),
        peak_bytes: t.data_rss_bytes,
        bytes: if cached { 0 } else { bytes },
        note: if cached {
            "cache present: checked and read".into()
        } else {
            "cache missing: conversion time not modelled".into()
        },
    }
}

/// The train stage: every epoch trains on the train split and evaluates validation; the kept
/// model is evaluated on validation and test at the end.
pub fn train(cfg: &ResolvedConfig, t: &TrainUnits, clock: &Clock) -> StageEstimate {
    let tc = &cfg.pipeline.train;
    let [n_train, val, test] = t.split_sizes;
    let n_train = train_images(cfg, n_train) as f64;
    let epochs = tc.epochs as f64;
    let seconds = PROCESS_S
        + clock.wall(t.data_load_s, 1.0)
        + clock.wall(t.train_s_per_image, epochs * n_train)
        + clock.wall(
            t.eval_s_per_image,
            epochs * val as f64 + (val + test) as f64,
        );
    let params = 4 * t.parameters as u64;
    let optimizer_slots = match tc.optimizer {
        OptimizerKind::Adam => 2,
        OptimizerKind::Sgd if tc.momentum > 0.0 => 1,
        OptimizerKind::Sgd => 0,
    };
    StageEstimate {
        stage: "train",
        seconds,
        peak_bytes: t.train_peak_rss_bytes + 3 * params,
        bytes: params * (3 + optimizer_slots) + 4096,
        note: format!(
            "{} epochs × {} images at {:.0} images/s (+ validation)",
            tc.epochs,
            n_train,
            1.0 / clock.wall(t.train_s_per_image, 1.0).max(1e-12)
        ),
    }
}

/// Layer-1 and layer-2 candidates the configured algorithm scores.
pub fn select_candidates(cfg: &ResolvedConfig, channels: [usize; 2]) -> [usize; 2] {
    let s = &cfg.pipeline.select;
    let sizes = s.sizes(channels);
    let greedy =
        |pool| crate::estimate_model::greedy_candidates(channels, sizes, s.greedy_step, pool);
    match s.algorithm {
        SelectAlgorithm::Greedy => greedy(None),
        SelectAlgorithm::L2Greedy | SelectAlgorithm::FpgmGreedy => {
            greedy(Some(sizes.map(|n| 2 * n)))
        }
        // the random search spends the greedy time measured in the same run, after it
        SelectAlgorithm::Random => greedy(None).map(|n| 2 * n),
        SelectAlgorithm::L2 | SelectAlgorithm::Fpgm | SelectAlgorithm::Hrank => [0, 0],
    }
}

/// The select stage: layers 1–2 cached on the scored and test images, the search's candidate
/// scorings, then A_s / A_r of the choice on both splits.
pub fn select(cfg: &ResolvedConfig, t: &TrainUnits, clock: &Clock) -> StageEstimate {
    let u = &t.select;
    let [_, val, test] = t.split_sizes;
    let n = select_images(cfg, val) as f64;
    let [c1, c2] = select_candidates(cfg, t.channels);
    let hrank = if cfg.pipeline.select.algorithm == SelectAlgorithm::Hrank {
        clock.wall(t.eval_s_per_image, cfg.pipeline.select.hrank_images as f64)
    } else {
        0.0
    };
    let seconds = PROCESS_S
        + clock.wall(t.data_load_s, 1.0)
        + clock.wall(u.cache_s, n + test as f64)
        + clock.wall(u.layer1_candidate_s, (c1 as f64 + 1.0) * n)
        + clock.wall(u.layer2_candidate_s, c2 as f64 * n)
        + clock.wall(u.layer1_candidate_s, n + test as f64)
        + clock.wall(u.layer2_candidate_s, n + test as f64)
        + hrank;
    // the search holds a layer-1 cache per thread on the scored images, the final scoring one
    // on the test images
    let cached_images = (t.threads as f64 * n).max(test as f64);
    let caches = (n + test as f64) * u.evaluator_bytes_per_image
        + cached_images * u.layer1_cache_bytes_per_image;
    StageEstimate {
        stage: "select",
        seconds,
        peak_bytes: t.data_rss_bytes + caches as u64 + 8 * t.parameters as u64,
        bytes: 4096,
        note: format!(
            "{} + {} candidates × {} images ({})",
            c1,
            c2,
            n,
            cfg.pipeline.select.algorithm.name()
        ),
    }
}

/// Cost model of the HE kernels (ms per operation on one thread, as measured).
#[derive(Debug, Clone, Copy)]
pub struct HeCosts {
    tensor: f64,
    relin: f64,
    lift: f64,
    ct_pt: f64,
    encode: f64,
    key_switch: f64,
    decrypt: f64,
    encrypt: f64,
}

impl HeCosts {
    /// From the calibration: a 25-term lazy dot product is 25 tensors + 1 relinearisation and a
    /// square is 2 lifts + 1 tensor + 1 relinearisation, which separates the two.
    pub fn new(h: &HeUnits) -> Option<Self> {
        let k: &Kernels = h.units.as_ref()?;
        let tensor = ((25.0 * k.product_ms - k.square_ms + 2.0 * k.lift_ms) / 24.0).max(0.0);
        let relin = (k.square_ms - 2.0 * k.lift_ms - tensor).max(0.0);
        Some(Self {
            tensor,
            relin,
            lift: k.lift_ms,
            ct_pt: h.ct_pt_ms.unwrap_or(k.lift_ms / 4.0),
            encode: h.encode_ms.unwrap_or(k.lift_ms / 4.0),
            key_switch: k.expansion_key_switch_ms,
            decrypt: k.refresh_ms / 2.0,
            encrypt: k.refresh_ms / 3.0,
        })
    }

    /// Seconds of `ops` on one thread.
    pub fn serial_s(&self, ops: &HeOps) -> f64 {
        (ops.ct_pt as f64 * self.ct_pt
            + ops.ct_ct as f64 * self.tensor
            + ops.relins as f64 * self.relin
            + ops.lifts as f64 * self.lift
            + ops.encodes as f64 * self.encode
            + ops.key_switches as f64 * self.key_switch
            + ops.decrypts as f64 * self.decrypt)
            / 1e3
    }
}

/// Key-switching keys the owner generates per residue: one expansion level per doubling of the
/// weights in a packed ciphertext, relinearisation, and (spatial layout) one rotation per conv2
/// tap offset.
fn switching_keys(he: &HeConfig, h: &HeUnits, plan: &MemoryPlan) -> u64 {
    let count = crate::estimate_model::selected_weights(&h.shape, plan.s1, plan.s2);
    // one weight per ciphertext (chunk 1): no expansion key
    let per = count.min(plan.chunk).max(1);
    let levels = per.next_power_of_two().ilog2() as u64;
    let rotations = match he.layout {
        HeLayout::Spatial => (h.shape.k2 * h.shape.k2 - 1) as u64,
        HeLayout::Batch => 0,
    };
    levels + 1 + rotations
}

/// (CPU seconds, bytes of keys + encrypted weights) of the owner's key generation and
/// encryption of `plan`. A seeded key-switching key holds about (moduli − ½) half-size
/// ciphertexts (measured: MNIST and Fashion-MNIST quick keys within 2 %).
fn owner_setup(he: &HeConfig, h: &HeUnits, c: &HeCosts, plan: &MemoryPlan) -> (f64, u64) {
    let residues = he.crt_moduli as u64;
    let moduli = he.moduli_bits.len() as u64;
    let keys = switching_keys(he, h, plan);
    let seeded = h.sizes[0] / 2;
    let count = crate::estimate_model::selected_weights(&h.shape, plan.s1, plan.s2);
    let packed = count.div_ceil(plan.chunk.max(1)) as u64;
    let cpu = residues as f64 * (keys * moduli + packed) as f64 * c.encrypt / 1e3;
    let bytes = residues * (keys * (2 * moduli - 1) * seeded / 2 + packed * seeded * 6 / 5);
    (cpu + residues as f64 * noise_check(h, c, plan).0, bytes)
}

/// (CPU seconds, peak bytes) of the owner's noise check for one residue
/// (`privdnn_he::noise_margin`): the chain's w1_len + s1·taps weights packed in the real chunk
/// and expanded (fhe materialises and key-switches the whole chunk: Fashion-MNIST quick's 50
/// weights in a chunk of 256 cost 255 key switches and 256 ciphertexts per residue), a layer-1
/// ct×pt sum, a square and a conv2 sum of lifted products.
fn noise_check(h: &HeUnits, c: &HeCosts, plan: &MemoryPlan) -> (f64, u64) {
    let k1 = h.shape.w1_len();
    let k2 = plan.s1.max(1) * h.shape.k2 * h.shape.k2;
    let chunk = plan.chunk.max(1);
    let packed = (k1 + k2).div_ceil(chunk);
    let expanded = if chunk == 1 {
        k1 + k2
    } else {
        packed * chunk.next_power_of_two()
    };
    let switches = if chunk == 1 { 0 } else { expanded - packed };
    let ms = switches as f64 * c.key_switch
        + packed as f64 * c.encrypt
        + k1 as f64 * (c.ct_pt + c.encode)
        + (2 + k2) as f64 * c.lift
        + (1 + k2) as f64 * c.tensor
        + 2.0 * c.relin
        + c.decrypt;
    let [ct, lifted, _] = h.sizes;
    (ms / 1e3, expanded as u64 * ct + k2 as u64 * lifted)
}

/// The encrypt stage: keys and the packed, encrypted selection.
pub fn encrypt(cfg: &ResolvedConfig, h: &HeUnits, clock: &Clock) -> Option<StageEstimate> {
    let c = HeCosts::new(h)?;
    let (cpu, bytes) = owner_setup(&cfg.pipeline.he, h, &c, &h.selected);
    Some(StageEstimate {
        stage: "encrypt",
        seconds: PROCESS_S + clock.serial_wall(cpu),
        // keys are generated, serialised and written while the parameters' tables are live:
        // about four copies (MNIST / Fashion-MNIST quick: within 10 %); the noise check's
        // expanded chunk before them
        peak_bytes: h.baseline_rss_bytes + (4 * bytes).max(noise_check(h, &c, &h.selected).1),
        bytes,
        note: format!(
            "{} residues, {} weights packed {} per ciphertext",
            cfg.pipeline.he.crt_moduli,
            crate::estimate_model::selected_weights(&h.shape, h.selected.s1, h.selected.s2),
            h.selected.chunk
        ),
    })
}

/// Test images the infer stage evaluates (`he.images`, 0 = all).
fn infer_images(cfg: &ResolvedConfig, test: usize) -> usize {
    match cfg.pipeline.he.images {
        0 => test,
        n => n.min(test),
    }
}

/// (wall seconds, peak bytes, bytes sent both ways) of one HE mode on `images` images under
/// that mode's settings `he`.
fn he_mode(
    he: &HeConfig,
    h: &HeUnits,
    plan: &MemoryPlan,
    images: usize,
    clock: &Clock,
) -> Option<(f64, u64, u64, HeOps)> {
    let c = HeCosts::new(h)?;
    let batch = he.layout == HeLayout::Batch;
    let ops = he_ops(&h.shape, plan, (images, he.crt_moduli, he.degree), batch);
    let peak = plan.weight_bytes + plan.working_set_bytes;
    let sent = ops.decrypts
        * he.degree as u64
        * (3 * he.plaintext_bits as u64 + 2 * he.headroom_bits as u64)
        / 8;
    Some((
        clock.he_wall(c.serial_s(&ops), h.parallel_speedup),
        peak,
        sent,
        ops,
    ))
}

/// The infer stage: the separate mode (HE + decryption + tail + audit), its single-image
/// latency run, the 100 %-block baseline when configured, and the float modes.
pub fn infer(
    cfg: &ResolvedConfig,
    t: &TrainUnits,
    h: &HeUnits,
    clock: &Clock,
) -> Option<StageEstimate> {
    let he = &cfg.pipeline.he;
    let n = infer_images(cfg, t.split_sizes[2]);
    let c = HeCosts::new(h)?;
    let (sep_s, sep_peak, sent, ops) = he_mode(he, h, &h.selected, n, clock)?;
    let latency = if he.latency {
        let one = crate::estimate_model::spatial_call_ops(&h.shape, &h.selected);
        clock.he_wall(c.serial_s(&one) * he.crt_moduli as f64, h.parallel_speedup)
    } else {
        0.0
    };
    let (mut fb_s, mut fb_peak, mut fb_bytes) = (0.0, 0, 0);
    let m = he.full_block_images.min(n);
    if m > 0 {
        let fb_he = he.full_block_config();
        let (cpu, bytes) = owner_setup(&fb_he, h, &c, &h.full_block);
        let (s, peak, fb_sent, _) = he_mode(&fb_he, h, &h.full_block, m, clock)?;
        (fb_s, fb_peak, fb_bytes) = (clock.serial_wall(cpu) + s, peak, bytes + fb_sent);
    }
    let plain = clock.wall(t.eval_s_per_image, 5.0 * n as f64 + 2.0 * m as f64);
    let base = h.baseline_rss_bytes + t.data_rss_bytes;
    Some(StageEstimate {
        stage: "infer",
        seconds: PROCESS_S + clock.wall(t.data_load_s, 1.0) + sep_s + latency + fb_s + plain,
        peak_bytes: base + sep_peak.max(fb_peak),
        bytes: sent + fb_bytes,
        note: format!(
            "{n} images: {} ct×ct, {} ct×pt, {} key switches{}",
            ops.ct_ct,
            ops.ct_pt,
            ops.key_switches,
            if m > 0 {
                format!("; 100 % block on {m}")
            } else {
                String::new()
            }
        ),
    })
}

/// Training images and accuracy evaluations of the attack stage's `recover`, `samples` and
/// `sweep` experiments (`sweep_points`: its selection percents).
pub fn attack_work(a: &AttackConfig, sweep_points: usize) -> (f64, f64) {
    let has = |e: &str| a.experiments.iter().any(|x| x == e);
    let per_sample = (2 * a.epochs + a.scratch_epochs) as f64;
    let mut images = 0.0;
    let mut evals = 0.0;
    if has("recover") {
        images += a.samples as f64 * per_sample;
        evals += 3.0;
    }
    if has("samples") {
        // every count recovers both ways and trains from scratch; the count equal to `samples`
        // reuses the `recover` experiment's point
        let reused = has("recover") && a.sample_counts.contains(&a.samples);
        let counts = a.sample_counts.iter().sum::<usize>() - if reused { a.samples } else { 0 };
        images += counts as f64 * per_sample;
        evals += 3.0 * (a.sample_counts.len() - usize::from(reused)) as f64;
    }
    if has("sweep") {
        images += (sweep_points * a.samples * 2 * a.epochs) as f64;
        evals += 2.0 * sweep_points as f64;
    }
    (images, evals)
}

/// The attack stage, roughly: every experiment's training epochs on the attacker's samples and
/// its accuracy evaluations (extraction and inversion not modelled).
pub fn attack(cfg: &ResolvedConfig, t: &TrainUnits, clock: &Clock) -> StageEstimate {
    let a = &cfg.pipeline.attack;
    let points = if a.percents.is_empty() {
        cfg.pipeline.select.sweep_percents.len()
    } else {
        a.percents.len()
    };
    let (images, evals) = attack_work(a, points);
    let eval_images = if a.eval_images == 0 {
        t.split_sizes[2]
    } else {
        a.eval_images
    } as f64;
    StageEstimate {
        stage: "attack",
        seconds: PROCESS_S
            + clock.wall(t.train_s_per_image, images)
            + clock.wall(t.eval_s_per_image, evals * eval_images),
        peak_bytes: t.train_peak_rss_bytes,
        bytes: 65536,
        note: "rough: recovery/scratch/sweep training only; extraction and inversion not modelled"
            .into(),
    }
}
