// SPDX-License-Identifier: GPL-2.0
//! Bad input: unknown commands, bad pointers, refusal before a fault, and the ioctl fuzzer.

use nix::sys::mman::{MapFlags, ProtFlags};

use super::*;

pub(super) fn bad_unknown_ioctl_enotty() -> R {
    let d = dev()?;
    let size = size_of::<u64>();
    let cmds = [
        nix::request_code_none!(abi::MAGIC, 0x9f) as u32,
        nix::request_code_none!(abi::MAGIC, 0x8f) as u32,
        nix::request_code_none!(b'x', 0x92) as u32,
        // The right number with the wrong direction or size.
        nix::request_code_write!(abi::MAGIC, 0x90, size) as u32,
        nix::request_code_read!(abi::MAGIC, 0x94, size) as u32,
        nix::request_code_read!(abi::MAGIC, 0x95, 4) as u32,
        nix::request_code_read!(abi::MAGIC, 0x92, size) as u32,
        0,
    ];
    let mut v = 0u64;
    for bound in [false, true] {
        if bound {
            ok("BIND", d.bind())?;
        }
        for &cmd in &cmds {
            // SAFETY: `v` is a local u64, alive across the call and borrowed by nothing else.
            let r = unsafe { raw_ioctl(d.raw(), cmd, &mut v as *mut u64 as usize) };
            want_errno(
                &format!("ioctl {cmd:#x} (bound: {bound})"),
                r,
                Errno::ENOTTY,
            )?;
        }
    }
    Ok(())
}

/// The ioctls that write a u64 to user memory.
const WRITING_IOCTLS: [(&str, u32); 3] = [
    ("GET_MM_ID", abi::GET_MM_ID),
    ("GET_OWNER", abi::GET_OWNER),
    ("GET_VALUE", abi::GET_VALUE),
];

/// Each of `cmds` with `addr` as its argument fails with EFAULT.
///
/// # Safety
///
/// As for [`raw_ioctl`]: each of `cmds` may read or write a u64 at `addr`, which must be an
/// address the kernel refuses for that access, or memory nothing else relies on.
unsafe fn efault(d: &Dev, cmds: &[(&str, u32)], addr: usize, what: &str) -> R {
    for &(name, cmd) in cmds {
        // SAFETY: Our caller's contract.
        let r = unsafe { raw_ioctl(d.raw(), cmd, addr) };
        want_errno(&format!("{name} with {what} pointer"), r, Errno::EFAULT)?;
    }
    Ok(())
}

/// Every pointer-taking ioctl with `addr` fails with EFAULT.
///
/// # Safety
///
/// `addr` must be an address the kernel refuses for reads and writes (NULL, unmapped, a
/// kernel address).
unsafe fn pointer_cases(d: &Dev, addr: usize, what: &str) -> R {
    // SAFETY: Our caller's contract covers reads and writes.
    unsafe {
        efault(d, &WRITING_IOCTLS, addr, what)?;
        efault(d, &[("SET_VALUE", abi::SET_VALUE)], addr, what)
    }
}

pub(super) fn bad_null_pointer_efault() -> R {
    let d = dev()?;
    // SAFETY: Page 0 is never mapped: the kernel refuses NULL.
    unsafe { pointer_cases(&d, 0, "a NULL") }?;
    ok("BIND", d.bind())?;
    // SAFETY: As above.
    unsafe { pointer_cases(&d, 0, "a NULL (bound)") }
}

/// A private anonymous page with protection `prot`.
fn map_page(prot: ProtFlags) -> Result<Mapping, String> {
    Mapping::anonymous(4096, prot, MapFlags::MAP_PRIVATE).map_err(|e| format!("mmap: {e}"))
}

pub(super) fn bad_unmapped_pointer_efault() -> R {
    let d = dev()?;
    let page = map_page(ProtFlags::PROT_READ | ProtFlags::PROT_WRITE)?;
    let p = page.addr();
    drop(page);
    // SAFETY: The page at `p` was unmapped just above, and this thread maps nothing in
    // between; another thread's mapping landing there would be written to at worst, and
    // this test process has no other thread.
    unsafe { pointer_cases(&d, p, "an unmapped") }?;
    // SAFETY: SET_VALUE only reads; a kernel address is refused to a user copy.
    let r = unsafe { raw_ioctl(d.raw(), abi::SET_VALUE, 0xffff_ffff_8100_0000) };
    want_errno("SET_VALUE with a kernel pointer", r, Errno::EFAULT)
}

pub(super) fn bad_readonly_pointer() -> R {
    let d = dev()?;
    let page = map_page(ProtFlags::PROT_READ)?;
    let p = page.addr();
    // SAFETY: The page stays mapped read-only until `page` drops at the end: the kernel
    // refuses to write to it.
    unsafe { efault(&d, &WRITING_IOCTLS, p, "a read-only") }?;
    // SAFETY: SET_VALUE reads a u64 from the page, which is mapped (and zero) until `page`
    // drops.
    let r = unsafe { raw_ioctl(d.raw(), abi::SET_VALUE, p) };
    ok("SET_VALUE from a read-only page", r)?;
    want_rec("GET_VALUE", enc(d.value()), 0)
}

pub(super) fn bad_refused_before_fault() -> R {
    let d = dev()?;
    ok("BIND", d.bind())?;
    ok("SET_VALUE", d.set_value(61))?;
    let fd = d.raw();
    // SAFETY: Page 0 is never mapped: the kernel refuses NULL for reads and writes.
    let null_ioctl = |cmd| enc(unsafe { raw_ioctl(fd, cmd, 0) }.map(|v| v as u64));
    // SAFETY: The child makes three raw ioctls, writes its report and _exits:
    // async-signal-safe.
    let report = unsafe {
        fork_report("fork child", || Report::NullArgs {
            set: null_ioctl(abi::SET_VALUE),
            value: null_ioctl(abi::GET_VALUE),
            owner: null_ioctl(abi::GET_OWNER),
        })
    }?;
    let Report::NullArgs { set, value, owner } = report else {
        return Err(format!(
            "fork child: expected NULL-argument results, got {report:?}"
        ));
    };
    // SET_VALUE reads its argument before taking the context's lock, so a bad pointer is
    // EFAULT from anyone; GET_VALUE writes only after the check, so a refused caller gets
    // EPERM. Neither changes the value.
    want_rec(
        "refused SET_VALUE(NULL) reads before the check",
        set,
        -(Errno::EFAULT as i64),
    )?;
    want_rec("refused GET_VALUE(NULL) is refused first", value, eperm())?;
    want_rec(
        "GET_OWNER(NULL) is not refused",
        owner,
        -(Errno::EFAULT as i64),
    )?;
    want_rec("GET_VALUE", enc(d.value()), 61)
}

pub(super) fn fuzz_ioctls() -> R {
    let cfg = crate::fuzz::Config::from_env();
    let s = crate::fuzz::run(cfg)?;
    crate::fuzz::verdict(&cfg, &s)
}
