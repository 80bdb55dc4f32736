#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Prints the benchmark results (JSON lines written by the bench programs)
as one table: each figure with its baseline from the same run, min/median/max
over repetitions, the ratio of medians, the goal and whether it is met.
Exits 0 whether goals are met or not; 1 when a results file is missing or
holds no rows."""
import json
import math
import statistics
import sys


def fmt_num(x):
    if x == 0:
        return "0"
    magnitude = abs(x)
    if magnitude >= 100:
        return f"{x:.0f}"
    if magnitude >= 10:
        return f"{x:.1f}"
    if magnitude >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def triple(samples):
    if not samples:
        return "-"
    return "/".join(fmt_num(v) for v in (min(samples), statistics.median(samples), max(samples)))


def judge(row, ratio):
    """Returns (met, detail) for the row's goal."""
    goal = row["goal"]
    value, baseline = row["value"], row["baseline"]
    if goal == "info" or not value:
        return "-", ""
    for op in ("<=", "<"):
        for kind in ("ratio", "delta", "value"):
            prefix = kind + op
            if not goal.startswith(prefix):
                continue
            limit = float(goal[len(prefix):])
            if kind == "ratio":
                x = ratio
            elif kind == "value":
                x = statistics.median(value)
            else:
                pairs = [v - b for v, b in zip(value, baseline)]
                x = statistics.median(pairs) if pairs else math.nan
            if math.isnan(x):
                return "no", "no baseline"
            met = x <= limit if op == "<=" else x < limit
            detail = f"median delta {fmt_num(x)}" if kind == "delta" else ""
            return ("yes" if met else "NO"), detail
    return "?", f"unknown goal {goal}"


def main(paths):
    rows, notes = [], []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    line = line.strip()
                    if not line:
                        continue
                    obj = json.loads(line)
                    (rows if "figure" in obj else notes).append(obj)
        except FileNotFoundError:
            print(f"report: {path} is missing (that bench did not run or failed)", file=sys.stderr)
    if not rows:
        print("report: no results", file=sys.stderr)
        return 1

    # By figure number (the figures ran in another order); stable otherwise.
    rows.sort(key=lambda r: r["figure"].split(" ", 1)[0])
    header = ["figure", "parameter", "unit", "value min/med/max", "baseline min/med/max",
              "baseline", "ratio", "goal", "met"]
    table = []
    for r in rows:
        value, baseline = r["value"], r["baseline"]
        ratio = math.nan
        if value and baseline and statistics.median(baseline) != 0:
            ratio = statistics.median(value) / statistics.median(baseline)
        met, detail = judge(r, ratio)
        note = "; ".join(x for x in (detail, r.get("note", "")) if x)
        table.append([r["figure"], r["parameter"], r["unit"], triple(value), triple(baseline),
                      r["baseline_name"], "-" if math.isnan(ratio) else f"{ratio:.2f}", r["goal"],
                      met + (f" ({note})" if note else "")])
    widths = [max(len(str(row[i])) for row in [header] + table) for i in range(len(header) - 1)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + "  " + str(cells[-1])
    print(line(header))
    print(line(["-" * w for w in widths] + ["---"]))
    for row in table:
        print(line(row))
    if notes:
        print()
        for n in notes:
            print("* " + n["note"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
