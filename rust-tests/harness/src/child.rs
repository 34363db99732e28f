// SPDX-License-Identifier: GPL-2.0
//! The child modes: the test binary, re-executed by a test as
//! `mm-seqid-harness --mm-seqid-child MODE ARGS...` ([`SelfExec`]).
//!
//! A child mode runs in a fresh process: it may allocate and use threads. It writes its
//! [`Report`]s to the pipe named on its command line and exits 0, or exits non-zero with a
//! message on stderr.

use std::os::fd::{AsRawFd, BorrowedFd, IntoRawFd, RawFd};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use mm_seqid_harness::{
    enc, enc0, keep_fd, pidfd_getfd, raw_bind, raw_get_mm_id, raw_get_owner, raw_get_value,
    raw_set_value, recv_fd, send_fd, Dev, Probe, Report, SelfExec,
};

use nix::errno::Errno;

use crate::fuzz;

/// An fd number from the command line.
fn arg_fd(args: &[String], i: usize) -> RawFd {
    args[i].parse().expect("fd argument")
}

/// A pipe's write end from the command line.
fn arg_pipe(args: &[String], i: usize) -> BorrowedFd<'static> {
    let fd = arg_fd(args, i);
    // SAFETY: The test that started us passed this fd open across the exec and named it on
    // our command line; nothing in this process closes it before we exit.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Runs child mode `args[0]` with the rest of `args`; returns the exit status.
pub fn child_mode(args: &[String]) -> u8 {
    let mode = args[0].as_str();
    let args = &args[1..];
    let report = |fd: RawFd, pipe: BorrowedFd, set: Option<u64>| {
        if Report::Probe(Probe::take(fd, set, false)).write_to(pipe) {
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
            arg_pipe(args, 1),
            args.get(2).map(|v| v.parse().unwrap()),
        ),
        // recv-report SOCK PIPEFD [VALUE]: the same on an fd received with SCM_RIGHTS.
        "recv-report" => match recv_fd(arg_fd(args, 0)) {
            Ok((fd, _)) => report(
                fd.as_raw_fd(),
                arg_pipe(args, 1),
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
                arg_pipe(args, 2),
                args.get(3).map(|v| v.parse().unwrap()),
            ),
            Err(e) => {
                eprintln!("getfd-report: pidfd_getfd: {e}");
                1
            }
        },
        // bind-exec PIPEFD: open, bind, report, then exec into "report" on the same fd.
        "bind-exec" => {
            let pipe = arg_pipe(args, 0);
            let dev = match Dev::open() {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("bind-exec: {e}");
                    return 1;
                }
            };
            if !Report::BeforeExec(Probe::take(dev.raw(), None, true)).write_to(pipe) {
                return 1;
            }
            // The context stays open across the exec.
            let fd = dev.into_owned().into_raw_fd().to_string();
            let exec = SelfExec::new("report", &[fd, pipe.as_raw_fd().to_string()]);
            keep_fd(pipe);
            let e = exec.exec(&exec.argv_ptrs());
            eprintln!("bind-exec: execve: {e}");
            1
        }
        // thread-exec DEVFD PIPEFD: report, then exec from a second thread.
        "thread-exec" => {
            let (fd, pipe) = (arg_fd(args, 0), arg_pipe(args, 1));
            if !Report::BeforeExec(Probe::take(fd, None, false)).write_to(pipe) {
                return 1;
            }
            let pfd = pipe.as_raw_fd();
            let exec = SelfExec::new("report", &[fd.to_string(), pfd.to_string()]);
            let t = std::thread::spawn(move || {
                keep_fd(pipe);
                let e = exec.exec(&exec.argv_ptrs());
                eprintln!("thread-exec: execve: {e}");
                std::process::exit(1);
            });
            let _ = t.join();
            1
        }
        // failed-exec PIPEFD: the id before and after an execve that fails with ENOEXEC.
        "failed-exec" => {
            let pipe = arg_pipe(args, 0);
            let dev = Dev::open().expect("open");
            let before = enc(dev.mm_id());
            let (ret, errno) = failed_exec();
            let r = Report::FailedExec {
                pid: i64::from(std::process::id()),
                before,
                after: enc(dev.mm_id()),
                ret,
                errno,
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
        "busy-thread-exec" => busy_thread_exec(arg_pipe(args, 0)),
        _ => {
            eprintln!("unknown child mode {mode}");
            2
        }
    }
}

/// An execve of a file that no binary format takes (junk in a memfd): what it returned, and
/// its errno (0 if none). It fails after the new mm was allocated, which must not replace ours.
fn failed_exec() -> (i64, i64) {
    use nix::sys::memfd::{memfd_create, MFdFlags};
    // MFD_EXEC, which nix does not name: without it, vm.memfd_noexec=1 makes the memfd
    // non-executable and the exec fails with EACCES before any mm is allocated.
    let flags = MFdFlags::MFD_CLOEXEC | MFdFlags::from_bits_retain(libc::MFD_EXEC);
    let fd = memfd_create(c"mm-seqid-junk", flags)
        .expect("memfd_create (EACCES: vm.memfd_noexec=2 forbids executable memfds)");
    nix::unistd::write(&fd, b"mm-seqid: not an executable\n").expect("write to the memfd");
    let argv = [c"x".as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    // Not nix's fexecve(), whose Result drops the return value, which this test checks.
    // SAFETY: NULL-terminated argv and envp of static C strings, and an open fd.
    let ret = unsafe { libc::fexecve(fd.as_raw_fd(), argv.as_ptr(), envp.as_ptr()) };
    let errno = if ret == -1 { Errno::last() as i64 } else { 0 };
    (i64::from(ret), errno)
}

/// Child mode `busy-thread-exec PIPEFD`: binds a new context, reports
/// ([`Report::BeforeExec`]), lets four threads hammer it with the owner's ioctls (reporting
/// any failure, [`Report::HammerFailed`]), and once they have issued 2000 ioctls, reports
/// the count ([`Report::Hammered`]) and execs from a fifth thread into `report`, which
/// reports what the new image sees ([`Report::Probe`]).
fn busy_thread_exec(pipe: BorrowedFd<'static>) -> u8 {
    let d = match Dev::open() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("busy-thread-exec: {e}");
            return 1;
        }
    };
    // The context stays open across the exec.
    let fd = d.into_owned().into_raw_fd();
    if !Report::BeforeExec(Probe::take(fd, Some(77), true)).write_to(pipe) {
        return 1;
    }
    let me = raw_get_mm_id(fd).unwrap_or(0);
    let count = Arc::new(AtomicI64::new(0));
    for _ in 0..4 {
        let c = count.clone();
        std::thread::spawn(move || loop {
            let bad = match (raw_get_value(fd), raw_get_owner(fd), raw_set_value(fd, 77)) {
                (Ok(77), Ok(o), Ok(())) if o == me => None,
                (v, o, s) => Some(Report::HammerFailed {
                    value: enc(v),
                    owner: enc(o),
                    set: enc0(s),
                }),
            };
            if let Some(rec) = bad {
                rec.write_to(pipe);
            }
            c.fetch_add(3, Ordering::Relaxed);
        });
    }
    let pfd = pipe.as_raw_fd();
    let exec = SelfExec::new("report", &[fd.to_string(), pfd.to_string()]);
    let t = std::thread::spawn(move || {
        while count.load(Ordering::Relaxed) < 2000 {
            std::thread::yield_now();
        }
        let rec = Report::Hammered {
            ioctls: count.load(Ordering::Relaxed),
        };
        rec.write_to(pipe);
        keep_fd(pipe);
        let e = exec.exec(&exec.argv_ptrs());
        eprintln!("busy-thread-exec: execve: {e}");
        std::process::exit(1);
    });
    let _ = t.join();
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_exec_reports_what_execve_returned() {
        assert_eq!(failed_exec(), (-1, Errno::ENOEXEC as i64));
    }
}
