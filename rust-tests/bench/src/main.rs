// SPDX-License-Identifier: GPL-2.0
//! Fork and exec microbenchmarks, run inside a guest by `scripts/bench`.
//!
//! `mm-seqid-bench ITERS ROUNDS` (ITERS forks, ITERS/20 execs per round, ITERS/5 with `--exec`;
//! default 2000 and 5) prints, for each
//! workload, one line
//! `bench WORKLOAD ns_per_op R1 R2 ...` with the time per operation of each round. The
//! workloads create a new mm per operation, so they are where `mm_init()` (and the id) costs:
//!
//! - `fork`: fork, the child `_exit`s at once, the parent waits;
//! - `fork_exec`: fork, the child execs this binary in a mode that exits at once, the parent
//!   waits;
//! - `vfork_exec`: the same with vfork semantics (`posix_spawn`);
//! - `thread`: pthread_create + join, which shares the mm (a control: no new id);
//! - `fork_all_cpus`: one worker process per CPU, each pinned to its CPU and single-threaded,
//!   all forking and waiting at once; the time per fork over all of them. Without KVM this
//!   is not contention: TCG under `-icount` runs one vCPU at a time, and two vCPUs could not
//!   show much anyway; it shows that concurrent forks cost no more with the series.
//!
//! `--exec=PATH` (before ITERS): the exec workloads run PATH instead of this binary, from a copy
//! on a tmpfs (`/dev/shm`, removed at the end), and are named `fork_exec_static` and
//! `vfork_exec_static`: `scripts/bench` passes a static program that only exits
//! (`bench/exit/exit.c`), so that under `-icount` an exec costs what the kernel does, not the
//! 9p reads of a large binary from the host root.
//!
//! `mm-seqid-bench --ioctl ITERS ROUNDS` times `MM_SEQID_IOC_GET_VALUE` on contexts of
//! `/dev/rust-mm-seqid`, rounds interleaved, one line each: `ioctl_bound` (bound by mm id, the
//! sample's check), `ioctl_unbound`, and, in a kernel built with `bench/sample-peer.patch`
//! (kernels bench-check and bench-check-llvm of `scripts/bench`), the check drivers write today:
//! `ioctl_bound_ptr` (the owner's mm by address, not pinned: the ABA) and `ioctl_bound_ptr_pinned`
//! (the same with a reference on the mm, as KVM holds). Where the kernel does not have the
//! bench-only ioctls (`ENOTTY`), the two pointer lines are left out.
//!
//! Scripts compare the numbers of two kernels as ratios; an absolute time means nothing here.
//!
//! The ioctl numbers are the harness's ([`mm_seqid_harness::abi`]). Fork children call
//! `execv()` and `_exit()` through libc: `_exit()` is not in nix, and nix's `execv()` would
//! build its argv array on the heap in the child, inside the timed loop. `vfork_exec` calls
//! libc's `posix_spawn()` for the same reason: nix's allocates argv and envp on every call.

use std::ffi::CString;
use std::time::Instant;

use mm_seqid_harness::{raw_bind, raw_get_value, raw_ioctl, Dev, MAGIC};
use nix::errno::Errno;
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
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

    /// `path`, copied to a tmpfs first.
    fn tmpfs_copy(path: &str) -> Exec {
        let copy = format!("/dev/shm/mm-seqid-exit.{}", std::process::id());
        let copy = copy.as_str();
        std::fs::copy(path, copy).unwrap_or_else(|e| panic!("copy {path} to {copy}: {e}"));
        std::fs::set_permissions(copy, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap_or_else(|e| panic!("chmod {copy}: {e}"));
        Exec {
            path: CString::new(copy).unwrap(),
            argv: vec![CString::new("mm-seqid-exit").unwrap()],
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

/// The CPUs this process may run on.
fn cpus() -> Vec<usize> {
    let set = sched_getaffinity(Pid::from_raw(0)).expect("sched_getaffinity");
    (0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect()
}

/// `per` forks in each of one worker process per CPU, each pinned to its CPU, all started at
/// once. Processes, not threads: forking threads of one process would queue on that process's
/// mmap lock in `dup_mmap()`, not meet at the id counter. Called from a single-threaded
/// process, so the workers may allocate.
fn fork_all_cpus(cpus: &[usize], per: u32) {
    let (start_r, start_w) = nix::unistd::pipe().expect("pipe");
    let mut workers = vec![];
    for &cpu in cpus {
        // SAFETY: The bench is single-threaded here (thread_once joins its thread), so the
        // worker may do anything the parent could.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                drop(start_w);
                let mut set = CpuSet::new();
                let pinned =
                    set.set(cpu).is_ok() && sched_setaffinity(Pid::from_raw(0), &set).is_ok();
                // Wait for the start: the parent closes its end.
                let mut b = [0u8; 1];
                let _ = nix::unistd::read(&start_r, &mut b);
                for _ in 0..per {
                    fork_once();
                }
                // SAFETY: _exit ends the worker without running the parent's destructors.
                unsafe { libc::_exit(if pinned { 0 } else { 1 }) }
            }
            ForkResult::Parent { child } => workers.push(child),
        }
    }
    drop(start_r);
    drop(start_w);
    for w in workers {
        wait(w);
    }
}

fn open_dev() -> Dev {
    Dev::open().unwrap_or_else(|e| panic!("{e}"))
}

fn get_value(fd: libc::c_int) {
    raw_get_value(fd).expect("GET_VALUE failed");
}

/// The bench-only ioctls of `bench/sample-peer.patch`: bind by the address of the caller's mm,
/// without (0x9e) and with (0x9f) a reference on it. Not part of the sample's ABI.
const BENCH_BIND_PTR: u32 = nix::request_code_none!(MAGIC, 0x9e) as u32;
const BENCH_BIND_PTR_PINNED: u32 = nix::request_code_none!(MAGIC, 0x9f) as u32;

/// A context bound with one of the bench-only ioctls; `None` if the kernel does not have them.
fn bench_bound(request: u32) -> Option<Dev> {
    let dev = open_dev();
    // SAFETY: the request takes no argument.
    match unsafe { raw_ioctl(dev.raw(), request, 0) } {
        Ok(_) => Some(dev),
        Err(Errno::ENOTTY) => None,
        Err(e) => panic!("bench-only bind {request:#x}: {e}"),
    }
}

/// `--ioctl ITERS ROUNDS`: GET_VALUE on each kind of context, rounds interleaved.
fn ioctl_bench(iters: u32, rounds: u32) {
    let bound = open_dev();
    raw_bind(bound.raw()).expect("BIND failed");
    let mut devs = vec![("ioctl_bound", bound), ("ioctl_unbound", open_dev())];
    for (name, request) in [
        ("ioctl_bound_ptr", BENCH_BIND_PTR),
        ("ioctl_bound_ptr_pinned", BENCH_BIND_PTR_PINNED),
    ] {
        if let Some(dev) = bench_bound(request) {
            devs.push((name, dev));
        }
    }
    let time = |fd| {
        let t0 = Instant::now();
        for _ in 0..iters {
            get_value(fd);
        }
        (t0.elapsed().as_nanos() / u128::from(iters)).to_string()
    };
    for _ in 0..iters {
        for (_, dev) in &devs {
            get_value(dev.raw());
        }
    }
    let mut times = vec![vec![]; devs.len()];
    for _ in 0..rounds {
        for ((_, dev), t) in devs.iter().zip(&mut times) {
            t.push(time(dev.raw()));
        }
    }
    for ((name, _), t) in devs.iter().zip(&times) {
        println!("bench {name} ns_per_op {}", t.join(" "));
    }
}

/// Argument `i` as a positive count, `default` if absent; anything else ends the program.
fn count(args: &[String], i: usize, default: u32) -> u32 {
    match args.get(i) {
        None => default,
        Some(v) => match v.parse() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("mm-seqid-bench: argument {i} must be a positive count, got '{v}'");
                std::process::exit(2);
            }
        },
    }
}

fn main() {
    let mut args: Vec<String> = std::env::args().collect();
    let (exec, suffix) = match args.get(1).and_then(|a| a.strip_prefix("--exec=")) {
        Some(path) => {
            let e = Exec::tmpfs_copy(path);
            args.remove(1);
            (e, "_static")
        }
        None => (Exec::new(), ""),
    };
    if args.get(1).map(String::as_str) == Some("--exit") {
        return;
    }
    if args.get(1).map(String::as_str) == Some("--ioctl") {
        let iters = count(&args, 2, 100_000);
        let rounds = count(&args, 3, 5);
        ioctl_bench(iters, rounds);
        return;
    }
    // What the kernel allocates per mm (the slab's object size, padding included).
    match std::fs::read_to_string("/sys/kernel/slab/mm_struct/object_size") {
        Ok(v) => println!("slab mm_struct object_size {}", v.trim()),
        Err(e) => println!("slab mm_struct object_size unknown ({e})"),
    }
    let iters = count(&args, 1, 2000);
    let rounds = count(&args, 2, 5);
    let e = exec;
    let argv = e.ptrs();
    let cpus = cpus();
    let per_cpu = iters.div_ceil(cpus.len() as u32);
    let (fork_exec, vfork_exec) = (format!("fork_exec{suffix}"), format!("vfork_exec{suffix}"));
    // An exec of the bench binary costs some 50 forks (it reads the binary over 9p), one of
    // the static program a few: a fifth of the calls.
    let exec_calls = iters.div_ceil(if suffix.is_empty() { 20 } else { 5 });
    // (name, calls per round, operations per call, call); the storm last, after the others'
    // children are gone.
    let workloads: [(&str, u32, u32, &dyn Fn()); 5] = [
        ("fork", iters, 1, &fork_once),
        ("thread", iters, 1, &thread_once),
        (&fork_exec, exec_calls, 1, &|| fork_exec_once(&e, &argv)),
        (&vfork_exec, exec_calls, 1, &|| spawn_once(&e, &argv)),
        ("fork_all_cpus", 1, per_cpu * cpus.len() as u32, &|| {
            fork_all_cpus(&cpus, per_cpu)
        }),
    ];
    for (name, calls, ops, f) in workloads {
        // A warm-up of a tenth of a round, not reported (none for the storm: one call is a
        // round).
        for _ in 0..calls / 10 {
            f();
        }
        let mut line = format!("bench {name} ns_per_op");
        for _ in 0..rounds {
            let t0 = Instant::now();
            for _ in 0..calls {
                f();
            }
            let ns = t0.elapsed().as_nanos() / u128::from(calls * ops);
            line.push_str(&format!(" {ns}"));
        }
        println!("{line}");
    }
    if !suffix.is_empty() {
        let _ = std::fs::remove_file(e.path.to_string_lossy().as_ref());
    }
}
