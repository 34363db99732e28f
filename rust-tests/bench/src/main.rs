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

fn thread_once() {
    std::thread::spawn(|| ()).join().unwrap();
}

/// `MM_SEQID_IOC_GET_VALUE`: `_IOR('|', 0x95, __u64)`.
const GET_VALUE: libc::c_ulong = (2 << 30) | (8 << 16) | ((b'|' as libc::c_ulong) << 8) | 0x95;
/// `MM_SEQID_IOC_BIND`: `_IO('|', 0x92)`.
const BIND: libc::c_ulong = ((b'|' as libc::c_ulong) << 8) | 0x92;

fn open_dev() -> libc::c_int {
    // SAFETY: A NUL-terminated path.
    let fd = unsafe { libc::open(c"/dev/rust-mm-seqid".as_ptr(), libc::O_RDWR) };
    assert!(
        fd >= 0,
        "open /dev/rust-mm-seqid: needs CONFIG_SAMPLE_RUST_MM_SEQID=y"
    );
    fd
}

fn get_value(fd: libc::c_int) {
    let mut v = 0u64;
    // SAFETY: `v` is a valid u64 for the kernel to write.
    let r = unsafe { libc::ioctl(fd, GET_VALUE as _, &mut v) };
    assert_eq!(r, 0, "GET_VALUE failed");
}

/// `--ioctl ITERS ROUNDS`: GET_VALUE on a bound and on an unbound context, rounds interleaved.
fn ioctl_bench(iters: u32, rounds: u32) {
    let unbound = open_dev();
    let bound = open_dev();
    // SAFETY: BIND takes no argument.
    assert_eq!(unsafe { libc::ioctl(bound, BIND as _) }, 0, "BIND failed");
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

#[cfg(test)]
mod tests {
    #[test]
    fn ioctl_numbers_match_the_harness() {
        use mm_seqid_harness::ioctl;
        assert_eq!(super::GET_VALUE, libc::c_ulong::from(ioctl::GET_VALUE));
        assert_eq!(super::BIND, libc::c_ulong::from(ioctl::BIND));
    }
}
