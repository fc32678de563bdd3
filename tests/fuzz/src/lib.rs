//! Fuzzing on stable Rust for every decoder that reads bytes from a peer or a file: the frame
//! reader (`privdnn-net`), the bounded codec and the artifact envelope (`privdnn-artifacts`),
//! the compact ciphertext and packed-slot decoders and the protocol messages (`privdnn-he`),
//! and the PrivDNN and edge wire messages (`privdnn-partial`, `privdnn-edge`).
//!
//! Each [`targets::Target`] owns seeds (valid encodings) and a function that decodes one input.
//! [`run`] generates inputs (random bytes, or mutations of seeds and of inputs that decoded),
//! runs every call under `catch_unwind` and under the counting allocator ([`alloc`]) with the
//! decoder's configured bound, and reports executions, panics and allocations over the bound
//! (each with the input in hex). Used by a quick default-suite test (`tests/quick.rs`, fixed
//! seed) and by `cargo xtask fuzz --minutes N` (the `privdnn-fuzz` binary).

pub mod alloc;
pub mod mutate;
pub mod targets;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::alloc::Allocation;
use crate::targets::Target;

#[global_allocator]
static GLOBAL: alloc::CountingAlloc = alloc::CountingAlloc;

/// Inputs kept per target beside the seeds (inputs that decoded, mutated further).
const CORPUS_CAP: usize = 512;
/// Findings kept (with their input) per target; all are counted.
const KEPT_FINDINGS: usize = 5;

/// How long and how wide to fuzz.
#[derive(Debug, Clone)]
pub struct Config {
    /// Stop after this long (whichever of time and iterations comes first).
    pub duration: Option<Duration>,
    /// Stop after this many executions in total.
    pub iterations: Option<u64>,
    /// Seed of the input generator (each thread derives its own).
    pub seed: u64,
    /// Worker threads.
    pub threads: usize,
}

/// One decoder call that panicked or allocated beyond its bound.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Target name.
    pub target: &'static str,
    /// The panic message, or the allocation over the bound.
    pub what: String,
    /// The input.
    pub input: Vec<u8>,
}

/// Counters of one target.
#[derive(Debug, Clone, Default)]
pub struct TargetStats {
    /// Target name.
    pub name: &'static str,
    /// Executions.
    pub executions: u64,
    /// Inputs the decoder accepted (decoded without error).
    pub accepted: u64,
    /// Panics caught.
    pub panics: u64,
    /// Calls with an allocation beyond the bound.
    pub over_limit: u64,
    /// Largest single allocation seen, as a fraction of the bound in force.
    pub worst_ratio: f64,
    /// Seconds spent in the decoder (summed over threads).
    pub seconds: f64,
}

/// The outcome of [`run`].
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Per target.
    pub targets: Vec<TargetStats>,
    /// Panics and over-bound allocations (at most a few per target, with inputs).
    pub findings: Vec<Finding>,
    /// Wall-clock time.
    pub elapsed: Duration,
}

impl Report {
    /// Executions in total.
    pub fn executions(&self) -> u64 {
        self.targets.iter().map(|t| t.executions).sum()
    }

    /// Panics in total.
    pub fn panics(&self) -> u64 {
        self.targets.iter().map(|t| t.panics).sum()
    }

    /// Calls with an allocation beyond the bound, in total.
    pub fn over_limit(&self) -> u64 {
        self.targets.iter().map(|t| t.over_limit).sum()
    }

    /// Executions per second.
    pub fn rate(&self) -> f64 {
        self.executions() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// A text table plus every kept finding with its input in hex.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{:<18} {:>12} {:>12} {:>7} {:>10} {:>9} {:>8}\n",
            "target", "executions", "accepted", "panics", "over-limit", "max/limit", "µs/exec"
        );
        for t in &self.targets {
            out += &format!(
                "{:<18} {:>12} {:>12} {:>7} {:>10} {:>9.3} {:>8.1}\n",
                t.name,
                t.executions,
                t.accepted,
                t.panics,
                t.over_limit,
                t.worst_ratio,
                1e6 * t.seconds / t.executions.max(1) as f64
            );
        }
        out += &format!(
            "total: {} executions in {:.1} s ({:.0}/s), {} panics, {} allocations over the limit\n",
            self.executions(),
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.panics(),
            self.over_limit()
        );
        for f in &self.findings {
            out += &format!(
                "FINDING [{}] {}\n  input: {}\n",
                f.target,
                f.what,
                mutate::hex(&f.input, 2048)
            );
        }
        out
    }
}

/// The bookkeeping of one execution: decoders call [`Exec::bounded`] around each decode.
#[derive(Debug, Default)]
pub struct Exec {
    worst: Option<Allocation>,
    ratio: f64,
}

impl Exec {
    /// Runs `f` with `limit` as its allocation bound (largest single allocation, bytes).
    pub fn bounded<T>(&mut self, limit: usize, f: impl FnOnce() -> T) -> T {
        let (out, a) = alloc::limited(limit, f);
        self.ratio = self.ratio.max(a.largest as f64 / a.limit.max(1) as f64);
        if a.exceeded() && self.worst.is_none_or(|w| w.largest < a.largest) {
            self.worst = Some(a);
        }
        out
    }
}

thread_local! {
    static LAST_PANIC: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Fuzzes every target of [`targets::all`] and reports.
pub fn run(config: &Config) -> anyhow::Result<Report> {
    let targets = targets::all()?;
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        let text = info.to_string();
        LAST_PANIC.with(|p| *p.borrow_mut() = text);
    }));
    let started = Instant::now();
    let threads = config.threads.max(1);
    let stop = AtomicBool::new(false);
    let shared = Mutex::new(Report::default());
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (targets, stop, shared) = (&targets, &stop, &shared);
            let per_thread = config.iterations.map(|n| n.div_ceil(threads as u64));
            let seed = config.seed ^ (t as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let deadline = config.duration.map(|d| started + d);
            scope.spawn(move || {
                let part = worker(targets, seed, per_thread, deadline, stop);
                merge(shared, part);
            });
        }
    });
    std::panic::set_hook(previous_hook);
    let mut report = shared.into_inner().unwrap_or_else(|e| e.into_inner());
    report.elapsed = started.elapsed();
    Ok(report)
}

fn merge(shared: &Mutex<Report>, part: Report) {
    let mut all = shared.lock().unwrap_or_else(|e| e.into_inner());
    if all.targets.is_empty() {
        all.targets = part
            .targets
            .iter()
            .map(|t| TargetStats {
                name: t.name,
                ..Default::default()
            })
            .collect();
    }
    for (a, p) in all.targets.iter_mut().zip(&part.targets) {
        a.executions += p.executions;
        a.accepted += p.accepted;
        a.panics += p.panics;
        a.over_limit += p.over_limit;
        a.worst_ratio = a.worst_ratio.max(p.worst_ratio);
        a.seconds += p.seconds;
    }
    for f in part.findings {
        if all.findings.iter().filter(|g| g.target == f.target).count() < KEPT_FINDINGS {
            all.findings.push(f);
        }
    }
}

/// One thread's loop: picks a target by weight, builds an input, runs it, counts.
fn worker(
    targets: &[Target],
    seed: u64,
    iterations: Option<u64>,
    deadline: Option<Instant>,
    stop: &AtomicBool,
) -> Report {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut corpora: Vec<Vec<Vec<u8>>> = targets.iter().map(|_| Vec::new()).collect();
    let mut report = Report {
        targets: targets
            .iter()
            .map(|t| TargetStats {
                name: t.name,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let total_weight: u32 = targets.iter().map(|t| t.weight).sum();
    let mut done = 0u64;
    while !stop.load(Ordering::Relaxed) && iterations.is_none_or(|n| done < n) {
        if done.is_multiple_of(256) && deadline.is_some_and(|d| Instant::now() >= d) {
            stop.store(true, Ordering::Relaxed);
            break;
        }
        let mut pick = rng.random_range(0..total_weight);
        let i = targets
            .iter()
            .position(|t| {
                pick < t.weight || {
                    pick -= t.weight;
                    false
                }
            })
            .unwrap_or(0);
        let target = &targets[i];
        let input = next_input(&mut rng, target, &corpora[i]);
        let mut exec = Exec::default();
        let clock = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| (target.run)(&input, &mut exec)));
        let stats = &mut report.targets[i];
        stats.seconds += clock.elapsed().as_secs_f64();
        stats.executions += 1;
        stats.worst_ratio = stats.worst_ratio.max(exec.ratio);
        done += 1;
        let finding = match result {
            Ok(accepted) => {
                if accepted {
                    stats.accepted += 1;
                    keep(&mut rng, &mut corpora[i], input.clone());
                }
                exec.worst.map(|a| {
                    stats.over_limit += 1;
                    format!("allocation of {} bytes, bound {} bytes", a.largest, a.limit)
                })
            }
            Err(_) => {
                stats.panics += 1;
                Some(format!(
                    "panic: {}",
                    LAST_PANIC.with(|p| p.borrow().clone())
                ))
            }
        };
        if let Some(what) = finding
            && report
                .findings
                .iter()
                .filter(|f| f.target == target.name)
                .count()
                < KEPT_FINDINGS
        {
            report.findings.push(Finding {
                target: target.name,
                what,
                input,
            });
        }
    }
    report
}

fn next_input(rng: &mut ChaCha8Rng, target: &Target, corpus: &[Vec<u8>]) -> Vec<u8> {
    let pick = |rng: &mut ChaCha8Rng| -> &[u8] {
        if !corpus.is_empty() && rng.random_bool(0.3) {
            &corpus[rng.random_range(0..corpus.len())]
        } else {
            &target.seeds[rng.random_range(0..target.seeds.len())]
        }
    };
    let mut input = match rng.random_range(0..20) {
        0 => mutate::random_bytes(rng),
        1 => pick(rng).to_vec(),
        _ => {
            let (a, b) = (pick(rng).to_vec(), pick(rng).to_vec());
            mutate::mutate(rng, &a, &b)
        }
    };
    if let Some(fix) = target.fixup
        && rng.random_bool(0.5)
    {
        fix(&mut input);
    }
    input
}

fn keep(rng: &mut ChaCha8Rng, corpus: &mut Vec<Vec<u8>>, input: Vec<u8>) {
    if corpus.len() < CORPUS_CAP {
        corpus.push(input);
    } else {
        let i = rng.random_range(0..CORPUS_CAP);
        corpus[i] = input;
    }
}
