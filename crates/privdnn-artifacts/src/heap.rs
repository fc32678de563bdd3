//! Handing freed heap memory back to the system between the large phases of a process.
//!
//! glibc's allocator raises its mmap threshold to the largest block freed so far (up to 32 MiB),
//! after which ciphertext-sized blocks (0.5–1 MiB) come from per-thread arenas that keep their
//! free pages. The infer stage's 100 %-block MNIST mode then started from the ~0.9 GB the
//! separate mode had freed but not returned, and its second CRT residue from the first one's
//! ~1.5 GB (RSS sampled every 0.5 s). Trimming at those boundaries returns the free pages of
//! every arena without slowing any allocation: the mode's peak on 1,000 images fell from 2.13 to
//! 1.98 GB, and RSS between the residues from 1.5 to 0.8 GB (a fixed 256 KiB mmap threshold
//! reached 1.90 GB but made the evaluation 16 % slower: every ciphertext became a fresh
//! mapping).
//!
//! This is the only module of this crate that uses `unsafe` (one foreign call, below).
#![allow(unsafe_code)]

/// Returns the free pages of every allocator arena to the system (glibc `malloc_trim(0)`; a
/// no-op with other C libraries). Call it after a phase has dropped its large data, before the
/// next one allocates. Returns whether memory was released.
pub fn release_free_heap() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only walks the allocator's own free lists and madvises free pages;
        // it reads no Rust-managed memory and is thread-safe (it takes each arena's lock).
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
