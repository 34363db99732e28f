// SPDX-License-Identifier: GPL-2.0
//! The mm sequence id harness: proves what Documentation/testing.md lists, inside a kernel with the series.
//!
//! Runs as root in the guest, with `/dev/rust-mm-seqid` (CONFIG_SAMPLE_RUST_MM_SEQID=y). The
//! libtest command line works: `--list`, name filters, `--exact`. Every test runs on the main
//! thread, one at a time, so that the process is single-threaded whenever a test forks.
//!
//! `mm-seqid-harness --fuzz [--seed=S] [--ops=N] [--secs=N] [--threads=N] [--forkers=N]` runs
//! only the ioctl fuzzer (see fuzz.rs), with a closing `N passed, N failed` line.
//!
//! `mm-seqid-harness --demo` prints, instead, the ids seen by a process, its thread, a fork
//! child and an exec'd child, and what a bound context lets each of them do.
//!
//! Environment:
//! - `MM_SEQID_ABA_ITERS=N`: processes in the ABA test (default 10000; `--stress`-like runs use
//!   100000 or more).
//! - `MM_SEQID_FUZZ_{SEED,OPS,SECS,THREADS,FORKERS}`: the `fuzz_ioctls` test (default: a fresh
//!   seed, 1000000 ioctls from 4 threads beside 2 forkers, at most 900 s).
//! - `MM_SEQID_HOST_ONLY=1`: host-only development: tests that need the device are ignored
//!   instead of failing. The scripts and CI never set it.

mod child;
mod demo;
mod fuzz;
mod tests;

use std::process::ExitCode;
use std::sync::Mutex;

use child::child_mode;
use libtest_mimic::{Arguments, Trial};
use mm_seqid_harness::CHILD_MODE;

/// What each test that ran returned.
static RESULTS: Mutex<Vec<(&str, bool)>> = Mutex::new(Vec::new());

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(CHILD_MODE) {
        return ExitCode::from(child_mode(&argv[2..]));
    }
    if argv.get(1).map(String::as_str) == Some("--fuzz") {
        let cfg = match fuzz::Config::from_args(&argv[2..]) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        };
        let verdict = fuzz::run(cfg).and_then(|s| fuzz::verdict(&cfg, &s));
        return match verdict {
            Ok(()) => {
                println!("fuzz: ok\n1 passed, 0 failed");
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!("fuzz: FAIL {e}\n0 passed, 1 failed");
                ExitCode::FAILURE
            }
        };
    }
    if argv.get(1).map(String::as_str) == Some("--demo") {
        return match demo::run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("demo: {e}");
                ExitCode::FAILURE
            }
        };
    }

    let mut args = Arguments::from_args();
    // One test at a time, on the main thread: tests fork.
    args.test_threads = Some(1);
    let host_only = std::env::var_os("MM_SEQID_HOST_ONLY").is_some();
    let trials: Vec<Trial> = tests::all()
        .into_iter()
        .map(|(name, f)| {
            Trial::test(name, move || {
                let r = f();
                RESULTS.lock().unwrap().push((name, r.is_ok()));
                r.map_err(Into::into)
            })
            .with_ignored_flag(host_only)
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    // One line per test that ran, each on a line of its own (what a test prints may split
    // libtest's lines), for scripts/test to count.
    for (name, ok) in RESULTS.lock().unwrap().iter() {
        println!(
            "guest-result harness:{name} {}",
            if *ok { "ok" } else { "FAIL" }
        );
    }
    // The plain closing line that any runner reads.
    println!(
        "{} passed, {} failed",
        conclusion.num_passed, conclusion.num_failed
    );
    conclusion.exit_code()
}
