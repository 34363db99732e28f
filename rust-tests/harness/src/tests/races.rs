// SPDX-License-Identifier: GPL-2.0
//! Races: BIND, UNBIND, fork, exec and close against each other.

use std::os::fd::AsFd;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Barrier};

use nix::fcntl::{fcntl, FcntlArg};
use nix::sys::mman::{MapFlags, ProtFlags};

use super::*;

pub(super) fn race_bind_threads() -> R {
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

pub(super) fn race_bind_processes() -> R {
    const N: usize = 16;
    let d = dev()?;
    let (go_r, go_w) = pipe();
    let (fd, go_wfd) = (d.raw(), go_w.as_raw_fd());
    let children: Vec<_> = (0..N)
        .map(|_| {
            // SAFETY: The child waits for the start, BINDs, writes its report and _exits:
            // raw system calls only, async-signal-safe.
            unsafe {
                Reporter::fork(|| {
                    // Without this, our copy of the write end would hold off EOF.
                    let _ = nix::unistd::close(go_wfd);
                    // Returns at EOF, the start signal.
                    let _ = nix::unistd::read(&go_r, &mut [0u8]);
                    Report::Call(enc0(raw_bind(fd)))
                })
            }
        })
        .collect();
    drop(go_r);
    drop(go_w);
    let mut results = Vec::new();
    for c in children {
        match c.report("a BIND racer")? {
            Report::Call(r) => results.push(r),
            other => return Err(format!("a BIND racer sent {other:?}")),
        }
    }
    let won = results.iter().filter(|&&r| r == 0).count();
    let lost = results.iter().filter(|&&r| r == eperm()).count();
    ensure(won == 1 && lost == N - 1, || {
        let shown: Vec<_> = results.iter().map(|&r| show(r)).collect();
        format!(
            "{N} processes raced to BIND: expected 1 winner and {} EPERM, got {shown:?}",
            N - 1
        )
    })?;
    let owner = ok("GET_OWNER", d.owner())?;
    ensure(owner != 0, || "GET_OWNER: 0 after a BIND won".into())?;
    want_rec("GET_VALUE by the parent", enc(d.value()), eperm())
}

pub(super) fn race_bind_vs_fork() -> R {
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
        // SAFETY: A child of a process with a second thread: it makes one raw ioctl, writes
        // its report and _exits, all async-signal-safe.
        let report = unsafe { fork_report("fork child", || Report::Call(enc(raw_get_value(fd)))) }?;
        let Report::Call(value) = report else {
            return Err(format!("fork child sent {report:?}"));
        };
        let refused = value == eperm();
        match (was_bound, value >= 0 || refused) {
            (_, false) => other += 1,
            (false, _) => before += 1,
            (true, _) if !refused => after_ok += 1,
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

/// A count of what children reported.
fn tally(reports: &[Report]) -> String {
    let mut seen = std::collections::BTreeMap::new();
    for r in reports {
        *seen.entry(format!("{r:?}")).or_insert(0) += 1;
    }
    format!("{seen:?}")
}

pub(super) fn race_bind_fork_child_never_owner() -> R {
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
    let mut reports = Vec::new();
    for i in 0..FORKS {
        let try_bind = i % 2 == 0;
        let child = || {
            let Ok(id) = raw_get_mm_id(fd) else {
                return Report::Fault(Fault::Errno);
            };
            if id == me {
                return Report::Fault(Fault::ParentsId);
            }
            match raw_get_owner(fd) {
                Ok(o) if o == id => return Report::Fault(Fault::OwnerWithoutBind),
                Ok(o) if o != 0 && o != me => return Report::Fault(Fault::Stranger),
                Ok(_) => {}
                Err(_) => return Report::Fault(Fault::Errno),
            }
            if !try_bind {
                return Report::Looked;
            }
            match raw_bind(fd) {
                Ok(()) => {
                    if raw_get_owner(fd) != Ok(id) {
                        return Report::Fault(Fault::LostBinding);
                    }
                    if raw_get_value(fd).is_err() {
                        return Report::Fault(Fault::RefusedAfterBind);
                    }
                    if raw_unbind(fd).is_err() {
                        return Report::Fault(Fault::UnbindRefused);
                    }
                    Report::BoundAndReleased
                }
                Err(Errno::EPERM) => Report::BindRefused,
                Err(_) => Report::Fault(Fault::Errno),
            }
        };
        // SAFETY: A child of a process with a second thread: `child` makes raw ioctls only;
        // then the report is written and the child _exits, all async-signal-safe.
        let report = unsafe { fork_report("fork child", child) }?;
        reports.push(report);
    }
    stop.store(true, Ordering::Relaxed);
    let (done, refused) = ok("the owner's BIND/UNBIND", flipper.join().unwrap())?;
    let bad = reports
        .iter()
        .filter(|r| {
            !matches!(
                r,
                Report::BoundAndReleased | Report::BindRefused | Report::Looked
            )
        })
        .count();
    eprintln!(
        "race_bind_fork_child_never_owner: {FORKS} children (report: count) {}; owner \
         thread: {done} BIND/UNBIND done, {refused} refused while a child owned it",
        tally(&reports)
    );
    ensure(bad == 0, || {
        format!(
            "{bad} of {FORKS} fork children saw themselves or a stranger as owner without \
             binding, or lost a binding they had ({})",
            tally(&reports)
        )
    })?;
    let o = ok("GET_OWNER at the end", d.owner())?;
    ensure(o == 0 || o == me, || format!("owner at the end: {o}"))
}

pub(super) fn race_exec_thread_while_ioctl() -> R {
    for round in 0..5 {
        let (r, w) = pipe();
        let pid =
            SelfExec::new("busy-thread-exec", &[w.as_raw_fd().to_string()]).spawn(&[w.as_fd()]);
        drop(w);
        let reports = Report::read_all(&r);
        let code = wait_exit(pid)?;
        let what = format!("round {round}");
        let failed: Vec<_> = reports
            .iter()
            .filter_map(|x| match *x {
                Report::HammerFailed { value, owner, set } => Some((value, owner, set)),
                _ => None,
            })
            .collect();
        ensure(failed.is_empty(), || {
            let (value, owner, set) = failed[0];
            format!(
                "{what}: the owner's threads were refused before the exec: {} failure(s), \
                 first GET_VALUE {} GET_OWNER {} SET_VALUE {}",
                failed.len(),
                show(value),
                show(owner),
                show(set)
            )
        })?;
        let pre = reports.iter().find_map(|x| match *x {
            Report::BeforeExec(p) => Some(p),
            _ => None,
        });
        let busy = reports.iter().find_map(|x| match *x {
            Report::Hammered { ioctls } => Some(ioctls),
            _ => None,
        });
        let post = reports.iter().find_map(|x| match *x {
            Report::Probe(p) => Some(p),
            _ => None,
        });
        let (Some(pre), Some(busy), Some(post)) = (pre, busy, post) else {
            return Err(format!(
                "{what}: want the owner's probe, the hammer count and the exec'd image's \
                 probe; got {reports:?} (exit {code})"
            ));
        };
        ensure(code == 0, || {
            format!("{what}: the exec'd image exited {code}")
        })?;
        want_rec("BIND by the owner", pre.bind, 0)?;
        want_rec("SET_VALUE by the owner", pre.set, 0)?;
        ensure(busy >= 2000, || {
            format!("{what}: only {busy} ioctls before the exec")
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

pub(super) fn race_unbind_bind_threads() -> R {
    const THREADS: usize = 16;
    const ITERS: usize = 2000;
    let d = dev()?;
    let me = ok("GET_MM_ID", d.mm_id())?;
    let fd = d.raw();
    // Another process watches the owner while the threads flip it.
    let (go_r, go_w) = pipe();
    let go_wfd = go_w.as_raw_fd();
    let watch = || {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        // Closes the child's copy of the write end, so that EOF can come.
        let _ = nix::unistd::close(go_wfd);
        let mut fl = [PollFd::new(go_r.as_fd(), PollFlags::POLLIN)];
        let Ok(id) = raw_get_mm_id(fd) else {
            return Report::Fault(Fault::Errno);
        };
        loop {
            match raw_get_owner(fd) {
                Ok(o) if o == 0 || o == me => {}
                Ok(_) => return Report::Fault(Fault::Stranger),
                Err(_) => return Report::Fault(Fault::Errno),
            }
            // A stranger's UNBIND never takes the context from its owner.
            match raw_unbind(fd) {
                Ok(()) | Err(Errno::EPERM) => {}
                Err(_) => return Report::Fault(Fault::StrangerUnbind),
            }
            match raw_get_value(fd) {
                Ok(_) | Err(Errno::EPERM) => {}
                Err(_) => return Report::Fault(Fault::StrangerGetValue),
            }
            if id == me {
                return Report::Fault(Fault::ParentsId);
            }
            // Without waiting: has the parent closed its end?
            if poll(&mut fl, PollTimeout::ZERO) != Ok(0) {
                return Report::Watched;
            }
        }
    };
    // SAFETY: The watcher makes raw system calls (close, ioctls, poll) on a stack array, then
    // writes its report and _exits: async-signal-safe. No other thread exists yet.
    let watcher = unsafe { Reporter::fork(watch) };
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
    let watched = watcher.report("the watching process")?;
    ensure(errs.is_empty(), || {
        format!(
            "{} of {THREADS} owner threads saw a refusal or a stranger: {}",
            errs.len(),
            errs[0]
        )
    })?;
    ensure(watched == Report::Watched, || {
        format!("the watching process failed: {watched:?}")
    })?;
    let o = ok("GET_OWNER at the end", d.owner())?;
    ensure(o == 0 || o == me, || format!("owner at the end: {o}"))
}

pub(super) fn race_bind_unbind_processes_exclusive() -> R {
    const PROCS: usize = 8;
    const ITERS: u32 = 500;
    let d = dev()?;
    let fd = d.raw();
    // A shared page: [0] how many processes believe they own the context, [1] the most seen.
    let shared = Mapping::anonymous(
        4096,
        ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
        MapFlags::MAP_SHARED,
    )
    .map_err(|e| format!("mmap of a shared page failed: {e}"))?;
    let (holders, most) = (&shared.atomics()[0], &shared.atomics()[1]);
    let children: Vec<_> = (0..PROCS)
        .map(|_| {
            let child = || {
                let Ok(id) = raw_get_mm_id(fd) else {
                    return Report::Fault(Fault::Errno);
                };
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
                                return Report::Fault(Fault::LostBinding);
                            }
                            holders.fetch_sub(1, Ordering::SeqCst);
                            if raw_unbind(fd).is_err() {
                                return Report::Fault(Fault::UnbindRefused);
                            }
                        }
                        Err(Errno::EPERM) => {}
                        Err(_) => return Report::Fault(Fault::Errno),
                    }
                }
                Report::Wins(i64::from(won))
            };
            // SAFETY: The child makes raw ioctls and atomic operations on shared memory,
            // writes its report and _exits: async-signal-safe.
            unsafe { Reporter::fork(child) }
        })
        .collect();
    let mut reports = Vec::new();
    for c in children {
        reports.push(c.report("a BIND/UNBIND process")?);
    }
    let most = most.load(Ordering::SeqCst);
    drop(shared);
    eprintln!(
        "race_bind_unbind_processes_exclusive: {PROCS} processes x {ITERS} BIND attempts; \
         reports: {reports:?}; most simultaneous owners seen: {most}"
    );
    let wins: Vec<i64> = reports
        .iter()
        .filter_map(|r| match *r {
            Report::Wins(n) => Some(n),
            _ => None,
        })
        .collect();
    ensure(wins.len() == PROCS, || {
        format!("a process saw a broken binding: {reports:?}")
    })?;
    ensure(most == 1, || {
        format!("{most} processes owned the context at once")
    })?;
    let wins: i64 = wins.iter().sum();
    ensure(wins > 0, || "no process ever won the BIND".into())?;
    want_rec("GET_OWNER at the end", enc(d.owner()), 0)
}

pub(super) fn race_close_vs_ioctl() -> R {
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
        let fd = fcntl(&d, FcntlArg::F_DUPFD(HIGH)).map_err(|e| {
            format!("F_DUPFD({HIGH}): {e}: the test needs fds from {HIGH} up free (RLIMIT_NOFILE above {HIGH})")
        })?;
        ensure(fd == HIGH, || {
            format!(
                "F_DUPFD({HIGH}) gave {fd}: fd {HIGH} is already open in this process (inherited \
                 from whoever started the harness?); the test needs it free"
            )
        })?;
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
        // Closes the fd the threads use; they stop at EBADF.
        ok("close", nix::unistd::close(fd))?;
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
