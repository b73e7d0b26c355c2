//! The `mispdash` binary: the command line of `lib.rs`, with its allocator chosen and tuned
//! first. The allocator lives here and not in the library, which the Python package links.

/// mimalloc instead of glibc's malloc, for the binary only (the Python package keeps its
/// host's allocator). The drain allocates and frees a parsed tree and a few strings per
/// message on two threads; glibc's allocator was a quarter of its CPU, and with mimalloc the
/// default `mispdash run` drains the bench mix about half again as fast (`bench/ingest.sh`,
/// docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's index of `purge_delay` in the `mi_option_t` of the vendored mimalloc 3
/// (`libmimalloc-sys` names only some options); a unit test checks it against the option's
/// default.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed pages go back to the kernel at once instead of after a second. With the delay, a
/// drain's batches kept 25-60 MiB more resident at their peak (bench/ingest.sh), and the peak
/// RSS is a target (under 56 MiB). Options set here apply from then on; the allocations made
/// before `main` are few.
fn tune_mimalloc() {
    // A variable set by the admin (MIMALLOC_PURGE_DELAY) wins, as mimalloc documents.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set only stores the value in mimalloc's option table (atomically).
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
}

fn main() {
    mispdash_cli::tune_allocator();
    tune_mimalloc();
    std::process::exit(mispdash_cli::main_from(std::env::args_os()));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index `tune_mimalloc` writes is `purge_delay`'s: mimalloc 3 documents its default
    /// as 1000 ms, which no other option has; and what is written is what mimalloc reads.
    #[test]
    fn the_purge_delay_index_names_mimallocs_purge_delay() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            eprintln!("MIMALLOC_PURGE_DELAY is set: its default cannot be checked");
            return;
        }
        // SAFETY: reading and storing an option of mimalloc's table.
        unsafe {
            assert_eq!(libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY), 1000);
        }
        tune_mimalloc();
        unsafe {
            assert_eq!(libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY), 0);
        }
    }
}
