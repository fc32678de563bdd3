//! Flush subnormal floats to zero (x86 FTZ/DAZ, aarch64 FZ) on the calling thread and on every
//! rayon worker, for the whole run.
//!
//! Why: once a model fits its training set, gradients through the square activations become
//! subnormal, and x86 handles subnormals in microcode: the MNIST LeNet5 epoch went from 7.5 s to
//! over 22 s. PyTorch offers the same switch (`torch.set_flush_denormal`). Flushing changes only
//! values below 1.2e-38, which carry no information for training or inference.
//!
//! This is the only module of the workspace that uses `unsafe`.
#![allow(unsafe_code)]

use std::sync::Once;

static POOL: Once = Once::new();

/// Starts one rayon worker (named `compute-<i>`) that runs with subnormals flushed.
fn spawn_flushed(thread: rayon::ThreadBuilder) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(format!("compute-{}", thread.index()))
        .spawn(move || {
            // SAFETY: the guard sets FTZ/DAZ for this worker thread only and restores the
            // previous flags when `run` returns; no code on this thread relies on subnormal
            // arithmetic.
            unsafe { no_denormals::no_denormals(|| thread.run()) }
        })?;
    Ok(())
}

/// A separate rayon pool of `threads` workers that run flushed, for measuring one thread count
/// against another in one process (`pool.install(...)` runs burn's kernels on it).
pub fn flushed_thread_pool(
    threads: usize,
) -> Result<rayon::ThreadPool, rayon::ThreadPoolBuildError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .spawn_handler(spawn_flushed)
        .build()
}

/// Runs `f` with subnormals flushed to zero. The first call also installs rayon's global pool
/// with workers that run flushed; when something built the pool earlier, a warning says the
/// workers keep the default mode.
pub fn with_flushed_denormals<T>(f: impl FnOnce() -> T) -> T {
    POOL.call_once(|| {
        let built = rayon::ThreadPoolBuilder::new()
            .spawn_handler(spawn_flushed)
            .build_global();
        if let Err(e) = built {
            log::warn!("rayon pool already built ({e}); its workers keep subnormal floats");
        }
    });
    // SAFETY: as above, for the calling thread, restored when `f` returns.
    unsafe { no_denormals::no_denormals(f) }
}
