#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Lists every container libturtlefinder finds, one line each:
    ENGINE-API  ENGINE-PID  PREFIX  NAME  PID  ENGINE-STATE  VIEW
tab-separated; PREFIX is "-" for containers of engines on the host;
ENGINE-STATE is syncing, online or stale; VIEW is "stale" for a container of
a stale engine (its last good view), else "-".
Standard library only (ctypes). The library is found by its soname, or at
the path in TURTLEFINDER_LIBRARY."""
import ctypes
import os
import sys

lib = ctypes.CDLL(os.environ.get("TURTLEFINDER_LIBRARY") or "libturtlefinder.so.0")

API_MAJOR, API_MINOR = 1, 1  # the C API version this program was written for (state: 1.1)


class Error(ctypes.Structure):
    _fields_ = [("message", ctypes.c_char * 256)]


p = ctypes.c_void_p
lib.tfc_api_version.restype = ctypes.c_uint32
lib.tfc_finder_new.argtypes = [p, ctypes.POINTER(p), ctypes.POINTER(Error)]
lib.tfc_finder_free.argtypes = [p]
lib.tfc_finder_snapshot.argtypes = [p, ctypes.POINTER(p), ctypes.POINTER(Error)]
lib.tfc_snapshot_free.argtypes = [p]
lib.tfc_snapshot_container_count.argtypes = [p]
lib.tfc_snapshot_container_count.restype = ctypes.c_size_t
lib.tfc_snapshot_container.argtypes = [p, ctypes.c_size_t]
lib.tfc_snapshot_container.restype = p
lib.tfc_container_engine.argtypes = [p]
lib.tfc_container_engine.restype = p
for name in ("tfc_container_name", "tfc_engine_api", "tfc_engine_prefix"):
    getattr(lib, name).argtypes = [p]
    getattr(lib, name).restype = ctypes.c_char_p
for name in ("tfc_container_pid", "tfc_engine_pid", "tfc_engine_get_state", "tfc_container_stale"):
    getattr(lib, name).argtypes = [p]
    getattr(lib, name).restype = ctypes.c_int
lib.tfc_engine_state_name.argtypes = [ctypes.c_int]
lib.tfc_engine_state_name.restype = ctypes.c_char_p


def text(b):
    return b.decode("utf-8", "surrogateescape")


def main():
    version = lib.tfc_api_version()
    if version >> 16 != API_MAJOR or version & 0xFFFF < API_MINOR:
        sys.exit(f"list.py: libturtlefinder speaks C API {version >> 16}.{version & 0xFFFF}, "
                 f"this program needs {API_MAJOR}.{API_MINOR}")
    err = Error()
    finder = p()
    if lib.tfc_finder_new(None, ctypes.byref(finder), ctypes.byref(err)) < 0:
        sys.exit(f"list.py: {text(err.message)}")
    try:
        snapshot = p()
        if lib.tfc_finder_snapshot(finder, ctypes.byref(snapshot), ctypes.byref(err)) < 0:
            sys.exit(f"list.py: {text(err.message)}")
        try:
            for i in range(lib.tfc_snapshot_container_count(snapshot)):
                c = lib.tfc_snapshot_container(snapshot, i)
                e = lib.tfc_container_engine(c)
                prefix = text(lib.tfc_engine_prefix(e)) or "-"
                state = text(lib.tfc_engine_state_name(lib.tfc_engine_get_state(e)))
                view = "stale" if lib.tfc_container_stale(c) else "-"
                print(f"{text(lib.tfc_engine_api(e))}\t{lib.tfc_engine_pid(e)}\t{prefix}\t"
                      f"{text(lib.tfc_container_name(c))}\t{lib.tfc_container_pid(c)}\t{state}\t{view}")
        finally:
            lib.tfc_snapshot_free(snapshot)  # everything read from it goes with it
    finally:
        lib.tfc_finder_free(finder)


if __name__ == "__main__":
    main()
