// SPDX-License-Identifier: GPL-2.0
//! Fork and exec microbenchmarks, run inside a guest by `scripts/bench`.
//!
//! `mm-seqid-bench ITERS ROUNDS` (ITERS forks, ITERS/20 execs per round) prints, for each
//! workload, one line
//! `bench WORKLOAD ns_per_op R1 R2 ...` with the time per operation of each round. The
//! workloads create a new mm per operation, so they are where `mm_init()` (and the id) costs:
//!
//! - `fork`: fork, the child `_exit`s at once, the parent waits;
//! - `fork_exec`: fork, the child execs this binary in a mode that exits at once, the parent
//!   waits;
//! - `vfork_exec`: the same with vfork semantics (`posix_spawn`).
//!
//! Scripts compare the numbers of two kernels as ratios; an absolute time means nothing here.

use std::ffi::CString;
use std::time::Instant;

fn wait(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: Waits for our own child; `status` is a valid out-pointer.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {}
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child {pid} failed: status {status:#x}"
    );
}

fn fork_once() {
    // SAFETY: The child only calls _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: Async-signal-safe exit of the child.
        unsafe { libc::_exit(0) };
    }
    wait(pid);
}

struct Exec {
    path: CString,
    argv: Vec<CString>,
}

impl Exec {
    fn new() -> Exec {
        Exec {
            path: CString::new("/proc/self/exe").unwrap(),
            argv: vec![
                CString::new("mm-seqid-bench").unwrap(),
                CString::new("--exit").unwrap(),
            ],
        }
    }

    fn ptrs(&self) -> Vec<*const libc::c_char> {
        let mut v: Vec<_> = self.argv.iter().map(|a| a.as_ptr()).collect();
        v.push(std::ptr::null());
        v
    }
}

fn fork_exec_once(e: &Exec, argv: &[*const libc::c_char]) {
    // SAFETY: The child only calls execv and _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: NULL-terminated argv of live C strings.
        unsafe {
            libc::execv(e.path.as_ptr(), argv.as_ptr());
            libc::_exit(127);
        }
    }
    wait(pid);
}

fn spawn_once(e: &Exec, argv: &[*const libc::c_char]) {
    let mut pid = 0;
    let envp: [*mut libc::c_char; 1] = [std::ptr::null_mut()];
    // SAFETY: NULL-terminated argv and envp; no file actions or attributes.
    let r = unsafe {
        libc::posix_spawn(
            &mut pid,
            e.path.as_ptr(),
            std::ptr::null(),
            std::ptr::null(),
            argv.as_ptr() as *const *mut libc::c_char,
            envp.as_ptr(),
        )
    };
    assert_eq!(r, 0, "posix_spawn failed");
    wait(pid);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--exit") {
        return;
    }
    let iters: u32 = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(2000);
    let rounds: u32 = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(5);
    let e = Exec::new();
    let argv = e.ptrs();
    // An exec costs some 50 forks (it reads the binary): fewer of them.
    let workloads: [(&str, u32, &dyn Fn()); 3] = [
        ("fork", iters, &fork_once),
        ("fork_exec", iters.div_ceil(20), &|| {
            fork_exec_once(&e, &argv)
        }),
        ("vfork_exec", iters.div_ceil(20), &|| spawn_once(&e, &argv)),
    ];
    for (name, iters, f) in workloads {
        // One warm-up round, not reported.
        for _ in 0..iters / 10 {
            f();
        }
        let mut line = format!("bench {name} ns_per_op");
        for _ in 0..rounds {
            let t0 = Instant::now();
            for _ in 0..iters {
                f();
            }
            let ns = t0.elapsed().as_nanos() / u128::from(iters);
            line.push_str(&format!(" {ns}"));
        }
        println!("{line}");
    }
}
