#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Prints a dpkg status database for a fresh Debian machine, made from this
# machine's own: the Essential, required and important packages and whatever
# they depend on (as installed here), and nothing else. With --without PKG...
# those packages and what depends on them are left out too.
import re
import sys


def main():
    source, without = sys.argv[1], set()
    if len(sys.argv) > 2 and sys.argv[2] == "--without":
        without = set(sys.argv[3:])
    stanzas = {}
    for text in open(source, encoding="utf-8").read().strip().split("\n\n"):
        name = re.search(r"^Package: (\S+)$", text, re.M).group(1)
        arch = re.search(r"^Architecture: (\S+)$", text, re.M)
        status = re.search(r"^Status: (.*)$", text, re.M).group(1)
        if status == "install ok installed" and not (arch and arch.group(1) not in ("all", "amd64", "arm64")):
            stanzas[name] = text
    provides = {}
    for name, text in stanzas.items():
        m = re.search(r"^Provides: (.*)$", text, re.M)
        for p in (m.group(1).split(",") if m else []):
            provides.setdefault(p.split("(")[0].strip(), []).append(name)

    def deps(text):
        for field in ("Pre-Depends", "Depends"):
            m = re.search(rf"^{field}: (.*)$", text, re.M)
            for alternatives in (m.group(1).split(",") if m else []):
                names = [a.split("(")[0].split(":")[0].strip() for a in alternatives.split("|")]
                yield [n for name in names for n in [name] + provides.get(name, []) if n in stanzas]

    wanted = [n for n, t in stanzas.items()
              if re.search(r"^(Essential: yes|Priority: (required|important))$", t, re.M)]
    keep = set()
    while wanted:
        name = wanted.pop()
        if name in keep or name in without:
            continue
        keep.add(name)
        for alternatives in deps(stanzas[name]):
            if alternatives and not keep.intersection(alternatives):
                wanted.append(alternatives[0])
    # Leave out what now misses a dependency (it depended on a left-out package).
    changed = True
    while changed:
        changed = False
        for name in sorted(keep):
            if any(not keep.intersection(alts) for alts in deps(stanzas[name])):
                keep.discard(name)
                changed = True
    sys.stdout.write("\n\n".join(stanzas[n] for n in sorted(keep)) + "\n")


main()
