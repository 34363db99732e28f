"""The one parser of scripts/bench's results (imported by scripts/bench-plot;
run by scripts/bench as "python3 scripts/bench_results.py FILE", which prints
the table).

A results file has one line per boot and workload: "SIDE BOOT WORKLOAD
ns_per_op V1 V2 ...", one value per round.  A ratio pairs round i of boot
b on one side with round i of boot b on the other.
"""

import statistics
import sys

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
            boots = rows.setdefault((work, side), {})
            if int(boot) in boots:
                raise ValueError(f"{path}:{n}: {side} {work} boot {boot} appears twice")
            boots[int(boot)] = [int(v) for v in vals]
    return rows


def ratios(path, per_boot=False):
    """{label: [ratio per round pair]} for every pair present in path; with
    per_boot, {label: {boot: [ratio per round pair]}}."""
    rows = read(path)
    out = {}
    for label, num, den in PAIRS:
        if num not in rows or den not in rows:
            continue
        n, d = rows[num], rows[den]
        by_boot = {}
        for k in sorted(d):
            if k not in n:
                continue
            if len(n[k]) != len(d[k]):
                raise ValueError(f"{path}: {label}, boot {k}: {len(n[k])} rounds against {len(d[k])}")
            by_boot[k] = [a / b for b, a in zip(d[k], n[k])]
        out[label] = by_boot if per_boot else [r for k in by_boot for r in by_boot[k]]
    return out


def main(path):
    per_boot = ratios(path, per_boot=True)
    print(f"{'ratio':<46} {'median':>6} {'min':>6} {'max':>6} {'pairs':>5}  median per boot")
    for label, boots in per_boot.items():
        r = [x for b in boots.values() for x in b]
        each = " ".join(f"{statistics.median(v):.3f}" for v in boots.values())
        print(f"{label:<46} {statistics.median(r):>6.3f} {min(r):>6.3f} {max(r):>6.3f} "
              f"{len(r):>5}  {each}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python3 scripts/bench_results.py RESULTS.txt")
    main(sys.argv[1])
