// SPDX-License-Identifier: GPL-2.0
//! The runner's isolation, on the host: the real binary runs its hidden self-check tests
//! (`MM_SEQID_KTAP_SELFCHECK=1`): one kills itself with SIGSEGV, one hangs, one closes its
//! output and hangs, one leaves processes behind; the tests after them still run and report,
//! the KTAP says what happened to each, and nothing the tests left outlives the runner.

use std::process::Command;
use std::time::{Duration, Instant};

/// The deadline the self-check runs give each test, in seconds.
const TIMEOUT: &str = "2";

fn harness(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mm-seqid-harness"))
        .args(args)
        .env("MM_SEQID_HOST_ONLY", "1")
        .env("MM_SEQID_KTAP_SELFCHECK", "1")
        .env("MM_SEQID_TEST_TIMEOUT", TIMEOUT)
        .output()
        .unwrap()
}

/// Whether process `pid` is gone, or a zombie, within 5 s.
fn dies(pid: i32) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(st)
                if st
                    .rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z')) =>
            {
                return true
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    false
}

#[test]
fn a_crash_takes_only_its_own_test() {
    let t0 = Instant::now();
    let out = harness(&["device_present", "ktap_selfcheck"]);
    let took = t0.elapsed();
    let stdout = String::from_utf8(out.stdout).unwrap();
    // The leftover's ticks: how many depends on timing.
    let ticks = stdout.lines().filter(|l| *l == "# tick").count();
    let leftover: i32 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("# leftover pid ")?.parse().ok())
        .unwrap_or_else(|| panic!("no leftover pid in {stdout}"));
    let rest: String = stdout
        .lines()
        .filter(|l| *l != "# tick" && !l.starts_with("# leftover pid "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        rest,
        "KTAP version 1
1..11
# SKIP: MM_SEQID_HOST_ONLY is set: no /dev/rust-mm-seqid on a host
ok 1 device_present # SKIP MM_SEQID_HOST_ONLY is set: no /dev/rust-mm-seqid on a host
# crashing on purpose
# ktap_selfcheck_crash: killed by signal SIGSEGV
not ok 2 ktap_selfcheck_crash
# failing on purpose
not ok 3 ktap_selfcheck_fail
# SKIP: skipping on purpose
ok 4 ktap_selfcheck_skip # SKIP skipping on purpose
# ktap_selfcheck_exit_status: exited with status 3
not ok 5 ktap_selfcheck_exit_status
# SKIP: a SKIP: line, then status 1
# failing after a SKIP: line
not ok 6 ktap_selfcheck_skip_line_then_fail
# hanging on purpose
# ktap_selfcheck_hang: timed out after 2s
not ok 7 ktap_selfcheck_hang # TIMEOUT 2s
# closing stdout and stderr, then hanging
# ktap_selfcheck_closed_output: timed out after 2s
not ok 8 ktap_selfcheck_closed_output # TIMEOUT 2s
ok 9 ktap_selfcheck_leftovers
ok 10 ktap_selfcheck_runner_reaps
# to stdout
# to stderr
ok 11 ktap_selfcheck_pass
# Totals: pass:3 fail:6 xfail:0 xpass:0 skip:2 error:0
"
    );
    assert!(ticks > 0, "the leftover never wrote: {stdout}");
    assert!(dies(leftover), "the leftover outlived its test");
    // Two deadlines of 2 s, a drain of 1 s and the rest: far less than the leftover's minute.
    assert!(took < Duration::from_secs(30), "{took:?}");
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
fn no_test_selected_is_an_error() {
    for args in [&["no_such_test"][..], &["--list", "no_such_test"]] {
        let out = harness(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "mm-seqid-harness: no test matches no_such_test\n"
        );
    }
}

#[test]
fn list_and_usage() {
    let out = harness(&["--list", "ktap_selfcheck_"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 10);
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

#[test]
fn sigterm_reaches_the_running_test() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_mm-seqid-harness"))
        .args(["--exact", "ktap_selfcheck_hang", "ktap_selfcheck_pass"])
        .env("MM_SEQID_KTAP_SELFCHECK", "1")
        .env("MM_SEQID_TEST_TIMEOUT", "60")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    // The test runs once it has said so.
    while !text.ends_with("# hanging on purpose\n") {
        assert!(out.read_line(&mut text).unwrap() > 0, "{text}");
    }
    let t0 = Instant::now();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    out.read_to_string(&mut text).unwrap();
    let status = child.wait().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert_eq!(
        text,
        "KTAP version 1
1..2
# hanging on purpose
# ktap_selfcheck_hang: killed by signal SIGTERM
not ok 1 ktap_selfcheck_hang
# ktap_selfcheck_pass: not run: the runner got SIGTERM
not ok 2 ktap_selfcheck_pass
# Totals: pass:0 fail:2 xfail:0 xpass:0 skip:0 error:0
"
    );
    assert_eq!(status.code(), Some(1));
}
