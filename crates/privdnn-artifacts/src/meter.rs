//! Per-phase costs of a process that plays several roles in turn (the infer stage's harness):
//! wall seconds, process CPU seconds (user + system, all threads, `/proc/self/stat`) and the
//! peak resident memory of the phase alone (`VmHWM`, reset through `/proc/self/clear_refs`
//! before the phase). Linux only; elsewhere CPU and peak read 0.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::peak_rss_bytes;

/// What one phase cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseCost {
    /// Wall seconds.
    pub wall_s: f64,
    /// Process CPU seconds (all threads).
    pub cpu_s: f64,
    /// Peak resident memory during the phase (bytes; includes what earlier phases still hold).
    pub peak_rss_bytes: u64,
}

impl PhaseCost {
    /// Sum of wall and CPU times, the larger peak.
    pub fn add(&mut self, other: PhaseCost) {
        self.wall_s += other.wall_s;
        self.cpu_s += other.cpu_s;
        self.peak_rss_bytes = self.peak_rss_bytes.max(other.peak_rss_bytes);
    }
}

/// CPU seconds (user + system, all threads) of this process so far.
pub fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) close with ')'.
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat(5): 11 and 12 after the name; 100 Hz.
    (ticks(11) + ticks(12)) / 100.0
}

/// Resets the process's peak resident memory to its current size (no-op where unsupported).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Runs `f` as one phase and returns its result with its cost.
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, PhaseCost) {
    reset_peak_rss();
    let (clock, cpu) = (Instant::now(), process_cpu_seconds());
    let out = f();
    let cost = PhaseCost {
        wall_s: clock.elapsed().as_secs_f64(),
        cpu_s: process_cpu_seconds() - cpu,
        peak_rss_bytes: peak_rss_bytes(),
    };
    (out, cost)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_phase_costs_cpu_and_a_large_one_memory() {
        let (sum, cost) = measure(|| {
            let v = vec![1u8; 64 << 20];
            let mut s = 0u64;
            for _ in 0..20 {
                s = s.wrapping_add(v.iter().map(|&b| b as u64).sum::<u64>());
            }
            s
        });
        assert_eq!(sum, 20 * (64 << 20));
        assert!(cost.wall_s > 0.0 && cost.cpu_s > 0.0, "{cost:?}");
        assert!(cost.peak_rss_bytes >= 64 << 20, "{cost:?}");
    }
}
