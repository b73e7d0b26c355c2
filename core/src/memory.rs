//! Hands the heap's free pages back to the kernel.
//!
//! glibc's allocator keeps the pages of freed memory inside its arenas whenever a live
//! allocation sits above them, which is most of the time in a threaded server. One burst (the
//! backlog the dispatcher drains after a Redis outage, hundreds of stream frames after it)
//! then raises the resident size for good although the heap is back to its usual 15 MiB: the
//! soak saw +4.5 MiB at each Redis restart. `malloc_trim` walks the arenas and gives such
//! pages back (`madvise`), which is what a dashboard left running for weeks needs.
//!
//! The `mispdash` binary allocates Rust's memory with mimalloc, told to purge freed pages at
//! once (`cli/src/main.rs`); there the trim still covers what the C libraries (libzmq) take
//! from glibc. The Python package runs on its host's glibc heap, which the trim covers whole.

use std::time::{Duration, Instant};

/// Gives the free pages of every arena back to the kernel; whether any were.
pub fn release_free_pages() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes no pointer and only reorganises the allocator's own free
        // lists under its locks; any thread may call it at any time.
        unsafe { libc::malloc_trim(0) != 0 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Calls [`release_free_pages`] at most once per period, from a loop that already wakes up
/// often (`mispdash run`'s main thread): a walk of the arenas takes about a millisecond, so
/// twice a minute costs nothing measurable.
pub struct Trimmer {
    every: Duration,
    last: Instant,
}

impl Trimmer {
    pub fn new(every: Duration) -> Trimmer {
        Trimmer {
            every,
            last: Instant::now(),
        }
    }

    /// Trims when the period has passed since the last trim; whether it did.
    pub fn tick(&mut self) -> bool {
        if self.last.elapsed() < self.every {
            return false;
        }
        self.last = Instant::now();
        release_free_pages();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// 64 MiB of small blocks freed below a block that stays alive are kept by the allocator
    /// (the resident size does not fall on its own); the trim gives them back. The resident
    /// size is the process's, which the other tests running beside this one move too: the
    /// experiment is tried up to three times and must show both effects once.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn freed_pages_below_a_live_block_go_back_to_the_kernel() {
        let mut seen = Vec::new();
        for _ in 0..3 {
            // On a thread of its own, whose arena the test harness's other threads rarely share.
            let (before, freed, trimmed, released) = std::thread::spawn(|| {
                let blocks: Vec<Vec<u8>> =
                    (0..16_384).map(|i| vec![(i % 251) as u8; 4000]).collect();
                let pinned = std::hint::black_box(vec![1u8; 4000]);
                let before = rss_kib();
                drop(blocks);
                let freed = rss_kib();
                let released = release_free_pages();
                let trimmed = rss_kib();
                drop(pinned);
                (before, freed, trimmed, released)
            })
            .join()
            .expect("the test thread");
            let kept = before.saturating_sub(freed) < 32 * 1024;
            let given_back = freed.saturating_sub(trimmed) >= 32 * 1024;
            if kept && given_back && released {
                return;
            }
            seen.push(format!(
                "RSS {before} KiB with the blocks, {freed} KiB freed, {trimmed} KiB trimmed \
                 (malloc_trim released: {released})"
            ));
        }
        panic!("the trim did not give the freed pages back: {seen:?}");
    }

    #[test]
    fn the_trimmer_waits_for_its_period() {
        let mut t = Trimmer::new(Duration::from_secs(3600));
        assert!(!t.tick());
        let mut t = Trimmer::new(Duration::ZERO);
        assert!(t.tick());
    }
}
