//! A counting global allocator: it forwards every call to the system allocator and records,
//! per thread, the largest single allocation made while a limit is set ([`limited`]). The
//! fuzzer wraps each decoder call in [`limited`] with that decoder's configured bound (decode
//! limit, frame limit) and counts calls whose largest allocation exceeded it.
//!
//! This is the crate's only `unsafe` code: `GlobalAlloc` is an unsafe trait. Each method
//! forwards its arguments unchanged to [`System`], so the allocator upholds exactly the
//! contract `System` upholds; the bookkeeping touches only a `const`-initialised thread-local
//! `Cell<usize>`, which never allocate and have no destructor.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The fuzz binaries' allocator.
pub struct CountingAlloc;

thread_local! {
    /// Largest single allocation (bytes) on this thread since the current [`limited`] began.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|l| {
        if size > l.get() {
            l.set(size);
        }
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments and returns its result
// untouched; `note` only reads and writes thread-local integers (no allocation, no reentrancy).
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as the caller's (non-zero size layout, per GlobalAlloc).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was returned by `System` (every allocation goes through it) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: `ptr`/`layout` come from `System` (see `dealloc`); `new_size` is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `f` under an allocation bound and returns its result with the largest single
/// allocation it made on this thread. Nested calls keep the outer bookkeeping intact.
pub fn limited<T>(limit: usize, f: impl FnOnce() -> T) -> (T, Allocation) {
    let outer = LARGEST.with(Cell::get);
    LARGEST.with(|l| l.set(0));
    let out = f();
    let largest = LARGEST.with(Cell::get);
    LARGEST.with(|l| l.set(outer.max(largest)));
    (out, Allocation { largest, limit })
}

/// What one bounded call allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    /// Largest single allocation (bytes).
    pub largest: usize,
    /// The bound it ran under.
    pub limit: usize,
}

impl Allocation {
    /// True when an allocation exceeded the bound.
    pub fn exceeded(&self) -> bool {
        self.largest > self.limit
    }
}
