//! Training-throughput benchmark: images/s of a full training step (forward, backward,
//! optimiser) for each architecture on each compiled-in CPU backend, in one run, with the
//! ratio against the baseline backend (ndarray) measured in the same run; each backend runs once
//! per thread count (default: one thread, then every core), so the multi-core speed-up is also a
//! ratio within one run.

use std::time::Instant;

use anyhow::Result;
use clap::Args;
use privdnn_artifacts::{Architecture, ModelSpec};
use privdnn_config::Backend;
use privdnn_model::burn::nn::loss::CrossEntropyLossConfig;
use privdnn_model::burn::optim::{GradientsParams, SgdConfig};
use privdnn_model::burn::tensor::{Device, Int, Tensor, TensorData};
use privdnn_model::{Network, available_backends, backend_device};
use serde::Serialize;

/// Options of `privdnn-train bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Width multiplier for AlexNet, VGG16 and ResNet18 (LeNet5 always runs at 1.0).
    #[arg(long, default_value_t = 0.25)]
    pub width: f64,
    /// Mini-batch size.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Minimum seconds of timed steps per model and backend (at least 2 steps).
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Thread counts to measure each backend with (comma-separated); default: 1 and every core.
    #[arg(long, value_delimiter = ',')]
    pub threads: Vec<usize>,
    /// Where to write the JSON report.
    #[arg(long, default_value = "results/bench/train.json")]
    pub output: std::path::PathBuf,
}

/// One measured row.
#[derive(Debug, Serialize)]
pub struct BenchRow {
    /// Model name.
    pub model: String,
    /// Backend name.
    pub backend: String,
    /// Rayon worker threads the step ran on.
    pub threads: usize,
    /// Width multiplier.
    pub width: f64,
    /// Batch size.
    pub batch: usize,
    /// Timed steps.
    pub steps: usize,
    /// Median seconds per step.
    pub seconds_per_step: f64,
    /// Training images per second.
    pub images_per_second: f64,
}

fn specs(width: f64) -> Vec<(&'static str, ModelSpec)> {
    let spec = |architecture, in_channels, image_size, num_classes, width| ModelSpec {
        architecture,
        in_channels,
        image_size,
        num_classes,
        lenet_filters: [6, 16],
        width,
    };
    vec![
        ("lenet5 (mnist)", spec(Architecture::Lenet5, 1, 28, 10, 1.0)),
        (
            "alexnet (gtsrb)",
            spec(Architecture::Alexnet, 3, 32, 43, width),
        ),
        (
            "vgg16 (cifar10)",
            spec(Architecture::Vgg16, 3, 32, 10, width),
        ),
        (
            "resnet18 (cifar10 64px)",
            spec(Architecture::Resnet18, 3, 64, 10, width),
        ),
    ]
}

fn time_steps(
    spec: &ModelSpec,
    device: &Device,
    batch: usize,
    min_seconds: f64,
) -> Result<(usize, f64)> {
    let mut net = Network::new(spec, device)?;
    let mut optim = SgdConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let n = batch * spec.in_channels * spec.image_size * spec.image_size;
    let values: Vec<f32> = (0..n).map(|i| ((i * 7919) % 255) as f32 / 255.0).collect();
    let labels: Vec<i64> = (0..batch).map(|i| (i % spec.num_classes) as i64).collect();
    let mut times = Vec::new();
    let start = Instant::now();
    // one warm-up step, then at least two timed ones
    while times.len() < 3
        || (start.elapsed().as_secs_f64() < min_seconds + times[0] && times.len() < 50)
    {
        let t = Instant::now();
        let x = Tensor::<4>::from_data(
            TensorData::new(
                values.clone(),
                [batch, spec.in_channels, spec.image_size, spec.image_size],
            ),
            device,
        );
        let y = Tensor::<1, Int>::from_data(TensorData::new(labels.clone(), [batch]), device);
        let loss = loss_fn.forward(net.forward(x), y);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(0.01, net, grads);
        times.push(t.elapsed().as_secs_f64());
    }
    let mut timed = times[1..].to_vec();
    timed.sort_by(f64::total_cmp);
    Ok((timed.len(), timed[timed.len() / 2]))
}

/// Thread counts to measure: the user's list, or one thread and every core.
fn thread_counts(asked: &[usize]) -> Vec<usize> {
    if !asked.is_empty() {
        return asked.to_vec();
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if cores > 1 { vec![1, cores] } else { vec![1] }
}

/// Runs the benchmark; returns the Markdown table of the measurements (the caller prints it).
pub fn run(args: &BenchArgs) -> Result<String> {
    let backends = available_backends();
    let threads = thread_counts(&args.threads);
    if threads.contains(&0) {
        anyhow::bail!("--threads: thread counts must be at least 1");
    }
    let mut rows = Vec::new();
    for (name, spec) in specs(args.width) {
        for &backend in &backends {
            let device = backend_device(backend, true)?;
            let backend_name = format!("{backend:?}").to_lowercase();
            for &t in &threads {
                let pool = privdnn_model::flushed_thread_pool(t)?;
                let (steps, seconds) =
                    pool.install(|| time_steps(&spec, &device, args.batch, args.seconds))?;
                let row = BenchRow {
                    model: name.to_string(),
                    backend: backend_name.clone(),
                    threads: t,
                    width: spec.width,
                    batch: args.batch,
                    steps,
                    seconds_per_step: seconds,
                    images_per_second: args.batch as f64 / seconds,
                };
                log::info!(
                    "{} on {} ({} thread(s)): {:.1} images/s",
                    row.model,
                    row.backend,
                    row.threads,
                    row.images_per_second
                );
                rows.push(row);
            }
        }
    }
    let single = threads.iter().min().copied().unwrap_or(1);
    let mut table = format!(
        "| model | backend | threads | width | batch | s/step | images/s | vs ndarray ({single} thread) | vs same backend ({single} thread) |\n\
         |---|---|---|---|---|---|---|---|---|\n"
    );
    let ratio = |row: &BenchRow, backend: &str| {
        rows.iter()
            .find(|r| r.model == row.model && r.backend == backend && r.threads == single)
            .map(|b| format!("{:.1}×", row.images_per_second / b.images_per_second))
            .unwrap_or_else(|| "n/a".to_string())
    };
    for row in &rows {
        table += &format!(
            "| {} | {} | {} | {} | {} | {:.3} | {:.1} | {} | {} |\n",
            row.model,
            row.backend,
            row.threads,
            row.width,
            row.batch,
            row.seconds_per_step,
            row.images_per_second,
            ratio(row, "ndarray"),
            ratio(row, &row.backend),
        );
    }
    if !backends.contains(&Backend::Ndarray) {
        table += "(ndarray not compiled in: run `cargo xtask bench train`, which enables it)\n";
    }
    privdnn_artifacts::write_json_atomic(&args.output, &rows)?;
    table += &format!("wrote {}\n", args.output.display());
    Ok(table)
}
