//! The `mispdash` binary: the command line of `lib.rs`, with the allocator tuned first.

fn main() {
    mispdash_cli::tune_allocator();
    std::process::exit(mispdash_cli::main_from(std::env::args_os()));
}
