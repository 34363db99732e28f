// SPDX-License-Identifier: GPL-2.0
//! The mm sequence id harness: proves what Documentation/testing.md lists, inside a kernel with the series.
//!
//! Runs as root in the guest, with `/dev/rust-mm-seqid` (CONFIG_SAMPLE_RUST_MM_SEQID=y).
//! Command line: `--list`, name filters, `--exact`. Prints KTAP; each test runs alone in a
//! process of its own, on its main thread, so that the process is single-threaded whenever a
//! test forks (see ktap.rs).
//!
//! `mm-seqid-harness --fuzz [--seed=S] [--ops=N] [--secs=N] [--threads=N] [--forkers=N]` runs
//! only the ioctl fuzzer (see fuzz.rs), as the single KTAP test `fuzz`.
//!
//! `mm-seqid-harness --demo` prints, instead, the ids seen by a process, its thread, a fork
//! child and an exec'd child, and what a bound context lets each of them do.
//!
//! Environment:
//! - `MM_SEQID_ABA_ITERS=N`: processes in the ABA test (default 10000; `--stress`-like runs use
//!   100000 or more).
//! - `MM_SEQID_FUZZ_{SEED,OPS,SECS,THREADS,FORKERS}`: the `fuzz_ioctls` test (default: a fresh
//!   seed, 1000000 ioctls from 4 threads beside 2 forkers, at most 900 s).
//! - `MM_SEQID_TEST_TIMEOUT=S`: each test's deadline in seconds (default 600; see ktap.rs).
//! - `MM_SEQID_HOST_ONLY=1`: host-only development: tests that need the device skip
//!   (`# SKIP`) instead of failing. The scripts and CI never set it.

mod child;
mod demo;
mod fuzz;
mod ktap;
mod tests;

use std::process::ExitCode;

use child::child_mode;
use mm_seqid_harness::CHILD_MODE;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    match argv.get(1).map(String::as_str) {
        Some(CHILD_MODE) => ExitCode::from(child_mode(&argv[2..])),
        Some("--fuzz") => ktap::fuzz(&argv[2..]),
        Some("--demo") => match demo::run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("demo: {e}");
                ExitCode::FAILURE
            }
        },
        // The tests, each in a process of its own, in KTAP (see ktap.rs).
        _ => ktap::main(&argv[1..]),
    }
}
