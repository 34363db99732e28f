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
//! - `MM_SEQID_HOST_ONLY=1`: host-only development: tests that need the device skip
//!   (`# SKIP`) instead of failing. The scripts and CI never set it.

mod demo;
mod fuzz;
mod ktap;
mod tests;

use std::os::fd::{AsRawFd, RawFd};
use std::process::ExitCode;

use mm_seqid_harness::{
    keep_fd, pidfd_getfd, raw_bind, raw_get_mm_id, recv_fd, send_fd, Dev, Record, SelfExec,
    CHILD_MODE,
};

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

fn arg_fd(args: &[String], i: usize) -> RawFd {
    args[i].parse().expect("fd argument")
}

/// The test binary, re-executed by a test. A fresh process: it may allocate and use threads.
/// Exits 0 after writing its records, or non-zero with a message on stderr.
fn child_mode(args: &[String]) -> u8 {
    let mode = args[0].as_str();
    let args = &args[1..];
    let report = |fd: RawFd, pipe: RawFd, set: Option<u64>| {
        if Record::probe(fd, set, false).write_to(pipe) {
            0
        } else {
            eprintln!("{mode}: short write to the report pipe");
            1
        }
    };
    match mode {
        // report DEVFD PIPEFD [VALUE]: what this process sees on an inherited fd.
        "report" => report(
            arg_fd(args, 0),
            arg_fd(args, 1),
            args.get(2).map(|v| v.parse().unwrap()),
        ),
        // recv-report SOCK PIPEFD [VALUE]: the same on an fd received with SCM_RIGHTS.
        "recv-report" => match recv_fd(arg_fd(args, 0)) {
            Ok((fd, _)) => report(
                fd.as_raw_fd(),
                arg_fd(args, 1),
                args.get(2).map(|v| v.parse().unwrap()),
            ),
            Err(e) => {
                eprintln!("recv-report: {e}");
                1
            }
        },
        // getfd-report PID FD PIPEFD [VALUE]: the same on an fd taken with pidfd_getfd().
        "getfd-report" => match pidfd_getfd(args[0].parse().unwrap(), arg_fd(args, 1)) {
            Ok(fd) => report(
                fd.as_raw_fd(),
                arg_fd(args, 2),
                args.get(3).map(|v| v.parse().unwrap()),
            ),
            Err(e) => {
                eprintln!("getfd-report: pidfd_getfd: {e}");
                1
            }
        },
        // bind-exec PIPEFD: open, bind, report, then exec into "report" on the same fd.
        "bind-exec" => {
            let pipe = arg_fd(args, 0);
            let dev = match Dev::open() {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("bind-exec: {e}");
                    return 1;
                }
            };
            let mut r = Record::probe(dev.raw(), None, true);
            r.extra = 1;
            if !r.write_to(pipe) {
                return 1;
            }
            let fd = dev.raw();
            std::mem::forget(dev);
            let exec = SelfExec::new("report", &[fd.to_string(), pipe.to_string()]);
            keep_fd(pipe);
            let e = exec.exec(&exec.argv_ptrs());
            eprintln!("bind-exec: execve: {e}");
            1
        }
        // thread-exec DEVFD PIPEFD: report, then exec from a second thread.
        "thread-exec" => {
            let (fd, pipe) = (arg_fd(args, 0), arg_fd(args, 1));
            let mut r = Record::probe(fd, None, false);
            r.extra = 1;
            if !r.write_to(pipe) {
                return 1;
            }
            let exec = SelfExec::new("report", &[fd.to_string(), pipe.to_string()]);
            let t = std::thread::spawn(move || {
                keep_fd(pipe);
                let e = exec.exec(&exec.argv_ptrs());
                eprintln!("thread-exec: execve: {e}");
                std::process::exit(1);
            });
            let _ = t.join();
            1
        }
        // failed-exec PIPEFD: the id before and after an execve that fails with ENOENT.
        "failed-exec" => {
            let pipe = arg_fd(args, 0);
            let dev = Dev::open().expect("open");
            let before = mm_seqid_harness::enc(dev.mm_id());
            // SAFETY: A NULL-terminated argv of static C strings.
            let ret = unsafe {
                let argv = [c"x".as_ptr(), std::ptr::null()];
                libc::execv(c"/nonexistent/mm-seqid".as_ptr(), argv.as_ptr())
            };
            let errno = nix::errno::Errno::last() as i64;
            let r = Record {
                pid: i64::from(std::process::id()),
                mm_id: mm_seqid_harness::enc(dev.mm_id()),
                owner: before,
                value: i64::from(ret),
                extra: errno,
                ..Default::default()
            };
            if r.write_to(pipe) {
                0
            } else {
                1
            }
        }
        // owner-send SOCK: open, bind, send the fd and our id to the keeper, exit.
        "owner-send" => {
            let sock = arg_fd(args, 0);
            let dev = Dev::open().expect("open");
            if let Err(e) = raw_bind(dev.raw()) {
                eprintln!("owner-send: bind: {e}");
                return 1;
            }
            let id = raw_get_mm_id(dev.raw()).expect("GET_MM_ID");
            match send_fd(sock, dev.raw(), id) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("owner-send: sendmsg: {e}");
                    1
                }
            }
        }
        // fuzz-exec SEED PARENT_ID FD:KIND[:ID]...: an exec'd child of the fuzzer.
        "fuzz-exec" => fuzz::exec_child(args),
        // busy-thread-exec PIPEFD: bind, hammer the context from threads, exec from another.
        "busy-thread-exec" => tests::busy_thread_exec(arg_fd(args, 0)),
        _ => {
            eprintln!("unknown child mode {mode}");
            2
        }
    }
}
