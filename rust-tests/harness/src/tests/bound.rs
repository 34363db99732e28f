// SPDX-License-Identifier: GPL-2.0
//! Bound contexts: the owner mm and whoever shares it are accepted; other processes are refused.

use super::*;

pub(super) fn bound_owner_and_threads() -> R {
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

pub(super) fn bound_clone_vm_child_accepted() -> R {
    clone_vm_child_accepted(0, 6, "clone(CLONE_VM) child GET_VALUE")
}

pub(super) fn bound_vfork_child_accepted() -> R {
    clone_vm_child_accepted(libc::CLONE_VFORK, 7, "vfork child GET_VALUE")
}

pub(super) fn bound_fork_child_refused() -> R {
    let d = dev()?;
    let me = ok("GET_MM_ID", d.mm_id())? as i64;
    ok("BIND", d.bind())?;
    ok("SET_VALUE", d.set_value(21))?;
    let rec = fork_probe(d.raw(), Some(99), true)?;
    want_rec("fork child GET_OWNER", rec.owner, me)?;
    want_rec("fork child GET_VALUE", rec.value, eperm())?;
    want_rec("fork child SET_VALUE", rec.set, eperm())?;
    want_rec("fork child BIND", rec.bind, eperm())?;
    want_rec("fork child UNBIND", rec.unbind, eperm())?;
    want_rec("GET_OWNER after the refusals", enc(d.owner()), me)?;
    want_rec("GET_VALUE after the refusals", enc(d.value()), 21)
}

pub(super) fn bound_exec_refused() -> R {
    let (before, after) = before_after(spawn_report("bind-exec", vec![], &[], None)?)?;
    want_rec("BIND before exec", before.bind, 0)?;
    want_rec("GET_VALUE before exec", before.value, 0)?;
    want_rec("pid after exec", after.pid, before.pid)?;
    want_rec("GET_OWNER after exec", after.owner, before.mm_id)?;
    want_rec("GET_VALUE after exec, same pid", after.value, eperm())
}

/// Another process that got our bound fd (by `probe`) is refused and changes nothing.
fn other_process_refused(probe: fn(RawFd, u64) -> Result<Probe, String>, who: &str) -> R {
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

pub(super) fn bound_scm_rights_refused() -> R {
    other_process_refused(scm_rights_probe, "SCM_RIGHTS receiver")
}

pub(super) fn bound_pidfd_getfd_refused() -> R {
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

pub(super) fn bound_fdinfo_owner() -> R {
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
