// SPDX-License-Identifier: Apache-2.0

// Lists every container libturtlefinder finds, one line each:
//
//	ENGINE-API  ENGINE-PID  PREFIX  NAME  PID  ENGINE-STATE  VIEW
//
// tab-separated; PREFIX is "-" for containers of engines on the host;
// ENGINE-STATE is syncing, online or stale; VIEW is "stale" for a container
// of a stale engine (its last good view), else "-".
// cgo and the standard library only; flags from pkg-config (turtlefinder).
package main

/*
#cgo pkg-config: turtlefinder
#include <stdlib.h>
#include <turtlefinder/turtlefinder.h>
*/
import "C"

import (
	"fmt"
	"os"
)

func main() {
	// The engine state accessors came with C API 1.1.
	if version := C.tfc_api_version(); version>>16 != C.TFC_API_VERSION_MAJOR || version&0xffff < 1 {
		fmt.Fprintf(os.Stderr, "list: libturtlefinder speaks C API %d.%d, this program needs %d.1\n",
			version>>16, version&0xffff, C.TFC_API_VERSION_MAJOR)
		os.Exit(1)
	}
	var err C.tfc_error
	var finder *C.tfc_finder
	if C.tfc_finder_new(nil, &finder, &err) < 0 {
		fmt.Fprintf(os.Stderr, "list: %s\n", C.GoString(&err.message[0]))
		os.Exit(1)
	}
	defer C.tfc_finder_free(finder)
	var snapshot *C.tfc_snapshot
	if C.tfc_finder_snapshot(finder, &snapshot, &err) < 0 {
		fmt.Fprintf(os.Stderr, "list: %s\n", C.GoString(&err.message[0]))
		C.tfc_finder_free(finder)
		os.Exit(1)
	}
	// Strings read from the snapshot are copied (C.GoString) before it is freed.
	defer C.tfc_snapshot_free(snapshot)
	for i := C.size_t(0); i < C.tfc_snapshot_container_count(snapshot); i++ {
		c := C.tfc_snapshot_container(snapshot, i)
		e := C.tfc_container_engine(c)
		prefix := C.GoString(C.tfc_engine_prefix(e))
		if prefix == "" {
			prefix = "-"
		}
		view := "-"
		if C.tfc_container_stale(c) != 0 {
			view = "stale"
		}
		fmt.Printf("%s\t%d\t%s\t%s\t%d\t%s\t%s\n", C.GoString(C.tfc_engine_api(e)), C.tfc_engine_pid(e), prefix,
			C.GoString(C.tfc_container_name(c)), C.tfc_container_pid(c),
			C.GoString(C.tfc_engine_state_name(C.tfc_engine_get_state(e))), view)
	}
}
