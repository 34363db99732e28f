// SPDX-License-Identifier: GPL-2.0
//! Userspace side of the mm sequence id tests.
//!
//! The ioctl ABI of `/dev/rust-mm-seqid` (samples/rust/rust_mm_seqid.rs, the sample's crate documentation),
//! and the process plumbing the tests need: children that do only async-signal-safe work, the
//! test binary re-executed in a child mode, file descriptors passed over unix sockets and taken
//! with `pidfd_getfd()`.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, pipe2, ForkResult, Pid};

/// The device node of the sample driver.
pub const DEVICE: &str = "/dev/rust-mm-seqid";

/// The Kconfig symbol that provides [`DEVICE`].
pub const DEVICE_CONFIG: &str = "CONFIG_SAMPLE_RUST_MM_SEQID";

/// The sample's ioctls, as nix wrappers and as request numbers.
pub mod ioctl {
    use nix::{ioctl_none, ioctl_read, ioctl_write_ptr};

    /// The ioctl type of the sample, `'|'`.
    pub const MAGIC: u8 = b'|';

    ioctl_read!(get_mm_id, MAGIC, 0x90, u64);
    ioctl_read!(get_owner, MAGIC, 0x91, u64);
    ioctl_none!(bind, MAGIC, 0x92);
    ioctl_none!(unbind, MAGIC, 0x93);
    ioctl_write_ptr!(set_value, MAGIC, 0x94, u64);
    ioctl_read!(get_value, MAGIC, 0x95, u64);

    /// `MM_SEQID_IOC_GET_MM_ID`.
    pub const GET_MM_ID: u32 = nix::request_code_read!(MAGIC, 0x90, size_of::<u64>()) as u32;
    /// `MM_SEQID_IOC_GET_OWNER`.
    pub const GET_OWNER: u32 = nix::request_code_read!(MAGIC, 0x91, size_of::<u64>()) as u32;
    /// `MM_SEQID_IOC_BIND`.
    pub const BIND: u32 = nix::request_code_none!(MAGIC, 0x92) as u32;
    /// `MM_SEQID_IOC_UNBIND`.
    pub const UNBIND: u32 = nix::request_code_none!(MAGIC, 0x93) as u32;
    /// `MM_SEQID_IOC_SET_VALUE`.
    pub const SET_VALUE: u32 = nix::request_code_write!(MAGIC, 0x94, size_of::<u64>()) as u32;
    /// `MM_SEQID_IOC_GET_VALUE`.
    pub const GET_VALUE: u32 = nix::request_code_read!(MAGIC, 0x95, size_of::<u64>()) as u32;

    /// Every ioctl with its name in the sample.
    pub const ALL: [(&str, u32); 6] = [
        ("MM_SEQID_IOC_GET_MM_ID", GET_MM_ID),
        ("MM_SEQID_IOC_GET_OWNER", GET_OWNER),
        ("MM_SEQID_IOC_BIND", BIND),
        ("MM_SEQID_IOC_UNBIND", UNBIND),
        ("MM_SEQID_IOC_SET_VALUE", SET_VALUE),
        ("MM_SEQID_IOC_GET_VALUE", GET_VALUE),
    ];
}

// The raw calls below allocate nothing and are async-signal-safe: fork children use them.

/// `MM_SEQID_IOC_GET_MM_ID` on a raw fd.
pub fn raw_get_mm_id(fd: RawFd) -> Result<u64, Errno> {
    let mut v = 0;
    // SAFETY: `v` is a valid u64 for the kernel to write.
    unsafe { ioctl::get_mm_id(fd, &mut v) }?;
    Ok(v)
}

/// `MM_SEQID_IOC_GET_OWNER` on a raw fd.
pub fn raw_get_owner(fd: RawFd) -> Result<u64, Errno> {
    let mut v = 0;
    // SAFETY: `v` is a valid u64 for the kernel to write.
    unsafe { ioctl::get_owner(fd, &mut v) }?;
    Ok(v)
}

/// `MM_SEQID_IOC_BIND` on a raw fd.
pub fn raw_bind(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: The ioctl takes no argument.
    unsafe { ioctl::bind(fd) }.map(drop)
}

/// `MM_SEQID_IOC_UNBIND` on a raw fd.
pub fn raw_unbind(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: The ioctl takes no argument.
    unsafe { ioctl::unbind(fd) }.map(drop)
}

/// `MM_SEQID_IOC_SET_VALUE` on a raw fd.
pub fn raw_set_value(fd: RawFd, v: u64) -> Result<(), Errno> {
    // SAFETY: `v` is a valid u64 for the kernel to read.
    unsafe { ioctl::set_value(fd, &v) }.map(drop)
}

/// `MM_SEQID_IOC_GET_VALUE` on a raw fd.
pub fn raw_get_value(fd: RawFd) -> Result<u64, Errno> {
    let mut v = 0;
    // SAFETY: `v` is a valid u64 for the kernel to write.
    unsafe { ioctl::get_value(fd, &mut v) }?;
    Ok(v)
}

/// Issues an ioctl with an arbitrary request and argument, for the bad-input tests.
pub fn raw_ioctl(fd: RawFd, request: u32, arg: usize) -> Result<i32, Errno> {
    // SAFETY: The kernel validates `arg`; at worst the call fails with EFAULT.
    let ret = unsafe { libc::ioctl(fd, request as _, arg) };
    Errno::result(ret)
}

/// An open file of [`DEVICE`]: one device context.
///
/// Opened without `O_CLOEXEC`: the tests need the context to survive `execve`.
pub struct Dev {
    fd: OwnedFd,
}

impl Dev {
    /// Opens a new context, with a message that names what is missing.
    pub fn open() -> Result<Dev, String> {
        match nix::fcntl::open(DEVICE, OFlag::O_RDWR, Mode::empty()) {
            Ok(fd) => Ok(Dev { fd }),
            Err(e) => Err(format!(
                "cannot open {DEVICE}: {e}: boot a kernel with {DEVICE_CONFIG}=y (scripts/test does)"
            )),
        }
    }

    /// Wraps a received or duplicated fd.
    pub fn from_owned(fd: OwnedFd) -> Dev {
        Dev { fd }
    }

    /// The raw fd, valid while `self` lives.
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The caller's mm id.
    pub fn mm_id(&self) -> Result<u64, Errno> {
        raw_get_mm_id(self.raw())
    }

    /// The owner id of this context, 0 if unbound.
    pub fn owner(&self) -> Result<u64, Errno> {
        raw_get_owner(self.raw())
    }

    /// Binds this context to the caller's mm.
    pub fn bind(&self) -> Result<(), Errno> {
        raw_bind(self.raw())
    }

    /// Unbinds this context.
    pub fn unbind(&self) -> Result<(), Errno> {
        raw_unbind(self.raw())
    }

    /// Stores a value in this context.
    pub fn set_value(&self, v: u64) -> Result<(), Errno> {
        raw_set_value(self.raw(), v)
    }

    /// Reads the value of this context.
    pub fn value(&self) -> Result<u64, Errno> {
        raw_get_value(self.raw())
    }
}

/// What a child saw, sent back over a pipe as fixed-size plain data.
///
/// Each ioctl result is encoded by [`enc`]: the value, or `-errno`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Record {
    /// The child's pid.
    pub pid: i64,
    /// `GET_MM_ID`.
    pub mm_id: i64,
    /// `GET_OWNER`.
    pub owner: i64,
    /// `GET_VALUE`.
    pub value: i64,
    /// `SET_VALUE`, with the value given to the child, or 0 if none.
    pub set: i64,
    /// `BIND`, if the child was asked to try it, else 0.
    pub bind: i64,
    /// Mode-specific.
    pub extra: i64,
}

/// Encodes an ioctl result for a [`Record`]: the value, or `-errno`.
pub fn enc(r: Result<u64, Errno>) -> i64 {
    match r {
        // Ids and values stay far below 2^63 in these tests.
        Ok(v) => v as i64,
        Err(e) => -(e as i64),
    }
}

/// Encodes a unit ioctl result: 0, or `-errno`.
pub fn enc0(r: Result<(), Errno>) -> i64 {
    enc(r.map(|()| 0))
}

/// Names an encoded result, for messages: `42`, or `-EPERM`.
pub fn show(v: i64) -> String {
    if v < 0 {
        format!("-{} ({})", Errno::from_raw(-v as i32), -v)
    } else {
        v.to_string()
    }
}

impl Record {
    /// Writes the record to a pipe; async-signal-safe.
    pub fn write_to(&self, fd: RawFd) -> bool {
        let len = size_of::<Record>();
        // SAFETY: `self` is plain data of `len` bytes.
        let n = unsafe { libc::write(fd, (self as *const Record).cast(), len) };
        n == len as isize
    }

    /// Collects the records written to a pipe until every writer closed it.
    pub fn read_all(fd: &OwnedFd) -> Vec<Record> {
        let mut out = Vec::new();
        loop {
            let mut r = Record::default();
            let len = size_of::<Record>();
            // SAFETY: `r` is plain data of `len` bytes.
            let n = unsafe { libc::read(fd.as_raw_fd(), (&mut r as *mut Record).cast(), len) };
            if n == len as isize {
                out.push(r);
            } else if n < 0 && Errno::last() == Errno::EINTR {
                continue;
            } else {
                return out;
            }
        }
    }

    /// Reports on a device fd from the calling process.
    pub fn probe(fd: RawFd, set: Option<u64>, try_bind: bool) -> Record {
        Record {
            // SAFETY: getpid() has no preconditions.
            pid: i64::from(unsafe { libc::getpid() }),
            mm_id: enc(raw_get_mm_id(fd)),
            owner: enc(raw_get_owner(fd)),
            value: enc(raw_get_value(fd)),
            set: set.map_or(0, |v| enc0(raw_set_value(fd, v))),
            bind: if try_bind { enc0(raw_bind(fd)) } else { 0 },
            extra: 0,
        }
    }
}

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
    // SAFETY: prctl(PR_SET_PDEATHSIG) has no memory-safety preconditions.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
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

    /// Execs; returns the errno only if execve failed. Async-signal-safe.
    pub fn exec(&self, argv_ptrs: &[*const libc::c_char]) -> Errno {
        // SAFETY: `argv_ptrs` is a NULL-terminated array of C strings that outlive the call.
        unsafe { libc::execv(c"/proc/self/exe".as_ptr(), argv_ptrs.as_ptr()) };
        Errno::last()
    }

    /// The argv pointer array for [`SelfExec::exec`], built before fork.
    pub fn argv_ptrs(&self) -> Vec<*const libc::c_char> {
        let mut v: Vec<_> = self.argv.iter().map(|a| a.as_ptr()).collect();
        v.push(std::ptr::null());
        v
    }

    /// Forks and execs, keeping `keep` open across the exec.
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

/// `pidfd_open()` + `pidfd_getfd()`: takes a copy of another process's fd.
pub fn pidfd_getfd(pid: i32, target: RawFd) -> Result<OwnedFd, Errno> {
    // SAFETY: Plain system calls; the returned fds are checked and owned below.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let pidfd = Errno::result(pidfd)? as RawFd;
    // SAFETY: `pidfd` was just returned to us.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    // SAFETY: As above.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target, 0) };
    let fd = Errno::result(fd)? as RawFd;
    // SAFETY: `fd` was just installed for us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// One ioctl definition as the sample's sources spell it: name, direction, nr.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct AbiIoctl {
    /// `MM_SEQID_IOC_*`.
    pub name: String,
    /// `_IO`, `_IOR` or `_IOW`.
    pub dir: String,
    /// The number, as in `0x90`.
    pub nr: u8,
}

/// The ioctl `MM_SEQID_IOC_<name>` defined as `_IOR::<u64>('|' as u32, 0x90)` or
/// `_IOR('|', 0x90, uint64_t)`; the type character must be `'|'`.
fn abi_ioctl(name: &str, def: &str) -> Option<AbiIoctl> {
    let (dir, rest) = def.split_once('(')?;
    let dir = dir.trim().trim_end_matches("::<u64>").trim();
    if !matches!(dir, "_IO" | "_IOR" | "_IOW") {
        return None;
    }
    let mut args = rest.trim_end_matches([')', ';']).split(',').map(str::trim);
    if !args.next()?.starts_with("'|'") {
        return None;
    }
    let nr = u8::from_str_radix(args.next()?.strip_prefix("0x")?, 16).ok()?;
    Some(AbiIoctl {
        name: format!("MM_SEQID_IOC_{name}"),
        dir: dir.to_string(),
        nr,
    })
}

/// Parses the ioctl constants of the sample driver's Rust source:
/// `const MM_SEQID_IOC_BIND: u32 = _IO('|' as u32, 0x92);`.
pub fn parse_rust_consts(text: &str) -> Vec<AbiIoctl> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim_start_matches('+').trim();
            let rest = l.strip_prefix("const MM_SEQID_IOC_")?;
            let (name, def) = rest.split_once(": u32 = ")?;
            abi_ioctl(name, def)
        })
        .collect()
}

/// Parses C definitions of the ioctls, in the crate doc's C program (`//! #define ...`) or in
/// a C file (`#define ...`): `#define MM_SEQID_IOC_BIND _IO('|', 0x92)`.
pub fn parse_c_defines(text: &str) -> Vec<AbiIoctl> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim_start_matches('+').trim();
            let l = l.strip_prefix("//!").unwrap_or(l).trim();
            let rest = l.strip_prefix("#define MM_SEQID_IOC_")?;
            let (name, def) = rest.split_once(char::is_whitespace)?;
            let def = def.trim();
            if !def.contains("uint64_t") && !def.contains("__u64") && !def.starts_with("_IO(") {
                return None;
            }
            abi_ioctl(name, def)
        })
        .collect()
}

/// The request number of a definition, for a `__u64` argument.
pub fn abi_request(c: &AbiIoctl) -> u32 {
    let size = size_of::<u64>();
    (match c.dir.as_str() {
        "_IO" => nix::request_code_none!(ioctl::MAGIC, c.nr),
        "_IOR" => nix::request_code_read!(ioctl::MAGIC, c.nr, size),
        "_IOW" => nix::request_code_write!(ioctl::MAGIC, c.nr, size),
        other => panic!("unknown ioctl direction {other}"),
    }) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// The new file `path` as the series adds it: the `+` lines of its hunk in patches/.
    fn added_file(path: &str) -> String {
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

    /// Checks that `defs` (from `what`) are exactly the harness's six ioctls.
    fn same_as_harness(what: &str, defs: &[AbiIoctl]) {
        assert_eq!(defs.len(), 6, "{what}: six ioctls expected: {defs:?}");
        for d in defs {
            let ours = ioctl::ALL
                .iter()
                .find(|(n, _)| *n == d.name)
                .unwrap_or_else(|| panic!("{} is in {what} but not in the harness", d.name));
            assert_eq!(
                ours.1,
                abi_request(d),
                "{}: harness {:#x}, {what} {:#x}",
                d.name,
                ours.1,
                abi_request(d)
            );
        }
    }

    #[test]
    fn ioctl_numbers_match_the_sample() {
        let sample = added_file("samples/rust/rust_mm_seqid.rs");
        same_as_harness("the sample's constants", &parse_rust_consts(&sample));
    }

    #[test]
    fn sample_c_program_matches_the_sample() {
        let sample = added_file("samples/rust/rust_mm_seqid.rs");
        let rust = parse_rust_consts(&sample);
        let c = parse_c_defines(&sample);
        same_as_harness("the C program in the sample's crate doc", &c);
        assert_eq!(rust, c, "the sample's constants and its C program differ");
    }

    #[test]
    fn selftest_matches_the_sample() {
        let selftest = added_file("tools/testing/selftests/mm/mm_seqid.c");
        same_as_harness("the kselftest", &parse_c_defines(&selftest));
    }

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
    fn ioctl_numbers_known_values() {
        // _IOR('|', 0x90, __u64) on x86_64, worked out by hand.
        assert_eq!(ioctl::GET_MM_ID, 0x8008_7c90);
        assert_eq!(ioctl::BIND, 0x7c92);
        assert_eq!(ioctl::SET_VALUE, 0x4008_7c94);
    }

    #[test]
    fn parsers_read_each_spelling() {
        let want = vec![AbiIoctl {
            name: "MM_SEQID_IOC_GET_VALUE".into(),
            dir: "_IOR".into(),
            nr: 0x95,
        }];
        assert_eq!(
            parse_rust_consts(
                "+const MM_SEQID_IOC_GET_VALUE: u32 = _IOR::<u64>('|' as u32, 0x95);"
            ),
            want
        );
        assert_eq!(
            parse_c_defines("+//! #define MM_SEQID_IOC_GET_VALUE _IOR('|', 0x95, uint64_t)"),
            want
        );
        assert_eq!(
            parse_c_defines("#define MM_SEQID_IOC_GET_VALUE\t_IOR('|', 0x95, __u64)"),
            want
        );
        // Another type character, or a number that is not hex, is not ours.
        assert!(parse_c_defines("#define MM_SEQID_IOC_X _IO('a', 0x92)").is_empty());
        assert!(parse_rust_consts("const MM_SEQID_IOC_X: u32 = _IO('|' as u32, 92);").is_empty());
    }

    #[test]
    fn record_encoding() {
        assert_eq!(enc(Ok(5)), 5);
        assert_eq!(enc(Err(Errno::EPERM)), -1);
        assert_eq!(enc0(Err(Errno::EFAULT)), -14);
        assert!(show(-1).contains("EPERM"));
    }
}
