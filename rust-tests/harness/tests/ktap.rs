// SPDX-License-Identifier: GPL-2.0
//! The runner's isolation, on the host: the real binary runs its hidden self-check tests
//! (`MM_SEQID_KTAP_SELFCHECK=1`), one of which kills itself with SIGSEGV; the tests after it
//! still run and report, and the KTAP says what happened to each.

use std::process::Command;

fn harness(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mm-seqid-harness"))
        .args(args)
        .env("MM_SEQID_HOST_ONLY", "1")
        .env("MM_SEQID_KTAP_SELFCHECK", "1")
        .output()
        .unwrap()
}

#[test]
fn a_crash_takes_only_its_own_test() {
    let out = harness(&["device_present", "ktap_selfcheck"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout,
        "KTAP version 1
1..6
ok 1 device_present # SKIP MM_SEQID_HOST_ONLY is set: no /dev/rust-mm-seqid on a host
# crashing on purpose
# ktap_selfcheck_crash: killed by signal SIGSEGV
not ok 2 ktap_selfcheck_crash
# failing on purpose
not ok 3 ktap_selfcheck_fail
ok 4 ktap_selfcheck_skip # SKIP skipping on purpose
# ktap_selfcheck_exit_status: exited with status 3
not ok 5 ktap_selfcheck_exit_status
# to stdout
# to stderr
ok 6 ktap_selfcheck_pass
# Totals: pass:1 fail:3 xfail:0 xpass:0 skip:2 error:0
"
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn skips_and_passes_exit_0() {
    let out = harness(&["--exact", "ktap_selfcheck_pass", "ktap_selfcheck_skip"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("KTAP version 1\n1..2\n"), "{stdout}");
    assert!(stdout.ends_with("# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:1 error:0\n"));
}

#[test]
fn list_and_usage() {
    let out = harness(&["--list", "ktap_selfcheck_"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 5);
    assert!(stdout.lines().all(|l| l.ends_with(": test")), "{stdout}");
    // Without the variable, the self-check tests do not exist: 41 device tests.
    let out = Command::new(env!("CARGO_BIN_EXE_mm-seqid-harness"))
        .arg("--list")
        .env_remove("MM_SEQID_KTAP_SELFCHECK")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().filter(|l| l.ends_with(": test")).count(), 41);
    assert!(!stdout.contains("selfcheck"));

    let out = harness(&["--nocapture"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage:"));
}
