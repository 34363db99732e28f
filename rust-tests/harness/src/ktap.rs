// SPDX-License-Identifier: GPL-2.0
//! The runner: KTAP version 1 output (Documentation/dev-tools/ktap.rst) and kselftest's
//! isolation, one process per test.
//!
//! `mm-seqid-harness [--list] [--exact] [FILTER...]` prints the plan of the selected tests,
//! then runs each in a process of its own, one at a time: `/proc/self/exe --run-one NAME`, with
//! the same environment. What the child writes to stdout and stderr is relayed as it comes, as
//! `# ` diagnostic lines. The child exits 0 (pass), 1 (fail, after printing the error) or 4
//! (kselftest's `KSFT_SKIP`, after a line `SKIP: reason`, which becomes the `# SKIP reason`
//! directive). A child killed by a signal, or exiting with any other status, is `not ok` with
//! a diagnostic that says so; the tests after it still run. The output ends with kselftest's
//! `# Totals:` line; the exit status is 0 iff no test failed.
//!
//! `--fuzz ARGS` runs the fuzzer the same way, as the single test `fuzz`.
//!
//! `MM_SEQID_KTAP_SELFCHECK=1` adds tests of the runner itself (a crash, a failure, a skip, an
//! odd exit status, a pass after them), for the host tests in tests/ktap.rs.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use mm_seqid_harness::DEVICE;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::unistd::pipe2;

use crate::{fuzz, tests};

/// kselftest's exit status for a skipped test (`KSFT_SKIP`).
pub const KSFT_SKIP: u8 = 4;
/// The hidden mode that runs one test: `--run-one NAME`.
const RUN_ONE: &str = "--run-one";
/// The hidden mode that runs the fuzzer for `--fuzz`: `--run-fuzz ARGS`.
const RUN_FUZZ: &str = "--run-fuzz";
/// Host development: the tests that need the device skip.
const HOST_ONLY: &str = "MM_SEQID_HOST_ONLY";
/// Adds the runner's own tests.
const SELFCHECK: &str = "MM_SEQID_KTAP_SELFCHECK";

const USAGE: &str = "\
usage: mm-seqid-harness [--list] [--exact] [FILTER...]
       mm-seqid-harness --fuzz [--seed=S] [--ops=N] [--secs=N] [--threads=N] [--forkers=N]
       mm-seqid-harness --demo
Runs the tests whose name contains a FILTER (all without one; --exact: is one),
each in a process of its own, and prints KTAP. --list prints their names.";

/// A test the runner knows.
struct Case {
    name: &'static str,
    run: fn() -> Result<(), String>,
    needs_device: bool,
}

fn cases() -> Vec<Case> {
    let mut v: Vec<Case> = tests::all()
        .into_iter()
        .map(|(name, run)| Case {
            name,
            run,
            needs_device: true,
        })
        .collect();
    if std::env::var_os(SELFCHECK).is_some() {
        v.extend(selfcheck::CASES.iter().map(|&(name, run)| Case {
            name,
            run,
            needs_device: false,
        }));
    }
    v
}

/// How one test ended.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    Pass,
    /// With a diagnostic when the child did not end with status 1.
    Fail(Option<String>),
    /// With the reason from the child's `SKIP: ` line.
    Skip(String),
}

/// The counts of kselftest's `# Totals:` line.
#[derive(Debug, Default, PartialEq)]
pub struct Totals {
    pub pass: usize,
    pub fail: usize,
    pub skip: usize,
}

/// Prints the KTAP header and plan.
pub fn header(out: &mut dyn Write, tests: usize) -> io::Result<()> {
    writeln!(out, "KTAP version 1")?;
    writeln!(out, "1..{tests}")?;
    out.flush()
}

/// Prints the result line of test `n` (from 1), and counts it.
pub fn report(
    out: &mut dyn Write,
    n: usize,
    name: &str,
    v: &Verdict,
    t: &mut Totals,
) -> io::Result<()> {
    match v {
        Verdict::Pass => {
            t.pass += 1;
            writeln!(out, "ok {n} {name}")?;
        }
        Verdict::Skip(reason) => {
            t.skip += 1;
            writeln!(out, "ok {n} {name} # SKIP {reason}")?;
        }
        Verdict::Fail(diag) => {
            t.fail += 1;
            if let Some(d) = diag {
                writeln!(out, "# {d}")?;
            }
            writeln!(out, "not ok {n} {name}")?;
        }
    }
    out.flush()
}

/// Prints kselftest's closing line.
pub fn totals(out: &mut dyn Write, t: &Totals) -> io::Result<()> {
    writeln!(
        out,
        "# Totals: pass:{} fail:{} xfail:0 xpass:0 skip:{} error:0",
        t.pass, t.fail, t.skip
    )?;
    out.flush()
}

/// Relays a child's output line by line as KTAP diagnostics, keeping its `SKIP: ` reason.
#[derive(Default)]
struct Relay {
    buf: Vec<u8>,
    skip: Option<String>,
}

impl Relay {
    fn feed(&mut self, out: &mut dyn Write, data: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(data);
        while let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=i).collect();
            self.line(out, &line[..i])?;
        }
        out.flush()
    }

    fn finish(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if !self.buf.is_empty() {
            let line = std::mem::take(&mut self.buf);
            self.line(out, &line)?;
        }
        out.flush()
    }

    fn line(&mut self, out: &mut dyn Write, line: &[u8]) -> io::Result<()> {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches('\r');
        if let Some(reason) = line.strip_prefix("SKIP: ") {
            self.skip = Some(reason.to_string());
            Ok(())
        } else if line.is_empty() {
            writeln!(out, "#")
        } else {
            writeln!(out, "# {line}")
        }
    }
}

/// How long the output of an exited child's leftovers (processes that inherited its stdout) is
/// still read.
const DRAIN: Duration = Duration::from_secs(1);

/// Runs `cmd` as test `name`, its stdout and stderr on one pipe relayed to `out` as they come.
pub fn run_child(out: &mut dyn Write, name: &str, mut cmd: Command) -> io::Result<Verdict> {
    let (rd, wr) = pipe2(OFlag::O_CLOEXEC)?;
    let wr2 = wr.try_clone()?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(wr))
        .stderr(Stdio::from(wr2));
    let spawned = cmd.spawn();
    // Our copies of the write end: without them, EOF comes when the child's last writer exits.
    drop(cmd);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => return Ok(Verdict::Fail(Some(format!("{name}: cannot start: {e}")))),
    };
    let mut rd = File::from(rd);
    let mut relay = Relay::default();
    let mut exited: Option<(ExitStatus, Instant)> = None;
    let mut chunk = [0u8; 4096];
    loop {
        // While the child runs, wake up now and then to reap it; once it has exited, read only
        // what is already there: a process it left behind may hold the pipe open.
        let timeout = if exited.is_some() {
            PollTimeout::ZERO
        } else {
            PollTimeout::from(100u16)
        };
        let ready = match poll(&mut [PollFd::new(rd.as_fd(), PollFlags::POLLIN)], timeout) {
            Ok(n) => n > 0,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        if ready {
            let n = match rd.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                break;
            }
            relay.feed(out, &chunk[..n])?;
            if exited.is_some_and(|(_, t)| t.elapsed() > DRAIN) {
                break;
            }
        } else if exited.is_some() {
            break;
        } else if let Some(status) = child.try_wait()? {
            exited = Some((status, Instant::now()));
        }
    }
    relay.finish(out)?;
    let status = match exited {
        Some((s, _)) => s,
        None => child.wait()?,
    };
    Ok(verdict(name, status, relay.skip))
}

/// The verdict on a child that ended with `status`.
fn verdict(name: &str, status: ExitStatus, skip: Option<String>) -> Verdict {
    match (status.code(), status.signal()) {
        (Some(0), _) => Verdict::Pass,
        (Some(1), _) => Verdict::Fail(None),
        (Some(c), _) if c == i32::from(KSFT_SKIP) => {
            Verdict::Skip(skip.unwrap_or_else(|| "(the test gave no SKIP: line)".to_string()))
        }
        (Some(c), _) => Verdict::Fail(Some(format!("{name}: exited with status {c}"))),
        (None, Some(sig)) => {
            let sig = Signal::try_from(sig).map_or_else(|_| sig.to_string(), |s| s.to_string());
            Verdict::Fail(Some(format!("{name}: killed by signal {sig}")))
        }
        (None, None) => Verdict::Fail(Some(format!("{name}: ended with {status}"))),
    }
}

/// This binary in a hidden mode, with the same environment.
fn self_cmd(mode: &str) -> Command {
    let mut c = Command::new("/proc/self/exe");
    c.arg(mode);
    c
}

/// What the command line asks for.
#[derive(Debug, Default, PartialEq)]
struct Args {
    list: bool,
    exact: bool,
    help: bool,
    filters: Vec<String>,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut a = Args::default();
    let mut only_filters = false;
    for arg in args {
        match arg.as_str() {
            _ if only_filters => a.filters.push(arg.clone()),
            "--list" => a.list = true,
            "--exact" => a.exact = true,
            "-h" | "--help" => a.help = true,
            "--" => only_filters = true,
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            _ => a.filters.push(arg.clone()),
        }
    }
    Ok(a)
}

fn selected(name: &str, a: &Args) -> bool {
    a.filters.is_empty()
        || a.filters.iter().any(|f| {
            if a.exact {
                name == f
            } else {
                name.contains(f.as_str())
            }
        })
}

fn exit(r: io::Result<ExitCode>) -> ExitCode {
    r.unwrap_or_else(|e| {
        eprintln!("mm-seqid-harness: {e}");
        ExitCode::FAILURE
    })
}

/// The test runner's command line: `args` without the program name.
pub fn main(args: &[String]) -> ExitCode {
    match args.first().map(String::as_str) {
        Some(RUN_ONE) if args.len() == 2 => return run_one(&args[1]),
        Some(RUN_FUZZ) => return run_fuzz(&args[1..]),
        _ => {}
    }
    let a = match parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("mm-seqid-harness: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if a.help {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let cases: Vec<Case> = cases()
        .into_iter()
        .filter(|c| selected(c.name, &a))
        .collect();
    if a.list {
        for c in &cases {
            println!("{}: test", c.name);
        }
        return ExitCode::SUCCESS;
    }
    exit((|| {
        let out = &mut io::stdout().lock();
        header(out, cases.len())?;
        let mut t = Totals::default();
        for (i, c) in cases.iter().enumerate() {
            let mut cmd = self_cmd(RUN_ONE);
            cmd.arg(c.name);
            let v = run_child(out, c.name, cmd)?;
            report(out, i + 1, c.name, &v, &mut t)?;
        }
        totals(out, &t)?;
        Ok(if t.fail == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })())
}

/// The child of one test: exits 0, 1 or [`KSFT_SKIP`].
fn run_one(name: &str) -> ExitCode {
    let Some(c) = cases().into_iter().find(|c| c.name == name) else {
        eprintln!("mm-seqid-harness: no test named {name}");
        return ExitCode::from(2);
    };
    if c.needs_device && std::env::var_os(HOST_ONLY).is_some() {
        println!("SKIP: {HOST_ONLY} is set: no {DEVICE} on a host");
        return ExitCode::from(KSFT_SKIP);
    }
    match (c.run)() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

/// `--fuzz ARGS`: the fuzzer as the single test `fuzz`, in a child.
pub fn fuzz(args: &[String]) -> ExitCode {
    if let Err(e) = fuzz::Config::from_args(args) {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    exit((|| {
        let out = &mut io::stdout().lock();
        header(out, 1)?;
        let mut cmd = self_cmd(RUN_FUZZ);
        cmd.args(args);
        let v = run_child(out, "fuzz", cmd)?;
        let mut t = Totals::default();
        report(out, 1, "fuzz", &v, &mut t)?;
        totals(out, &t)?;
        Ok(if t.fail == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })())
}

/// The child of `--fuzz`.
fn run_fuzz(args: &[String]) -> ExitCode {
    let cfg = match fuzz::Config::from_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match fuzz::run(cfg).and_then(|s| fuzz::verdict(&cfg, &s)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fuzz: FAIL {e}");
            ExitCode::from(1)
        }
    }
}

/// The runner's own tests, present only with `MM_SEQID_KTAP_SELFCHECK` set: each ends its
/// process in one of the ways a test can.
mod selfcheck {
    use nix::sys::signal::{raise, sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

    type R = Result<(), String>;
    type Test = fn() -> R;

    pub const CASES: [(&str, Test); 5] = [
        ("ktap_selfcheck_crash", crash),
        ("ktap_selfcheck_fail", fail),
        ("ktap_selfcheck_skip", skip),
        ("ktap_selfcheck_exit_status", exit_status),
        ("ktap_selfcheck_pass", pass),
    ];

    fn crash() -> R {
        println!("crashing on purpose");
        // std handles SIGSEGV to report stack overflows; the default action kills.
        let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
        // SAFETY: SIG_DFL installs no handler code, so nothing runs in signal context.
        unsafe { sigaction(Signal::SIGSEGV, &dfl) }.map_err(|e| e.to_string())?;
        raise(Signal::SIGSEGV).map_err(|e| e.to_string())?;
        Err("survived SIGSEGV".into())
    }

    fn fail() -> R {
        Err("failing on purpose".into())
    }

    fn skip() -> R {
        println!("SKIP: skipping on purpose");
        std::process::exit(super::KSFT_SKIP.into());
    }

    fn exit_status() -> R {
        std::process::exit(3);
    }

    fn pass() -> R {
        println!("to stdout");
        eprintln!("to stderr");
        Ok(())
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    fn run_sh(script: &str) -> (Verdict, String) {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        let mut out = Vec::new();
        let v = run_child(&mut out, "t", cmd).unwrap();
        (v, String::from_utf8(out).unwrap())
    }

    #[test]
    fn fake_children() {
        assert_eq!(
            run_sh("echo a; echo b >&2; echo; printf c"),
            (Verdict::Pass, "# a\n# b\n#\n# c\n".into())
        );
        assert_eq!(
            run_sh("echo boom >&2; exit 1"),
            (Verdict::Fail(None), "# boom\n".into())
        );
        assert_eq!(
            run_sh("echo 'SKIP: no device'; exit 4"),
            (Verdict::Skip("no device".into()), String::new())
        );
        assert_eq!(
            run_sh("exit 7").0,
            Verdict::Fail(Some("t: exited with status 7".into()))
        );
        assert_eq!(
            run_sh("kill -SEGV $$").0,
            Verdict::Fail(Some("t: killed by signal SIGSEGV".into()))
        );
    }

    #[test]
    fn leftover_holding_the_pipe() {
        // A process the test left behind keeps stdout open: the runner still moves on.
        let t0 = Instant::now();
        let (v, out) = run_sh("sleep 30 & echo started");
        assert_eq!((v, out.as_str()), (Verdict::Pass, "# started\n"));
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    }

    #[test]
    fn ktap_lines() {
        let mut out = Vec::new();
        let mut t = Totals::default();
        header(&mut out, 3).unwrap();
        report(&mut out, 1, "a", &Verdict::Pass, &mut t).unwrap();
        report(&mut out, 2, "b", &Verdict::Skip("why".into()), &mut t).unwrap();
        report(
            &mut out,
            3,
            "c",
            &Verdict::Fail(Some("c: x".into())),
            &mut t,
        )
        .unwrap();
        totals(&mut out, &t).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "KTAP version 1\n1..3\nok 1 a\nok 2 b # SKIP why\n# c: x\nnot ok 3 c\n\
             # Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0\n"
        );
    }

    #[test]
    fn command_line() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let a = parse(&s(&["--exact", "x", "--list", "--", "--y"])).unwrap();
        assert_eq!(
            a,
            Args {
                list: true,
                exact: true,
                help: false,
                filters: s(&["x", "--y"]),
            }
        );
        assert!(parse(&s(&["--nocapture"])).is_err());
        assert!(selected("ids_fork", &parse(&s(&["fork"])).unwrap()));
        assert!(!selected(
            "ids_fork",
            &parse(&s(&["--exact", "fork"])).unwrap()
        ));
        assert!(selected("ids_fork", &parse(&s(&[])).unwrap()));
    }
}
