// SPDX-License-Identifier: GPL-2.0
//! ABA: a context whose owner died refuses the processes that reuse its address, and pins no `mm_struct`.

use std::time::Instant;

use super::*;

/// `MM_SEQID_ABA_ITERS`: new processes in the ABA test.
pub(crate) fn aba_iterations() -> usize {
    std::env::var("MM_SEQID_ABA_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

pub(super) fn aba_dead_owner_refused() -> R {
    // The owner binds, hands the fd to us (the keeper) and exits.
    let (ours, theirs) = socket_pair()?;
    let pid =
        SelfExec::new("owner-send", &[theirs.as_raw_fd().to_string()]).spawn(&[theirs.as_fd()]);
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
        // SAFETY: The child makes raw ioctls, writes its report and _exits:
        // async-signal-safe.
        let report = unsafe {
            fork_report("ABA child", || {
                let value = raw_get_value(fd);
                Report::DeadOwnerFd {
                    value: enc(value),
                    mm_id: if value == Err(Errno::EPERM) {
                        enc(raw_get_mm_id(fd))
                    } else {
                        0
                    },
                }
            })
        }?;
        match report {
            Report::DeadOwnerFd { value, mm_id } if value == eperm() => match mm_id {
                id if id == owner as i64 => same_id += 1,
                id if id >= 0 => refused += 1,
                _ => other += 1,
            },
            Report::DeadOwnerFd { value, .. } if value >= 0 => accepted += 1,
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

pub(super) fn bound_contexts_pin_no_mm() -> R {
    // 1000 contexts, each bound by a process that then exits. Were the owner's mm pinned
    // (mmgrab, as a pointer compare needs), 1000 mm_structs would stay allocated.
    const N: usize = 1000;
    raise_nofile(N as u64 + 64)?;
    let devs: Vec<Dev> = (0..N).map(|_| dev()).collect::<Result<_, _>>()?;
    let before = mm_struct_objects()?;
    for d in &devs {
        let fd = d.raw();
        // SAFETY: The child makes one raw ioctl, writes its report and _exits:
        // async-signal-safe.
        let report = unsafe { fork_report("a BIND child", || Report::Call(enc0(raw_bind(fd)))) }?;
        ensure(report == Report::Call(0), || {
            format!("a child could not BIND: {report:?}")
        })?;
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
