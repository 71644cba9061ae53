#!/usr/bin/env python3
"""Run libiscsi's iscsi-test-cu suite by suite and judge the results.

Each suite runs in its own `iscsi-test-cu` process bounded by `timeout`, so a
client that hangs (libiscsi 1.19's Sanitize can spin) costs one suite, not the
run. Results are parsed per test from the verbose output ("Test: X ...passed",
"...FAILED", with "[SKIPPED]" lines between) and compared with an expected
results file: one `Suite.Test OUTCOME` per line, OUTCOME in PASS, SKIP, FAIL,
EXCLUDE (not run: a documented client hang, or a test whose client only sleeps). A test that does worse than expected
fails the run; a test that does better is reported so the file can be tightened.

--expected may be given more than once: a later file overrides an earlier one
test by test (the cluster stage lists only its differences from expected-all.txt).

Usage: iscsi_test_cu.py --url URL --expected FILE [--expected OVERRIDES] [--suite S ...] [--extra-args ...]
Prints a table and a closing line "N passed, N failed, N skipped".
"""
import argparse
import re
import signal
import subprocess
import sys
import time

RANK = {"PASS": 3, "SKIP": 2, "FAIL": 1, "ERROR": 0}


_running = None  # the suite's `timeout` process, while one runs


def _forward(signum, frame):
    """SIGTERM/SIGHUP: `timeout` runs iscsi-test-cu in its own process group, so a
    signal for ours would not reach it; hand it on (timeout passes it to the client)."""
    if _running is not None and _running.poll() is None:
        _running.send_signal(signum)
    sys.exit(128 + signum)


def run_suite(url, suite, initiators, timeout, extra, multipath=None):
    global _running
    cmd = ["timeout", "-k", "5", str(timeout), "iscsi-test-cu", "-v", "-d", "-S",
           "-i", initiators[0], "-I", initiators[1], "-t", "ALL." + suite] + extra + [url]
    if multipath:
        cmd.append(multipath)
    _running = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    out, _ = _running.communicate()
    text = out.decode("utf-8", "replace")
    return _running.returncode, text


def parse(text, suite):
    """Returns {"Suite.Test": outcome} from iscsi-test-cu verbose output."""
    results = {}
    current = None
    skipped = False
    for line in text.splitlines():
        m = re.match(r"^Suite: (\S+)", line)
        if m:
            suite = m.group(1)
            continue
        m = re.match(r"^\s+Test: (\S+) \.\.\.(.*)$", line)
        if m:
            current, skipped = suite + "." + m.group(1), False
            line = m.group(2)
        if current is None:
            continue
        if "[SKIPPED]" in line:
            skipped = True
        # CUnit prints "...passed" (or "passed" at the start of a line after the test's own
        # log lines); suite teardown output may follow on the same line.
        if re.search(r"(\.\.\.|^)passed(\s|$)", line):
            results[current] = "SKIP" if skipped else "PASS"
            current = None
        elif re.search(r"FAILED\s*$", line):
            results[current] = "FAIL"
            current = None
    if current is not None:  # the process died or hung inside this test
        results[current] = "ERROR"
    return results


def load_expected(paths):
    """{"Suite.Test": outcome} from one or more files; later files override earlier ones."""
    expected = {}
    for path in [paths] if isinstance(paths, str) else paths:
        expected.update(_load_one(path))
    return expected


def _load_one(path):
    expected = {}
    with open(path) as f:
        for raw in f:
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            name, outcome = line.split()
            expected[name] = outcome
    return expected


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--expected", required=True, action="append")
    ap.add_argument("--suite", action="append", default=[])
    ap.add_argument("--timeout", type=int, default=180)
    ap.add_argument("--initiator", action="append", default=[])
    ap.add_argument("--log", default=None, help="append raw client output here")
    ap.add_argument("--label", default="iscsi-test-cu")
    ap.add_argument("--multipath-url", default=None, help="second URL (MultipathIO)")
    ap.add_argument("--multipath-suite", action="append", default=["MultipathIO"],
                    help="suites that get --multipath-url (default: MultipathIO)")
    ap.add_argument("--first", action="append", default=[], help="run this suite before the others")
    ap.add_argument("--per-suite", default=None, help="write per-suite PASS/FAIL/SKIP/ERROR counts (JSON) here")
    args, extra = ap.parse_known_args()
    signal.signal(signal.SIGTERM, _forward)
    signal.signal(signal.SIGHUP, _forward)
    initiators = (args.initiator + ["iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test",
                                    "iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test-2"])[:2]
    expected = load_expected(args.expected)
    suites = args.suite or sorted({name.split(".")[0] for name in expected})
    # --first: suites run before the others (libiscsi 1.19's MultipathIO.CompareAndWrite
    # compares LBA 256, which it never initialises: it needs a LUN no earlier suite wrote).
    suites = [s for s in args.first if s in suites] + [s for s in suites if s not in args.first]
    excluded = {n for n, o in expected.items() if o == "EXCLUDE"}

    actual = {}
    seconds = {}
    for suite in suites:
        suite_started = time.monotonic()
        tests = [n for n in expected if n.startswith(suite + ".") and n not in excluded]
        if any(n.startswith(suite + ".") for n in excluded):
            # run the suite's tests one by one, leaving out the excluded ones
            runs = [(t, t) for t in tests]
        else:
            runs = [(suite, suite)]
        for pattern, _ in runs:
            # The second URL goes to the MultipathIO suite only: with it, libiscsi 1.19's
            # Sanitize.Reservations takes RESERVE(6) on the multipath session and never
            # releases it, so Sanitize.Reset then meets RESERVATION CONFLICT (SPC-2 keeps a
            # reservation while its I_T nexus lives).
            multipath = args.multipath_url if suite in args.multipath_suite else None
            rc, text = run_suite(args.url, pattern, initiators, args.timeout, extra, multipath)
            if args.log:
                with open(args.log, "a") as log:
                    log.write(f"==== {pattern} (exit {rc})\n{text}\n")
            got = parse(text, pattern.split(".")[0])
            if rc == 124 or rc == 137:
                for name in [n for n in tests if n not in got and n.startswith(pattern)]:
                    got[name] = "ERROR"
            actual.update(got)
        seconds[suite] = time.monotonic() - suite_started

    worse, better, counts = [], [], {"PASS": 0, "FAIL": 0, "SKIP": 0, "ERROR": 0}
    names = sorted(set(actual) | {n for n in expected if n.split(".")[0] in suites and n not in excluded})
    for name in names:
        got = actual.get(name, "ERROR")
        want = expected.get(name, "PASS")
        counts[got] += 1
        if RANK[got] < RANK.get(want, 3):
            worse.append((name, want, got))
        elif RANK[got] > RANK.get(want, 3):
            better.append((name, want, got))
    for name, want, got in worse:
        print(f"  REGRESSION {name}: expected {want}, got {got}")
    for name, want, got in better:
        print(f"  improved   {name}: expected {want}, got {got} (tighten {args.expected[-1]})")
    if args.per_suite:
        import json
        per = {}
        for name in names:
            got = actual.get(name, "ERROR")
            per.setdefault(name.split(".")[0], {"PASS": 0, "FAIL": 0, "SKIP": 0, "ERROR": 0})[got] += 1
        with open(args.per_suite, "w") as f:
            json.dump(per, f, indent=1, sort_keys=True)
    slowest = sorted(seconds.items(), key=lambda kv: -kv[1])[:6]
    print(f"  slowest suites ({sum(seconds.values()):.0f} s in all): "
          + ", ".join(f"{name} {took:.0f} s" for name, took in slowest))
    print(f"{args.label}: {len(names)} tests, {counts['PASS']} pass, {counts['FAIL']} fail, "
          f"{counts['SKIP']} skip, {counts['ERROR']} error, {len(excluded)} excluded")
    failed = len(worse)
    print(f"{len(names) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
