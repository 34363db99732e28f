// SPDX-License-Identifier: GPL-2.0
//! The tests, one per behaviour listed in Documentation/testing.md (ids, legacy and bound fds, hand-over, ABA, bad input, races).

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Instant;

use mm_seqid_harness::*;
use nix::errno::Errno;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

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
/// `pipe_at` says where it goes. Returns the records the child wrote.
pub fn spawn_report(
    mode: &str,
    mut args: Vec<String>,
    keep: &[RawFd],
    pipe_at: Option<usize>,
) -> Result<Vec<Record>, String> {
    let (r, w) = pipe();
    let wfd = w.as_raw_fd().to_string();
    match pipe_at {
        Some(i) => args.insert(i, wfd),
        None => args.push(wfd),
    }
    let mut keep = keep.to_vec();
    keep.push(w.as_raw_fd());
    let pid = SelfExec::new(mode, &args).spawn(&keep);
    drop(w);
    let recs = Record::read_all(&r);
    let code = wait_exit(pid)?;
    ensure(code == 0, || format!("child mode {mode} exited {code}"))?;
    Ok(recs)
}

fn one(recs: Vec<Record>, what: &str) -> Result<Record, String> {
    match recs[..] {
        [r] => Ok(r),
        _ => Err(format!("{what}: expected 1 record, got {}", recs.len())),
    }
}

/// A forked child that probes `fd` with raw calls and reports over a pipe.
pub fn fork_probe(fd: RawFd, set: Option<u64>, try_bind: bool) -> Result<Record, String> {
    let (r, w) = pipe();
    let wfd = w.as_raw_fd();
    // Child: raw ioctls, write(), _exit: async-signal-safe.
    let pid = fork_child(|| {
        let mut rec = Record::probe(fd, set, try_bind);
        rec.extra = enc0(raw_unbind(fd));
        if rec.write_to(wfd) {
            0
        } else {
            1
        }
    });
    drop(w);
    let recs = Record::read_all(&r);
    let code = wait_exit(pid)?;
    ensure(code == 0, || format!("fork child exited {code}"))?;
    one(recs, "fork child")
}

static CLONE_RESULT: AtomicI64 = AtomicI64::new(0);

extern "C" fn clone_child(arg: *mut libc::c_void) -> libc::c_int {
    // Runs in the parent's address space: raw calls only.
    let fd = arg as usize as RawFd;
    let mm_id = enc(raw_get_mm_id(fd));
    let value = enc(raw_get_value(fd));
    CLONE_RESULT.store(mm_id, Ordering::SeqCst);
    CLONE_RESULT_VALUE.store(value, Ordering::SeqCst);
    0
}

static CLONE_RESULT_VALUE: AtomicI64 = AtomicI64::new(0);

/// clone() with CLONE_VM and `extra` flags, the child running [`clone_child`] on `fd`.
/// Returns (GET_MM_ID, GET_VALUE) as the child saw them.
fn clone_vm_probe(fd: RawFd, extra: libc::c_int) -> Result<(i64, i64), String> {
    const STACK: usize = 256 * 1024;
    let mut stack = vec![0u8; STACK];
    CLONE_RESULT.store(i64::MIN, Ordering::SeqCst);
    CLONE_RESULT_VALUE.store(i64::MIN, Ordering::SeqCst);
    // SAFETY: The stack is ours until the child has exited (we wait below); the stack grows
    // down from its 16-byte aligned end.
    let pid = unsafe {
        let top = stack.as_mut_ptr().add(STACK);
        let top = top.sub(top as usize % 16);
        libc::clone(
            clone_child,
            top.cast(),
            libc::CLONE_VM | extra | libc::SIGCHLD,
            fd as usize as *mut libc::c_void,
        )
    };
    let pid = ok("clone", Errno::result(pid))?;
    let code = wait_exit(nix::unistd::Pid::from_raw(pid))?;
    drop(stack);
    ensure(code == 0, || format!("clone child exited {code}"))?;
    Ok((
        CLONE_RESULT.load(Ordering::SeqCst),
        CLONE_RESULT_VALUE.load(Ordering::SeqCst),
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

/// Sends `fd` to a child running `recv-report`, which sets `value`; returns its record.
fn scm_rights_probe(fd: RawFd, value: u64) -> Result<Record, String> {
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
    let pid = exec.spawn(&[theirs.as_raw_fd(), w.as_raw_fd()]);
    drop(w);
    drop(theirs);
    ok("sendmsg SCM_RIGHTS", send_fd(ours.as_raw_fd(), fd, 0))?;
    let recs = Record::read_all(&r);
    let code = wait_exit(pid)?;
    ensure(code == 0, || format!("recv-report exited {code}"))?;
    one(recs, "SCM_RIGHTS receiver")
}

/// A child takes `fd` from us with pidfd_getfd() and sets `value`; returns its record.
fn pidfd_getfd_probe(fd: RawFd, value: u64) -> Result<Record, String> {
    let recs = spawn_report(
        "getfd-report",
        vec![
            std::process::id().to_string(),
            fd.to_string(),
            value.to_string(),
        ],
        &[],
        Some(2),
    )?;
    one(recs, "pidfd_getfd thief")
}

// Tests.

fn device_present() -> R {
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::metadata(DEVICE)
        .map_err(|e| format!("{DEVICE}: {e}: the kernel needs {DEVICE_CONFIG}=y"))?;
    ensure(meta.file_type().is_char_device(), || {
        format!("{DEVICE} is not a character device")
    })?;
    let d = dev()?;
    let id = ok("GET_MM_ID", d.mm_id())?;
    ensure(id > 1, || {
        format!("a user process has id {id}, want > 1 (MM_SEQID_STATIC)")
    })
}

fn ids_thread_shares_id() -> R {
    let d = dev()?;
    let me = ok("GET_MM_ID", d.mm_id())?;
    let fd = d.raw();
    let theirs = std::thread::spawn(move || raw_get_mm_id(fd))
        .join()
        .unwrap();
    let theirs = ok("GET_MM_ID in a thread", theirs)?;
    ensure(theirs == me, || {
        format!("thread: expected id {me}, got {theirs}")
    })
}

/// A child sharing our mm (clone with CLONE_VM and `extra`) sees our id.
fn clone_vm_child_shares_id(extra: libc::c_int, what: &str) -> R {
    let d = dev()?;
    let me = ok("GET_MM_ID", d.mm_id())?;
    let (id, _) = clone_vm_probe(d.raw(), extra)?;
    want_rec(what, id, me as i64)
}

fn ids_clone_vm_shares_id() -> R {
    clone_vm_child_shares_id(0, "clone(CLONE_VM) child id")
}

fn ids_vfork_child_shares_id() -> R {
    clone_vm_child_shares_id(libc::CLONE_VFORK, "vfork child id")
}

fn ids_fork_child_new_larger() -> R {
    let d = dev()?;
    let me = ok("GET_MM_ID", d.mm_id())? as i64;
    let rec = fork_probe(d.raw(), None, false)?;
    ensure(rec.mm_id > me, || {
        format!("fork child: expected an id > {me}, got {}", show(rec.mm_id))
    })?;
    let again = ok("GET_MM_ID", d.mm_id())? as i64;
    want_rec("parent id after fork", again, me)
}

/// The two records of a process that reported before and after its execve.
fn before_after(recs: Vec<Record>) -> Result<(Record, Record), String> {
    match recs[..] {
        [before, after] => Ok((before, after)),
        _ => Err(format!("expected 2 records, got {}", recs.len())),
    }
}

/// After execve: the same pid, a new and larger id.
fn exec_same_pid_new_larger(recs: Vec<Record>, what: &str) -> R {
    let (before, after) = before_after(recs)?;
    want_rec(&format!("pid after {what}"), after.pid, before.pid)?;
    ensure(before.mm_id > 0 && after.mm_id > before.mm_id, || {
        format!(
            "{what}: expected an id > {}, got {}",
            show(before.mm_id),
            show(after.mm_id)
        )
    })
}

fn ids_exec_same_pid_new_larger() -> R {
    let recs = spawn_report("bind-exec", vec![], &[], None)?;
    exec_same_pid_new_larger(recs, "exec")
}

fn ids_exec_from_thread_new_larger() -> R {
    let d = dev()?;
    let recs = spawn_report("thread-exec", vec![d.raw().to_string()], &[d.raw()], None)?;
    exec_same_pid_new_larger(recs, "exec from a non-main thread")
}

fn ids_failed_exec_unchanged() -> R {
    let rec = one(
        spawn_report("failed-exec", vec![], &[], None)?,
        "failed-exec",
    )?;
    want_rec("execve return", rec.value, -1)?;
    want_rec("execve errno", rec.extra, Errno::ENOENT as i64)?;
    ensure(rec.owner > 0, || format!("id before: {}", show(rec.owner)))?;
    want_rec("id after a failed execve", rec.mm_id, rec.owner)
}

fn ids_posix_spawn_new_larger() -> R {
    extern "C" {
        static environ: *const *const libc::c_char;
    }
    let d = dev()?;
    let me = ok("GET_MM_ID", d.mm_id())? as i64;
    let (r, w) = pipe();
    let exec = SelfExec::new("report", &[d.raw().to_string(), w.as_raw_fd().to_string()]);
    let argv = exec.argv_ptrs();
    keep_fd(w.as_raw_fd());
    let mut pid = 0;
    // SAFETY: NULL-terminated argv and environ; no file actions or attributes.
    let ret = unsafe {
        libc::posix_spawn(
            &mut pid,
            c"/proc/self/exe".as_ptr(),
            std::ptr::null(),
            std::ptr::null(),
            argv.as_ptr() as *const *mut libc::c_char,
            environ as *const *mut libc::c_char,
        )
    };
    drop(w);
    ensure(ret == 0, || {
        format!("posix_spawn: {}", Errno::from_raw(ret))
    })?;
    let recs = Record::read_all(&r);
    let code = wait_exit(nix::unistd::Pid::from_raw(pid))?;
    ensure(code == 0, || format!("posix_spawn child exited {code}"))?;
    let rec = one(recs, "posix_spawn child")?;
    ensure(rec.mm_id > me, || {
        format!(
            "posix_spawn child: expected an id > {me}, got {}",
            show(rec.mm_id)
        )
    })
}

fn ids_increase_across_forks() -> R {
    let d = dev()?;
    let mut prev = ok("GET_MM_ID", d.mm_id())? as i64;
    for i in 0..200 {
        let rec = fork_probe(d.raw(), None, false)?;
        ensure(rec.mm_id > prev, || {
            format!("fork {i}: expected an id > {prev}, got {}", show(rec.mm_id))
        })?;
        prev = rec.mm_id;
    }
    Ok(())
}

fn legacy_thread() -> R {
    let d = dev()?;
    let fd = d.raw();
    let r = std::thread::spawn(move || raw_set_value(fd, 3))
        .join()
        .unwrap();
    ok("SET_VALUE in a thread", r)?;
    want_rec("GET_VALUE", enc(d.value()), 3)
}

fn legacy_fork_child() -> R {
    let d = dev()?;
    let rec = fork_probe(d.raw(), Some(11), false)?;
    want_rec("fork child SET_VALUE on an unbound fd", rec.set, 0)?;
    want_rec("fork child GET_OWNER", rec.owner, 0)?;
    want_rec("GET_VALUE after the child set it", enc(d.value()), 11)
}

fn legacy_exec() -> R {
    let d = dev()?;
    let recs = spawn_report("report", vec![d.raw().to_string()], &[d.raw()], None)?;
    let rec = one(recs, "exec'd child")?;
    want_rec("exec'd child GET_VALUE on an unbound fd", rec.value, 0)?;
    want_rec("exec'd child GET_OWNER", rec.owner, 0)?;
    // Now let it set a value: the same mode with a value argument.
    let (r, w) = pipe();
    let pid = SelfExec::new(
        "report",
        &[d.raw().to_string(), w.as_raw_fd().to_string(), "12".into()],
    )
    .spawn(&[d.raw(), w.as_raw_fd()]);
    drop(w);
    let rec = one(Record::read_all(&r), "exec'd child")?;
    ensure(wait_exit(pid)? == 0, || "exec'd child failed".into())?;
    want_rec("exec'd child SET_VALUE", rec.set, 0)?;
    want_rec(
        "GET_VALUE after the exec'd child set it",
        enc(d.value()),
        12,
    )
}

fn legacy_scm_rights() -> R {
    let d = dev()?;
    let rec = scm_rights_probe(d.raw(), 13)?;
    want_rec("receiver SET_VALUE on an unbound fd", rec.set, 0)?;
    want_rec("receiver GET_OWNER", rec.owner, 0)?;
    want_rec("GET_VALUE after the receiver set it", enc(d.value()), 13)
}

fn legacy_pidfd_getfd() -> R {
    let d = dev()?;
    let rec = pidfd_getfd_probe(d.raw(), 14)?;
    want_rec("pidfd_getfd SET_VALUE on an unbound fd", rec.set, 0)?;
    want_rec("GET_VALUE after pidfd_getfd set it", enc(d.value()), 14)
}

fn legacy_unbind_is_noop() -> R {
    let d = dev()?;
    ok("UNBIND of an unbound fd", d.unbind())?;
    want_rec("GET_OWNER", enc(d.owner()), 0)
}

fn bound_owner_and_threads() -> R {
    let d = dev()?;
    let me = ok("GET_MM_ID", d.mm_id())?;
    ok("BIND", d.bind())?;
    ok("BIND again by the owner", d.bind())?;
    want_rec("GET_OWNER", enc(d.owner()), me as i64)?;
    ok("SET_VALUE by the owner", d.set_value(4))?;
    let fd = d.raw();
    let (set, get, owner) = std::thread::spawn(move || {
        (
            enc0(raw_set_value(fd, 5)),
            enc(raw_get_value(fd)),
            enc(raw_get_owner(fd)),
        )
    })
    .join()
    .unwrap();
    want_rec("SET_VALUE in the owner's thread", set, 0)?;
    want_rec("GET_VALUE in the owner's thread", get, 5)?;
    want_rec("GET_OWNER in the owner's thread", owner, me as i64)?;
    want_rec("GET_VALUE", enc(d.value()), 5)
}

/// A child sharing our mm (clone with CLONE_VM and `extra`) may use our bound context.
fn clone_vm_child_accepted(extra: libc::c_int, value: u64, what: &str) -> R {
    let d = dev()?;
    ok("BIND", d.bind())?;
    ok("SET_VALUE", d.set_value(value))?;
    let (_, got) = clone_vm_probe(d.raw(), extra)?;
    want_rec(what, got, value as i64)
}

fn bound_clone_vm_child_accepted() -> R {
    clone_vm_child_accepted(0, 6, "clone(CLONE_VM) child GET_VALUE")
}

fn bound_vfork_child_accepted() -> R {
    clone_vm_child_accepted(libc::CLONE_VFORK, 7, "vfork child GET_VALUE")
}

fn bound_fork_child_refused() -> R {
    let d = dev()?;
    let me = ok("GET_MM_ID", d.mm_id())? as i64;
    ok("BIND", d.bind())?;
    ok("SET_VALUE", d.set_value(21))?;
    let rec = fork_probe(d.raw(), Some(99), true)?;
    want_rec("fork child GET_OWNER", rec.owner, me)?;
    want_rec("fork child GET_VALUE", rec.value, eperm())?;
    want_rec("fork child SET_VALUE", rec.set, eperm())?;
    want_rec("fork child BIND", rec.bind, eperm())?;
    want_rec("fork child UNBIND", rec.extra, eperm())?;
    want_rec("GET_OWNER after the refusals", enc(d.owner()), me)?;
    want_rec("GET_VALUE after the refusals", enc(d.value()), 21)
}

fn bound_exec_refused() -> R {
    let (before, after) = before_after(spawn_report("bind-exec", vec![], &[], None)?)?;
    want_rec("BIND before exec", before.bind, 0)?;
    want_rec("GET_VALUE before exec", before.value, 0)?;
    want_rec("pid after exec", after.pid, before.pid)?;
    want_rec("GET_OWNER after exec", after.owner, before.mm_id)?;
    want_rec("GET_VALUE after exec, same pid", after.value, eperm())
}

/// Another process that got our bound fd (by `probe`) is refused and changes nothing.
fn other_process_refused(probe: fn(RawFd, u64) -> Result<Record, String>, who: &str) -> R {
    let d = dev()?;
    let me = ok("GET_MM_ID", d.mm_id())? as i64;
    ok("BIND", d.bind())?;
    ok("SET_VALUE", d.set_value(31))?;
    let rec = probe(d.raw(), 32)?;
    want_rec(&format!("{who} GET_OWNER"), rec.owner, me)?;
    want_rec(&format!("{who} GET_VALUE"), rec.value, eperm())?;
    want_rec(&format!("{who} SET_VALUE"), rec.set, eperm())?;
    want_rec("GET_VALUE after the refusal", enc(d.value()), 31)
}

fn bound_scm_rights_refused() -> R {
    other_process_refused(scm_rights_probe, "SCM_RIGHTS receiver")
}

fn bound_pidfd_getfd_refused() -> R {
    other_process_refused(pidfd_getfd_probe, "pidfd_getfd thief")
}

fn fdinfo_owner(fd: RawFd) -> Result<String, String> {
    let path = format!("/proc/self/fdinfo/{fd}");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("mm_seqid_owner:"))
        .map(|v| v.trim().to_string())
        .ok_or_else(|| format!("{path} has no mm_seqid_owner: line:\n{text}"))
}

fn bound_fdinfo_owner() -> R {
    let d = dev()?;
    let me = ok("GET_MM_ID", d.mm_id())?;
    let v = fdinfo_owner(d.raw())?;
    ensure(v == "0", || {
        format!("fdinfo of an unbound fd: expected 0, got {v}")
    })?;
    ok("BIND", d.bind())?;
    let v = fdinfo_owner(d.raw())?;
    ensure(v == me.to_string(), || {
        format!("fdinfo: expected {me}, got {v}")
    })
}

fn handover_unbind_bind() -> R {
    let d = dev()?;
    ok("BIND", d.bind())?;
    ok("SET_VALUE", d.set_value(51))?;
    ok("UNBIND by the owner", d.unbind())?;
    want_rec("GET_OWNER after UNBIND", enc(d.owner()), 0)?;

    // The new owner binds, reports, and stays alive until we are done checking.
    let (r, w) = pipe();
    let (hold_r, hold_w) = pipe();
    let (fd, wfd, hfd, hold_wfd) = (
        d.raw(),
        w.as_raw_fd(),
        hold_r.as_raw_fd(),
        hold_w.as_raw_fd(),
    );
    // Child: raw calls only.
    let pid = fork_child(|| {
        // Our copy of the write end would keep the read below from ever seeing EOF.
        // SAFETY: Closes the child's copy of an fd the parent keeps.
        unsafe { libc::close(hold_wfd) };
        let mut rec = Record::probe(fd, Some(52), true);
        rec.owner = enc(raw_get_owner(fd));
        if !rec.write_to(wfd) {
            return 1;
        }
        let mut b = 0u8;
        // SAFETY: Reads one byte into `b`; returns at EOF when the parent closes its end.
        unsafe { libc::read(hfd, (&mut b as *mut u8).cast(), 1) };
        0
    });
    drop(w);
    drop(hold_r);
    let mut one_rec = Record::default();
    let len = size_of::<Record>();
    // SAFETY: Plain data of `len` bytes.
    let n = unsafe { libc::read(r.as_raw_fd(), (&mut one_rec as *mut Record).cast(), len) };
    let checks = (|| {
        ensure(n == len as isize, || "new owner sent no record".into())?;
        want_rec("BIND by the new owner", one_rec.bind, 0)?;
        want_rec("GET_OWNER is the new owner", one_rec.owner, one_rec.mm_id)?;
        want_rec("old owner GET_VALUE", enc(d.value()), eperm())?;
        want_rec("old owner BIND", enc0(d.bind()), eperm())?;
        want_rec("old owner UNBIND", enc0(d.unbind()), eperm())
    })();
    drop(hold_w);
    let code = wait_exit(pid)?;
    checks?;
    ensure(code == 0, || format!("new owner exited {code}"))
}

fn aba_iterations() -> usize {
    std::env::var("MM_SEQID_ABA_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

fn aba_dead_owner_refused() -> R {
    // The owner binds, hands the fd to us (the keeper) and exits.
    let (ours, theirs) = socket_pair()?;
    let pid =
        SelfExec::new("owner-send", &[theirs.as_raw_fd().to_string()]).spawn(&[theirs.as_raw_fd()]);
    drop(theirs);
    let received = recv_fd(ours.as_raw_fd());
    let code = wait_exit(pid)?;
    ensure(code == 0, || format!("owner exited {code}"))?;
    let (fd, owner) = received?;
    let d = Dev::from_owned(fd);
    want_rec(
        "GET_OWNER on the dead owner's fd",
        enc(d.owner()),
        owner as i64,
    )?;
    want_rec("keeper GET_VALUE", enc(d.value()), eperm())?;

    // New processes get new mm_structs, many of them where the owner's was freed.
    let n = aba_iterations();
    let fd = d.raw();
    let (mut refused, mut accepted, mut other, mut same_id) = (0, 0, 0, 0);
    let t0 = Instant::now();
    for _ in 0..n {
        // Child: raw ioctls and _exit only.
        let pid = fork_child(|| match raw_get_value(fd) {
            Err(Errno::EPERM) => match raw_get_mm_id(fd) {
                Ok(id) if id == owner => 3,
                Ok(_) => 0,
                Err(_) => 2,
            },
            Ok(_) => 1,
            Err(_) => 2,
        });
        match wait_exit(pid)? {
            0 => refused += 1,
            1 => accepted += 1,
            3 => same_id += 1,
            _ => other += 1,
        }
    }
    eprintln!(
        "aba: {n} new processes on a dead owner's fd: {refused} refused, {accepted} accepted, \
         {same_id} with the owner's id, {other} other errors, in {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    ensure(refused == n, || {
        format!(
            "expected all {n} refused with EPERM: {accepted} accepted, {same_id} had the dead \
             owner's id, {other} other errors"
        )
    })
}

/// Makes room for `n` open files.
fn raise_nofile(n: u64) -> R {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid out-pointer.
    let ret = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    ok("getrlimit", Errno::result(ret))?;
    if lim.rlim_cur >= n {
        return Ok(());
    }
    lim.rlim_cur = n;
    lim.rlim_max = lim.rlim_max.max(n);
    // SAFETY: `lim` is a valid rlimit.
    let ret = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    ok("setrlimit", Errno::result(ret)).map(drop)
}

/// `mm_struct` objects in use, from /proc/slabinfo.
/// The `mm_struct` objects in use. SLUB's `/proc/slabinfo` counts every object of a CPU's slab
/// as in use, so the cache is shrunk first, which flushes those slabs and makes the count exact
/// but for a lazy-TLB reference per CPU.
fn mm_struct_objects() -> Result<i64, String> {
    std::fs::write("/sys/kernel/slab/mm_struct/shrink", "1").map_err(|e| {
        format!("/sys/kernel/slab/mm_struct/shrink: {e} (CONFIG_SLUB, CONFIG_SYSFS)")
    })?;
    let text = std::fs::read_to_string("/proc/slabinfo")
        .map_err(|e| format!("/proc/slabinfo: {e} (CONFIG_SLUB_DEBUG)"))?;
    text.lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some("mm_struct")).then(|| f.next()?.parse().ok())?
        })
        .ok_or_else(|| "/proc/slabinfo has no mm_struct line".into())
}

fn bound_contexts_pin_no_mm() -> R {
    // 1000 contexts, each bound by a process that then exits. Were the owner's mm pinned
    // (mmgrab, as a pointer compare needs), 1000 mm_structs would stay allocated.
    const N: usize = 1000;
    raise_nofile(N as u64 + 64)?;
    let devs: Vec<Dev> = (0..N).map(|_| dev()).collect::<Result<_, _>>()?;
    let before = mm_struct_objects()?;
    for d in &devs {
        let fd = d.raw();
        // Child: one raw ioctl, _exit.
        let pid = fork_child(|| i32::from(raw_bind(fd).is_err()));
        ensure(wait_exit(pid)? == 0, || "a child could not BIND".into())?;
    }
    for (i, d) in devs.iter().enumerate() {
        let owner = ok("GET_OWNER", d.owner())?;
        ensure(owner != 0, || format!("context {i} is not bound"))?;
        want_rec(
            "GET_VALUE on a dead owner's context",
            enc(d.value()),
            eperm(),
        )?;
    }
    let after = mm_struct_objects()?;
    eprintln!(
        "pinning: mm_struct objects in use {before} before, {after} with {N} contexts bound \
         to exited processes"
    );
    // Slack for slab accounting (objects on per-cpu slabs count as in use) and lazy-TLB
    // references; pinning would show as +N.
    ensure(after - before < (N / 10) as i64, || {
        format!(
            "{N} bound contexts of exited processes keep {} mm_structs",
            after - before
        )
    })
}

fn bad_unknown_ioctl_enotty() -> R {
    let d = dev()?;
    let size = size_of::<u64>();
    let cmds = [
        nix::request_code_none!(b'|', 0x9f) as u32,
        nix::request_code_none!(b'|', 0x8f) as u32,
        nix::request_code_none!(b'x', 0x92) as u32,
        // The right number with the wrong direction or size.
        nix::request_code_write!(b'|', 0x90, size) as u32,
        nix::request_code_read!(b'|', 0x94, size) as u32,
        nix::request_code_read!(b'|', 0x95, 4) as u32,
        nix::request_code_read!(b'|', 0x92, size) as u32,
        0,
    ];
    let mut v = 0u64;
    for bound in [false, true] {
        if bound {
            ok("BIND", d.bind())?;
        }
        for &cmd in &cmds {
            want_errno(
                &format!("ioctl {cmd:#x} (bound: {bound})"),
                raw_ioctl(d.raw(), cmd, &mut v as *mut u64 as usize),
                Errno::ENOTTY,
            )?;
        }
    }
    Ok(())
}

/// The ioctls that write a u64 to user memory.
const WRITING_IOCTLS: [(&str, u32); 3] = [
    ("GET_MM_ID", ioctl::GET_MM_ID),
    ("GET_OWNER", ioctl::GET_OWNER),
    ("GET_VALUE", ioctl::GET_VALUE),
];

/// Each of `cmds` with `addr` as its argument fails with EFAULT.
fn efault(d: &Dev, cmds: &[(&str, u32)], addr: usize, what: &str) -> R {
    for &(name, cmd) in cmds {
        want_errno(
            &format!("{name} with {what} pointer"),
            raw_ioctl(d.raw(), cmd, addr),
            Errno::EFAULT,
        )?;
    }
    Ok(())
}

/// Every pointer-taking ioctl with `addr` fails with EFAULT.
fn pointer_cases(d: &Dev, addr: usize, what: &str) -> R {
    efault(d, &WRITING_IOCTLS, addr, what)?;
    efault(d, &[("SET_VALUE", ioctl::SET_VALUE)], addr, what)
}

fn bad_null_pointer_efault() -> R {
    let d = dev()?;
    pointer_cases(&d, 0, "a NULL")?;
    ok("BIND", d.bind())?;
    pointer_cases(&d, 0, "a NULL (bound)")
}

fn map_page(prot: libc::c_int) -> Result<usize, String> {
    // SAFETY: An anonymous private mapping; we own it.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    ensure(p != libc::MAP_FAILED, || format!("mmap: {}", Errno::last()))?;
    Ok(p as usize)
}

fn bad_unmapped_pointer_efault() -> R {
    let d = dev()?;
    let p = map_page(libc::PROT_READ | libc::PROT_WRITE)?;
    // SAFETY: Unmaps the page mapped above; nothing refers to it.
    unsafe { libc::munmap(p as *mut libc::c_void, 4096) };
    pointer_cases(&d, p, "an unmapped")?;
    want_errno(
        "SET_VALUE with a kernel pointer",
        raw_ioctl(d.raw(), ioctl::SET_VALUE, 0xffff_ffff_8100_0000),
        Errno::EFAULT,
    )
}

fn bad_readonly_pointer() -> R {
    let d = dev()?;
    let p = map_page(libc::PROT_READ)?;
    let r = (|| {
        efault(&d, &WRITING_IOCTLS, p, "a read-only")?;
        ok(
            "SET_VALUE from a read-only page",
            raw_ioctl(d.raw(), ioctl::SET_VALUE, p),
        )?;
        want_rec("GET_VALUE", enc(d.value()), 0)
    })();
    // SAFETY: Unmaps the page mapped above.
    unsafe { libc::munmap(p as *mut libc::c_void, 4096) };
    r
}

fn bad_refused_before_fault() -> R {
    let d = dev()?;
    ok("BIND", d.bind())?;
    ok("SET_VALUE", d.set_value(61))?;
    let (r, w) = pipe();
    let (fd, wfd) = (d.raw(), w.as_raw_fd());
    // Child: raw calls only.
    let pid = fork_child(|| {
        let rec = Record {
            set: enc(raw_ioctl(fd, ioctl::SET_VALUE, 0).map(|v| v as u64)),
            value: enc(raw_ioctl(fd, ioctl::GET_VALUE, 0).map(|v| v as u64)),
            owner: enc(raw_ioctl(fd, ioctl::GET_OWNER, 0).map(|v| v as u64)),
            ..Default::default()
        };
        if rec.write_to(wfd) {
            0
        } else {
            1
        }
    });
    drop(w);
    let rec = one(Record::read_all(&r), "fork child")?;
    ensure(wait_exit(pid)? == 0, || "fork child failed".into())?;
    // SET_VALUE reads its argument before taking the context's lock, so a bad pointer is
    // EFAULT from anyone; GET_VALUE writes only after the check, so a refused caller gets
    // EPERM. Neither changes the value.
    want_rec(
        "refused SET_VALUE(NULL) reads before the check",
        rec.set,
        -(Errno::EFAULT as i64),
    )?;
    want_rec(
        "refused GET_VALUE(NULL) is refused first",
        rec.value,
        eperm(),
    )?;
    want_rec(
        "GET_OWNER(NULL) is not refused",
        rec.owner,
        -(Errno::EFAULT as i64),
    )?;
    want_rec("GET_VALUE", enc(d.value()), 61)
}

fn race_bind_threads() -> R {
    let d = dev()?;
    let me = ok("GET_MM_ID", d.mm_id())?;
    let fd = d.raw();
    let barrier = Arc::new(Barrier::new(16));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let b = barrier.clone();
            std::thread::spawn(move || {
                b.wait();
                (0..100)
                    .map(|_| raw_bind(fd))
                    .find(|r| r.is_err())
                    .unwrap_or(Ok(()))
            })
        })
        .collect();
    for t in threads {
        ok(
            "concurrent BIND from the owner's threads",
            t.join().unwrap(),
        )?;
    }
    want_rec("GET_OWNER", enc(d.owner()), me as i64)
}

fn race_bind_processes() -> R {
    const N: usize = 16;
    let d = dev()?;
    let (go_r, go_w) = pipe();
    let (fd, gfd, go_wfd) = (d.raw(), go_r.as_raw_fd(), go_w.as_raw_fd());
    let pids: Vec<_> = (0..N)
        .map(|_| {
            // Child: wait for the start, BIND; raw calls only.
            fork_child(|| {
                // Without this, our copy of the write end would hold off EOF.
                // SAFETY: Closes the child's copy of an fd the parent keeps.
                unsafe { libc::close(go_wfd) };
                let mut b = 0u8;
                // SAFETY: Reads one byte into `b`; returns at EOF, the start signal.
                unsafe { libc::read(gfd, (&mut b as *mut u8).cast(), 1) };
                match raw_bind(fd) {
                    Ok(()) => 0,
                    Err(Errno::EPERM) => 1,
                    Err(_) => 2,
                }
            })
        })
        .collect();
    drop(go_r);
    drop(go_w);
    let mut codes = Vec::new();
    for pid in pids {
        codes.push(wait_exit(pid)?);
    }
    let won = codes.iter().filter(|&&c| c == 0).count();
    let lost = codes.iter().filter(|&&c| c == 1).count();
    ensure(won == 1 && lost == N - 1, || {
        format!(
            "{N} processes raced to BIND: expected 1 winner and {} EPERM, got exit codes {codes:?}",
            N - 1
        )
    })?;
    let owner = ok("GET_OWNER", d.owner())?;
    ensure(owner != 0, || "GET_OWNER: 0 after a BIND won".into())?;
    want_rec("GET_VALUE by the parent", enc(d.value()), eperm())
}

fn race_bind_vs_fork() -> R {
    const FORKS: usize = 300;
    let d = dev()?;
    let fd = d.raw();
    let bound = Arc::new(AtomicBool::new(false));
    let b2 = bound.clone();
    let binder = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let r = raw_bind(fd);
        b2.store(true, Ordering::SeqCst);
        r
    });
    let (mut before, mut after_ok, mut after_eperm, mut other) = (0, 0, 0, 0);
    for _ in 0..FORKS {
        let was_bound = bound.load(Ordering::SeqCst);
        // Child of a process with a second thread: raw ioctls and _exit only.
        let pid = fork_child(|| match raw_get_value(fd) {
            Ok(_) => 0,
            Err(Errno::EPERM) => 1,
            Err(_) => 2,
        });
        match (was_bound, wait_exit(pid)?) {
            (_, 2) => other += 1,
            (false, _) => before += 1,
            (true, 0) => after_ok += 1,
            (true, _) => after_eperm += 1,
        }
    }
    ok("BIND racing fork", binder.join().unwrap())?;
    ensure(other == 0 && after_ok == 0, || {
        format!(
            "{FORKS} forks around a BIND: {other} children got an errno other than EPERM, \
             {after_ok} forked after BIND returned were accepted"
        )
    })?;
    eprintln!(
        "race_bind_vs_fork: {before} forks before BIND returned, {after_eperm} after (all EPERM)"
    );
    Ok(())
}

/// A count of outcomes that children report through their exit codes.
fn tally(codes: &[i32]) -> String {
    let mut seen = std::collections::BTreeMap::new();
    for c in codes {
        *seen.entry(*c).or_insert(0) += 1;
    }
    format!("{seen:?}")
}

fn race_bind_fork_child_never_owner() -> R {
    const FORKS: usize = 400;
    let d = dev()?;
    let me = ok("GET_MM_ID", d.mm_id())?;
    let fd = d.raw();
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    // The owner's second thread binds and unbinds without pause. While a child owns the
    // context (it bound it while unbound), the owner gets EPERM; nothing else is allowed.
    let flipper = std::thread::spawn(move || -> Result<(u64, u64), Errno> {
        let (mut done, mut refused) = (0, 0);
        while !s2.load(Ordering::Relaxed) {
            for r in [raw_bind(fd), raw_unbind(fd)] {
                match r {
                    Ok(()) => done += 1,
                    Err(Errno::EPERM) => refused += 1,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok((done, refused))
    });
    let mut codes = Vec::new();
    for i in 0..FORKS {
        let try_bind = i % 2 == 0;
        // Child of a process with a second thread: raw ioctls and _exit only.
        // 10: bound it itself (then released it), 11: refused, 12: only looked;
        // 1-7: the owner was wrong.
        let pid = fork_child(|| {
            let Ok(id) = raw_get_mm_id(fd) else { return 1 };
            if id == me {
                return 2;
            }
            match raw_get_owner(fd) {
                Ok(o) if o == id => return 3,
                Ok(o) if o != 0 && o != me => return 4,
                Ok(_) => {}
                Err(_) => return 1,
            }
            if !try_bind {
                return 12;
            }
            match raw_bind(fd) {
                Ok(()) => {
                    if raw_get_owner(fd) != Ok(id) {
                        return 5;
                    }
                    if raw_get_value(fd).is_err() {
                        return 6;
                    }
                    if raw_unbind(fd).is_err() {
                        return 7;
                    }
                    10
                }
                Err(Errno::EPERM) => 11,
                Err(_) => 1,
            }
        });
        codes.push(wait_exit(pid)?);
    }
    stop.store(true, Ordering::Relaxed);
    let (done, refused) = ok("the owner's BIND/UNBIND", flipper.join().unwrap())?;
    let bad = codes.iter().filter(|&&c| c < 10).count();
    eprintln!(
        "race_bind_fork_child_never_owner: {FORKS} children (exit code: count) {}; owner \
         thread: {done} BIND/UNBIND done, {refused} refused while a child owned it",
        tally(&codes)
    );
    ensure(bad == 0, || {
        format!(
            "{bad} of {FORKS} fork children saw themselves or a stranger as owner without \
             binding, or lost a binding they had (codes 1-7: {})",
            tally(&codes)
        )
    })?;
    let o = ok("GET_OWNER at the end", d.owner())?;
    ensure(o == 0 || o == me, || format!("owner at the end: {o}"))
}

/// Child mode `busy-thread-exec PIPEFD`: binds a new context, reports (extra 1), lets four
/// threads hammer it with the owner's ioctls (reporting any failure with extra 99), and once
/// they have issued 2000 ioctls, reports the count (extra 2) and execs from a fifth thread
/// into `report`, which reports what the new image sees (extra 0).
pub fn busy_thread_exec(pipe: RawFd) -> u8 {
    let d = match Dev::open() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("busy-thread-exec: {e}");
            return 1;
        }
    };
    let fd = d.raw();
    std::mem::forget(d);
    let mut r = Record::probe(fd, Some(77), true);
    r.extra = 1;
    if !r.write_to(pipe) {
        return 1;
    }
    let me = raw_get_mm_id(fd).unwrap_or(0);
    let count = Arc::new(AtomicI64::new(0));
    for _ in 0..4 {
        let c = count.clone();
        std::thread::spawn(move || loop {
            let bad = match (raw_get_value(fd), raw_get_owner(fd), raw_set_value(fd, 77)) {
                (Ok(77), Ok(o), Ok(())) if o == me => None,
                (v, o, s) => Some(Record {
                    value: enc(v),
                    owner: enc(o),
                    set: enc0(s),
                    extra: 99,
                    ..Default::default()
                }),
            };
            if let Some(rec) = bad {
                rec.write_to(pipe);
            }
            c.fetch_add(3, Ordering::Relaxed);
        });
    }
    let exec = SelfExec::new("report", &[fd.to_string(), pipe.to_string()]);
    let t = std::thread::spawn(move || {
        while count.load(Ordering::Relaxed) < 2000 {
            std::thread::yield_now();
        }
        let rec = Record {
            value: count.load(Ordering::Relaxed),
            extra: 2,
            ..Default::default()
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

fn race_exec_thread_while_ioctl() -> R {
    for round in 0..5 {
        let (r, w) = pipe();
        let pid =
            SelfExec::new("busy-thread-exec", &[w.as_raw_fd().to_string()]).spawn(&[w.as_raw_fd()]);
        drop(w);
        let recs = Record::read_all(&r);
        let code = wait_exit(pid)?;
        let what = format!("round {round}");
        let bad: Vec<_> = recs.iter().filter(|x| x.extra == 99).collect();
        ensure(bad.is_empty(), || {
            format!(
                "{what}: the owner's threads were refused before the exec: {} failure(s), \
                 first GET_VALUE {} GET_OWNER {} SET_VALUE {}",
                bad.len(),
                show(bad[0].value),
                show(bad[0].owner),
                show(bad[0].set)
            )
        })?;
        let find = |extra| recs.iter().find(|x| x.extra == extra).copied();
        let (Some(pre), Some(busy), Some(post)) = (find(1), find(2), find(0)) else {
            return Err(format!(
                "{what}: want the owner's record, the hammer count and the exec'd image's \
                 record; got {recs:?} (exit {code})"
            ));
        };
        ensure(code == 0, || {
            format!("{what}: the exec'd image exited {code}")
        })?;
        want_rec("BIND by the owner", pre.bind, 0)?;
        want_rec("SET_VALUE by the owner", pre.set, 0)?;
        ensure(busy.value >= 2000, || {
            format!("{what}: only {} ioctls before the exec", busy.value)
        })?;
        want_rec("pid after exec from a thread", post.pid, pre.pid)?;
        ensure(post.mm_id > pre.mm_id, || {
            format!(
                "{what}: id after exec {} not above {}",
                post.mm_id, pre.mm_id
            )
        })?;
        want_rec("GET_OWNER after exec", post.owner, pre.mm_id)?;
        want_rec("GET_VALUE after exec", post.value, eperm())?;
    }
    Ok(())
}

fn race_unbind_bind_threads() -> R {
    const THREADS: usize = 16;
    const ITERS: usize = 2000;
    let d = dev()?;
    let me = ok("GET_MM_ID", d.mm_id())?;
    let fd = d.raw();
    // Another process watches the owner while the threads flip it.
    let (go_r, go_w) = pipe();
    let (gfd, go_wfd) = (go_r.as_raw_fd(), go_w.as_raw_fd());
    let watcher = fork_child(|| {
        // SAFETY: Closes the child's copy of the write end, so that EOF can come.
        unsafe { libc::close(go_wfd) };
        let mut fl = libc::pollfd {
            fd: gfd,
            events: libc::POLLIN,
            revents: 0,
        };
        let Ok(id) = raw_get_mm_id(fd) else { return 1 };
        loop {
            match raw_get_owner(fd) {
                Ok(o) if o == 0 || o == me => {}
                Ok(_) => return 2,
                Err(_) => return 1,
            }
            // A stranger's UNBIND never takes the context from its owner.
            match raw_unbind(fd) {
                Ok(()) | Err(Errno::EPERM) => {}
                Err(_) => return 3,
            }
            match raw_get_value(fd) {
                Ok(_) | Err(Errno::EPERM) => {}
                Err(_) => return 4,
            }
            if id == me {
                return 5;
            }
            // SAFETY: Polls one pollfd without waiting.
            if unsafe { libc::poll(&mut fl, 1, 0) } != 0 {
                return 0;
            }
        }
    });
    drop(go_r);
    let barrier = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let b = barrier.clone();
            std::thread::spawn(move || -> Result<(), String> {
                b.wait();
                for i in 0..ITERS {
                    let r = match (t + i) % 5 {
                        0 => raw_bind(fd).map(|_| 0),
                        1 => raw_unbind(fd).map(|_| 0),
                        2 => raw_set_value(fd, i as u64).map(|_| 0),
                        3 => raw_get_value(fd).map(|_| 0),
                        _ => raw_get_owner(fd),
                    };
                    match r {
                        Ok(o) if o == 0 || o == me => {}
                        Ok(o) => return Err(format!("GET_OWNER {o}, want 0 or {me}")),
                        Err(e) => return Err(format!("op {} failed: {e}", (t + i) % 5)),
                    }
                }
                Ok(())
            })
        })
        .collect();
    let mut errs = Vec::new();
    for t in threads {
        if let Err(e) = t.join().unwrap() {
            errs.push(e);
        }
    }
    drop(go_w);
    let wcode = wait_exit(watcher)?;
    ensure(errs.is_empty(), || {
        format!(
            "{} of {THREADS} owner threads saw a refusal or a stranger: {}",
            errs.len(),
            errs[0]
        )
    })?;
    ensure(wcode == 0, || {
        format!("the watching process failed with code {wcode} (2: a stranger owned it)")
    })?;
    let o = ok("GET_OWNER at the end", d.owner())?;
    ensure(o == 0 || o == me, || format!("owner at the end: {o}"))
}

fn race_bind_unbind_processes_exclusive() -> R {
    const PROCS: usize = 8;
    const ITERS: u32 = 500;
    let d = dev()?;
    let fd = d.raw();
    // A shared page: [0] how many processes believe they own the context, [1] the most seen.
    let shared = {
        // SAFETY: A fresh shared anonymous mapping of one page.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        ensure(p != libc::MAP_FAILED, || {
            "mmap of a shared page failed".into()
        })?;
        p as usize
    };
    // SAFETY: The page is mapped, shared, and only used through atomics.
    let holders = unsafe { &*(shared as *const std::sync::atomic::AtomicI32) };
    // SAFETY: As above, the next 4 bytes.
    let most = unsafe { &*((shared + 4) as *const std::sync::atomic::AtomicI32) };
    let pids: Vec<_> = (0..PROCS)
        .map(|_| {
            // Child: raw ioctls and atomics. 0: fine; 1: an errno outside the contract;
            // 2: owner lost while held; 3: UNBIND refused to the owner.
            fork_child(|| {
                let Ok(id) = raw_get_mm_id(fd) else { return 1 };
                let mut won = 0u32;
                for _ in 0..ITERS {
                    match raw_bind(fd) {
                        Ok(()) => {
                            let n = holders.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(n, Ordering::SeqCst);
                            won += 1;
                            if raw_get_owner(fd) != Ok(id)
                                || raw_set_value(fd, u64::from(won)).is_err()
                            {
                                return 2;
                            }
                            holders.fetch_sub(1, Ordering::SeqCst);
                            if raw_unbind(fd).is_err() {
                                return 3;
                            }
                        }
                        Err(Errno::EPERM) => {}
                        Err(_) => return 1,
                    }
                }
                // The number of wins, above the failure codes.
                10 + won.min(200) as i32
            })
        })
        .collect();
    let mut codes = Vec::new();
    for pid in pids {
        codes.push(wait_exit(pid)?);
    }
    let most = most.load(Ordering::SeqCst);
    // SAFETY: Unmaps the page mapped above; no reference to it is used after this.
    unsafe { libc::munmap(shared as *mut _, 4096) };
    eprintln!(
        "race_bind_unbind_processes_exclusive: {PROCS} processes x {ITERS} BIND attempts; wins \
         per process (+10): {codes:?}; most simultaneous owners seen: {most}"
    );
    ensure(codes.iter().all(|&c| c >= 10), || {
        format!("a process saw a broken binding: exit codes {codes:?}")
    })?;
    ensure(most == 1, || {
        format!("{most} processes owned the context at once")
    })?;
    let wins: i32 = codes.iter().map(|c| c - 10).sum();
    ensure(wins > 0, || "no process ever won the BIND".into())?;
    want_rec("GET_OWNER at the end", enc(d.owner()), 0)
}

fn race_close_vs_ioctl() -> R {
    const ROUNDS: usize = 200;
    const HIGH: RawFd = 900;
    raise_nofile(1024)?;
    let (mut ops, mut badf) = (0i64, 0);
    for round in 0..ROUNDS {
        let d = dev()?;
        if round % 2 == 0 {
            ok("BIND", d.bind())?;
        }
        // A number that no open() in another thread can be given while it is closed.
        // SAFETY: dup2 onto an fd this test owns.
        let fd = unsafe { libc::dup2(d.raw(), HIGH) };
        ensure(fd == HIGH, || format!("dup2: {}", Errno::last()))?;
        drop(d);
        let barrier = Arc::new(Barrier::new(5));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let b = barrier.clone();
                std::thread::spawn(move || -> Result<i64, String> {
                    b.wait();
                    let mut n = 0;
                    loop {
                        let r = match (t + n as usize) % 3 {
                            0 => raw_get_value(fd).map(drop),
                            1 => raw_set_value(fd, 5),
                            _ => raw_get_owner(fd).map(drop),
                        };
                        match r {
                            Ok(()) => n += 1,
                            Err(Errno::EBADF) => return Ok(n),
                            Err(e) => return Err(format!("ioctl racing close: {e}")),
                        }
                    }
                })
            })
            .collect();
        barrier.wait();
        std::thread::sleep(std::time::Duration::from_micros((round % 7) as u64 * 300));
        // SAFETY: Closes the fd the threads use; they stop at EBADF.
        let rc = unsafe { libc::close(fd) };
        ensure(rc == 0, || format!("close: {}", Errno::last()))?;
        for t in threads {
            ops += t
                .join()
                .unwrap()
                .map_err(|e| format!("round {round}: {e}"))?;
            badf += 1;
        }
    }
    eprintln!(
        "race_close_vs_ioctl: {ROUNDS} rounds, {ops} ioctls before close, all {badf} threads \
         stopped at EBADF"
    );
    Ok(())
}

fn fuzz_ioctls() -> R {
    let cfg = crate::fuzz::Config::from_env();
    let s = crate::fuzz::run(cfg)?;
    crate::fuzz::verdict(&cfg, &s)
}
