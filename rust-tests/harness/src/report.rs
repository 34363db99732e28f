// SPDX-License-Identifier: GPL-2.0
//! What a child tells the test that started it: one [`Report`] per message, written to a pipe
//! as fixed-size plain data, encoded and decoded here only.
//!
//! Writing allocates nothing and is one `write()` of [`Report::LEN`] bytes, less than
//! `PIPE_BUF`, so a fork child may report, and reports of several writers do not interleave.

use std::os::fd::{AsFd, RawFd};

use nix::errno::Errno;

use crate::abi::{raw_bind, raw_get_mm_id, raw_get_owner, raw_get_value, raw_set_value};

/// Encodes an ioctl result for a report: the value, or `-errno`.
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

/// What a process saw on a device fd; each ioctl result encoded by [`enc`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Probe {
    /// The process's pid.
    pub pid: i64,
    /// `GET_MM_ID`.
    pub mm_id: i64,
    /// `GET_OWNER`.
    pub owner: i64,
    /// `GET_VALUE`.
    pub value: i64,
    /// `SET_VALUE`, with the value given to the process, or 0 if none.
    pub set: i64,
    /// `BIND`, if the process was asked to try it, else 0.
    pub bind: i64,
    /// `UNBIND`, tried last, if the process was asked to try it, else 0.
    pub unbind: i64,
}

impl Probe {
    /// Probes a device fd from the calling process: `GET_MM_ID`, `GET_OWNER`, `GET_VALUE`,
    /// then `SET_VALUE` and `BIND` if asked. Async-signal-safe.
    pub fn take(fd: RawFd, set: Option<u64>, try_bind: bool) -> Probe {
        Probe {
            pid: i64::from(nix::unistd::getpid().as_raw()),
            mm_id: enc(raw_get_mm_id(fd)),
            owner: enc(raw_get_owner(fd)),
            value: enc(raw_get_value(fd)),
            set: set.map_or(0, |v| enc0(raw_set_value(fd, v))),
            bind: if try_bind { enc0(raw_bind(fd)) } else { 0 },
            unbind: 0,
        }
    }

    fn words(&self) -> [i64; 7] {
        [
            self.pid,
            self.mm_id,
            self.owner,
            self.value,
            self.set,
            self.bind,
            self.unbind,
        ]
    }

    fn from_words(w: &[i64]) -> Probe {
        Probe {
            pid: w[0],
            mm_id: w[1],
            owner: w[2],
            value: w[3],
            set: w[4],
            bind: w[5],
            unbind: w[6],
        }
    }
}

/// Why a fork child of a race test saw a broken contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// An ioctl failed with an errno the contract does not allow there.
    Errno,
    /// The child has its parent's id.
    ParentsId,
    /// The child is the owner though it never bound.
    OwnerWithoutBind,
    /// Neither the parent nor the child owns the context, yet it is bound.
    Stranger,
    /// The child lost a binding it held: `GET_OWNER` or `SET_VALUE` said so.
    LostBinding,
    /// `GET_VALUE` was refused to the child right after its own `BIND`.
    RefusedAfterBind,
    /// `UNBIND` was refused to the owner.
    UnbindRefused,
    /// Another process's `UNBIND` failed with an errno other than `EPERM`.
    StrangerUnbind,
    /// Another process's `GET_VALUE` failed with an errno other than `EPERM`.
    StrangerGetValue,
}

const FAULTS: [Fault; 9] = [
    Fault::Errno,
    Fault::ParentsId,
    Fault::OwnerWithoutBind,
    Fault::Stranger,
    Fault::LostBinding,
    Fault::RefusedAfterBind,
    Fault::UnbindRefused,
    Fault::StrangerUnbind,
    Fault::StrangerGetValue,
];

/// One message from a child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    /// What the process saw on a device fd.
    Probe(Probe),
    /// What the process saw just before it execs (a [`Report::Probe`] of the new image
    /// follows).
    BeforeExec(Probe),
    /// The id before and after an `execve` that failed, and what `execve` returned.
    FailedExec {
        /// The process's pid.
        pid: i64,
        /// `GET_MM_ID` before the `execve`.
        before: i64,
        /// `GET_MM_ID` after it.
        after: i64,
        /// `execve`'s return value.
        ret: i64,
        /// `execve`'s errno.
        errno: i64,
    },
    /// A new owner's probe (with its `BIND`), and `GET_OWNER` after that `BIND`.
    NewOwner {
        /// The probe, `BIND` last.
        probe: Probe,
        /// `GET_OWNER` after the `BIND`.
        owner: i64,
    },
    /// `SET_VALUE`, `GET_VALUE` and `GET_OWNER` with a NULL argument.
    NullArgs {
        /// `SET_VALUE(NULL)`.
        set: i64,
        /// `GET_VALUE(NULL)`.
        value: i64,
        /// `GET_OWNER(NULL)`.
        owner: i64,
    },
    /// One of the owner's threads was refused (`busy-thread-exec`).
    HammerFailed {
        /// `GET_VALUE`.
        value: i64,
        /// `GET_OWNER`.
        owner: i64,
        /// `SET_VALUE`.
        set: i64,
    },
    /// How many ioctls the owner's threads issued before the exec (`busy-thread-exec`).
    Hammered {
        /// The count.
        ioctls: i64,
    },
    /// One call's result: the value (0 for a unit result), or `-errno`.
    Call(i64),
    /// `GET_VALUE` on a dead owner's context, and `GET_MM_ID` if that was refused with
    /// `EPERM` (else 0).
    DeadOwnerFd {
        /// `GET_VALUE`.
        value: i64,
        /// `GET_MM_ID`, or 0 if not asked.
        mm_id: i64,
    },
    /// The child bound the context while it was unbound, used it, and released it.
    BoundAndReleased,
    /// The child's `BIND` was refused with `EPERM`.
    BindRefused,
    /// The child only looked (was not asked to bind), and saw nothing wrong.
    Looked,
    /// The child won `BIND` this many times and each binding held until it released it.
    Wins(i64),
    /// The child watched the context until told to stop, and saw nothing wrong.
    Watched,
    /// The child saw the contract broken.
    Fault(Fault),
}

/// A report on the wire: a tag and eight fields.
const WORDS: usize = 9;

impl Report {
    /// The size of one report on the wire.
    pub const LEN: usize = WORDS * size_of::<i64>();

    fn words(&self) -> [i64; WORDS] {
        let mut w = [0i64; WORDS];
        let (tag, rest) = w.split_first_mut().unwrap();
        let mut put = |fields: &[i64]| rest[..fields.len()].copy_from_slice(fields);
        *tag = match *self {
            Report::Probe(p) => {
                put(&p.words());
                1
            }
            Report::BeforeExec(p) => {
                put(&p.words());
                2
            }
            Report::FailedExec {
                pid,
                before,
                after,
                ret,
                errno,
            } => {
                put(&[pid, before, after, ret, errno]);
                3
            }
            Report::NewOwner { probe, owner } => {
                put(&probe.words());
                rest[7] = owner;
                4
            }
            Report::NullArgs { set, value, owner } => {
                put(&[set, value, owner]);
                5
            }
            Report::HammerFailed { value, owner, set } => {
                put(&[value, owner, set]);
                6
            }
            Report::Hammered { ioctls } => {
                put(&[ioctls]);
                7
            }
            Report::Call(r) => {
                put(&[r]);
                8
            }
            Report::DeadOwnerFd { value, mm_id } => {
                put(&[value, mm_id]);
                9
            }
            Report::BoundAndReleased => 10,
            Report::BindRefused => 11,
            Report::Looked => 12,
            Report::Wins(n) => {
                put(&[n]);
                13
            }
            Report::Watched => 14,
            Report::Fault(f) => {
                put(&[FAULTS.iter().position(|&x| x == f).unwrap() as i64]);
                15
            }
        };
        w
    }

    fn from_words(w: &[i64; WORDS]) -> Option<Report> {
        let f = &w[1..];
        Some(match w[0] {
            1 => Report::Probe(Probe::from_words(f)),
            2 => Report::BeforeExec(Probe::from_words(f)),
            3 => Report::FailedExec {
                pid: f[0],
                before: f[1],
                after: f[2],
                ret: f[3],
                errno: f[4],
            },
            4 => Report::NewOwner {
                probe: Probe::from_words(f),
                owner: f[7],
            },
            5 => Report::NullArgs {
                set: f[0],
                value: f[1],
                owner: f[2],
            },
            6 => Report::HammerFailed {
                value: f[0],
                owner: f[1],
                set: f[2],
            },
            7 => Report::Hammered { ioctls: f[0] },
            8 => Report::Call(f[0]),
            9 => Report::DeadOwnerFd {
                value: f[0],
                mm_id: f[1],
            },
            10 => Report::BoundAndReleased,
            11 => Report::BindRefused,
            12 => Report::Looked,
            13 => Report::Wins(f[0]),
            14 => Report::Watched,
            15 => Report::Fault(*FAULTS.get(usize::try_from(f[0]).ok()?)?),
            _ => return None,
        })
    }

    fn to_bytes(self) -> [u8; Report::LEN] {
        let mut b = [0u8; Report::LEN];
        for (chunk, w) in b.chunks_exact_mut(8).zip(self.words()) {
            chunk.copy_from_slice(&w.to_ne_bytes());
        }
        b
    }

    fn from_bytes(b: &[u8; Report::LEN]) -> Option<Report> {
        let mut w = [0i64; WORDS];
        for (w, chunk) in w.iter_mut().zip(b.chunks_exact(8)) {
            *w = i64::from_ne_bytes(chunk.try_into().unwrap());
        }
        Report::from_words(&w)
    }

    /// Writes the report to a pipe in one `write()`; async-signal-safe.
    pub fn write_to<F: AsFd>(&self, fd: F) -> bool {
        nix::unistd::write(fd, &self.to_bytes()) == Ok(Report::LEN)
    }

    /// Reads one report; `None` at EOF, on a short read, or on bytes that are no report.
    pub fn read_one<F: AsFd>(fd: F) -> Option<Report> {
        let mut b = [0u8; Report::LEN];
        loop {
            match nix::unistd::read(&fd, &mut b) {
                Ok(Report::LEN) => return Report::from_bytes(&b),
                Err(Errno::EINTR) => continue,
                _ => return None,
            }
        }
    }

    /// Collects the reports written to a pipe until every writer closed it.
    pub fn read_all<F: AsFd>(fd: F) -> Vec<Report> {
        std::iter::from_fn(|| Report::read_one(&fd)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding() {
        assert_eq!(enc(Ok(5)), 5);
        assert_eq!(enc(Err(Errno::EPERM)), -1);
        assert_eq!(enc0(Err(Errno::EFAULT)), -14);
        assert!(show(-1).contains("EPERM"));
    }

    #[test]
    fn every_report_survives_the_pipe() {
        let p = Probe {
            pid: 7,
            mm_id: 8,
            owner: -1,
            value: 9,
            set: -14,
            bind: 0,
            unbind: -25,
        };
        let mut all = vec![
            Report::Probe(p),
            Report::BeforeExec(p),
            Report::FailedExec {
                pid: 1,
                before: 2,
                after: 3,
                ret: -1,
                errno: 2,
            },
            Report::NewOwner { probe: p, owner: 8 },
            Report::NullArgs {
                set: -14,
                value: -1,
                owner: -14,
            },
            Report::HammerFailed {
                value: -1,
                owner: 3,
                set: 0,
            },
            Report::Hammered { ioctls: 2001 },
            Report::Call(-22),
            Report::DeadOwnerFd {
                value: -1,
                mm_id: 40,
            },
            Report::BoundAndReleased,
            Report::BindRefused,
            Report::Looked,
            Report::Wins(17),
            Report::Watched,
        ];
        all.extend(FAULTS.map(Report::Fault));
        let (r, w) = nix::unistd::pipe().unwrap();
        for rep in &all {
            assert!(rep.write_to(&w));
        }
        drop(w);
        assert_eq!(Report::read_all(&r), all);
        assert_eq!(Report::from_bytes(&[0xff; Report::LEN]), None);
    }
}
