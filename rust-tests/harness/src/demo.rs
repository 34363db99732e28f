// SPDX-License-Identifier: GPL-2.0
//! `--demo`: what README's run command shows.

use mm_seqid_harness::{enc, fork_report, raw_get_mm_id, raw_get_value, show, Dev, Probe, Report};

use crate::tests::{before_after, fork_probe, spawn_report};

fn verdict(v: i64) -> String {
    if v >= 0 {
        "accepted".into()
    } else {
        format!("refused: {}", show(v))
    }
}

/// Prints the demo; fails if the kernel does not behave as the sample's documentation says.
pub fn run() -> Result<(), String> {
    let d = Dev::open()?;
    let fd = d.raw();
    let me = d.mm_id().map_err(|e| format!("GET_MM_ID: {e}"))?;
    let pid = std::process::id();

    println!("mm sequence ids, as MM_SEQID_IOC_GET_MM_ID of /dev/rust-mm-seqid reports them:");
    println!("  {:<38} id {me}", format!("parent (pid {pid})"));
    let thread = std::thread::spawn(move || raw_get_mm_id(fd))
        .join()
        .unwrap();
    println!(
        "  {:<38} id {}  (shares the parent's mm)",
        "a thread of the parent",
        show(enc(thread))
    );
    let fork = fork_probe(fd, None, false)?;
    println!(
        "  {:<38} id {}  (a copy of the mm: new id)",
        format!("fork child (pid {})", fork.pid),
        show(fork.mm_id)
    );
    let (before, after) = before_after(spawn_report("bind-exec", vec![], &[], None)?)?;
    println!(
        "  {:<38} id {} before execve, {} after  (same pid, new mm)",
        format!("another process (pid {})", before.pid),
        show(before.mm_id),
        show(after.mm_id)
    );

    println!();
    println!("A context bound by the parent (MM_SEQID_IOC_BIND), value 7:");
    d.bind().map_err(|e| format!("BIND: {e}"))?;
    d.set_value(7).map_err(|e| format!("SET_VALUE: {e}"))?;
    let t = std::thread::spawn(move || enc(raw_get_value(fd)))
        .join()
        .unwrap();
    println!("  {:<38} GET_VALUE {}", "the parent's thread", verdict(t));
    let f = fork_probe(fd, None, false)?;
    println!("  {:<38} GET_VALUE {}", "a fork child", verdict(f.value));
    println!(
        "  {:<38} GET_VALUE {}",
        "the bind-exec process after execve",
        verdict(after.value)
    );
    println!();
    println!("Hand-over: the parent unbinds, a fork child binds:");
    d.unbind().map_err(|e| format!("UNBIND: {e}"))?;
    // SAFETY: The child makes raw ioctls, writes its report and _exits: async-signal-safe
    // (the parent has no other thread left: the one above was joined).
    let report = unsafe {
        fork_report("the fork child", || {
            Report::Probe(Probe::take(fd, None, true))
        })
    }?;
    let Report::Probe(child) = report else {
        return Err(format!("the fork child sent {report:?}"));
    };
    println!(
        "  {:<38} BIND {}",
        format!("fork child (pid {})", child.pid),
        verdict(child.bind)
    );
    println!(
        "  {:<38} GET_VALUE {}",
        "the old owner, the parent",
        verdict(enc(d.value()))
    );

    let ok = enc(thread) == me as i64
        && fork.mm_id > me as i64
        && t == 7
        && f.value < 0
        && after.value < 0
        && child.bind == 0
        && d.value().is_err();
    if ok {
        println!("\nAll as the sample's documentation says.");
        Ok(())
    } else {
        Err("the kernel did not behave as the sample's documentation says".into())
    }
}
