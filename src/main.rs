//! The `vane` binary: everything lives in the library; this only maps the outcome to an exit code.

// mimalloc: measured, loading 1,000 workflows spends much of its time in glibc malloc growing
// its heap (page faults, mprotect); mimalloc cut that part sharply.
// #[global_allocator]
// static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    vane::cli::main()
}
