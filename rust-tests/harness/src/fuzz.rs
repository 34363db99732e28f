// SPDX-License-Identifier: GPL-2.0
//! Random ioctls against `/dev/rust-mm-seqid`, from several threads, while other threads fork,
//! exec and exit.
//!
//! Every result is checked against the ABI in the sample's crate doc: a command the driver does
//! not know gets `ENOTTY`; a context bound to another mm gets `EPERM`, before the pointer is
//! written to; a bad pointer gets `EFAULT` (`SET_VALUE` reads it before the owner check); the
//! rest succeed and return what the ABI says. Nothing else may come back. The kernel log is checked for splats by `scripts/boot` afterwards.
//!
//! A run is seeded: worker `w` in round `r` draws its operations from `seed`, `w` and `r` only,
//! and so does every child. The seed is printed first; `--fuzz --seed=S` (or
//! `MM_SEQID_FUZZ_SEED=S`) replays the same operations, and `--threads=1` also the same order
//! within the fuzzing threads.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mm_seqid_harness::*;
use nix::errno::Errno;
use nix::sys::mman::{MapFlags, ProtFlags};

/// How long and how hard to fuzz.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// The seed every random choice derives from.
    pub seed: u64,
    /// ioctls to issue from the fuzzing threads (children's ioctls come on top).
    pub ops: u64,
    /// Time limit: the run fails if it has not issued `ops` ioctls by then.
    pub secs: u64,
    /// Fuzzing threads; each is replaced by a new thread every [`ROUND_OPS`] ioctls.
    pub threads: usize,
    /// Threads that fork children, which issue ioctls and then exit or exec.
    pub forkers: usize,
}

/// ioctls a fuzzing thread issues before it exits and a new one takes over.
pub const ROUND_OPS: u64 = 25_000;
/// ioctls a fork child issues (before it exits or execs); an exec'd child issues twice that.
const CHILD_OPS: u64 = 64;
/// Violations after which the run stops.
const MAX_VIOLATIONS: usize = 20;

impl Config {
    /// The defaults, overridden by `MM_SEQID_FUZZ_{SEED,OPS,SECS,THREADS,FORKERS}`.
    pub fn from_env() -> Config {
        let get = |k: &str, d: u64| {
            std::env::var(k)
                .ok()
                .and_then(|v| parse_u64(&v))
                .unwrap_or(d)
        };
        Config {
            seed: get("MM_SEQID_FUZZ_SEED", fresh_seed()),
            ops: get("MM_SEQID_FUZZ_OPS", 1_000_000),
            secs: get("MM_SEQID_FUZZ_SECS", 900),
            threads: get("MM_SEQID_FUZZ_THREADS", 4).max(1) as usize,
            forkers: get("MM_SEQID_FUZZ_FORKERS", 2) as usize,
        }
    }

    /// `--seed=S --ops=N --secs=N --threads=N --forkers=N`, on top of [`Config::from_env`].
    pub fn from_args(args: &[String]) -> Result<Config, String> {
        let mut c = Config::from_env();
        for a in args {
            let (k, v) = a
                .split_once('=')
                .ok_or_else(|| format!("fuzz: expected --name=value, got {a}"))?;
            let n = parse_u64(v).ok_or_else(|| format!("fuzz: {k}: not a number: {v}"))?;
            match k {
                "--seed" => c.seed = n,
                "--ops" => c.ops = n,
                "--secs" => c.secs = n,
                "--threads" => c.threads = n.max(1) as usize,
                "--forkers" => c.forkers = n as usize,
                _ => return Err(format!("fuzz: unknown option {k}")),
            }
        }
        Ok(c)
    }
}

fn parse_u64(v: &str) -> Option<u64> {
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

fn fresh_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    Rng::new(t ^ u64::from(std::process::id()) << 32).next()
}

/// SplitMix64: small, fast, and the same sequence on every machine.
#[derive(Clone, Copy)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A generator for one stream of a run: `seed` mixed with the stream's coordinates.
    pub fn stream(seed: u64, a: u64, b: u64) -> Rng {
        let mut r = Rng(seed ^ a.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let x = r.next() ^ b.wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
        Rng(x)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Whose context it is, as the fuzzing process sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Opened by the fuzzing process; only its threads bind it. Children never bind it.
    Mine,
    /// Bound by a process that has exited, whose id this is.
    Dead(u64),
    /// Anyone may bind it: the fuzzing threads, fork children and exec'd children.
    Shared,
}

/// Who issues the ioctl.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A thread of the fuzzing process.
    Owner,
    /// A fork child of the fuzzing process, or an exec'd one; holds the parent's id.
    Other(u64),
}

/// A pointer argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ptr {
    /// An aligned, writable u64.
    Good,
    /// A writable u64 at an odd address.
    Unaligned,
    /// A read-only page.
    ReadOnly,
    /// NULL.
    Null,
    /// Below `mmap_min_addr`: never mapped.
    Low,
    /// A `PROT_NONE` page.
    ProtNone,
    /// A kernel address.
    Kernel,
    /// The last 4 bytes of a page whose next page is `PROT_NONE`.
    PageCross,
    /// A non-canonical address.
    NonCanonical,
}

impl Ptr {
    fn writable(self) -> bool {
        matches!(self, Ptr::Good | Ptr::Unaligned)
    }

    fn readable(self) -> bool {
        matches!(self, Ptr::Good | Ptr::Unaligned | Ptr::ReadOnly)
    }
}

/// The pages the pointer arguments point into, mapped once before any thread starts.
pub struct Mem {
    ro: usize,
    none: usize,
    cross: usize,
}

impl Mem {
    /// Maps the pages. They stay mapped until the process exits.
    pub fn new() -> Result<Mem, String> {
        let page = 4096;
        let map = |len, prot| {
            Mapping::anonymous(len, prot, MapFlags::MAP_PRIVATE).map_err(|e| format!("mmap: {e}"))
        };
        let ro = map(page, ProtFlags::PROT_READ)?.leak();
        let none = map(page, ProtFlags::PROT_NONE)?.leak();
        let mut two = map(2 * page, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE)?;
        two.protect(page, page, ProtFlags::PROT_NONE)
            .map_err(|e| format!("mprotect: {e}"))?;
        Ok(Mem {
            ro,
            none,
            cross: two.leak() + page - 4,
        })
    }
}

/// The commands of the ABI in the sample's crate doc, in [`abi::ALL`] order.
const GET_MM_ID: usize = 0;
const GET_OWNER: usize = 1;
const BIND: usize = 2;
const UNBIND: usize = 3;
const SET_VALUE: usize = 4;
const GET_VALUE: usize = 5;
/// Index of "a command the driver does not know" in the statistics.
const UNKNOWN: usize = 6;

/// ioctl types the VFS handles before the driver sees the command (do_vfs_ioctl() in
/// fs/ioctl.c: FIGETBSZ, the FIO* numbers, FIFREEZE/FITHAW/FS_IOC_FS*XATTR, FICLONE*,
/// FS_IOC_FIEMAP/GETFLAGS/SETFLAGS, FS_IOC_GETFSUUID/GETFSSYSFSPATH). Random commands avoid
/// them: their errnos are the VFS's, not the driver's.
const VFS_TYPES: [u32; 6] = [0x00, 0x54, b'X' as u32, 0x94, b'f' as u32, 0x15];

/// One ioctl that broke the contract. Plain data: fork children build it without allocating.
#[derive(Clone, Copy, Debug)]
pub struct Violation {
    /// The request number.
    pub cmd: u32,
    /// Index into [`abi::ALL`], or [`UNKNOWN`].
    pub which: usize,
    /// Index of the context in the pool.
    pub ctx: usize,
    /// The context's kind.
    pub kind: Kind,
    /// The pointer argument.
    pub ptr: Ptr,
    /// The return value (the u64 read back for a successful read), or `-errno`.
    pub got: i64,
    /// What was expected.
    pub want: &'static str,
}

fn cmd_name(which: usize) -> &'static str {
    abi::ALL.get(which).map_or("unknown command", |c| c.0)
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({:#x}) on context {} ({:?}) with pointer {:?}: got {}, want {}",
            cmd_name(self.which),
            self.cmd,
            self.ctx,
            self.kind,
            self.ptr,
            show(self.got),
            self.want
        )
    }
}

/// One context of the pool.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    /// Its fd, shared by all threads and inherited by children.
    pub fd: RawFd,
    /// Whose it is.
    pub kind: Kind,
}

/// Per-command result counts: ok, EPERM, EFAULT, ENOTTY.
pub type Stats = [[u64; 4]; 7];

/// Issues one random ioctl and checks the result. Allocates nothing: fork children use it.
pub fn one_op(
    rng: &mut Rng,
    mem: &Mem,
    ctxs: &[Ctx],
    role: Role,
    me: u64,
    stats: &mut Stats,
) -> Result<(), Violation> {
    let ci = rng.below(ctxs.len() as u64) as usize;
    let ctx = ctxs[ci];
    // The command.
    let roll = rng.below(100);
    let (mut cmd, mut which) = if roll < 75 {
        let w = rng.below(6) as usize;
        (abi::ALL[w].1, w)
    } else if roll < 90 {
        // Our type, a random number, direction and size.
        let nr = 0x80 + rng.below(0x30) as u32;
        let dir = rng.below(4) as u32;
        let size = [0u32, 4, 8, 16][rng.below(4) as usize];
        (abi::request(dir, nr, size), UNKNOWN)
    } else {
        let mut c = rng.next() as u32;
        while VFS_TYPES.contains(&(c >> 8 & 0xff)) {
            c ^= (rng.below(255) as u32 + 1) << 8;
        }
        (c, UNKNOWN)
    };
    if which == UNKNOWN {
        if let Some(w) = abi::ALL.iter().position(|x| x.1 == cmd) {
            which = w;
        }
    }
    // Children never bind the fuzzing process's own contexts: its threads expect to own them.
    if which == BIND && ctx.kind == Kind::Mine && role != Role::Owner {
        which = GET_OWNER;
        cmd = abi::ALL[GET_OWNER].1;
    }
    // The pointer.
    let mut buf = [0u64; 2];
    buf[0] = rng.next() >> 8;
    let base = buf.as_mut_ptr() as usize;
    let roll = rng.below(100);
    let ptr = match roll {
        0..40 => Ptr::Good,
        40..50 => Ptr::Unaligned,
        50..60 => Ptr::ReadOnly,
        60..68 => Ptr::Null,
        68..76 => Ptr::Low,
        76..84 => Ptr::ProtNone,
        84..92 => Ptr::Kernel,
        92..96 => Ptr::PageCross,
        _ => Ptr::NonCanonical,
    };
    let addr = match ptr {
        Ptr::Good => base,
        Ptr::Unaligned => base + 1 + rng.below(7) as usize,
        Ptr::ReadOnly => mem.ro + 8 * rng.below(512) as usize,
        Ptr::Null => 0,
        Ptr::Low => 0x1000 * (1 + rng.below(15) as usize) + rng.below(4096) as usize,
        Ptr::ProtNone => mem.none + rng.below(4089) as usize,
        Ptr::Kernel => {
            [
                0xffff_8880_0000_0000usize,
                0xffff_ffff_8100_0000,
                0xffff_c900_0000_0000,
                0xffff_ffff_ffff_fff8,
            ][rng.below(4) as usize]
                + 8 * rng.below(64) as usize
        }
        Ptr::PageCross => mem.cross,
        Ptr::NonCanonical => 0x0000_8000_0000_0000usize + (rng.next() as usize & 0x7fff_ffff_fff8),
    };
    // SAFETY: `ctx.fd` is one of the pool's device fds, open for the whole run; the device's
    // ioctls touch at most a u64 at `addr`, and unknown commands nothing. Good and Unaligned
    // point into `buf`, a local that lives across the call and that nothing borrows (its
    // bytes are read back below through `addr`); ReadOnly is a leaked read-only page the
    // kernel refuses to write to; PageCross runs into a leaked PROT_NONE page; Null and Low
    // (below mmap_min_addr), ProtNone, Kernel and NonCanonical are addresses the kernel
    // refuses with EFAULT.
    let res = unsafe { raw_ioctl(ctx.fd, cmd, addr) };
    let slot = match res {
        Ok(_) => 0,
        Err(Errno::EPERM) => 1,
        Err(Errno::EFAULT) => 2,
        Err(Errno::ENOTTY) => 3,
        Err(_) => 4,
    };
    // The value read back, for the reads that succeeded.
    let read = || -> u64 {
        // SAFETY: `addr` points into `buf` for Good/Unaligned, the only pointers a read
        // succeeds with.
        unsafe { std::ptr::read_unaligned(addr as *const u64) }
    };
    let got = match res {
        Ok(r) => i64::from(r),
        Err(e) => -(e as i64),
    };
    let v = |want: &'static str, got: i64| Violation {
        cmd,
        which,
        ctx: ci,
        kind: ctx.kind,
        ptr,
        got,
        want,
    };
    if slot == 4 {
        return Err(v("an errno of the ABI in the sample's crate doc", got));
    }
    stats[which][slot] += 1;
    let ptr_result = |needs: bool, got: i64| -> Result<(), Violation> {
        match (needs, slot) {
            (true, 0) | (false, 2) => Ok(()),
            (true, _) => Err(v("success (good pointer)", got)),
            (false, _) => Err(v("EFAULT (bad pointer)", got)),
        }
    };
    // Another mm's context refuses before touching the pointer.
    let refused = |allowed: bool| -> Result<bool, Violation> {
        if slot == 1 {
            if allowed {
                Ok(true)
            } else {
                Err(v("no EPERM: the caller's own or an unbound context", got))
            }
        } else {
            Ok(false)
        }
    };
    let other = matches!(role, Role::Other(_));
    let parent = match role {
        Role::Other(p) => p,
        Role::Owner => me,
    };
    match which {
        UNKNOWN => {
            if slot != 3 {
                return Err(v("ENOTTY (unknown command)", got));
            }
        }
        GET_MM_ID => {
            refused(false)?;
            ptr_result(ptr.writable(), got)?;
            if slot == 0 && read() != me {
                return Err(v("the caller's own id", read() as i64));
            }
        }
        GET_OWNER => {
            refused(false)?;
            ptr_result(ptr.writable(), got)?;
            if slot == 0 {
                let o = read();
                let fine = match ctx.kind {
                    Kind::Dead(id) => o == id,
                    // The fuzzing process's contexts: unbound or its own, never a child's.
                    Kind::Mine => o == 0 || o == parent,
                    Kind::Shared => true,
                };
                if !fine {
                    return Err(v("the owner the ABI allows for this context", o as i64));
                }
            }
        }
        BIND | UNBIND => {
            if slot == 3 || slot == 2 {
                return Err(v("0 or EPERM", got));
            }
            let may_refuse = match ctx.kind {
                Kind::Dead(_) => true,
                Kind::Mine => other,
                Kind::Shared => true,
            };
            refused(may_refuse)?;
            if let Kind::Dead(_) = ctx.kind {
                if slot == 0 {
                    return Err(v("EPERM (bound to a dead owner)", got));
                }
            }
        }
        // SET_VALUE reads its argument before the owner check: a bad pointer is EFAULT from
        // any caller.
        SET_VALUE if !ptr.readable() => ptr_result(false, got)?,
        SET_VALUE | GET_VALUE => {
            let may_refuse = match ctx.kind {
                Kind::Dead(_) => true,
                Kind::Mine => other,
                Kind::Shared => true,
            };
            if !refused(may_refuse)? {
                if let Kind::Dead(_) = ctx.kind {
                    return Err(v("EPERM (bound to a dead owner)", got));
                }
                let needs = if which == SET_VALUE {
                    ptr.readable()
                } else {
                    ptr.writable()
                };
                ptr_result(needs, got)?;
            }
        }
        _ => unreachable!(),
    }
    Ok(())
}

/// Writes a violation to stderr without allocating: fork children use it.
fn write_raw(who: &str, v: &Violation) {
    let mut out = [0u8; 256];
    let mut n = 0;
    let mut put = |s: &[u8]| {
        for &b in s {
            if n < out.len() {
                out[n] = b;
                n += 1;
            }
        }
    };
    put(who.as_bytes());
    put(b": ");
    put(cmd_name(v.which).as_bytes());
    put(b" on context ");
    put(&[b'0' + (v.ctx % 10) as u8]);
    put(b" got ");
    let mut digits = [0u8; 20];
    let mut x = v.got.unsigned_abs();
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (x % 10) as u8;
        x /= 10;
        if x == 0 {
            break;
        }
    }
    if v.got < 0 {
        put(b"-");
    }
    put(&digits[i..]);
    put(b", want ");
    put(v.want.as_bytes());
    put(b"\n");
    let _ = nix::unistd::write(std::io::stderr(), &out[..n]);
}

/// The `fuzz-exec SEED PARENT_ID FD:KIND[:ID]...` child mode: an exec'd child of a forker.
pub fn exec_child(args: &[String]) -> u8 {
    let parse = || -> Option<(u64, u64, Vec<Ctx>)> {
        let seed = parse_u64(args.first()?)?;
        let parent = parse_u64(args.get(1)?)?;
        let mut ctxs = Vec::new();
        for a in &args[2..] {
            let mut it = a.split(':');
            let fd = it.next()?.parse().ok()?;
            let kind = match it.next()? {
                "mine" => Kind::Mine,
                "shared" => Kind::Shared,
                "dead" => Kind::Dead(parse_u64(it.next()?)?),
                _ => return None,
            };
            ctxs.push(Ctx { fd, kind });
        }
        Some((seed, parent, ctxs))
    };
    let Some((seed, parent, ctxs)) = parse() else {
        eprintln!("fuzz-exec: bad arguments {args:?}");
        return 2;
    };
    let me = match raw_get_mm_id(ctxs[0].fd) {
        Ok(id) => id,
        Err(e) => {
            eprintln!("fuzz-exec: GET_MM_ID: {e}");
            return 2;
        }
    };
    if me == parent {
        eprintln!("fuzz-exec: exec'd child has its parent's id {me}");
        return 1;
    }
    let mem = match Mem::new() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("fuzz-exec: {e}");
            return 2;
        }
    };
    let mut rng = Rng::new(seed);
    let mut stats = Stats::default();
    for i in 0..2 * CHILD_OPS {
        if let Err(v) = one_op(&mut rng, &mem, &ctxs, Role::Other(parent), me, &mut stats) {
            eprintln!("fuzz-exec (seed {seed:#x}) op {i}: {v}");
            return 1;
        }
    }
    0
}

/// What a whole run did.
#[derive(Debug, Default)]
pub struct Summary {
    /// ioctls from the fuzzing threads.
    pub ops: u64,
    /// Fork children.
    pub forks: u64,
    /// Of the fork children, those that exec'd.
    pub execs: u64,
    /// Fuzzing threads started (and exited).
    pub threads: u64,
    /// Result counts per command.
    pub stats: Stats,
    /// What broke the contract.
    pub violations: Vec<String>,
    /// Wall time.
    pub secs: f64,
}

/// Opens the pool: 3 contexts of our own (one bound at the start), 2 bound to dead owners,
/// 2 shared with children.
fn pool() -> Result<(Vec<OwnedFd>, Vec<Ctx>), String> {
    let mut fds = Vec::new();
    let mut ctxs = Vec::new();
    for i in 0..3 {
        let d = Dev::open()?;
        if i == 0 {
            d.bind().map_err(|e| format!("BIND: {e}"))?;
        }
        let fd = d.into_owned();
        ctxs.push(Ctx {
            fd: fd.as_raw_fd(),
            kind: Kind::Mine,
        });
        fds.push(fd);
    }
    for _ in 0..2 {
        let (fd, id) = dead_owner_fd()?;
        ctxs.push(Ctx {
            fd: fd.as_raw_fd(),
            kind: Kind::Dead(id),
        });
        fds.push(fd);
    }
    for _ in 0..2 {
        let fd = Dev::open()?.into_owned();
        ctxs.push(Ctx {
            fd: fd.as_raw_fd(),
            kind: Kind::Shared,
        });
        fds.push(fd);
    }
    Ok((fds, ctxs))
}

/// A context bound by a child that has exited, and that child's id.
pub fn dead_owner_fd() -> Result<(OwnedFd, u64), String> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| format!("socketpair: {e}"))?;
    let pid =
        SelfExec::new("owner-send", &[theirs.as_raw_fd().to_string()]).spawn(&[theirs.as_fd()]);
    drop(theirs);
    let got = recv_fd(ours.as_raw_fd());
    let code = wait_exit(pid)?;
    if code != 0 {
        return Err(format!("owner-send child exited {code}"));
    }
    got
}

fn ctx_arg(c: &Ctx) -> String {
    match c.kind {
        Kind::Mine => format!("{}:mine", c.fd),
        Kind::Shared => format!("{}:shared", c.fd),
        Kind::Dead(id) => format!("{}:dead:{id}", c.fd),
    }
}

/// Runs the fuzzer. Prints the seed first, then a summary.
pub fn run(cfg: Config) -> Result<Summary, String> {
    println!(
        "fuzz: seed={:#x} ops={} secs={} threads={} forkers={} (replay: mm-seqid-harness --fuzz \
         --seed={:#x} --ops={} --threads={})",
        cfg.seed, cfg.ops, cfg.secs, cfg.threads, cfg.forkers, cfg.seed, cfg.ops, cfg.threads
    );
    let mem = Arc::new(Mem::new()?);
    let (_fds, ctxs) = pool()?;
    let ctxs: Arc<[Ctx]> = ctxs.into();
    let me = raw_get_mm_id(ctxs[0].fd).map_err(|e| format!("GET_MM_ID: {e}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let violations = Arc::new(Mutex::new(Vec::<String>::new()));
    let deadline = Instant::now() + Duration::from_secs(cfg.secs);
    let t0 = Instant::now();

    // Forkers: children issue ioctls as another mm, then exit or exec.
    let forkers: Vec<_> = (0..cfg.forkers)
        .map(|f| {
            let (mem, ctxs, stop, violations) =
                (mem.clone(), ctxs.clone(), stop.clone(), violations.clone());
            std::thread::spawn(move || -> (u64, u64) {
                let (mut forks, mut execs) = (0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    let mut rng = Rng::stream(cfg.seed, 1000 + f as u64, forks);
                    let child_seed = rng.next();
                    let exec = rng.below(2) == 0;
                    let mut args = vec![format!("{child_seed:#x}"), me.to_string()];
                    args.extend(ctxs.iter().map(ctx_arg));
                    let se = SelfExec::new("fuzz-exec", &args);
                    let ptrs = se.argv_ptrs();
                    let child = || {
                        let mut crng = Rng::new(child_seed);
                        let mut st = Stats::default();
                        let Ok(cid) = raw_get_mm_id(ctxs[0].fd) else {
                            return 3;
                        };
                        if cid == me {
                            return 4;
                        }
                        for _ in 0..CHILD_OPS {
                            if let Err(v) =
                                one_op(&mut crng, &mem, &ctxs, Role::Other(me), cid, &mut st)
                            {
                                write_raw("fuzz fork child", &v);
                                return 1;
                            }
                        }
                        if exec {
                            // The dead owners' fds came with MSG_CMSG_CLOEXEC.
                            for c in ctxs.iter() {
                                // SAFETY: The pool's fds stay open for the whole run.
                                keep_fd(unsafe { BorrowedFd::borrow_raw(c.fd) });
                            }
                            se.exec(&ptrs) as i32 + 100
                        } else {
                            0
                        }
                    };
                    // SAFETY: A child of a multithreaded process: `child` makes raw ioctls
                    // and fcntls on stack data, writes a violation with write(), and execs
                    // with an argv built before the fork or returns to _exit: no allocation,
                    // no locks.
                    let pid = unsafe { fork_child(child) };
                    forks += 1;
                    execs += u64::from(exec);
                    match wait_exit(pid) {
                        Ok(0) => {}
                        Ok(code) => violations.lock().unwrap().push(format!(
                            "forker {f} child {forks} ({}, seed {child_seed:#x}) exited {code}",
                            if exec { "exec'd" } else { "fork only" }
                        )),
                        Err(e) => violations
                            .lock()
                            .unwrap()
                            .push(format!("forker {f} child {forks}: {e}")),
                    }
                }
                (forks, execs)
            })
        })
        .collect();

    // Fuzzing threads, replaced every ROUND_OPS ioctls.
    let mut stats = Stats::default();
    let mut threads = 0u64;
    let mut round = 0u64;
    let per_round = ROUND_OPS * cfg.threads as u64;
    let rounds = cfg.ops.div_ceil(per_round);
    while round < rounds && Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        let workers: Vec<_> = (0..cfg.threads)
            .map(|w| {
                let (mem, ctxs, stop, ops, violations) = (
                    mem.clone(),
                    ctxs.clone(),
                    stop.clone(),
                    ops.clone(),
                    violations.clone(),
                );
                std::thread::spawn(move || -> Stats {
                    let mut rng = Rng::stream(cfg.seed, w as u64, round);
                    let mut st = Stats::default();
                    for i in 0..ROUND_OPS {
                        if i % 1024 == 0
                            && (stop.load(Ordering::Relaxed) || Instant::now() >= deadline)
                        {
                            break;
                        }
                        if let Err(v) = one_op(&mut rng, &mem, &ctxs, Role::Owner, me, &mut st) {
                            let mut vs = violations.lock().unwrap();
                            vs.push(format!("worker {w} round {round} op {i}: {v}"));
                            if vs.len() >= MAX_VIOLATIONS {
                                stop.store(true, Ordering::Relaxed);
                            }
                        }
                        ops.fetch_add(1, Ordering::Relaxed);
                    }
                    st
                })
            })
            .collect();
        for w in workers {
            let st = w
                .join()
                .map_err(|_| "a fuzzing thread panicked".to_string())?;
            threads += 1;
            for (a, b) in stats.iter_mut().zip(st.iter()) {
                for (x, y) in a.iter_mut().zip(b.iter()) {
                    *x += y;
                }
            }
        }
        round += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let (mut forks, mut execs) = (0, 0);
    for f in forkers {
        let (a, b) = f
            .join()
            .map_err(|_| "a forker thread panicked".to_string())?;
        forks += a;
        execs += b;
    }
    let summary = Summary {
        ops: ops.load(Ordering::Relaxed),
        forks,
        execs,
        threads,
        stats,
        violations: std::mem::take(&mut violations.lock().unwrap()),
        secs: t0.elapsed().as_secs_f64(),
    };
    println!(
        "fuzz: {} ioctls from {} threads in {:.1}s, {} fork children ({} exec'd), seed {:#x}",
        summary.ops, summary.threads, summary.secs, summary.forks, summary.execs, cfg.seed
    );
    println!(
        "fuzz: {:<24} {:>9} {:>9} {:>9} {:>9}",
        "command", "ok", "EPERM", "EFAULT", "ENOTTY"
    );
    for (i, s) in summary.stats.iter().enumerate() {
        println!(
            "fuzz: {:<24} {:>9} {:>9} {:>9} {:>9}",
            cmd_name(i),
            s[0],
            s[1],
            s[2],
            s[3]
        );
    }
    for v in &summary.violations {
        println!("fuzz: VIOLATION {v}");
    }
    Ok(summary)
}

/// The checks a run must pass.
pub fn verdict(cfg: &Config, s: &Summary) -> Result<(), String> {
    if !s.violations.is_empty() {
        return Err(format!(
            "{} contract violation(s), first: {}; replay with --fuzz --seed={:#x}",
            s.violations.len(),
            s.violations[0],
            cfg.seed
        ));
    }
    if s.ops < cfg.ops {
        return Err(format!(
            "only {} of {} ioctls in the {} s limit (seed {:#x}): raise MM_SEQID_FUZZ_SECS",
            s.ops, cfg.ops, cfg.secs, cfg.seed
        ));
    }
    if cfg.forkers > 0 && (s.forks == 0 || s.execs == 0) {
        return Err(format!(
            "no fork or exec ran alongside: {} forks, {} execs",
            s.forks, s.execs
        ));
    }
    // Every kind of outcome must have been reached, or the fuzzer tests less than it claims.
    let st = &s.stats;
    let reached = [
        ("a successful read", st[GET_VALUE][0]),
        ("EPERM on a value", st[GET_VALUE][1] + st[SET_VALUE][1]),
        ("EFAULT", st[GET_MM_ID][2]),
        ("ENOTTY", st[UNKNOWN][3]),
        ("BIND", st[BIND][0]),
        ("UNBIND", st[UNBIND][0]),
    ];
    for (what, n) in reached {
        if n == 0 {
            return Err(format!(
                "the run never reached {what} (seed {:#x})",
                cfg.seed
            ));
        }
    }
    Ok(())
}
