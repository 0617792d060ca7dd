//! `ebb-operator` entry point: parses flags and hands over to [`ebb_operator::run`].

use std::process::ExitCode;

use clap::Parser as _;

/// jemalloc instead of the C library's allocator. The operator keeps thousands of small,
/// long-lived objects (one set per ScaledObject) that are allocated at start between the
/// reconciles' short-lived buffers. With glibc's allocator the free space those buffers leave
/// stays in the arenas, scattered between live objects: at 10,000 ScaledObjects 224 MB taken
/// from the system for 142 MB in use (`malloc_stats`), RSS 208.6 MiB. jemalloc's size-class slabs
/// and its return of unused pages after a few seconds bring the same run to 157.8 MiB
/// (BENCHMARKS.md, "Third pass"). Built without the `jemalloc` feature, the C library's.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    match ebb_operator::run(ebb_operator::Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ebb-operator: {error:#}");
            ExitCode::FAILURE
        }
    }
}
