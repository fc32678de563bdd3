//! Benchmark: AND gates garbled + evaluated per second on one core (single thread), batched AES
//! against a naive one-block-per-call baseline, on the fused reshare gadgets at ℓ = 64; one row
//! with 2 threads per party (its CPU column is process CPU time, all threads).
//!
//! `cargo run --release -p privdnn-gc --bin gc-bench [-- INSTANCES]` (default 20,000 instances).

use privdnn_gc::cost::circuit_online_bytes;
use privdnn_gc::{AesMode, GcConfig, GcError, ReshareSpec, run_local};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;

struct Row {
    name: String,
    ands: u64,
    garble_s: f64,
    evaluate_s: f64,
    /// On-CPU seconds of this thread for the whole run (dealer, flips, garble, evaluate).
    cpu_s: f64,
}

impl Row {
    fn rate(&self) -> f64 {
        self.ands as f64 / (self.garble_s + self.evaluate_s)
    }
    fn cpu_rate(&self) -> f64 {
        self.ands as f64 / self.cpu_s
    }
}

/// This process's CPU time in seconds (user + system, /proc/self/stat, 10 ms ticks): counts the
/// worker threads of a multi-threaded row.
fn process_cpu_s() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        })
        .unwrap_or(f64::NAN)
}

/// This thread's on-CPU time in seconds (first field of /proc/thread-self/schedstat, in ns): on a
/// shared machine it excludes the time other processes held the core.
fn thread_cpu_s() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |ns| ns / 1e9)
}

fn bench(spec: &ReshareSpec, n: usize, cfg: GcConfig, name: &str) -> Result<Row, GcError> {
    let c = spec.build()?;
    let mut rng = ChaCha12Rng::seed_from_u64(1);
    let (mut gb, mut eb, mut want) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let s1: Vec<u64> = (0..spec.arity()).map(|_| rng.random()).collect();
        let s2: Vec<u64> = (0..spec.arity()).map(|_| rng.random()).collect();
        let r: u64 = rng.random();
        spec.push_garbler_bits(&s1, r, &mut gb)?;
        spec.push_evaluator_bits(&s2, &mut eb)?;
        want.push(spec.reference(&s1, &s2, r)?);
    }
    let clock = if cfg.threads > 1 {
        process_cpu_s
    } else {
        thread_cpu_s
    };
    let cpu0 = clock();
    let run = run_local(&c, &gb, &eb, n, 4096, cfg, 7)?;
    let cpu_s = clock() - cpu0;
    let got: Vec<u64> = run
        .outputs
        .chunks(spec.ell as usize)
        .map(privdnn_gc::bits::word_from_bits)
        .collect();
    if got != want {
        return Err(GcError::Param(format!(
            "{name}: garbled output differs from the i64 reference"
        )));
    }
    let bytes = circuit_online_bytes(&c, n as u64);
    if bytes.garbler_to_evaluator() != run.garbler_to_evaluator
        || bytes.evaluator_to_garbler() != run.evaluator_to_garbler
    {
        return Err(GcError::Param(format!(
            "{name}: measured bytes differ from the analytic count"
        )));
    }
    Ok(Row {
        name: name.to_string(),
        ands: (c.and_count() * n) as u64,
        garble_s: run.garble_s,
        evaluate_s: run.evaluate_s,
        cpu_s,
    })
}

fn main() -> Result<(), GcError> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let relu = ReshareSpec::relu(64, 12);
    let pool = ReshareSpec::pool_relu(64, 12);
    println!("gc-bench: {n} instances, ℓ = 64, shift 12, one thread, TCCR hash (2 AES per hash)");
    println!(
        "ANDs per instance: relu {} / pool4+relu {}",
        relu.and_count_formula(),
        pool.and_count_formula()
    );
    let naive = GcConfig {
        batch: 1,
        aes: AesMode::PerBlock,
        threads: 1,
    };
    let mut rows = Vec::new();
    for batch in [1usize, 8, 16, 32] {
        let cfg = GcConfig {
            batch,
            ..GcConfig::default()
        };
        rows.push(bench(
            &relu,
            n,
            cfg,
            &format!("relu  batched AES, batch {batch}"),
        )?);
    }
    rows.push(bench(
        &pool,
        n / 4,
        GcConfig::default(),
        "pool4 batched AES, batch 16",
    )?);
    rows.push(bench(
        &relu,
        n,
        GcConfig {
            threads: 2,
            ..GcConfig::default()
        },
        "relu  batched AES, batch 16, 2 threads",
    )?);
    rows.push(bench(
        &relu,
        n,
        naive,
        "relu  naive per-block AES, batch 1",
    )?);
    rows.push(bench(
        &pool,
        n / 4,
        naive,
        "pool4 naive per-block AES, batch 1",
    )?);
    println!(
        "{:<38} {:>10} {:>9} {:>9} {:>12} {:>12} {:>11} {:>11}",
        "config", "ANDs", "garble s", "eval s", "G+E /wall-s", "G+E /cpu-s", "garble/s", "eval/s"
    );
    for r in &rows {
        println!(
            "{:<38} {:>10} {:>9.3} {:>9.3} {:>12.3e} {:>12.3e} {:>11.3e} {:>11.3e}",
            r.name,
            r.ands,
            r.garble_s,
            r.evaluate_s,
            r.rate(),
            r.cpu_rate(),
            r.ands as f64 / r.garble_s,
            r.ands as f64 / r.evaluate_s
        );
    }
    let find = |key: &str, f: fn(&Row) -> f64| {
        rows.iter()
            .find(|r| r.name.contains(key))
            .map_or(f64::NAN, f)
    };
    for (what, f) in [
        ("wall", Row::rate as fn(&Row) -> f64),
        ("on-CPU", Row::cpu_rate),
    ] {
        let (default, base) = (
            find("relu  batched AES, batch 16", f),
            find("relu  naive", f),
        );
        let (pool, pool_base) = (find("pool4 batched", f), find("pool4 naive", f));
        println!(
            "{what:>6} time: relu {:.2} M ANDs/s (naive {:.2} M, {:.2}x); pool4 {:.2} M ANDs/s (naive {:.2} M, {:.2}x)",
            default / 1e6,
            base / 1e6,
            default / base,
            pool / 1e6,
            pool_base / 1e6,
            pool / pool_base
        );
    }
    println!("all outputs equal the i64 reference; measured bytes equal the analytic count");
    Ok(())
}
