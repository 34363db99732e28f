// SPDX-License-Identifier: GPL-2.0
//! The mm address reuse case of ublk (patch "ublk: refuse a reused mm address in
//! ublk_ch_mmap()"), shown on the real driver.
//!
//! `mm-seqid-ublk-aba --kublk=PATH [--iters=N] [--expect=refused|accepted]`, as root, in a guest
//! whose kernel has `CONFIG_BLK_DEV_UBLK`:
//!
//! 1. `kublk add -t null -q 1 -d 128` starts a ublk server; its daemon maps the command buffer
//!    of `/dev/ublkcN`, which makes its mm the owner.
//! 2. We take the daemon's `/dev/ublkcN` fd with `pidfd_getfd()`. Our own mmap of it must fail
//!    with `EINVAL`: we are another mm.
//! 3. The daemon is killed. Our fd keeps the char device open, so `ublk_ch_release()` does not
//!    run and the owner is not reset: the daemon's mm is freed while ublk still refers to it.
//! 4. N fork children, each with a new mm, try the same mmap. On a kernel that compares mm
//!    pointers, those whose mm landed at the daemon's old address succeed. With the series,
//!    every one must get `EINVAL`. The children come in batches that live together, of 1, 2,
//!    4, ... 64 children: one pass of the seven batches on one CPU, the next pass on the next
//!    CPU (see [`DEPTHS`]).
//!    With `--expect=accepted`, if none of the N was accepted, the passes go on up to 4N
//!    children before the test fails: one unlucky slab layout is not a kernel without the bug.
//!    The line says how many were forked.
//! 5. Control: we close our fd (the release resets the owner), open `/dev/ublkcN` again and
//!    map it with the same length: it must succeed, or the refusals above prove nothing.
//!
//! `--expect=refused` (the default) passes if all N were refused; `--expect=accepted` (for the
//! kernel without the series) passes if at least one was accepted: the bug is real. Prints
//! KTAP with that one test; the exit status is 0 if it passed.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use mm_seqid_harness::{fork_child, pidfd_getfd, pidfd_open, wait_exit, Mapping};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{sched_setaffinity, CpuSet};
use nix::sys::mman::{MapFlags, ProtFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{close, pipe, read, Pid};

/// The command buffer of queue 0: 128 descriptors of at most 32 bytes, one page.
const CMD_BUF_LEN: usize = 4096;

/// How many children of a batch live at once, in turn.
///
/// A batch of one reuses the object at the top of a CPU's mm_struct freelist again and again:
/// if the daemon's mm was freed there, most children hit it. If it was freed into a slab
/// deeper in the freelist, or not the CPU's current one, only children that live together
/// reach it: each holds its mm_struct, so the next one takes the next free object. One pass
/// of the depths is 127 forks on one CPU.
const DEPTHS: [usize; 7] = [1, 2, 4, 8, 16, 32, 64];

/// mmap of queue 0's command buffer, read-only and shared, as ublk servers do. Returns 0 if
/// it mapped (and unmaps it), else the errno. Async-signal-safe.
fn try_map(fd: BorrowedFd) -> i32 {
    match Mapping::of_fd(fd, CMD_BUF_LEN, ProtFlags::PROT_READ, MapFlags::MAP_SHARED) {
        Ok(_) => 0,
        Err(e) => e as i32,
    }
}

struct Server {
    dev_id: u32,
    pid: i32,
}

fn kublk(kublk: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(kublk)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {kublk}: {e} (scripts/ublk-tests builds it)"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "{kublk} {}: {}\n{text}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(text)
}

fn add_server(path: &str) -> Result<Server, String> {
    let text = kublk(path, &["add", "-t", "null", "-q", "1", "-d", "128"])?;
    let field = |key: &str| -> Option<i64> {
        let at = text.find(key)? + key.len();
        text[at..]
            .trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    match (field("dev id"), field("daemon pid")) {
        (Some(d), Some(p)) => Ok(Server {
            dev_id: d as u32,
            pid: p as i32,
        }),
        _ => Err(format!(
            "kublk add: no dev id or daemon pid in its output:\n{text}"
        )),
    }
}

/// The daemon's fd number for `/dev/ublkcN`.
fn daemon_fd(s: &Server) -> Result<RawFd, String> {
    let want = format!("/dev/ublkc{}", s.dev_id);
    let dir = format!("/proc/{}/fd", s.pid);
    for e in std::fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))? {
        let e = e.map_err(|e| format!("{dir}: {e}"))?;
        if std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy() == want) {
            return e
                .file_name()
                .to_string_lossy()
                .parse()
                .map_err(|_| format!("{dir}: odd fd name"));
        }
    }
    Err(format!("the daemon (pid {}) has no fd for {want}", s.pid))
}

/// Moves the calling thread to `cpu`, so that the next fork child allocates its mm_struct from
/// that CPU's slab freelist.
///
/// The daemon's mm_struct is freed by the last mmdrop(), which io_uring's ring teardown does
/// from a workqueue on any CPU, some time after the daemon exits. Forking in turn on every
/// CPU lets a child reach the freed object whichever CPU's freelist it went to.
fn move_to_cpu(cpu: usize) {
    let mut set = CpuSet::new();
    // Failure leaves the affinity as it was.
    if set.set(cpu).is_ok() {
        let _ = sched_setaffinity(Pid::from_raw(0), &set);
    }
}

fn kill_and_wait(pid: i32) -> Result<(), String> {
    let pidfd = pidfd_open(pid).map_err(|e| format!("pidfd_open({pid}): {e}"))?;
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    // A pidfd is readable once the process has exited.
    let mut p = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    if poll(&mut p, PollTimeout::from(10_000u16)) != Ok(1) {
        return Err(format!("the daemon (pid {pid}) did not exit within 10 s"));
    }
    Ok(())
}

fn run(path: &str, iters: usize, expect_refused: bool) -> Result<String, String> {
    let s = add_server(path)?;
    let cleanup = |s: &Server| {
        let _ = kublk(path, &["del", "-n", &s.dev_id.to_string()]);
    };
    let result = (|| {
        let target = daemon_fd(&s)?;
        let fd = pidfd_getfd(s.pid, target)
            .map_err(|e| format!("pidfd_getfd({}, {target}): {e}", s.pid))?;
        let ours = try_map(fd.as_fd());
        if ours != libc::EINVAL {
            return Err(format!(
                "while the daemon lives, our mmap gave {}, want EINVAL",
                Errno::from_raw(ours)
            ));
        }
        kill_and_wait(s.pid)?;
        // Let the daemon's io_uring teardown, which drops the last reference on its mm,
        // finish.
        std::thread::sleep(Duration::from_millis(1000));
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let t0 = Instant::now();
        let (mut refused, mut accepted, mut other) = (0usize, 0usize, 0usize);
        let mut first_other = None;
        let borrowed = fd.as_fd();
        // Between the forks, nothing allocates but the batch's pipe (no report, no string),
        // so that the children's own mm_structs are what the mm_struct cache sees and one can
        // land at the freed daemon's address. A child's verdict is its exit status; it waits
        // for the end of its batch by reading the pipe, which gives EOF once the parent has
        // closed its end and every child its copy.
        let (mut forked, mut pass) = (0usize, 0usize);
        let mut pids = Vec::with_capacity(DEPTHS[DEPTHS.len() - 1]);
        // How many to fork in all: N first; past it, up to the cap, only while none was
        // accepted.
        let cap = if expect_refused { iters } else { 4 * iters };
        let goal = |forked: usize, accepted: usize| match (forked < iters, accepted) {
            (true, _) => iters,
            (false, 0) => cap,
            (false, _) => forked,
        };
        'passes: while goal(forked, accepted) > forked {
            move_to_cpu(pass % cpus);
            for depth in DEPTHS {
                let n = depth.min(goal(forked, accepted) - forked);
                if n == 0 {
                    break 'passes;
                }
                let (rd, wr) = pipe().map_err(|e| format!("pipe: {e}"))?;
                let wr_raw = wr.as_raw_fd();
                let rd = rd.as_fd();
                for _ in 0..n {
                    // SAFETY: The child makes one mmap (and its munmap), a close() and a
                    // read(), then _exits: async-signal-safe.
                    pids.push(unsafe {
                        fork_child(|| {
                            let verdict = match try_map(borrowed) {
                                0 => 1,
                                libc::EINVAL => 0,
                                // Another errno: 3 + errno, which the parent reports.
                                e => 3 + e.min(250),
                            };
                            let _ = close(wr_raw);
                            let mut b = [0u8; 1];
                            let _ = read(rd, &mut b);
                            verdict
                        })
                    });
                }
                forked += n;
                drop(wr);
                for pid in pids.drain(..) {
                    match wait_exit(pid)? {
                        0 => refused += 1,
                        1 => accepted += 1,
                        code => {
                            other += 1;
                            first_other.get_or_insert(code - 3);
                        }
                    }
                }
            }
            pass += 1;
        }
        let line = format!(
            "ublk-aba: {forked} new processes mapped a dead daemon's /dev/ublkc{}: {accepted} \
             accepted, {refused} refused with EINVAL, {other} other errors, in {:.1}s",
            s.dev_id,
            t0.elapsed().as_secs_f64()
        );
        println!("# {line}");
        // Control: after the last close, the next mapper owns the buffers again.
        drop(fd);
        let dev = format!("/dev/ublkc{}", s.dev_id);
        // The release runs in a work item; until it is done, open says EBUSY.
        let t1 = Instant::now();
        let f = loop {
            match std::fs::File::open(&dev) {
                Ok(f) => break f,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && t1.elapsed().as_secs() < 10 => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(format!("control: open {dev}: {e}")),
            }
        };
        let c = try_map(f.as_fd());
        if c != 0 {
            return Err(format!(
                "control: the first mapper after the last close got {}: the mmap above \
                 was wrong, its refusals prove nothing",
                Errno::from_raw(c)
            ));
        }
        println!("# ublk-aba: control: a new first mapper after the last close maps it");
        if other > 0 {
            let e = first_other.map_or_else(|| "?".into(), |e| Errno::from_raw(e).to_string());
            return Err(format!(
                "{other} mmaps failed with an errno other than EINVAL, the first with {e}"
            ));
        }
        if expect_refused && accepted > 0 {
            return Err(format!(
                "{accepted} of {forked} processes mapped a dead daemon's command buffers"
            ));
        }
        if !expect_refused && accepted == 0 {
            return Err(format!(
                "--expect=accepted: no process of {forked} hit the dead daemon's mm address"
            ));
        }
        Ok(line)
    })();
    cleanup(&s);
    result
}

fn main() -> ExitCode {
    let mut path = None;
    let mut iters = 3000;
    let mut expect_refused = true;
    for a in std::env::args().skip(1) {
        match a.split_once('=') {
            Some(("--kublk", v)) => path = Some(v.to_string()),
            Some(("--iters", v)) => iters = v.parse().unwrap_or(0),
            Some(("--expect", "refused")) => expect_refused = true,
            Some(("--expect", "accepted")) => expect_refused = false,
            _ => {
                eprintln!(
                    "usage: mm-seqid-ublk-aba --kublk=PATH [--iters=N] \
                     [--expect=refused|accepted]"
                );
                return ExitCode::from(2);
            }
        }
    }
    let Some(path) = path else {
        eprintln!("mm-seqid-ublk-aba: --kublk=PATH is required");
        return ExitCode::from(2);
    };
    if iters == 0 {
        eprintln!("mm-seqid-ublk-aba: --iters wants a positive number");
        return ExitCode::from(2);
    }
    let name = if expect_refused {
        "ublk_dead_daemon_mmap_refused"
    } else {
        "ublk_dead_daemon_mmap_accepted_without_series"
    };
    // One test, in KTAP (Documentation/dev-tools/ktap.rst).
    println!("KTAP version 1\n1..1");
    match run(&path, iters, expect_refused) {
        Ok(_) => {
            println!("ok 1 {name}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            for line in e.lines() {
                println!("# ublk-aba: {line}");
            }
            println!("not ok 1 {name}");
            ExitCode::FAILURE
        }
    }
}
