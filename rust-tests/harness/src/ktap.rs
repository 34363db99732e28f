// SPDX-License-Identifier: GPL-2.0
//! The runner: KTAP version 1 output (Documentation/dev-tools/ktap.rst) and kselftest's
//! isolation, one process per test.
//!
//! `mm-seqid-harness [--list] [--exact] [FILTER...]` prints the plan of the selected tests,
//! then runs each in a process of its own, one at a time: `/proc/self/exe --run-one NAME`, with
//! the same environment. What the child writes to stdout and stderr is relayed as it comes, as
//! `# ` diagnostic lines. The child exits 0 (pass), 1 (fail, after printing the error) or 4
//! (kselftest's `KSFT_SKIP`, after a line `SKIP: reason`, which becomes the `# SKIP reason`
//! directive; the line itself is relayed too). A child killed by a signal, or exiting with any
//! other status, is `not ok` with a diagnostic that says so; the tests after it still run. The
//! output ends with kselftest's `# Totals:` line; the exit status is 0 iff no test failed, 2
//! if no test matches the filters.
//!
//! Each test runs in a process group of its own, with a deadline: `MM_SEQID_TEST_TIMEOUT`
//! seconds (default 600); `fuzz_ioctls` gets its own time limit (`MM_SEQID_FUZZ_SECS`) plus
//! [`FUZZ_MARGIN`], `aba_dead_owner_refused` 10 ms more per process of `MM_SEQID_ABA_ITERS`.
//! A test still running at its deadline, whether or not it closed its output, is killed and
//! reported as kselftest's runner does: `# NAME: timed out after Ns`, then
//! `not ok N NAME # TIMEOUT Ns` (kunit.py reads that as a failure of NAME). Once a test has
//! exited, the output of what it left behind is read for at most a second, then its process
//! group is killed. The runner is a child subreaper: what a test left outside its group is
//! reparented to the runner and reaped between tests. SIGINT and SIGTERM are passed on to the
//! running test's group (a second one kills it); the tests not run yet are reported `not ok`.
//! So are they after an I/O error of the runner, and the output still ends with `# Totals:`.
//!
//! `--fuzz ARGS` runs the fuzzer the same way, as the single test `fuzz`.
//!
//! `MM_SEQID_KTAP_SELFCHECK=1` adds tests of the runner itself (a crash, a failure, a skip, an
//! odd exit status, a hang, leftovers, a pass after them), for the host tests in tests/ktap.rs.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use mm_seqid_harness::{pidfd_open, DEVICE};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::{pipe2, Pid};

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
/// A test's deadline, in seconds.
const TIMEOUT: &str = "MM_SEQID_TEST_TIMEOUT";
/// The deadline without [`TIMEOUT`].
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// The fuzzer's deadline beyond its own time limit: it stops its threads and children.
pub const FUZZ_MARGIN: Duration = Duration::from_secs(120);

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
    /// Still running at its deadline, this long after it started: killed.
    Timeout(Duration),
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
        Verdict::Timeout(d) => {
            t.fail += 1;
            let secs = d.as_secs();
            writeln!(out, "# {name}: timed out after {secs}s")?;
            writeln!(out, "not ok {n} {name} # TIMEOUT {secs}s")?;
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
            // The reason counts only if the child exits with KSFT_SKIP; the line is shown
            // either way.
            self.skip = Some(reason.to_string());
        }
        // One write per line: an error leaves no half line behind.
        let text = if line.is_empty() {
            "#\n".to_string()
        } else {
            format!("# {line}\n")
        };
        out.write_all(text.as_bytes())
    }
}

/// How long the output of an exited child's leftovers (processes that inherited its stdout) is
/// still read.
const DRAIN: Duration = Duration::from_secs(1);
/// How often the runner looks at a running child when it has nothing to read.
const TICK: Duration = Duration::from_millis(100);

/// The process group of the running test, 0 if none: where SIGINT and SIGTERM go.
static CURRENT_GROUP: AtomicI32 = AtomicI32::new(0);
/// The SIGINT or SIGTERM the runner got, 0 if none.
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);

/// How a relayed child ended.
enum Ended {
    /// It exited (it is not reaped yet).
    Exited,
    /// It was still running at its deadline.
    TimedOut,
}

/// Whether child `pid` has exited, without reaping it.
fn has_exited(pid: Pid) -> io::Result<bool> {
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    loop {
        match waitid(Id::Pid(pid), flags) {
            Ok(WaitStatus::StillAlive) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Relays `rd` to `out` until the child `pid` has exited and its output is drained, or until
/// `deadline`.
fn relay(
    out: &mut dyn Write,
    relay: &mut Relay,
    pid: Pid,
    mut rd: File,
    deadline: Instant,
) -> io::Result<Ended> {
    // Wakes us when the child exits, even while a leftover keeps the pipe busy or after the
    // child closed its end; without it (an old kernel), we look every TICK.
    let pidfd = pidfd_open(pid.as_raw()).ok();
    let mut eof = false;
    let mut exited: Option<Instant> = None;
    let mut chunk = [0u8; 4096];
    loop {
        // On every pass: a leftover that writes all the time must not hide the exit.
        if exited.is_none() && has_exited(pid)? {
            exited = Some(Instant::now());
        }
        let now = Instant::now();
        match exited {
            // Once the child has exited, read only what is already there, for at most DRAIN: a
            // process it left behind may hold the pipe open.
            Some(t) if eof || now.duration_since(t) > DRAIN => return Ok(Ended::Exited),
            Some(_) => {}
            None if now >= deadline => return Ok(Ended::TimedOut),
            None => {}
        }
        let timeout = if exited.is_some() {
            PollTimeout::ZERO
        } else {
            PollTimeout::try_from(TICK.min(deadline - now)).unwrap_or(PollTimeout::ZERO)
        };
        let mut fds = Vec::with_capacity(2);
        if !eof {
            fds.push(PollFd::new(rd.as_fd(), PollFlags::POLLIN));
        }
        if let (Some(p), None) = (&pidfd, exited) {
            fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
        }
        if fds.is_empty() {
            // EOF, no pidfd, the child still running: look again in a while.
            std::thread::sleep(TICK.min(deadline - now));
            continue;
        }
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let readable = !eof && fds[0].revents().is_some_and(|r| !r.is_empty());
        drop(fds);
        if readable {
            let n = match rd.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                eof = true;
            } else {
                relay.feed(out, &chunk[..n])?;
            }
        } else if exited.is_some() {
            return Ok(Ended::Exited);
        }
    }
}

/// Runs `cmd` as test `name`, in a process group of its own, its stdout and stderr on one pipe
/// relayed to `out` as they come; kills it if it still runs after `timeout`. Kills what is
/// left of its group when it ends. On an I/O error, the child is killed and reaped too.
pub fn run_child(
    out: &mut dyn Write,
    name: &str,
    mut cmd: Command,
    timeout: Duration,
) -> io::Result<Verdict> {
    let (rd, wr) = pipe2(OFlag::O_CLOEXEC)?;
    let wr2 = wr.try_clone()?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(wr))
        .stderr(Stdio::from(wr2))
        .process_group(0);
    let started = Instant::now();
    let spawned = cmd.spawn();
    // Our copies of the write end: without them, EOF comes when the child's last writer exits.
    drop(cmd);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => return Ok(Verdict::Fail(Some(format!("{name}: cannot start: {e}")))),
    };
    let pid = Pid::from_raw(child.id() as i32);
    CURRENT_GROUP.store(pid.as_raw(), Ordering::SeqCst);
    let mut lines = Relay::default();
    let ended = relay(out, &mut lines, pid, File::from(rd), started + timeout)
        .and_then(|e| lines.finish(out).map(|()| e));
    // The group outlives its leader while it has members; the leader, a zombie or not yet
    // reaped, keeps its id from being reused meanwhile.
    kill_group(&mut child, pid);
    CURRENT_GROUP.store(0, Ordering::SeqCst);
    let status = child.wait();
    match ended? {
        Ended::Exited => Ok(verdict(name, status?, lines.skip)),
        Ended::TimedOut => Ok(Verdict::Timeout(timeout)),
    }
}

/// SIGKILL to the process group of `child`, which leads it.
fn kill_group(child: &mut Child, pid: Pid) {
    if killpg(pid, Signal::SIGKILL).is_err() {
        let _ = child.kill();
    }
}

/// Reaps every child of the runner that has exited: what tests left outside their process
/// group reparents to us (we are a subreaper). Waits up to `wait` for processes just killed to
/// die; returns how many children are still running after that.
pub fn reap_leftovers(wait: Duration) -> usize {
    let t0 = Instant::now();
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {
                if t0.elapsed() >= wait {
                    return running_children();
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(_) | Err(Errno::EINTR) => {}
            // ECHILD: none left.
            Err(_) => return 0,
        }
    }
}

/// How many children this process has, as /proc says (1 if it cannot tell).
fn running_children() -> usize {
    let me = std::process::id();
    let path = format!("/proc/{me}/task/{me}/children");
    std::fs::read_to_string(path).map_or(1, |s| s.split_whitespace().count())
}

/// SIGINT and SIGTERM: passed on to the running test's process group, which no longer gets
/// the terminal's; a second one kills the group. Async-signal-safe.
extern "C" fn on_interrupt(sig: libc::c_int) {
    let first = INTERRUPTED.swap(sig, Ordering::SeqCst) == 0;
    let group = CURRENT_GROUP.load(Ordering::SeqCst);
    if group > 0 {
        let sig = if first { sig } else { libc::SIGKILL };
        // SAFETY: kill() is async-signal-safe and touches no memory.
        unsafe { libc::kill(-group, sig) };
    }
}

/// The runner's process setup: a subreaper, SIGINT and SIGTERM passed on.
fn runner_setup() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet};
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let act = SigAction::new(
        SigHandler::Handler(on_interrupt),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: on_interrupt() only uses atomics and kill(), both async-signal-safe.
        let _ = unsafe { sigaction(sig, &act) };
    }
}

/// The signal that interrupted the run, if one did.
fn interrupted() -> Option<String> {
    match INTERRUPTED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(Signal::try_from(s).map_or_else(|_| s.to_string(), |s| s.to_string())),
    }
}

/// How long to wait for a test's leftovers to die once its group is killed.
const REAP_WAIT: Duration = Duration::from_secs(2);

/// Runs the tests `names` one by one and prints the KTAP: `start(name)` gives the command and
/// the deadline of a test, `after(name)` runs after each (the runner reaps there) and returns
/// a diagnostic if something is wrong. After an I/O error of the runner or an interrupt, the
/// tests not run yet are `not ok`; the output still ends with `# Totals:`.
pub fn run_plan(
    out: &mut dyn Write,
    names: &[&str],
    start: &mut dyn FnMut(&str) -> (Command, Duration),
    after: &mut dyn FnMut(&str) -> Option<String>,
) -> io::Result<Totals> {
    header(out, names.len())?;
    let mut t = Totals::default();
    let mut stopped: Option<String> = None;
    for (i, &name) in names.iter().enumerate() {
        if stopped.is_none() {
            stopped = interrupted().map(|s| format!("the runner got {s}"));
        }
        let v = match &stopped {
            Some(why) => Verdict::Fail(Some(format!("{name}: not run: {why}"))),
            None => {
                let (cmd, timeout) = start(name);
                match run_child(out, name, cmd, timeout) {
                    Ok(v) => v,
                    Err(e) => {
                        stopped = Some(format!("the runner stopped after an I/O error: {e}"));
                        Verdict::Fail(Some(format!("{name}: the runner's I/O failed: {e}")))
                    }
                }
            }
        };
        if let Some(d) = after(name) {
            writeln!(out, "# {d}")?;
        }
        report(out, i + 1, name, &v, &mut t)?;
    }
    totals(out, &t)?;
    Ok(t)
}

/// Seconds from environment variable `key`.
fn env_secs(key: &str) -> Option<Duration> {
    let v = std::env::var(key).ok()?;
    v.trim().parse().ok().map(Duration::from_secs)
}

/// The deadline of test `name`.
fn deadline_of(name: &str) -> Duration {
    let base = env_secs(TIMEOUT).unwrap_or(DEFAULT_TIMEOUT);
    match name {
        "fuzz_ioctls" => Duration::from_secs(fuzz::Config::from_env().secs) + FUZZ_MARGIN,
        // 10 ms per process: scripts/debug's stress pass forks 100000.
        "aba_dead_owner_refused" => {
            base + Duration::from_millis(10) * tests::aba_iterations() as u32
        }
        _ => base,
    }
}

/// The runner's `after`: reaps, and says if a leftover escaped the kill.
fn reap_after(name: &str) -> Option<String> {
    match reap_leftovers(REAP_WAIT) {
        0 => None,
        n => Some(format!(
            "{name}: {n} process(es) it left outside its process group still run"
        )),
    }
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
    if cases.is_empty() {
        eprintln!("mm-seqid-harness: no test matches {}", a.filters.join(" "));
        return ExitCode::from(2);
    }
    if a.list {
        for c in &cases {
            println!("{}: test", c.name);
        }
        return ExitCode::SUCCESS;
    }
    runner_setup();
    let names: Vec<&str> = cases.iter().map(|c| c.name).collect();
    exit((|| {
        let out = &mut io::stdout().lock();
        let mut start = |name: &str| {
            let mut cmd = self_cmd(RUN_ONE);
            cmd.arg(name);
            (cmd, deadline_of(name))
        };
        let t = run_plan(out, &names, &mut start, &mut reap_after)?;
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
    let deadline = match fuzz::Config::from_args(args) {
        Ok(c) => Duration::from_secs(c.secs) + FUZZ_MARGIN,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    runner_setup();
    exit((|| {
        let out = &mut io::stdout().lock();
        let mut start = |_: &str| {
            let mut cmd = self_cmd(RUN_FUZZ);
            cmd.args(args);
            (cmd, deadline)
        };
        let t = run_plan(out, &["fuzz"], &mut start, &mut reap_after)?;
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
    use std::time::Duration;

    use nix::sys::signal::{raise, sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    use nix::unistd::{fork, getpid, getppid, ForkResult, Pid};

    type R = Result<(), String>;
    type Test = fn() -> R;

    pub const CASES: [(&str, Test); 10] = [
        ("ktap_selfcheck_crash", crash),
        ("ktap_selfcheck_fail", fail),
        ("ktap_selfcheck_skip", skip),
        ("ktap_selfcheck_exit_status", exit_status),
        ("ktap_selfcheck_skip_line_then_fail", skip_line_then_fail),
        ("ktap_selfcheck_hang", hang),
        ("ktap_selfcheck_closed_output", closed_output),
        ("ktap_selfcheck_leftovers", leftovers),
        ("ktap_selfcheck_runner_reaps", runner_reaps),
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

    fn skip_line_then_fail() -> R {
        println!("SKIP: a SKIP: line, then status 1");
        Err("failing after a SKIP: line".into())
    }

    fn sleep_forever() -> ! {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }

    fn hang() -> R {
        println!("hanging on purpose");
        sleep_forever()
    }

    fn closed_output() -> R {
        println!("closing stdout and stderr, then hanging");
        // SAFETY: Nothing in this process writes to fds 1 and 2 after this, and nothing owns
        // them: std's stdout and stderr use the numbers without closing them.
        unsafe {
            libc::close(1);
            libc::close(2);
        }
        sleep_forever()
    }

    /// Forks a child that runs `f`, without the harness's PR_SET_PDEATHSIG: a leftover.
    ///
    /// # Safety
    ///
    /// `f` must be async-signal-safe unless the process has no other thread.
    unsafe fn fork_leftover(f: impl FnOnce()) -> Result<Pid, String> {
        // SAFETY: The child runs `f` (our caller's contract) and _exits.
        match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
            ForkResult::Child => {
                f();
                // SAFETY: _exit() ends the child without running the parent's destructors.
                unsafe { libc::_exit(0) }
            }
            ForkResult::Parent { child } => Ok(child),
        }
    }

    /// Sleeps; async-signal-safe (std's sleep is a nanosleep() loop).
    fn nap(ms: u64) {
        std::thread::sleep(Duration::from_millis(ms));
    }

    /// Exits after 300 ms, leaving behind a process in its group that writes to stdout every
    /// 50 ms (for a minute at most), and one that leaves the group and exits 300 ms later.
    fn leftovers() -> R {
        let ticker = || {
            for _ in 0..1200 {
                let _ = nix::unistd::write(std::io::stdout(), b"tick\n");
                nap(50);
            }
        };
        // SAFETY: The child writes and sleeps with raw system calls: async-signal-safe.
        let pid = unsafe { fork_leftover(ticker) }?;
        let escaper = || {
            let _ = nix::unistd::setsid();
            // SAFETY: The child's own copies of fds 1 and 2, which nothing else owns.
            unsafe {
                libc::close(1);
                libc::close(2);
            }
            nap(300);
        };
        // SAFETY: setsid, close and a sleep: raw system calls, async-signal-safe.
        unsafe { fork_leftover(escaper) }?;
        println!("leftover pid {pid}");
        // Some ticks come while we still run, so the runner sees its pipe busy throughout.
        nap(300);
        Ok(())
    }

    /// The children of process `pid`'s main thread.
    fn children(pid: Pid) -> Result<Vec<i32>, String> {
        let path = format!("/proc/{pid}/task/{pid}/children");
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        Ok(text
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect())
    }

    /// The runner killed and reaped what the tests before left, and is their subreaper.
    fn runner_reaps() -> R {
        let runner = getppid();
        let kids = children(runner)?;
        if kids != [getpid().as_raw()] {
            return Err(format!(
                "the runner (pid {runner}) has children {kids:?}, want only this test"
            ));
        }
        // A grandchild whose parent exits goes to the nearest subreaper: the runner.
        let (r, w) = mm_seqid_harness::pipe();
        let grandchild = || {
            // Runs in the child: the grandchild's parent until the child exits.
            let parent = getpid();
            // SAFETY: Raw system calls: async-signal-safe.
            let _ = unsafe {
                fork_leftover(|| {
                    for _ in 0..5000 {
                        if getppid() != parent {
                            break;
                        }
                        nap(1);
                    }
                    let _ = nix::unistd::write(&w, &getppid().as_raw().to_ne_bytes());
                })
            };
        };
        // SAFETY: The child forks and _exits; the grandchild polls getppid() and writes:
        // raw system calls, async-signal-safe.
        let child = unsafe { fork_leftover(grandchild) }?;
        drop(w);
        mm_seqid_harness::wait_exit(child)?;
        let mut b = [0u8; 4];
        let n = nix::unistd::read(&r, &mut b).map_err(|e| format!("read: {e}"))?;
        let adopter = i32::from_ne_bytes(b);
        if n != 4 || adopter != runner.as_raw() {
            return Err(format!(
                "an orphan went to pid {adopter} ({n} bytes), not to the runner (pid {runner}): \
                 the runner is no subreaper"
            ));
        }
        Ok(())
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

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    fn run_sh_within(script: &str, timeout: Duration) -> (Verdict, String) {
        let mut out = Vec::new();
        let v = run_child(&mut out, "t", sh(script), timeout).unwrap();
        (v, String::from_utf8(out).unwrap())
    }

    fn run_sh(script: &str) -> (Verdict, String) {
        run_sh_within(script, Duration::from_secs(60))
    }

    /// Whether process `pid` is gone (or a zombie: its reaper may not be us), within 5 s.
    fn dies(pid: i32) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                Err(_) => return true,
                // The state follows the ")" that ends the command name.
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

    /// The pid in the line `# pid N` of `out`.
    fn pid_in(out: &str) -> i32 {
        out.lines()
            .find_map(|l| l.strip_prefix("# pid ")?.parse().ok())
            .unwrap_or_else(|| panic!("no pid line in {out:?}"))
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
            (
                Verdict::Skip("no device".into()),
                "# SKIP: no device\n".into()
            )
        );
        // A SKIP: line counts only with status 4, and is shown whatever the status.
        assert_eq!(
            run_sh("echo 'SKIP: not really'; exit 1"),
            (Verdict::Fail(None), "# SKIP: not really\n".into())
        );
        assert_eq!(
            run_sh("echo 'SKIP: not really'; exit 0"),
            (Verdict::Pass, "# SKIP: not really\n".into())
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
    fn leftover_writing_all_the_time() {
        // A leftover that writes more often than the runner's tick must not hide the exit;
        // it is killed with the test's process group once the verdict is in.
        let t0 = Instant::now();
        let (v, out) = run_sh("(while :; do echo x; sleep 0.05; done) & echo pid $!; exit 0");
        assert_eq!(v, Verdict::Pass, "{out}");
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
        assert!(dies(pid_in(&out)), "the leftover still runs");
    }

    #[test]
    fn hung_test_times_out() {
        let t0 = Instant::now();
        let (v, out) = run_sh_within("echo pid $$; sleep 30", Duration::from_secs(1));
        assert_eq!(v, Verdict::Timeout(Duration::from_secs(1)));
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
        assert!(dies(pid_in(&out)), "the hung test still runs");
    }

    #[test]
    fn closed_output_then_hang_times_out() {
        // EOF before the exit: the runner waits for the exit with the same deadline.
        let t0 = Instant::now();
        let (v, out) = run_sh_within(
            "echo pid $$; exec >&- 2>&-; sleep 30",
            Duration::from_secs(1),
        );
        assert_eq!(v, Verdict::Timeout(Duration::from_secs(1)));
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
        assert!(dies(pid_in(&out)), "the test still runs");
    }

    #[test]
    fn closed_output_then_exit_passes() {
        let (v, out) = run_sh("exec >&- 2>&-; sleep 0.3; exit 0");
        assert_eq!((v, out.as_str()), (Verdict::Pass, ""));
    }

    /// Fails the write that carries `bad`, once.
    struct FailOnce {
        out: Vec<u8>,
        bad: &'static str,
        failed: bool,
    }

    impl Write for FailOnce {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if !self.failed && String::from_utf8_lossy(buf).contains(self.bad) {
                self.failed = true;
                return Err(io::Error::other("injected"));
            }
            self.out.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn io_error_ends_the_plan_with_totals() {
        let mut out = FailOnce {
            out: Vec::new(),
            bad: "boom",
            failed: false,
        };
        let t0 = Instant::now();
        let t = run_plan(
            &mut out,
            &["a", "b"],
            &mut |name| {
                let script = if name == "a" {
                    "echo pid $$; echo boom; sleep 30"
                } else {
                    "echo should not run"
                };
                (sh(script), Duration::from_secs(60))
            },
            &mut |_| None,
        )
        .unwrap();
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
        let text = String::from_utf8(out.out).unwrap();
        assert!(dies(pid_in(&text)), "test a still runs");
        assert_eq!(
            t,
            Totals {
                pass: 0,
                fail: 2,
                skip: 0
            }
        );
        let body: Vec<&str> = text.lines().filter(|l| !l.starts_with("# pid ")).collect();
        assert_eq!(
            body,
            [
                "KTAP version 1",
                "1..2",
                "# a: the runner's I/O failed: injected",
                "not ok 1 a",
                "# b: not run: the runner stopped after an I/O error: injected",
                "not ok 2 b",
                "# Totals: pass:0 fail:2 xfail:0 xpass:0 skip:0 error:0",
            ]
        );
    }

    #[test]
    fn ktap_lines() {
        let mut out = Vec::new();
        let mut t = Totals::default();
        header(&mut out, 4).unwrap();
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
        report(
            &mut out,
            4,
            "d",
            &Verdict::Timeout(Duration::from_secs(600)),
            &mut t,
        )
        .unwrap();
        totals(&mut out, &t).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "KTAP version 1\n1..4\nok 1 a\nok 2 b # SKIP why\n# c: x\nnot ok 3 c\n\
             # d: timed out after 600s\nnot ok 4 d # TIMEOUT 600s\n\
             # Totals: pass:1 fail:2 xfail:0 xpass:0 skip:1 error:0\n"
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
