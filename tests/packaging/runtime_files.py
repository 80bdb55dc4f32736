#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Prints the files (NUL separated, paths without the leading /) of the
# installed packages that the given Debian packages need at run time: their
# Depends and Pre-Depends, resolved against this host's dpkg database and
# followed recursively. Documentation, manual pages and translations are left
# out. A base image made of these files runs the packages without a registry.
#   runtime_files.py DEB...
import os
import re
import subprocess
import sys


def main():
    status = {}
    for text in open("/var/lib/dpkg/status", encoding="utf-8").read().strip().split("\n\n"):
        fields = dict(re.findall(r"^([\w-]+): (.*)$", text, re.M))
        if fields.get("Status") == "install ok installed":
            status[fields["Package"]] = fields
    provides = {}
    for name, fields in status.items():
        for p in fields.get("Provides", "").split(","):
            if p.strip():
                provides.setdefault(p.split("(")[0].strip(), name)

    def depends(fields):
        for field in ("Pre-Depends", "Depends"):
            for alternatives in filter(None, (a.strip() for a in fields.get(field, "").split(","))):
                names = [a.split("(")[0].split(":")[0].strip() for a in alternatives.split("|")]
                found = [n if n in status else provides.get(n) for n in names]
                found = [n for n in found if n]
                if not found:
                    sys.exit(f"runtime_files: no installed package satisfies '{alternatives}'")
                yield found[0]

    debs = []
    for deb in sys.argv[1:]:
        fields = subprocess.run(["dpkg-deb", "-f", deb, "Package", "Depends", "Pre-Depends"], check=True,
                                capture_output=True, text=True).stdout
        debs.append(dict(re.findall(r"^([\w-]+): (.*)$", fields, re.M)))
    # The given packages satisfy each other's dependencies.
    ours = {fields["Package"] for fields in debs}
    for name in ours:
        status.setdefault(name, {})
    wanted = [name for fields in debs for name in depends(fields)]
    closure = set()
    while wanted:
        name = wanted.pop()
        if name in closure or name in ours:
            continue
        closure.add(name)
        wanted += list(depends(status[name]))

    skip = ("/usr/share/doc/", "/usr/share/man/", "/usr/share/locale/", "/usr/share/lintian/", "/usr/share/info/")
    out = set()
    for name in sorted(closure):
        arch = status[name].get("Architecture")
        spec = f"{name}:{arch}" if status[name].get("Multi-Arch") == "same" else name
        listed = subprocess.run(["dpkg-query", "-L", spec], check=True, capture_output=True, text=True).stdout
        for path in listed.splitlines():
            if not path.startswith("/") or path.startswith(skip) or path.endswith(("/", "/.")):
                continue
            # Links to directories (/lib64 → usr/lib64) are the base's skeleton.
            if (os.path.islink(path) and not os.path.isdir(path)) or (os.path.isfile(path) and not os.path.islink(path)):
                # The real directory: with merged /usr, /lib64/x is /usr/lib64/x.
                out.add(os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))[1:])
    sys.stdout.write("".join(p + "\0" for p in sorted(out)))


main()
