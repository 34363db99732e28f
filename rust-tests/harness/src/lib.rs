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
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
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
pub fn keep_fd(fd: RawFd) {
    // SAFETY: `fd` is open in the calling process for the duration of the call.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let _ = fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()));
}

/// Sets up a child right after fork; async-signal-safe.
///
/// The child dies with the test process, so a failed test leaves no orphan.
pub fn child_setup() {
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
}

/// Forks a child that runs `f` and exits with its return value.
///
/// `f` runs in the child of a possibly multithreaded process: it must do only
/// async-signal-safe work (raw system calls, no allocation, no locks).
pub fn fork_child<F: FnOnce() -> i32>(f: F) -> Pid {
    // SAFETY: The child only runs `f`, which the caller keeps async-signal-safe, then _exits.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            child_setup();
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
    /// Forks a child that reports what `f` returns. `f` runs as in [`fork_child`]: it must
    /// do only async-signal-safe work.
    pub fn fork<F: FnOnce() -> Report>(f: F) -> Reporter {
        let (r, w) = pipe();
        let pid = fork_child(|| i32::from(!f().write_to(&w)));
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
pub fn fork_report<F: FnOnce() -> Report>(who: &str, f: F) -> Result<Report, String> {
    Reporter::fork(f).report(who)
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

    /// Execs; returns the errno only if execve failed. Async-signal-safe.
    pub fn exec(&self, argv_ptrs: &[*const libc::c_char]) -> Errno {
        // SAFETY: `argv_ptrs` is a NULL-terminated array of C strings that outlive the call.
        unsafe { libc::execv(SelfExec::PATH.as_ptr(), argv_ptrs.as_ptr()) };
        Errno::last()
    }

    /// The argv pointer array for [`SelfExec::exec`], built before fork.
    pub fn argv_ptrs(&self) -> Vec<*const libc::c_char> {
        let mut v: Vec<_> = self.argv.iter().map(|a| a.as_ptr()).collect();
        v.push(std::ptr::null());
        v
    }

    /// Forks and execs, keeping `keep` open across the exec. A child whose execve failed
    /// exits with 100 + errno.
    pub fn spawn(&self, keep: &[RawFd]) -> Pid {
        let ptrs = self.argv_ptrs();
        fork_child(|| {
            for &fd in keep {
                keep_fd(fd);
            }
            let e = self.exec(&ptrs);
            e as i32 + 100
        })
    }
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
pub struct Mapping {
    ptr: NonNull<libc::c_void>,
    len: usize,
}

impl Mapping {
    /// A new private or shared anonymous mapping of `len` bytes.
    pub fn anonymous(len: usize, prot: ProtFlags, flags: MapFlags) -> Result<Mapping, Errno> {
        let nz = NonZeroUsize::new(len).ok_or(Errno::EINVAL)?;
        // SAFETY: A fresh mapping at an address of the kernel's choosing: it overlaps nothing.
        let ptr = unsafe { nix::sys::mman::mmap_anonymous(None, nz, prot, flags) }?;
        Ok(Mapping { ptr, len })
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
        Ok(Mapping { ptr, len })
    }

    /// The first address of the mapping.
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// Changes the protection of `len` bytes at page-aligned `offset` into the mapping.
    pub fn protect(&self, offset: usize, len: usize, prot: ProtFlags) -> Result<(), Errno> {
        assert!(offset + len <= self.len, "protect outside the mapping");
        let at = NonNull::new(self.ptr.as_ptr().wrapping_byte_add(offset)).unwrap();
        // SAFETY: The range lies inside our own mapping (checked above), which no Rust
        // reference points into: only raw addresses handed to the kernel do.
        unsafe { nix::sys::mman::mprotect(at, len, prot) }
    }

    /// The mapping as 32-bit atomics, for counters that fork children share with us through a
    /// `MAP_SHARED` mapping. The mapping must be readable and writable.
    pub fn atomics(&self) -> &[AtomicI32] {
        // SAFETY: The mapping is page-aligned, at least `len` bytes, zero-filled or written only
        // through these atomics, and stays mapped while the borrow of `self` lasts.
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
    use std::path::PathBuf;

    /// The new file `path` as the series adds it: the `+` lines of its hunk in patches/.
    pub(crate) fn added_file(path: &str) -> String {
        let patches = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../patches");
        let marker = format!("+++ b/{path}\n");
        let text = std::fs::read_dir(&patches)
            .unwrap_or_else(|e| panic!("{}: {e}", patches.display()))
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".patch"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .find(|t| t.contains(&marker))
            .unwrap_or_else(|| panic!("no patch in patches/ adds {path}"));
        let hunk = &text[text.find(&marker).unwrap() + marker.len()..];
        hunk.lines()
            .skip_while(|l| l.starts_with("@@"))
            .take_while(|l| !l.starts_with("diff --git"))
            .filter_map(|l| l.strip_prefix('+'))
            .collect::<Vec<_>>()
            .join("\n")
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
        let m = Mapping::anonymous(
            2 * page,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED,
        )
        .unwrap();
        m.atomics()[0].store(5, std::sync::atomic::Ordering::SeqCst);
        let pid = fork_child(|| m.atomics()[0].fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        assert_eq!(wait_exit(pid), Ok(5));
        assert_eq!(m.atomics()[0].load(std::sync::atomic::Ordering::SeqCst), 6);
        m.protect(page, page, ProtFlags::PROT_NONE).unwrap();
        assert_eq!(m.leak() % page, 0);
    }
}
