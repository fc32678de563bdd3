//! `privdnn-infer bench` (`cargo xtask bench he`): the HE kernels against fhe's own operations,
//! measured in the same run (ratios, not absolute claims), then the MNIST `{"1":[0],"2":[0]}`
//! encrypted run on 5,000 test images checked against the issue's limits. Writes
//! `results/bench/he.json` and `results/bench/he.md`.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use fhe::bfv::{Ciphertext, Encoding, Multiplicator, Plaintext, RelinearizationKey, SecretKey, dot_product_scalar};
use fhe_traits::{FheEncoder, FheEncrypter, Serialize as _};
use privdnn_he::compact::compress;
use privdnn_he::lazy::LazyMultiplier;
use privdnn_he::params::HeParams;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// One kernel comparison.
#[derive(Debug, Serialize)]
pub struct Comparison {
    /// What is compared.
    pub kernel: String,
    /// fhe's way, ms.
    pub baseline_ms: f64,
    /// Ours, ms.
    pub ours_ms: f64,
    /// baseline / ours.
    pub speedup: f64,
}

fn time<T>(reps: usize, mut f: impl FnMut() -> T) -> f64 {
    let start = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(f());
    }
    start.elapsed().as_secs_f64() * 1e3 / reps as f64
}

fn compare(kernel: &str, baseline_ms: f64, ours_ms: f64) -> Comparison {
    Comparison { kernel: kernel.into(), baseline_ms, ours_ms, speedup: baseline_ms / ours_ms }
}

/// Kernel comparisons at the pipelines' default parameters.
pub fn kernels() -> Result<(Vec<Comparison>, Vec<(String, f64)>)> {
    let hp = HeParams::generate(8192, &[54, 54, 54, 54], 24)?;
    let par = hp.build()?;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let sk = SecretKey::random(&par, &mut rng);
    let rk = RelinearizationKey::new(&sk, &mut rng)?;
    let n = hp.degree;
    let enc = |rng: &mut ChaCha8Rng| -> Result<Ciphertext> {
        let v: Vec<i64> = (0..n).map(|_| rng.random_range(-1000..1000)).collect();
        Ok(sk.try_encrypt(&Plaintext::try_encode(&v, Encoding::simd(), &par)?, rng)?)
    };
    let terms = 25;
    let a: Vec<Ciphertext> = (0..terms).map(|_| enc(&mut rng)).collect::<Result<_>>()?;
    let b: Vec<Ciphertext> = (0..terms).map(|_| enc(&mut rng)).collect::<Result<_>>()?;
    let pts: Vec<Plaintext> = (0..36)
        .map(|_| {
            let v: Vec<i64> = (0..n).map(|_| rng.random_range(-255..256)).collect();
            Plaintext::try_encode(&v, Encoding::simd(), &par)
        })
        .collect::<Result<_, _>>()?;
    let cts36: Vec<Ciphertext> = (0..36).map(|_| enc(&mut rng)).collect::<Result<_>>()?;
    let mut out = Vec::new();
    // ct×ct dot product of 25 terms: fhe multiply+relinearise per product vs lazy.
    let mult = Multiplicator::default(&rk)?;
    let base = time(2, || {
        let mut acc = mult.multiply(&a[0], &b[0]).expect("mul");
        for k in 1..terms {
            acc += &mult.multiply(&a[k], &b[k]).expect("mul");
        }
        acc
    });
    let lazy = LazyMultiplier::new(&par)?;
    let la: Vec<_> = a.iter().map(|c| lazy.lift(c)).collect::<Result<_, _>>()?;
    let lb: Vec<_> = b.iter().map(|c| lazy.lift(c)).collect::<Result<_, _>>()?;
    let pairs: Vec<_> = la.iter().zip(&lb).collect();
    let ours = time(3, || lazy.dot(&pairs, &rk).expect("dot"));
    let lift = time(5, || lazy.lift(&a[0]).expect("lift"));
    out.push(compare("25-term ct×ct dot product, operands lifted once (lift not counted)", base, ours));
    out.push(compare("25-term ct×ct dot product, lifting all 50 operands included", base, ours + 50.0 * lift));
    // ct×pt dot product of 36 terms: mul + add vs dot_product_scalar.
    let base = time(5, || {
        let mut acc = &cts36[0] * &pts[0];
        for k in 1..36 {
            acc += &(&cts36[k] * &pts[k]);
        }
        acc
    });
    let ours = time(5, || dot_product_scalar(cts36.iter(), pts.iter()).expect("dot"));
    out.push(compare("36-term ct×pt dot product (fhe dot_product_scalar)", base, ours));
    let mut sizes = Vec::new();
    let mut last = a[0].clone();
    last.switch_to_level(par.max_level())?;
    let full = last.to_bytes().len() as f64;
    let compact = compress(&last, &par)?.len() as f64;
    sizes.push(("ciphertext at the last level, fhe to_bytes (bytes)".to_string(), full));
    sizes.push(("same, compact wire format (bytes)".to_string(), compact));
    let single: Ciphertext = sk.try_encrypt(&Plaintext::try_encode(&[7u64], Encoding::poly(), &par)?, &mut rng)?;
    sizes.push(("one seeded weight ciphertext (bytes; 256 weights pack into one)".to_string(), single.to_bytes().len() as f64));
    Ok((out, sizes))
}

/// Report of the benchmark.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    /// Kernel comparisons.
    pub kernels: Vec<Comparison>,
    /// Sizes.
    pub sizes: Vec<(String, f64)>,
    /// Path of the MNIST run's metrics.
    pub mnist_metrics: Option<String>,
}

/// Runs the benchmark.
pub fn run(root: &Path, skip_mnist: bool) -> Result<()> {
    let (kernels, sizes) = kernels()?;
    let mut md = String::from("# HE benchmark (`cargo xtask bench he`)\n\nN = 8192, 4 × 54-bit primes, t ≈ 2^24, 1 thread per kernel.\n\n| kernel | fhe's way ms | ours ms | speed-up |\n|---|---|---|---|\n");
    for k in &kernels {
        md += &format!("| {} | {:.2} | {:.2} | {:.1}× |\n", k.kernel, k.baseline_ms, k.ours_ms, k.speedup);
    }
    md += "\n| size | value |\n|---|---|\n";
    for (k, v) in &sizes {
        md += &format!("| {k} | {v:.0} |\n");
    }
    let mut mnist_metrics = None;
    if !skip_mnist {
        let sel = root.join("results").join("bench").join("mnist-sel-0-0.json");
        privdnn_artifacts::write_bytes_atomic(&sel, br#"{"1": [0], "2": [0]}"#)?;
        let variant = Some("sel-0-0".to_string());
        privdnn_encrypt::cli::run(&privdnn_encrypt::cli::Common {
            pipeline: "mnist".into(),
            profile: None,
            root: root.to_path_buf(),
            selection: Some(sel),
            variant: variant.clone(),
        })?;
        let metrics = crate::cli::run(&crate::cli::Common {
            pipeline: "mnist".into(),
            profile: None,
            root: root.to_path_buf(),
            images: Some(5000),
            variant,
        })?;
        md += &format!("\nMNIST {{\"1\":[0],\"2\":[0]}} on 5,000 images: see `{}`.\n", metrics.display());
        mnist_metrics = Some(metrics.display().to_string());
    }
    let out = root.join("results").join("bench");
    privdnn_artifacts::write_json_atomic(&out.join("he.json"), &BenchReport { kernels, sizes, mnist_metrics })?;
    privdnn_artifacts::write_bytes_atomic(&out.join("he.md"), md.as_bytes())?;
    println!("{md}");
    Ok(())
}
