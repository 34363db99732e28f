// SPDX-License-Identifier: GPL-2.0
//! Legacy (unbound) contexts: anyone who has the fd may use it.

use super::*;

pub(super) fn legacy_thread() -> R {
    let d = dev()?;
    let fd = d.raw();
    let r = std::thread::spawn(move || raw_set_value(fd, 3))
        .join()
        .unwrap();
    ok("SET_VALUE in a thread", r)?;
    want_rec("GET_VALUE", enc(d.value()), 3)
}

pub(super) fn legacy_fork_child() -> R {
    let d = dev()?;
    let rec = fork_probe(d.raw(), Some(11), false)?;
    want_rec("fork child SET_VALUE on an unbound fd", rec.set, 0)?;
    want_rec("fork child UNBIND of an unbound fd", rec.unbind, 0)?;
    want_rec("fork child GET_OWNER", rec.owner, 0)?;
    want_rec("GET_VALUE after the child set it", enc(d.value()), 11)
}

pub(super) fn legacy_exec() -> R {
    let d = dev()?;
    let recs = spawn_report("report", vec![d.raw().to_string()], &[d.as_fd()], None)?;
    let rec = one(recs, "exec'd child")?;
    want_rec("exec'd child GET_VALUE on an unbound fd", rec.value, 0)?;
    want_rec("exec'd child GET_OWNER", rec.owner, 0)?;
    // Now let it set a value: the same mode with a value argument.
    let (r, w) = pipe();
    let pid = SelfExec::new(
        "report",
        &[d.raw().to_string(), w.as_raw_fd().to_string(), "12".into()],
    )
    .spawn(&[d.as_fd(), w.as_fd()]);
    drop(w);
    let rec = one(Report::read_all(&r), "exec'd child")?;
    ensure(wait_exit(pid)? == 0, || "exec'd child failed".into())?;
    want_rec("exec'd child SET_VALUE", rec.set, 0)?;
    want_rec(
        "GET_VALUE after the exec'd child set it",
        enc(d.value()),
        12,
    )
}

pub(super) fn legacy_scm_rights() -> R {
    let d = dev()?;
    let rec = scm_rights_probe(d.raw(), 13)?;
    want_rec("receiver SET_VALUE on an unbound fd", rec.set, 0)?;
    want_rec("receiver GET_OWNER", rec.owner, 0)?;
    want_rec("GET_VALUE after the receiver set it", enc(d.value()), 13)
}

pub(super) fn legacy_pidfd_getfd() -> R {
    let d = dev()?;
    let rec = pidfd_getfd_probe(d.raw(), 14)?;
    want_rec("pidfd_getfd SET_VALUE on an unbound fd", rec.set, 0)?;
    want_rec("GET_VALUE after pidfd_getfd set it", enc(d.value()), 14)
}

pub(super) fn legacy_unbind_is_noop() -> R {
    let d = dev()?;
    ok("UNBIND of an unbound fd", d.unbind())?;
    want_rec("GET_OWNER", enc(d.owner()), 0)
}
