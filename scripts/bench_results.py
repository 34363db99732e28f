"""The one parser of scripts/bench's results (imported by scripts/bench and
scripts/bench-plot).

A results file has one line per boot and workload: "SIDE BOOT WORKLOAD
ns_per_op V1 V2 ...", one value per round.  A ratio pairs round i of boot
b on one side with round i of boot b on the other.
"""

# (label, numerator (workload, side), denominator (workload, side))
PAIRS = [(f"{w}: series/base", (w, "series"), (w, "base"))
         for w in ("fork", "thread", "fork_exec", "vfork_exec", "fork_exec_static",
                   "vfork_exec_static", "fork_all_cpus")]
# GET_VALUE: sides test (the sample as posted), check and check-llvm (the
# sample with rust-tests/bench/sample-peer.patch, gcc and clang with the
# helpers inlined).  bound: by mm id; bound_ptr: by the address of the mm.
for side, kernel in (("test", "test"), ("check", "bench-check"), ("check-llvm", "bench-check-llvm")):
    PAIRS.append((f"GET_VALUE bound/unbound ({kernel})", ("ioctl_bound", side),
                  ("ioctl_unbound", side)))
for side, kernel in (("check", "bench-check"), ("check-llvm", "bench-check-llvm")):
    PAIRS.append((f"GET_VALUE id/pointer ({kernel})", ("ioctl_bound", side),
                  ("ioctl_bound_ptr", side)))
    PAIRS.append((f"GET_VALUE id/pinned pointer ({kernel})", ("ioctl_bound", side),
                  ("ioctl_bound_ptr_pinned", side)))


def read(path):
    """{(workload, side): {boot: [values]}} from a results file."""
    rows = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            fields = line.split()
            if len(fields) < 5 or fields[3] != "ns_per_op":
                raise ValueError(f"{path}:{n}: not a bench line: {line.rstrip()}")
            side, boot, work, _, *vals = fields
            rows.setdefault((work, side), {})[int(boot)] = [int(v) for v in vals]
    return rows


def ratios(path):
    """{label: [ratio per round pair]} for every pair present in path."""
    rows = read(path)
    out = {}
    for label, num, den in PAIRS:
        if num in rows and den in rows:
            n, d = rows[num], rows[den]
            out[label] = [a / b for k in sorted(d) if k in n for b, a in zip(d[k], n[k])]
    return out
