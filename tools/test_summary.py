#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Counts the real test results from meson's JUnit log (one testcase per
GoogleTest case, since tests run with protocol 'gtest') and prints the line
'N passed, N failed[, N skipped]'. Under CI (CI=true) a skipped test counts
as failed: there every test must really run. Exits 1 on any failure.

With --total, sums such lines read from standard input (one per stage or
build) into one; a line that is not a result counts as one failure."""
import json
import os
import re
import sys

RESULT = re.compile(r"^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?")

def result_line(passed, failed, skipped):
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    return line

def total(lines):
    passed = failed = skipped = 0
    if not lines:
        print("no result to sum")
        failed = 1
    for line in lines:
        m = RESULT.match(line)
        if not m:
            failed += 1
            continue
        passed += int(m[1])
        failed += int(m[2])
        skipped += int(m[3] or 0)
    print(result_line(passed, failed, skipped))
    return 1 if failed else 0
import xml.etree.ElementTree as ET

def main(path):
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        print(f"cannot read the test log {path}: {e}")
        print("0 passed, 1 failed")
        return 1
    ci = os.environ.get("CI", "") in ("true", "1")
    passed = failed = skipped = 0
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
            print(f"FAILED: {case.get('classname')}.{case.get('name')}")
        elif case.find("skipped") is not None:
            if ci:
                failed += 1
                print(f"SKIPPED (a failure under CI): {case.get('classname')}.{case.get('name')}")
            else:
                skipped += 1
        else:
            passed += 1
    # A binary that crashed or timed out may have written no case at all:
    # count it from meson's own log so it cannot pass unnoticed.
    failing_suites = {(s.get("name") or "") for s in root.iter("testsuite")
                      if any(c.find("failure") is not None or c.find("error") is not None
                             for c in s.iter("testcase"))}
    try:
        with open(os.path.join(os.path.dirname(path), "testlog.json")) as log:
            for line in log:
                t = json.loads(line)
                if t.get("result") in ("OK", "SKIP", "EXPECTEDFAIL"):
                    continue
                name = t.get("name", "?")
                if not any(f".{name}." in f".{s}." for s in failing_suites):
                    failed += 1
                    print(f"FAILED: {name} ({t.get('result')}, no failing case recorded)")
    except OSError:
        pass
    if passed + failed + skipped == 0:
        print("no test ran")
        failed = 1
    print(result_line(passed, failed, skipped))
    return 1 if failed else 0

if __name__ == "__main__":
    if sys.argv[1:] == ["--total"]:
        sys.exit(total([line for line in sys.stdin.read().splitlines() if line.strip()]))
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "build/meson-logs/testlog.junit.xml"))
