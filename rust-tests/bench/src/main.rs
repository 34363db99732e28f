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
//! - `vfork_exec`: the same with vfork semantics (`posix_spawn`);
//! - `thread`: pthread_create + join, which shares the mm (a control: no new id).
//!
//! `mm-seqid-bench --ioctl ITERS ROUNDS` times `MM_SEQID_IOC_GET_VALUE` on a bound and on an
//! unbound context of `/dev/rust-mm-seqid`, rounds interleaved, one line each.
//!
//! Scripts compare the numbers of two kernels as ratios; an absolute time means nothing here.
//!
//! The ioctl numbers are the harness's ([`mm_seqid_harness::abi`]). Fork children call
//! `execv()` and `_exit()` through libc: `_exit()` is not in nix, and nix's `execv()` would
//! build its argv array on the heap in the child, inside the timed loop. `vfork_exec` calls
//! libc's `posix_spawn()` for the same reason: nix's allocates argv and envp on every call.

use std::ffi::CString;
use std::time::Instant;

use mm_seqid_harness::{raw_bind, raw_get_value, Dev};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

fn wait(pid: Pid) {
    let status = loop {
        match waitpid(pid, None) {
            Ok(s) => break s,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => panic!("waitpid({pid}): {e}"),
        }
    };
    assert!(
        status == WaitStatus::Exited(pid, 0),
        "child {pid} failed: {status:?}"
    );
}

/// Forks a child that execs `exec` if given, else exits at once; waits for it.
fn fork_wait(exec: Option<(&Exec, &[*const libc::c_char])>) {
    // SAFETY: The child only calls execv and _exit, both async-signal-safe.
    match unsafe { fork() }.expect("fork") {
        // SAFETY: `argv` is a NULL-terminated array of C strings that `e` keeps alive;
        // _exit ends the child without running the parent's destructors.
        ForkResult::Child => unsafe {
            if let Some((e, argv)) = exec {
                libc::execv(e.path.as_ptr(), argv.as_ptr());
                libc::_exit(127);
            }
            libc::_exit(0)
        },
        ForkResult::Parent { child } => wait(child),
    }
}

fn fork_once() {
    fork_wait(None);
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
    fork_wait(Some((e, argv)));
}

/// posix_spawn with libc's call: nix's builds argv and envp arrays on the heap on every call,
/// inside the timed loop. `argv` comes from [`Exec::ptrs`], built before the loop.
fn spawn_once(e: &Exec, argv: &[*const libc::c_char]) {
    let mut pid = 0;
    let envp: [*mut libc::c_char; 1] = [std::ptr::null_mut()];
    // SAFETY: `e.path` is a C string; `argv` is a NULL-terminated array of pointers to the C
    // strings `e` keeps alive, and `envp` an empty NULL-terminated array, both live across
    // the call (posix_spawn copies what the child needs before it returns); NULL file actions
    // and attributes mean none. posix_spawn does not write through argv or envp, whatever
    // its C prototype says.
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
    assert_eq!(
        r,
        0,
        "posix_spawn failed: {}",
        nix::errno::Errno::from_raw(r)
    );
    wait(Pid::from_raw(pid));
}

fn thread_once() {
    std::thread::spawn(|| ()).join().unwrap();
}

fn open_dev() -> Dev {
    Dev::open().unwrap_or_else(|e| panic!("{e}"))
}

fn get_value(fd: libc::c_int) {
    raw_get_value(fd).expect("GET_VALUE failed");
}

/// `--ioctl ITERS ROUNDS`: GET_VALUE on a bound and on an unbound context, rounds interleaved.
fn ioctl_bench(iters: u32, rounds: u32) {
    let unbound_dev = open_dev();
    let bound_dev = open_dev();
    let (unbound, bound) = (unbound_dev.raw(), bound_dev.raw());
    raw_bind(bound).expect("BIND failed");
    let time = |fd| {
        let t0 = Instant::now();
        for _ in 0..iters {
            get_value(fd);
        }
        (t0.elapsed().as_nanos() / u128::from(iters)).to_string()
    };
    for _ in 0..iters {
        get_value(bound);
        get_value(unbound);
    }
    let (mut b, mut u) = (vec![], vec![]);
    for _ in 0..rounds {
        b.push(time(bound));
        u.push(time(unbound));
    }
    println!("bench ioctl_bound ns_per_op {}", b.join(" "));
    println!("bench ioctl_unbound ns_per_op {}", u.join(" "));
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--exit") {
        return;
    }
    if args.get(1).map(String::as_str) == Some("--ioctl") {
        let iters = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(100_000);
        let rounds = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(5);
        ioctl_bench(iters, rounds);
        return;
    }
    // What the kernel allocates per mm (the slab's object size, padding included).
    match std::fs::read_to_string("/sys/kernel/slab/mm_struct/object_size") {
        Ok(v) => println!("slab mm_struct object_size {}", v.trim()),
        Err(e) => println!("slab mm_struct object_size unknown ({e})"),
    }
    let iters: u32 = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(2000);
    let rounds: u32 = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(5);
    let e = Exec::new();
    let argv = e.ptrs();
    // An exec costs some 50 forks (it reads the binary): fewer of them.
    let workloads: [(&str, u32, &dyn Fn()); 4] = [
        ("fork", iters, &fork_once),
        ("thread", iters, &thread_once),
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
