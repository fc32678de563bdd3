//! Inputs of a gadget step: the shares of every instance (one value, or the 4 of a 2×2 window),
//! and the circuits of a schedule.

use privdnn_gc::{Circuit, GcConfig};

use crate::plan::{Step, pool_windows};
use crate::{Result, TwoServerError};

/// Instances garbled per streamed chunk: small enough that server 2 evaluates one chunk while
/// server 1 garbles the next (a 256-value LeNet5 gadget is two chunks).
pub const CHUNK_INSTANCES: usize = 128;

/// Threads each server garbles / evaluates a chunk with (privdnn-gc can split a chunk's batches
/// over several). One: on the shared 2-core machine the two servers already overlap (server 2
/// evaluates chunk k while server 1 garbles chunk k + 1), and 2 threads each were slower there
/// (`tests/mnist_tcp.rs`: 49–66 ms/image against 41–42 ms/image with one, load 9–10).
pub const GC_THREADS: usize = 1;

/// The garbling engine's settings of both servers.
pub(crate) fn gc_config() -> GcConfig {
    GcConfig {
        threads: GC_THREADS,
        ..GcConfig::default()
    }
}

/// The circuit of every gadget step (`None` for the other steps).
pub(crate) fn circuits(steps: &[Step]) -> Result<Vec<Option<Circuit>>> {
    steps
        .iter()
        .map(|s| match s {
            Step::Gadget { spec, .. } => Ok(Some(spec.build()?)),
            _ => Ok(None),
        })
        .collect()
}

/// Calls `f` with the shares of each instance of gadget step `step`, in instance order.
pub(crate) fn for_each_instance(
    step: &Step,
    x: &[u64],
    mut f: impl FnMut(&[u64]) -> Result<()>,
) -> Result<()> {
    let Step::Gadget { spec, input } = step else {
        return Err(TwoServerError::protocol("not a gadget step"));
    };
    if x.len() != input.len() {
        return Err(TwoServerError::protocol("gadget input of the wrong size"));
    }
    if spec.pool4 {
        for w in pool_windows(*input) {
            f(&[x[w[0]], x[w[1]], x[w[2]], x[w[3]]])?;
        }
    } else {
        for v in x {
            f(std::slice::from_ref(v))?;
        }
    }
    Ok(())
}
