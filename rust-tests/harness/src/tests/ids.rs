// SPDX-License-Identifier: GPL-2.0
//! Ids: a thread, a `CLONE_VM` child and a vfork child share the id; fork, exec and `posix_spawn` give a new, larger one; a failed exec keeps it.

use super::*;

pub(super) fn device_present() -> R {
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

pub(super) fn ids_thread_shares_id() -> R {
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

pub(super) fn ids_clone_vm_shares_id() -> R {
    clone_vm_child_shares_id(0, "clone(CLONE_VM) child id")
}

pub(super) fn ids_vfork_child_shares_id() -> R {
    clone_vm_child_shares_id(libc::CLONE_VFORK, "vfork child id")
}

pub(super) fn ids_fork_child_new_larger() -> R {
    let d = dev()?;
    let me = ok("GET_MM_ID", d.mm_id())? as i64;
    let rec = fork_probe(d.raw(), None, false)?;
    ensure(rec.mm_id > me, || {
        format!("fork child: expected an id > {me}, got {}", show(rec.mm_id))
    })?;
    let again = ok("GET_MM_ID", d.mm_id())? as i64;
    want_rec("parent id after fork", again, me)
}

/// After execve: the same pid, a new and larger id.
fn exec_same_pid_new_larger(reports: Vec<Report>, what: &str) -> R {
    let (before, after) = before_after(reports)?;
    want_rec(&format!("pid after {what}"), after.pid, before.pid)?;
    ensure(before.mm_id > 0 && after.mm_id > before.mm_id, || {
        format!(
            "{what}: expected an id > {}, got {}",
            show(before.mm_id),
            show(after.mm_id)
        )
    })
}

pub(super) fn ids_exec_same_pid_new_larger() -> R {
    let recs = spawn_report("bind-exec", vec![], &[], None)?;
    exec_same_pid_new_larger(recs, "exec")
}

pub(super) fn ids_exec_from_thread_new_larger() -> R {
    let d = dev()?;
    let recs = spawn_report("thread-exec", vec![d.raw().to_string()], &[d.as_fd()], None)?;
    exec_same_pid_new_larger(recs, "exec from a non-main thread")
}

pub(super) fn ids_failed_exec_unchanged() -> R {
    let (pid, reports) = spawn_report_pid("failed-exec", vec![], &[], None)?;
    let [Report::FailedExec {
        pid: reported_pid,
        before,
        after,
        ret,
        errno,
    }] = reports[..]
    else {
        return Err(format!("failed-exec: expected 1 report, got {reports:?}"));
    };
    want_rec(
        "the pid the failed-exec child reported",
        reported_pid,
        i64::from(pid.as_raw()),
    )?;
    want_rec("execve return", ret, -1)?;
    want_rec("execve errno", errno, Errno::ENOEXEC as i64)?;
    ensure(before > 0, || format!("id before: {}", show(before)))?;
    want_rec("id after a failed execve", after, before)
}

pub(super) fn ids_posix_spawn_new_larger() -> R {
    use nix::spawn::{posix_spawn, PosixSpawnAttr, PosixSpawnFileActions};
    use std::os::unix::ffi::OsStrExt;
    let d = dev()?;
    let me = ok("GET_MM_ID", d.mm_id())? as i64;
    let (r, w) = pipe();
    let exec = SelfExec::new("report", &[d.raw().to_string(), w.as_raw_fd().to_string()]);
    // Our environment, as posix_spawn(3) with `environ` would pass it.
    let env: Vec<std::ffi::CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            std::ffi::CString::new(kv).ok()
        })
        .collect();
    keep_fd(w.as_fd());
    let spawned = ok("posix_spawn file actions", PosixSpawnFileActions::init()).and_then(|fa| {
        let attr = ok("posix_spawn attributes", PosixSpawnAttr::init())?;
        ok(
            "posix_spawn",
            posix_spawn(SelfExec::PATH, &fa, &attr, exec.args(), &env),
        )
    });
    drop(w);
    let pid = spawned?;
    let reports = Report::read_all(&r);
    let code = wait_exit(pid)?;
    ensure(code == 0, || format!("posix_spawn child exited {code}"))?;
    let rec = one(reports, "posix_spawn child")?;
    ensure(rec.mm_id > me, || {
        format!(
            "posix_spawn child: expected an id > {me}, got {}",
            show(rec.mm_id)
        )
    })
}

pub(super) fn ids_increase_across_forks() -> R {
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
