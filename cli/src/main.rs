//! The `mispdash` binary: the command line of `lib.rs`, with the allocator tuned first.

/// glibc's allocator, with at most two arenas. Measured on the ingest benchmark it needed
/// about a fifth less CPU than mimalloc told to return memory at once, at a lower peak RSS
/// than mimalloc left to keep it (`docs/performance.md`). Without a cap glibc gives every
/// busy thread (HTTP workers, subscribers, the handler) its own arena, each keeping freed
/// memory, which the memory budget cannot afford.
fn tune_allocator() {
    // SAFETY: mallopt only sets a tunable of the C allocator; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        // Blocks of 1 MiB and more (a large MISP event, its parts and the buffers around it)
        // are mapped on their own and given back when freed. glibc's default threshold rises
        // with every such block freed, after which they come from the arenas, and one large
        // event pinned tens of MiB for the life of the process (bench/big_event.sh).
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

fn main() {
    tune_allocator();
    std::process::exit(mispdash_cli::main_from(std::env::args_os()));
}
