// SPDX-License-Identifier: GPL-2.0
//! The ioctl ABI of `/dev/rust-mm-seqid`, as the sample's crate documentation
//! (samples/rust/rust_mm_seqid.rs) gives it: the one definition that the harness, the fuzzer,
//! the bench and the host tests use.
//!
//! Each request number is written once, with nix's `request_code_*` macros; the wrappers are
//! nix's `ioctl_*_bad!` functions on those numbers. The host tests below parse the sample's
//! sources in patches/ and compare them with [`ALL`].
//!
//! The `raw_*` calls allocate nothing and are async-signal-safe: fork children use them.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::{ioctl_none_bad, ioctl_read_bad, ioctl_write_ptr_bad};

/// The device node of the sample driver.
pub const DEVICE: &str = "/dev/rust-mm-seqid";

/// The Kconfig symbol that provides [`DEVICE`].
pub const DEVICE_CONFIG: &str = "CONFIG_SAMPLE_RUST_MM_SEQID";

/// The ioctl type of the sample, `'|'`.
pub const MAGIC: u8 = b'|';

const U64: usize = size_of::<u64>();

/// `MM_SEQID_IOC_GET_MM_ID`: `_IOR('|', 0x90, __u64)`.
pub const GET_MM_ID: u32 = nix::request_code_read!(MAGIC, 0x90, U64) as u32;
/// `MM_SEQID_IOC_GET_OWNER`: `_IOR('|', 0x91, __u64)`.
pub const GET_OWNER: u32 = nix::request_code_read!(MAGIC, 0x91, U64) as u32;
/// `MM_SEQID_IOC_BIND`: `_IO('|', 0x92)`.
pub const BIND: u32 = nix::request_code_none!(MAGIC, 0x92) as u32;
/// `MM_SEQID_IOC_UNBIND`: `_IO('|', 0x93)`.
pub const UNBIND: u32 = nix::request_code_none!(MAGIC, 0x93) as u32;
/// `MM_SEQID_IOC_SET_VALUE`: `_IOW('|', 0x94, __u64)`.
pub const SET_VALUE: u32 = nix::request_code_write!(MAGIC, 0x94, U64) as u32;
/// `MM_SEQID_IOC_GET_VALUE`: `_IOR('|', 0x95, __u64)`.
pub const GET_VALUE: u32 = nix::request_code_read!(MAGIC, 0x95, U64) as u32;

/// Every ioctl with its name in the sample.
pub const ALL: [(&str, u32); 6] = [
    ("MM_SEQID_IOC_GET_MM_ID", GET_MM_ID),
    ("MM_SEQID_IOC_GET_OWNER", GET_OWNER),
    ("MM_SEQID_IOC_BIND", BIND),
    ("MM_SEQID_IOC_UNBIND", UNBIND),
    ("MM_SEQID_IOC_SET_VALUE", SET_VALUE),
    ("MM_SEQID_IOC_GET_VALUE", GET_VALUE),
];

/// Any request number of our type, as `_IOC(dir, '|', nr, size)` encodes it (`dir`: 0 none,
/// 1 write, 2 read, 3 both), for the fuzzer's commands the driver does not know.
pub fn request(dir: u32, nr: u32, size: u32) -> u32 {
    nix::ioc!(dir, MAGIC, nr, size) as u32
}

ioctl_read_bad!(get_mm_id, GET_MM_ID, u64);
ioctl_read_bad!(get_owner, GET_OWNER, u64);
ioctl_none_bad!(bind, BIND);
ioctl_none_bad!(unbind, UNBIND);
ioctl_write_ptr_bad!(set_value, SET_VALUE, u64);
ioctl_read_bad!(get_value, GET_VALUE, u64);

/// One of the reading ioctls, on a local u64.
fn read_u64(
    call: unsafe fn(libc::c_int, *mut u64) -> nix::Result<libc::c_int>,
    fd: RawFd,
) -> Result<u64, Errno> {
    let mut v = 0;
    // SAFETY: `call` is one of the `_IOR(.., __u64)` wrappers above; `v` is a valid u64 for the
    // kernel to write, and an fd that is not the device's fails with an errno.
    unsafe { call(fd, &mut v) }?;
    Ok(v)
}

/// One of the ioctls without an argument.
fn no_arg(
    call: unsafe fn(libc::c_int) -> nix::Result<libc::c_int>,
    fd: RawFd,
) -> Result<(), Errno> {
    // SAFETY: `call` is one of the `_IO` wrappers above: no argument, no memory touched.
    unsafe { call(fd) }.map(drop)
}

/// `MM_SEQID_IOC_GET_MM_ID` on a raw fd.
pub fn raw_get_mm_id(fd: RawFd) -> Result<u64, Errno> {
    read_u64(get_mm_id, fd)
}

/// `MM_SEQID_IOC_GET_OWNER` on a raw fd.
pub fn raw_get_owner(fd: RawFd) -> Result<u64, Errno> {
    read_u64(get_owner, fd)
}

/// `MM_SEQID_IOC_BIND` on a raw fd.
pub fn raw_bind(fd: RawFd) -> Result<(), Errno> {
    no_arg(bind, fd)
}

/// `MM_SEQID_IOC_UNBIND` on a raw fd.
pub fn raw_unbind(fd: RawFd) -> Result<(), Errno> {
    no_arg(unbind, fd)
}

/// `MM_SEQID_IOC_SET_VALUE` on a raw fd.
pub fn raw_set_value(fd: RawFd, v: u64) -> Result<(), Errno> {
    // SAFETY: `v` is a valid u64 for the kernel to read.
    unsafe { set_value(fd, &v) }.map(drop)
}

/// `MM_SEQID_IOC_GET_VALUE` on a raw fd.
pub fn raw_get_value(fd: RawFd) -> Result<u64, Errno> {
    read_u64(get_value, fd)
}

/// Issues an ioctl with an arbitrary request and argument, for the bad-input tests and the
/// fuzzer.
///
/// ```compile_fail
/// let _ = mm_seqid_harness::raw_ioctl(0, mm_seqid_harness::GET_VALUE, 0x1000);
/// ```
///
/// # Safety
///
/// `fd` may be any file, and `request` may make the kernel write to `arg`: `arg` must be an
/// address that the call may read and write [`u64`]-sized data at (memory that lives across
/// the call and that no Rust reference expects unchanged), or one that the kernel refuses
/// with `EFAULT` (unmapped, not writable, a kernel address). If `fd` may be another driver's
/// file, the caller answers for what that driver does with `request`.
pub unsafe fn raw_ioctl(fd: RawFd, request: u32, arg: usize) -> Result<i32, Errno> {
    // SAFETY: The kernel touches at most what `request` says at `arg`, which the caller
    // keeps writable or refused (our contract).
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

    /// The fd, for whoever keeps the context open from now on.
    pub fn into_owned(self) -> OwnedFd {
        self.fd
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

impl AsFd for Dev {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
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

/// The request number of a parsed definition, for a `__u64` argument, worked out on its own
/// (not with the constants above) so that the host tests compare two encodings.
pub fn abi_request(c: &AbiIoctl) -> u32 {
    let size = size_of::<u64>();
    (match c.dir.as_str() {
        "_IO" => nix::request_code_none!(MAGIC, c.nr),
        "_IOR" => nix::request_code_read!(MAGIC, c.nr, size),
        "_IOW" => nix::request_code_write!(MAGIC, c.nr, size),
        other => panic!("unknown ioctl direction {other}"),
    }) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::added_file;

    /// Checks that `defs` (from `what`) are exactly the six ioctls of [`ALL`].
    fn same_as_harness(what: &str, defs: &[AbiIoctl]) {
        assert_eq!(defs.len(), 6, "{what}: six ioctls expected: {defs:?}");
        for d in defs {
            let ours = ALL
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

    #[test]
    fn ioctl_numbers_known_values() {
        // _IOR('|', 0x90, __u64) on x86_64, worked out by hand.
        assert_eq!(GET_MM_ID, 0x8008_7c90);
        assert_eq!(BIND, 0x7c92);
        assert_eq!(SET_VALUE, 0x4008_7c94);
        assert_eq!(request(2, 0x95, 8), GET_VALUE);
        assert_eq!(request(0, 0x93, 0), UNBIND);
        assert_eq!(request(3, 0x80, 16), 0xc010_7c80);
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
}
