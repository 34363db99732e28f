// SPDX-License-Identifier: GPL-2.0
//! Hand-over: the owner unbinds and another process binds.

use super::*;

pub(super) fn handover_unbind_bind() -> R {
    let d = dev()?;
    ok("BIND", d.bind())?;
    ok("SET_VALUE", d.set_value(51))?;
    ok("UNBIND by the owner", d.unbind())?;
    want_rec("GET_OWNER after UNBIND", enc(d.owner()), 0)?;

    // The new owner binds, reports, and stays alive until we are done checking.
    let (r, w) = pipe();
    let (hold_r, hold_w) = pipe();
    let (fd, hold_wfd) = (d.raw(), hold_w.as_raw_fd());
    let new_owner = || {
        // Our copy of the write end would keep the read below from ever seeing EOF.
        let _ = nix::unistd::close(hold_wfd);
        let probe = Probe::take(fd, Some(52), true);
        let owner = enc(raw_get_owner(fd));
        if !(Report::NewOwner { probe, owner }).write_to(&w) {
            return 1;
        }
        // Returns at EOF, when the parent closes its end.
        let _ = nix::unistd::read(&hold_r, &mut [0u8]);
        0
    };
    // SAFETY: The child makes raw system calls (close, ioctls, write, read) and _exits:
    // async-signal-safe.
    let pid = unsafe { fork_child(new_owner) };
    drop(w);
    drop(hold_r);
    let got = Report::read_one(&r);
    let checks = (|| {
        let Some(Report::NewOwner { probe, owner }) = got else {
            return Err(format!("new owner sent no report: {got:?}"));
        };
        want_rec("SET_VALUE by the new owner, before its BIND", probe.set, 0)?;
        want_rec("BIND by the new owner", probe.bind, 0)?;
        want_rec("GET_OWNER is the new owner", owner, probe.mm_id)?;
        want_rec("old owner GET_VALUE", enc(d.value()), eperm())?;
        want_rec("old owner BIND", enc0(d.bind()), eperm())?;
        want_rec("old owner UNBIND", enc0(d.unbind()), eperm())
    })();
    drop(hold_w);
    let code = wait_exit(pid)?;
    checks?;
    ensure(code == 0, || format!("new owner exited {code}"))
}
