//! The `mispdash` binary: the command line of `lib.rs`, with its allocator chosen and tuned
//! first.

/// mimalloc instead of glibc's malloc, for the binary only (the Python package keeps its
/// host's allocator). The drain allocates and frees a parsed tree and a few strings per
/// message on two threads; glibc's allocator was a quarter of its CPU, and with mimalloc the
/// default `mispdash run` drains the bench mix about 40 % faster (`bench/ingest.sh`,
/// docs/performance.md). `tune_mimalloc` makes it give freed pages back at once.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    mispdash_cli::tune_allocator();
    mispdash_cli::tune_mimalloc();
    std::process::exit(mispdash_cli::main_from(std::env::args_os()));
}
