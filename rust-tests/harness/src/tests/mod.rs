// SPDX-License-Identifier: GPL-2.0
//! The tests, one per behaviour listed in Documentation/testing.md, a module per part of the
//! contract: ids, legacy and bound fds, hand-over, ABA, bad input, races. [`all`] lists them
//! in the order they run.

mod aba;
mod bad;
mod bound;
mod handover;
mod ids;
mod legacy;
mod races;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI64, Ordering};

use mm_seqid_harness::*;
use nix::errno::Errno;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

pub(crate) use aba::aba_iterations;
use aba::*;
use bad::*;
use bound::*;
use handover::*;
use ids::*;
use legacy::*;
use races::*;

type R = Result<(), String>;
type Test = fn() -> R;

/// Every test, by name. The prefix says which part of the contract it proves.
pub fn all() -> Vec<(&'static str, Test)> {
    vec![
        ("device_present", device_present as Test),
        ("ids_thread_shares_id", ids_thread_shares_id),
        ("ids_clone_vm_shares_id", ids_clone_vm_shares_id),
        ("ids_vfork_child_shares_id", ids_vfork_child_shares_id),
        ("ids_fork_child_new_larger", ids_fork_child_new_larger),
        ("ids_exec_same_pid_new_larger", ids_exec_same_pid_new_larger),
        (
            "ids_exec_from_thread_new_larger",
            ids_exec_from_thread_new_larger,
        ),
        ("ids_failed_exec_unchanged", ids_failed_exec_unchanged),
        ("ids_posix_spawn_new_larger", ids_posix_spawn_new_larger),
        ("ids_increase_across_forks", ids_increase_across_forks),
        ("legacy_thread", legacy_thread),
        ("legacy_fork_child", legacy_fork_child),
        ("legacy_exec", legacy_exec),
        ("legacy_scm_rights", legacy_scm_rights),
        ("legacy_pidfd_getfd", legacy_pidfd_getfd),
        ("legacy_unbind_is_noop", legacy_unbind_is_noop),
        ("bound_owner_and_threads", bound_owner_and_threads),
        (
            "bound_clone_vm_child_accepted",
            bound_clone_vm_child_accepted,
        ),
        ("bound_vfork_child_accepted", bound_vfork_child_accepted),
        ("bound_fork_child_refused", bound_fork_child_refused),
        ("bound_exec_refused", bound_exec_refused),
        ("bound_scm_rights_refused", bound_scm_rights_refused),
        ("bound_pidfd_getfd_refused", bound_pidfd_getfd_refused),
        ("bound_fdinfo_owner", bound_fdinfo_owner),
        ("handover_unbind_bind", handover_unbind_bind),
        ("aba_dead_owner_refused", aba_dead_owner_refused),
        ("bound_contexts_pin_no_mm", bound_contexts_pin_no_mm),
        ("bad_unknown_ioctl_enotty", bad_unknown_ioctl_enotty),
        ("bad_null_pointer_efault", bad_null_pointer_efault),
        ("bad_unmapped_pointer_efault", bad_unmapped_pointer_efault),
        ("bad_readonly_pointer", bad_readonly_pointer),
        ("bad_refused_before_fault", bad_refused_before_fault),
        ("race_bind_threads", race_bind_threads),
        ("race_bind_processes", race_bind_processes),
        ("race_bind_vs_fork", race_bind_vs_fork),
        (
            "race_bind_fork_child_never_owner",
            race_bind_fork_child_never_owner,
        ),
        ("race_exec_thread_while_ioctl", race_exec_thread_while_ioctl),
        ("race_unbind_bind_threads", race_unbind_bind_threads),
        (
            "race_bind_unbind_processes_exclusive",
            race_bind_unbind_processes_exclusive,
        ),
        ("race_close_vs_ioctl", race_close_vs_ioctl),
        ("fuzz_ioctls", fuzz_ioctls),
    ]
}

// Helpers.

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> R {
    if cond {
        Ok(())
    } else {
        Err(msg())
    }
}

fn ok<T>(what: &str, r: Result<T, Errno>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: expected success, got {e} ({})", e as i32))
}

fn want_errno<T: std::fmt::Debug>(what: &str, r: Result<T, Errno>, want: Errno) -> R {
    match r {
        Err(e) if e == want => Ok(()),
        Err(e) => Err(format!("{what}: expected {want}, got {e} ({})", e as i32)),
        Ok(v) => Err(format!("{what}: expected {want}, got success ({v:?})")),
    }
}

/// Compares an encoded child result with what it should be.
fn want_rec(what: &str, got: i64, want: i64) -> R {
    ensure(got == want, || {
        format!("{what}: expected {}, got {}", show(want), show(got))
    })
}

fn eperm() -> i64 {
    -(Errno::EPERM as i64)
}

fn dev() -> Result<Dev, String> {
    Dev::open()
}

/// Runs the test binary in a child mode; the pipe's write end is appended to `args` unless
/// `pipe_at` says where it goes. Returns the reports the child wrote.
pub fn spawn_report(
    mode: &str,
    args: Vec<String>,
    keep: &[BorrowedFd<'_>],
    pipe_at: Option<usize>,
) -> Result<Vec<Report>, String> {
    spawn_report_pid(mode, args, keep, pipe_at).map(|(_, reports)| reports)
}

/// [`spawn_report`], with the pid of the child.
pub fn spawn_report_pid(
    mode: &str,
    mut args: Vec<String>,
    keep: &[BorrowedFd<'_>],
    pipe_at: Option<usize>,
) -> Result<(nix::unistd::Pid, Vec<Report>), String> {
    let (r, w) = pipe();
    let wfd = w.as_raw_fd().to_string();
    match pipe_at {
        Some(i) => args.insert(i, wfd),
        None => args.push(wfd),
    }
    let mut keep = keep.to_vec();
    keep.push(w.as_fd());
    let pid = SelfExec::new(mode, &args).spawn(&keep);
    drop(keep);
    drop(w);
    let reports = Report::read_all(&r);
    let code = wait_exit(pid)?;
    ensure(code == 0, || format!("child mode {mode} exited {code}"))?;
    Ok((pid, reports))
}

/// The one probe of a child that sent only that.
fn one(reports: Vec<Report>, what: &str) -> Result<Probe, String> {
    match reports[..] {
        [Report::Probe(p)] => Ok(p),
        _ => Err(format!("{what}: expected 1 probe, got {reports:?}")),
    }
}

/// The two probes of a process that reported before and after its execve.
pub fn before_after(reports: Vec<Report>) -> Result<(Probe, Probe), String> {
    match reports[..] {
        [Report::BeforeExec(before), Report::Probe(after)] => Ok((before, after)),
        _ => Err(format!(
            "expected a probe before and one after the exec, got {reports:?}"
        )),
    }
}

/// A forked child that probes `fd` with raw calls, then tries UNBIND, and reports.
pub fn fork_probe(fd: RawFd, set: Option<u64>, try_bind: bool) -> Result<Probe, String> {
    // SAFETY: The child makes raw ioctls, writes its report and _exits: async-signal-safe.
    let report = unsafe {
        fork_report("fork child", || {
            let mut p = Probe::take(fd, set, try_bind);
            p.unbind = enc0(raw_unbind(fd));
            Report::Probe(p)
        })
    }?;
    one(vec![report], "fork child")
}

/// What a `CLONE_VM` child saw: `GET_MM_ID` and `GET_VALUE` on `fd`.
struct CloneProbe {
    fd: RawFd,
    mm_id: AtomicI64,
    value: AtomicI64,
}

extern "C" fn clone_child(arg: *mut libc::c_void) -> libc::c_int {
    // Runs in the parent's address space: raw calls only.
    // SAFETY: `arg` is the `CloneProbe` that clone_vm_probe() keeps alive until we exit.
    let p = unsafe { &*(arg as *const CloneProbe) };
    p.mm_id.store(enc(raw_get_mm_id(p.fd)), Ordering::SeqCst);
    p.value.store(enc(raw_get_value(p.fd)), Ordering::SeqCst);
    0
}

/// clone() with CLONE_VM and `extra` flags, the child running [`clone_child`] on `fd`.
/// Returns (GET_MM_ID, GET_VALUE) as the child saw them.
///
/// libc's clone(), not nix's: see the crate doc of mm_seqid_harness.
fn clone_vm_probe(fd: RawFd, extra: libc::c_int) -> Result<(i64, i64), String> {
    const STACK: usize = 256 * 1024;
    let mut stack = vec![0u8; STACK];
    let probe = CloneProbe {
        fd,
        mm_id: AtomicI64::new(i64::MIN),
        value: AtomicI64::new(i64::MIN),
    };
    // SAFETY: The stack and `probe` are ours until the child has exited (we wait below, before
    // either is dropped); the stack grows down from its 16-byte aligned end; the child touches
    // `probe` only through atomics.
    let pid = unsafe {
        let top = stack.as_mut_ptr().add(STACK);
        let top = top.sub(top as usize % 16);
        libc::clone(
            clone_child,
            top.cast(),
            libc::CLONE_VM | extra | libc::SIGCHLD,
            &probe as *const CloneProbe as *mut libc::c_void,
        )
    };
    let pid = ok("clone", Errno::result(pid))?;
    let code = wait_exit(nix::unistd::Pid::from_raw(pid))?;
    drop(stack);
    ensure(code == 0, || format!("clone child exited {code}"))?;
    Ok((
        probe.mm_id.load(Ordering::SeqCst),
        probe.value.load(Ordering::SeqCst),
    ))
}

fn socket_pair() -> Result<(OwnedFd, OwnedFd), String> {
    ok(
        "socketpair",
        socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        ),
    )
}

/// Sends `fd` to a child running `recv-report`, which sets `value`; returns its probe.
fn scm_rights_probe(fd: RawFd, value: u64) -> Result<Probe, String> {
    let (ours, theirs) = socket_pair()?;
    let (r, w) = pipe();
    let exec = SelfExec::new(
        "recv-report",
        &[
            theirs.as_raw_fd().to_string(),
            w.as_raw_fd().to_string(),
            value.to_string(),
        ],
    );
    let pid = exec.spawn(&[theirs.as_fd(), w.as_fd()]);
    drop(w);
    drop(theirs);
    ok("sendmsg SCM_RIGHTS", send_fd(ours.as_raw_fd(), fd, 0))?;
    let reports = Report::read_all(&r);
    let code = wait_exit(pid)?;
    ensure(code == 0, || format!("recv-report exited {code}"))?;
    one(reports, "SCM_RIGHTS receiver")
}

/// A child takes `fd` from us with pidfd_getfd() and sets `value`; returns its probe.
fn pidfd_getfd_probe(fd: RawFd, value: u64) -> Result<Probe, String> {
    let reports = spawn_report(
        "getfd-report",
        vec![
            std::process::id().to_string(),
            fd.to_string(),
            value.to_string(),
        ],
        &[],
        Some(2),
    )?;
    one(reports, "pidfd_getfd thief")
}

/// Makes room for `n` open files.
fn raise_nofile(n: u64) -> R {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (cur, max) = ok("getrlimit", getrlimit(Resource::RLIMIT_NOFILE))?;
    if cur >= n {
        return Ok(());
    }
    ok(
        "setrlimit",
        setrlimit(Resource::RLIMIT_NOFILE, n, max.max(n)),
    )
}
