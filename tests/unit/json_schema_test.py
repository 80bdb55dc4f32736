#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The turtlefinder/v1 schema (doc/schema) through tests/common/validate-json.py:
the schema is valid, the CLI's engine-free outputs (plugins, sockets) and a
document of each kind pass, and wrong documents are rejected, so a test that
validates its JSON can fail."""
import copy
import json
import os
import subprocess
import sys
import tempfile

SOURCE = os.environ["TF_SOURCE_ROOT"]
BUILD = os.environ["TF_BUILD_ROOT"]
SCHEMA = os.path.join(SOURCE, "doc/schema/turtlefinder-v1.schema.json")
VALIDATOR = os.path.join(SOURCE, "tests/common/validate-json.py")
CLI = os.path.join(BUILD, "tools/turtlefinder")

failures = []
passed = 0


def validate(text):
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        f.write(text)
        f.flush()
        r = subprocess.run([VALIDATOR, SCHEMA, f.name], capture_output=True, text=True, timeout=60)
    return r.returncode, r.stderr


def check(name, ok, detail=""):
    global passed
    if ok:
        passed += 1
    else:
        failures.append(f"{name}: {detail}")


def expect_valid(name, text):
    rc, err = validate(text)
    check(name, rc == 0, f"rejected: {err}")


def expect_invalid(name, doc):
    text = doc if isinstance(doc, str) else json.dumps(doc)
    rc, err = validate(text)
    check(name, rc == 1 and "validate-json:" in err, f"accepted (exit {rc}): {text}")


ENGINE = {"id": "abc", "type": "docker.com", "flavor": "docker.com", "version": "20.10.24+dfsg1",
          "api": "/proc/812/root/run/docker.sock", "pid": 812, "uid": 0, "plugin": "moby", "prefix": "", "parent": None,
          "state": "online", "error": "", "since": "2026-11-30T10:52:10.123Z",
          "key": "812:docker.com:/proc/812/root/run/docker.sock"}
NESTED = dict(ENGINE, id="def", pid=900, prefix="outer", parent=0, state="stale", error="no answer",
              key="900:docker.com:/proc/900/root/run/docker.sock")
CONTAINER = {"id": "c1", "name": "web", "type": "docker.com", "flavor": "docker.com", "pid": 4711, "paused": False,
             "stale": False, "engine": 0, "prefix": "", "labels": {"turtlefinder/container/prefix": ""}}
CANDIDATE = {"pid": 4242, "process": "dockerd", "plugin": "moby",
             "sockets": [{"path": "/proc/4242/root/run/odd.sock", "error": "timeout",
                          "reason": "timeout: no answer within 1000 ms"}],
             "reason": "no socket answered as this engine"}
DISCOVERY = {"schema": "turtlefinder/v1", "engines": [ENGINE, NESTED], "containers": [CONTAINER],
             "candidates": [CANDIDATE]}
ENGINES = {"schema": "turtlefinder/v1", "engines": [ENGINE], "candidates": []}
FOUND = {"schema": "turtlefinder/v1", "event": "engine-found", "time": "2026-11-30T10:52:10.123Z", "initial": True,
         "engine": dict(NESTED, parent=ENGINE["key"])}
STARTED = {"schema": "turtlefinder/v1", "event": "started", "time": "2026-11-30T10:52:10.124Z", "initial": False,
           "engine": ENGINE, "container": dict(CONTAINER, engine=ENGINE["key"])}


def changed(doc, path, value=None, drop=False):
    """A copy of doc with the item at path (a list of keys) set to value, or dropped."""
    doc = copy.deepcopy(doc)
    where = doc
    for key in path[:-1]:
        where = where[key]
    if drop:
        del where[path[-1]]
    else:
        where[path[-1]] = value
    return doc


def main():
    rc = subprocess.run([sys.executable, "-c", "import jsonschema"], capture_output=True).returncode
    check("jsonschema importable", rc == 0, "install python3-jsonschema (tools/setup.sh test)")

    expect_valid("discovery", json.dumps(DISCOVERY))
    expect_valid("engines", json.dumps(ENGINES))
    expect_valid("event lines", json.dumps(FOUND) + "\n" + json.dumps(STARTED) + "\n")
    env = dict(os.environ, TURTLEFINDER_LOG_LEVEL="off")
    for command in (["plugins", "--json"], ["sockets", "--json"]):
        r = subprocess.run([CLI] + command, capture_output=True, text=True, timeout=120, env=env)
        check(" ".join(command) + " runs", r.returncode == 0, r.stderr)
        expect_valid(" ".join(command), r.stdout)

    expect_invalid("empty input", "")
    expect_invalid("not JSON", "{")
    expect_invalid("another schema", changed(DISCOVERY, ["schema"], "turtlefinder/v2"))
    expect_invalid("engine without state", changed(DISCOVERY, ["engines", 0, "state"], drop=True))
    expect_invalid("unknown state", changed(DISCOVERY, ["engines", 0, "state"], "sleepy"))
    expect_invalid("pid as a string", changed(DISCOVERY, ["containers", 0, "pid"], "4711"))
    expect_invalid("negative pid", changed(DISCOVERY, ["engines", 0, "pid"], -1))
    expect_invalid("a key as a document's parent", changed(DISCOVERY, ["engines", 1, "parent"], ENGINE["key"]))
    expect_invalid("unknown member", changed(DISCOVERY, ["containers", 0, "colour"], "blue"))
    expect_invalid("label not a string", changed(DISCOVERY, ["containers", 0, "labels", "n"], 1))
    expect_invalid("time without milliseconds", changed(DISCOVERY, ["engines", 0, "since"], "2026-11-30T10:52:10Z"))
    expect_invalid("socket error outside the list", changed(DISCOVERY, ["candidates", 0, "sockets", 0, "error"], "meh"))
    expect_invalid("sockets as plain paths", changed(DISCOVERY, ["candidates", 0, "sockets"], ["/run/odd.sock"]))
    expect_invalid("discovery without candidates", changed(DISCOVERY, ["candidates"], drop=True))
    expect_invalid("an index as an event's parent", changed(FOUND, ["engine", "parent"], 0))
    expect_invalid("an index as an event container's engine", changed(STARTED, ["container", "engine"], 0))
    expect_invalid("container event without container", changed(STARTED, ["container"], drop=True))
    expect_invalid("engine event with a container", changed(FOUND, ["container"], STARTED["container"]))
    expect_invalid("unknown event", changed(STARTED, ["event"], "restarted"))
    expect_invalid("one bad line among good ones", json.dumps(FOUND) + "\n" + json.dumps(changed(
        STARTED, ["initial"], "no")) + "\n")
    expect_invalid("plugin kind outside the list", {"schema": "turtlefinder/v1", "plugins": [
        {"file": "/p/x.so", "name": "x", "version": "1", "description": "", "kinds": ["detector"], "claims": [],
         "loaded": True, "builtin": False, "deferred": False, "reason": ""}]})
    expect_invalid("socket without inode", {"schema": "turtlefinder/v1", "processes": [
        {"pid": 1, "name": "init", "sockets": [{"path": "/run/a", "reachable": "/proc/1/root/run/a"}]}]})

    for f in failures:
        print("FAILED:", f)
    print(f"{passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
