"""skip_lint: a skip after an expectation, in KUnit cases and kselftest tests.

usage: python3 scripts/lib/skip_lint.py FILE...

Run by skip_after_expect (scripts/lib/results.sh) for scripts/check-series.
kunit_skip() and kselftest's SKIP() set the status of the case outright:
after a failed KUNIT_EXPECT_*() or EXPECT_*() in the same case, the failure
is no longer reported.  Prints FILE:LINE: in CASE for each skip that follows
an expectation in its case, directly or through a function or macro of the
same file that makes one (to any depth), and exits 1 if there is any, 2
if a file cannot be read or its braces do not balance.

Conservative: an expectation in one branch followed by a skip in another is
reported too; such a case is clearer split in two.  Comments and string
literals are ignored.
"""
import re
import sys

EXPECT = re.compile(r"\b(?:KUNIT_EXPECT_\w+|KUNIT_FAIL|EXPECT_[A-Z_]+)\s*\(")
SKIP = re.compile(
    r"\b(?:kunit_skip|kunit_mark_skipped|SKIP|ksft_exit_skip)\s*\(|\bKSFT_SKIP\b"
)
CASE = re.compile(
    r"^(?:(?:TEST|TEST_F|TEST_F_TIMEOUT|TEST_SIGNAL|FIXTURE_SETUP|FIXTURE_TEARDOWN)\s*\("
    r"|.*\(\s*struct kunit \*\w+\s*\))"
)
TESTMACRO = re.compile(r"^(?:TEST|FIXTURE)\w*\s*\(")
DEFINE = re.compile(r"^\s*#\s*define\s+(\w+)")
FUNC = re.compile(r"(\w+)\s*\([^()]*(?:\([^()]*\)[^()]*)*\)\s*$")


def strip(text):
    """Blanks comments and string and character literals, keeping lines."""
    out, i, n = [], 0, len(text)
    while i < n:
        two = text[i : i + 2]
        if two == "/*":
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif two == "//":
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text[i] in "\"'":
            q, j = text[i], i + 1
            while j < n and text[j] != q and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def units(lines):
    """Top-level units: (name, header line, [(lineno, text)]), for functions,
    test cases and macros."""
    res, depth, header, body, start = [], 0, [], [], 0
    i = 0
    while i < len(lines):
        line = lines[i]
        m = DEFINE.match(line) if depth == 0 else None
        if m:
            j, text = i, [(i + 1, line)]
            while lines[j].rstrip().endswith("\\") and j + 1 < len(lines):
                j += 1
                text.append((j + 1, lines[j]))
            res.append((m.group(1), line, text))
            header = []
            i = j + 1
            continue
        if depth == 0:
            if "{" in line:
                head = " ".join(h for _, h in header) + " " + line.split("{")[0]
                start = i + 1
                body = [(i + 1, line)]
                header_text = head.strip()
            elif not line.strip() or line.lstrip().startswith("#"):
                header = []
            elif line.rstrip().endswith(";"):
                header = []
            else:
                header.append((i + 1, line))
        else:
            body.append((i + 1, line))
        depth += line.count("{") - line.count("}")
        if depth == 0 and body and start:
            fm = FUNC.search(header_text)
            name = fm.group(1) if fm and not TESTMACRO.match(header_text) else ""
            res.append((name, header_text, body))
            header, body, start = [], [], 0
        i += 1
    return res


def lint(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = strip(f.read())
    if text.count("{") != text.count("}"):
        raise ValueError("unbalanced braces")
    lines = text.split("\n")
    us = units(lines)
    expecting = set()
    changed = True
    while changed:
        changed = False
        for name, _, body in us:
            if not name or name in expecting:
                continue
            for _, text in body:
                if EXPECT.search(text) or any(
                    re.search(r"\b%s\s*\(" % re.escape(e), text) for e in expecting
                ):
                    expecting.add(name)
                    changed = True
                    break
    calls = [re.compile(r"\b%s\s*\(" % re.escape(e)) for e in sorted(expecting)]
    found = []
    for name, header, body in us:
        if not CASE.match(header):
            continue
        seen = False
        for lineno, text in body:
            skip = SKIP.search(text)
            exp = [m.start() for m in [EXPECT.search(text)] if m]
            exp += [m.start() for c in calls for m in [c.search(text)] if m]
            if skip and (seen or (exp and min(exp) < skip.start())):
                found.append("%s:%d: in %s" % (path, lineno, header))
            if exp:
                seen = True
    return found


def main(argv):
    if not argv or any(a.startswith("-") for a in argv):
        sys.stderr.write("usage: python3 scripts/lib/skip_lint.py FILE...\n")
        return 2
    found = []
    for path in argv:
        try:
            found += lint(path)
        except (OSError, ValueError) as e:
            sys.stderr.write("skip_lint: %s: %s\n" % (path, e))
            return 2
    for f in found:
        print(f)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
