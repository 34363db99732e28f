// SPDX-License-Identifier: GPL-2.0
//! Userspace side of the mm sequence id tests.
//!
//! The ioctl ABI of `/dev/rust-mm-seqid` ([`abi`]), what children report ([`report`]), and
//! the process plumbing the tests need: children that do only async-signal-safe work, the
//! test binary re-executed in a child mode, file descriptors passed over unix sockets and
//! taken with `pidfd_getfd()`, memory mapped for bad pointers and shared counters.
//!
//! # Raw libc
//!
//! The crates use nix wherever it has the call. They call libc themselves only where:
//!
//! - nix lacks the call: `_exit()`, `pidfd_open()` and `pidfd_getfd()`, and an ioctl with an
//!   arbitrary request ([`raw_ioctl`]);
//! - nix's call is not async-signal-safe, and the caller is a fork child of a multithreaded
//!   parent (tests, fuzzer forkers) or a timed loop (bench): `nix::unistd::execv()` builds
//!   its argv array on the heap, so [`SelfExec`] prepares the array before fork and calls
//!   `execv()`;
//! - nix's wrapper is unsound for the use: `nix::sched::clone()` hands the child a pointer to
//!   a callback box that it frees when it returns in the parent, which a `CLONE_VM` child
//!   without `CLONE_VFORK` may still be running (nix issue 360), so the `CLONE_VM` tests call
//!   `clone()` themselves.

pub mod abi;
pub mod report;

pub use abi::*;
pub use report::*;

use std::ffi::{CStr, CString};
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicI32;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::mman::{MapFlags, ProtFlags};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, pipe2, ForkResult, Pid};

/// A pipe whose ends are closed on exec unless passed with [`keep_fd`].
pub fn pipe() -> (OwnedFd, OwnedFd) {
    pipe2(OFlag::O_CLOEXEC).expect("pipe2")
}

/// Clears `FD_CLOEXEC`; async-signal-safe.
///
/// ```
/// let (r, _w) = mm_seqid_harness::pipe();
/// mm_seqid_harness::keep_fd(std::os::fd::AsFd::as_fd(&r));
/// ```
///
/// A bare number is not an fd this process holds:
///
/// ```compile_fail
/// mm_seqid_harness::keep_fd(3);
/// ```
pub fn keep_fd(fd: BorrowedFd<'_>) {
    let _ = fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()));
}

/// Sets up a child right after fork; async-signal-safe. `parent` is the pid of the process
/// that forked, read before the fork.
///
/// The child dies with the test process, so a failed test leaves no orphan. If the parent
/// died before `PR_SET_PDEATHSIG` took effect, the signal will never come: the child exits.
pub fn child_setup(parent: Pid) {
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    if nix::unistd::getppid() != parent {
        // SAFETY: _exit() ends the child without running the parent's destructors.
        unsafe { libc::_exit(125) }
    }
}

/// Forks a child that runs `f` and exits with its return value.
///
/// ```
/// // SAFETY: The child only returns 3: async-signal-safe.
/// let pid = unsafe { mm_seqid_harness::fork_child(|| 3) };
/// assert_eq!(mm_seqid_harness::wait_exit(pid), Ok(3));
/// ```
///
/// ```compile_fail
/// let pid = mm_seqid_harness::fork_child(|| 3);
/// ```
///
/// # Safety
///
/// `f` runs in the child of a possibly multithreaded process, where another thread may have
/// held a lock (the allocator's, stdio's) at the fork: unless the calling process has no
/// other thread, `f` must do only async-signal-safe work (raw system calls, no allocation,
/// no locks). This is why `fork()` itself is unsafe.
pub unsafe fn fork_child<F: FnOnce() -> i32>(f: F) -> Pid {
    let parent = nix::unistd::getpid();
    // SAFETY: The child only runs child_setup() (async-signal-safe) and `f`, which the
    // caller keeps async-signal-safe, then _exits.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            child_setup(parent);
            let code = f();
            // SAFETY: _exit() ends the child without running the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => child,
    }
}

/// Waits for a child and returns its exit status; a signal death is an error.
pub fn wait_exit(pid: Pid) -> Result<i32, String> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                return Err(format!("child {pid} killed by {sig:?}"))
            }
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(format!("waitpid({pid}): {e}")),
        }
    }
}

/// A fork child that sends one [`Report`] over a pipe of its own, then exits.
pub struct Reporter {
    pid: Pid,
    pipe: OwnedFd,
}

impl Reporter {
    /// Forks a child that reports what `f` returns.
    ///
    /// # Safety
    ///
    /// As for [`fork_child`]: unless the calling process has no other thread, `f` must do
    /// only async-signal-safe work.
    pub unsafe fn fork<F: FnOnce() -> Report>(f: F) -> Reporter {
        let (r, w) = pipe();
        // SAFETY: `f` is async-signal-safe (our caller's contract); so is writing a report.
        let pid = unsafe { fork_child(|| i32::from(!f().write_to(&w))) };
        drop(w);
        Reporter { pid, pipe: r }
    }

    /// Waits for the child: its report, or why it sent none.
    pub fn report(self, who: &str) -> Result<Report, String> {
        let got = Report::read_all(&self.pipe);
        let code = wait_exit(self.pid)?;
        if code != 0 {
            return Err(format!("{who} exited {code}"));
        }
        match got[..] {
            [r] => Ok(r),
            _ => Err(format!("{who}: expected 1 report, got {got:?}")),
        }
    }
}

/// Forks a child that reports what `f` returns, and waits for that report.
///
/// # Safety
///
/// As for [`fork_child`]: unless the calling process has no other thread, `f` must do only
/// async-signal-safe work.
pub unsafe fn fork_report<F: FnOnce() -> Report>(who: &str, f: F) -> Result<Report, String> {
    // SAFETY: Our caller's contract is Reporter::fork's.
    unsafe { Reporter::fork(f) }.report(who)
}

/// The argv marker that puts the test binary in a child mode.
pub const CHILD_MODE: &str = "--mm-seqid-child";

/// An exec of the test binary in a child mode, prepared before fork so that the
/// child allocates nothing.
pub struct SelfExec {
    argv: Vec<CString>,
}

impl SelfExec {
    /// `/proc/self/exe --mm-seqid-child MODE ARGS...`.
    pub fn new(mode: &str, args: &[String]) -> SelfExec {
        let mut argv = vec![
            CString::new("mm-seqid-harness").unwrap(),
            CString::new(CHILD_MODE).unwrap(),
            CString::new(mode).unwrap(),
        ];
        argv.extend(args.iter().map(|a| CString::new(a.as_str()).unwrap()));
        SelfExec { argv }
    }

    /// The path this execs.
    pub const PATH: &CStr = c"/proc/self/exe";

    /// The arguments, for a spawn that builds its own argv array.
    pub fn args(&self) -> &[CString] {
        &self.argv
    }

    /// Execs with `argv` (from [`SelfExec::argv_ptrs`]); returns the errno only if execve
    /// failed. Async-signal-safe.
    pub fn exec(&self, argv: &Argv<'_>) -> Errno {
        // SAFETY: `argv.ptrs` is a NULL-terminated array of pointers to the C strings of a
        // SelfExec that the lifetime of `argv` keeps alive (only argv_ptrs() builds one).
        unsafe { libc::execv(SelfExec::PATH.as_ptr(), argv.ptrs.as_ptr()) };
        Errno::last()
    }

    /// The argv pointer array for [`SelfExec::exec`], built before fork.
    pub fn argv_ptrs(&self) -> Argv<'_> {
        let mut ptrs: Vec<_> = self.argv.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        Argv {
            ptrs,
            _strings: PhantomData,
        }
    }

    /// Forks and execs, keeping `keep` open across the exec. A child whose execve failed
    /// exits with 100 + errno.
    pub fn spawn(&self, keep: &[BorrowedFd<'_>]) -> Pid {
        let ptrs = self.argv_ptrs();
        // SAFETY: The child only clears FD_CLOEXEC, execs and _exits, all async-signal-safe;
        // the argv array was built before the fork.
        unsafe {
            fork_child(|| {
                for &fd in keep {
                    keep_fd(fd);
                }
                let e = self.exec(&ptrs);
                e as i32 + 100
            })
        }
    }
}

/// The argv array of a [`SelfExec`], NULL-terminated, borrowing its strings: only
/// [`SelfExec::argv_ptrs`] builds one, so [`SelfExec::exec`] never sees a dangling pointer.
///
/// ```compile_fail
/// let e = mm_seqid_harness::SelfExec::new("report", &[]);
/// e.exec(&[std::ptr::null()]);
/// ```
///
/// ```compile_fail
/// let argv = mm_seqid_harness::SelfExec::new("report", &[]).argv_ptrs();
/// // The SelfExec, and the strings the pointers point to, are gone here.
/// drop(argv);
/// ```
pub struct Argv<'a> {
    ptrs: Vec<*const libc::c_char>,
    _strings: PhantomData<&'a SelfExec>,
}

/// Sends `fd` and a u64 over a unix socket with SCM_RIGHTS.
pub fn send_fd(sock: RawFd, fd: RawFd, data: u64) -> Result<(), Errno> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let bytes = data.to_ne_bytes();
    let iov = [std::io::IoSlice::new(&bytes)];
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(sock, &iov, &cmsg, MsgFlags::empty(), None).map(drop)
}

/// Receives an fd and a u64 sent by [`send_fd`], checking that nothing was cut off.
pub fn recv_fd(sock: RawFd) -> Result<(OwnedFd, u64), String> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut bytes = [0u8; 8];
    let mut iov = [std::io::IoSliceMut::new(&mut bytes)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(|e| format!("recvmsg: {e}"))?;
    if msg
        .flags
        .intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC)
    {
        return Err(format!("recvmsg: truncated ({:?})", msg.flags));
    }
    if msg.bytes != 8 {
        return Err(format!("recvmsg: {} bytes, want 8", msg.bytes));
    }
    let mut fd = None;
    for c in msg.cmsgs().map_err(|e| format!("cmsgs: {e}"))? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let [one] = fds[..] {
                // SAFETY: The kernel installed this fd for us; nothing else owns it.
                fd = Some(unsafe { OwnedFd::from_raw_fd(one) });
            }
        }
    }
    let fd = fd.ok_or("recvmsg: no SCM_RIGHTS fd")?;
    Ok((fd, u64::from_ne_bytes(bytes)))
}

/// `pidfd_open()`: an fd that refers to process `pid`.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: A plain system call; the fd it returns is new and owned by nothing else.
    unsafe {
        let fd = Errno::result(libc::syscall(libc::SYS_pidfd_open, pid, 0))?;
        Ok(OwnedFd::from_raw_fd(fd as RawFd))
    }
}

/// `pidfd_open()` + `pidfd_getfd()`: takes a copy of another process's fd.
pub fn pidfd_getfd(pid: i32, target: RawFd) -> Result<OwnedFd, Errno> {
    let pidfd = pidfd_open(pid)?;
    // SAFETY: A plain system call; the fd it returns is new and owned by nothing else.
    unsafe {
        let fd = libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target, 0);
        Ok(OwnedFd::from_raw_fd(Errno::result(fd)? as RawFd))
    }
}

/// Memory this process mapped, unmapped when dropped (unless [leaked](Mapping::leak)).
///
/// The protection cannot change under a slice from [`Mapping::atomics`]:
///
/// ```compile_fail
/// # use mm_seqid_harness::Mapping;
/// # use nix::sys::mman::{MapFlags, ProtFlags};
/// let rw = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
/// let mut m = Mapping::anonymous(4096, rw, MapFlags::MAP_PRIVATE).unwrap();
/// let a = &m.atomics()[0];
/// m.protect(0, 4096, ProtFlags::PROT_NONE).unwrap();
/// a.load(std::sync::atomic::Ordering::SeqCst);
/// ```
pub struct Mapping {
    ptr: NonNull<libc::c_void>,
    len: usize,
    /// Whether every byte is readable and writable: [`Mapping::atomics`] needs that.
    rw: bool,
}

/// Readable and writable.
const RW: ProtFlags = ProtFlags::PROT_READ.union(ProtFlags::PROT_WRITE);

impl Mapping {
    /// A new private or shared anonymous mapping of `len` bytes.
    pub fn anonymous(len: usize, prot: ProtFlags, flags: MapFlags) -> Result<Mapping, Errno> {
        let nz = NonZeroUsize::new(len).ok_or(Errno::EINVAL)?;
        // SAFETY: A fresh mapping at an address of the kernel's choosing: it overlaps nothing.
        let ptr = unsafe { nix::sys::mman::mmap_anonymous(None, nz, prot, flags) }?;
        Ok(Mapping {
            ptr,
            len,
            rw: prot.contains(RW),
        })
    }

    /// A new mapping of `len` bytes of `fd` at offset 0. Async-signal-safe (with its drop).
    pub fn of_fd<F: AsFd>(
        fd: F,
        len: usize,
        prot: ProtFlags,
        flags: MapFlags,
    ) -> Result<Mapping, Errno> {
        let nz = NonZeroUsize::new(len).ok_or(Errno::EINVAL)?;
        // SAFETY: A fresh mapping at an address of the kernel's choosing: it overlaps nothing;
        // the kernel validates the fd, the offset and the protection.
        let ptr = unsafe { nix::sys::mman::mmap(None, nz, prot, flags, fd, 0) }?;
        Ok(Mapping {
            ptr,
            len,
            rw: prot.contains(RW),
        })
    }

    /// The first address of the mapping.
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// Changes the protection of `len` bytes at page-aligned `offset` into the mapping.
    ///
    /// Takes `&mut self`: no slice from [`Mapping::atomics`] is alive while the protection
    /// changes.
    pub fn protect(&mut self, offset: usize, len: usize, prot: ProtFlags) -> Result<(), Errno> {
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= self.len),
            "protect outside the mapping"
        );
        let at = NonNull::new(self.ptr.as_ptr().wrapping_byte_add(offset)).unwrap();
        // Until we know the outcome, the mapping may be partly changed.
        let was_rw = self.rw;
        self.rw = false;
        // SAFETY: The range lies inside our own mapping (checked above), which no Rust
        // reference points into: atomics() borrows `self`, and we hold it mutably.
        unsafe { nix::sys::mman::mprotect(at, len, prot) }?;
        self.rw = prot.contains(RW) && (was_rw || (offset == 0 && len == self.len));
        Ok(())
    }

    /// The mapping as 32-bit atomics, for counters that fork children share with us through a
    /// `MAP_SHARED` mapping.
    ///
    /// # Panics
    ///
    /// If any of the mapping is not readable and writable (it was mapped so, or
    /// [`Mapping::protect`] made it so): an access would fault.
    pub fn atomics(&self) -> &[AtomicI32] {
        assert!(
            self.rw,
            "Mapping::atomics: the mapping is not readable and writable throughout"
        );
        // SAFETY: The mapping is page-aligned, at least `len` bytes, readable and writable
        // (checked above; protect() needs `&mut self`, so it stays so while the borrow
        // lasts), zero-filled or written only through these atomics, and stays mapped while
        // the borrow of `self` lasts.
        unsafe {
            std::slice::from_raw_parts(self.ptr.as_ptr().cast(), self.len / size_of::<AtomicI32>())
        }
    }

    /// Leaves the memory mapped until the process exits; returns its address.
    pub fn leak(self) -> usize {
        let addr = self.addr();
        std::mem::forget(self);
        addr
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: Our own mapping; whatever borrowed it (atomics) borrowed `self`, so is gone.
        let _ = unsafe { nix::sys::mman::munmap(self.ptr, self.len) };
    }
}

#[cfg(test)]
pub(crate) mod sources {
    use std::path::{Path, PathBuf};

    /// The lines the series adds to `path`: the `+` lines of its hunk in
    /// the patch that creates it, or else in the first patch, by name, that
    /// changes it (read_dir's order is the file system's; a later patch on
    /// the same file, as negative-checks adds, must not be picked).
    pub(crate) fn added_file(path: &str) -> String {
        added_file_in(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../patches"),
            path,
        )
    }

    /// [`added_file`], from the patches in `patches`.
    pub(crate) fn added_file_in(patches: &Path, path: &str) -> String {
        let marker = format!("+++ b/{path}\n");
        let mut files: Vec<PathBuf> = std::fs::read_dir(patches)
            .unwrap_or_else(|e| panic!("{}: {e}", patches.display()))
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(".patch"))
            .collect();
        files.sort();
        let texts: Vec<String> = files
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .filter(|t| t.contains(&marker))
            .collect();
        let created = format!("--- /dev/null\n{marker}");
        let text = texts
            .iter()
            .find(|t| t.contains(&created))
            .or(texts.first())
            .unwrap_or_else(|| panic!("no patch in patches/ adds {path}"));
        let hunk = &text[text.find(&marker).unwrap() + marker.len()..];
        hunk.lines()
            .skip_while(|l| l.starts_with("@@"))
            .take_while(|l| !l.starts_with("diff --git"))
            .filter_map(|l| l.strip_prefix('+'))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn added_file_prefers_the_patch_that_creates_it() {
        // A later patch on the same file sorts first here, as a file
        // system may list it first.
        let dir = std::env::temp_dir().join(format!("mm-seqid-added-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let diff = |old: &str, body: &str| {
            format!("Subject: x\n\n---\ndiff --git a/f.c b/f.c\n--- {old}\n+++ b/f.c\n@@ -0,0 +1 @@\n{body}\n-- \n2.47.3\n")
        };
        std::fs::write(
            dir.join("v2-0000-later.patch"),
            diff("a/f.c", " kept\n+late"),
        )
        .unwrap();
        std::fs::write(dir.join("v2-0002-adds.patch"), diff("/dev/null", "+first")).unwrap();
        // A file no patch creates: the first patch by name, even when the
        // later one is written first.
        let g = |body: &str| diff("a/f.c", body).replace("f.c", "g.c");
        std::fs::write(dir.join("v2-0009-g-later.patch"), g("+g late")).unwrap();
        std::fs::write(dir.join("v2-0004-g-first.patch"), g("+g first")).unwrap();
        let created = added_file_in(&dir, "f.c");
        let changed = added_file_in(&dir, "g.c");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(created, "first");
        assert_eq!(changed, "g first");
    }
}

#[cfg(test)]
mod tests {
    use super::sources::added_file;
    use super::*;
    use std::path::PathBuf;

    /// The ```LANG block of Documentation/driver-guide.md.
    fn guide_block(lang: &str) -> String {
        let path =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../Documentation/driver-guide.md");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let open = format!("```{lang}\n");
        let start = text
            .find(&open)
            .unwrap_or_else(|| panic!("no ```{lang} block in the guide"))
            + open.len();
        let len = text[start..]
            .find("\n```\n")
            .expect("an unclosed block in the guide");
        text[start..start + len].to_string()
    }

    #[test]
    fn driver_guide_c_is_the_tested_example() {
        let kunit = added_file("mm/tests/mm_seqid_kunit.c");
        let begin = "/* example: begin */\n";
        let start = kunit.find(begin).expect("no example: begin marker") + begin.len();
        let end = kunit
            .find("/* example: end */")
            .expect("no example: end marker");
        assert_eq!(
            guide_block("c"),
            kunit[start..end].trim_end(),
            "Documentation/driver-guide.md's C code differs from the KUnit test's example"
        );
    }

    #[test]
    fn driver_guide_rust_is_the_tested_example() {
        // The visible lines of the doc test, `/// ` taken off.
        let mm = added_file("rust/kernel/mm.rs");
        let doc: Vec<&str> = mm
            .lines()
            .filter_map(|l| l.strip_prefix("/// ").or((l == "///").then_some("")))
            .collect();
        let guide = guide_block("rust");
        let want: Vec<&str> = guide.lines().collect();
        assert!(
            doc.windows(want.len()).any(|w| w == want.as_slice()),
            "Documentation/driver-guide.md's Rust code is not a run of MmSeqId's doc test"
        );
    }

    #[test]
    fn mapping_protects_and_shares() {
        let page = 4096;
        let mut m = Mapping::anonymous(
            2 * page,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED,
        )
        .unwrap();
        m.atomics()[0].store(5, std::sync::atomic::Ordering::SeqCst);
        let counter = &m.atomics()[0];
        // SAFETY: The child does one atomic add on shared memory: async-signal-safe.
        let pid =
            unsafe { fork_child(|| counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst)) };
        assert_eq!(wait_exit(pid), Ok(5));
        assert_eq!(m.atomics()[0].load(std::sync::atomic::Ordering::SeqCst), 6);
        m.protect(page, page, ProtFlags::PROT_NONE).unwrap();
        assert_eq!(m.leak() % page, 0);
    }

    fn panics(f: impl FnOnce() + std::panic::UnwindSafe) -> bool {
        std::panic::catch_unwind(f).is_err()
    }

    #[test]
    fn atomics_only_on_readable_writable_memory() {
        let page = 4096;
        let rw = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
        let ro = Mapping::anonymous(page, ProtFlags::PROT_READ, MapFlags::MAP_SHARED).unwrap();
        assert!(
            panics(|| {
                let _ = ro.atomics();
            }),
            "atomics() on a read-only mapping"
        );
        let mut m = Mapping::anonymous(2 * page, rw, MapFlags::MAP_SHARED).unwrap();
        m.protect(page, page, ProtFlags::PROT_NONE).unwrap();
        let m = std::panic::AssertUnwindSafe(m);
        assert!(
            panics(|| {
                let _ = m.atomics();
            }),
            "atomics() after PROT_NONE"
        );
        let mut m = m.0;
        // Part of it made readable and writable again: still not all of it.
        m.protect(0, page, rw).unwrap();
        let m = std::panic::AssertUnwindSafe(m);
        assert!(
            panics(|| {
                let _ = m.atomics();
            }),
            "atomics() with a PROT_NONE page left"
        );
        let mut m = m.0;
        m.protect(0, 2 * page, rw).unwrap();
        assert_eq!(m.atomics().len(), 2 * page / 4);
        assert!(panics(move || {
            let _ = m.protect(page, 2 * page, rw);
        }));
    }
}
