/* SPDX-License-Identifier: Apache-2.0 */
/* Lists every container the library finds, one line each:
 *   ENGINE-API  ENGINE-PID  PREFIX  NAME  PID  ENGINE-STATE  VIEW
 * tab-separated; PREFIX is "-" for containers of engines on the host;
 * ENGINE-STATE is syncing, online or stale; VIEW is "stale" for a container
 * of a stale engine (its last good view), else "-". */
#include <stdio.h>
#include <string.h>

#include <turtlefinder/turtlefinder.h>

int main(void) {
    /* The engine state accessors came with C API 1.1. */
    if (tfc_api_version() >> 16 != TFC_API_VERSION_MAJOR || (tfc_api_version() & 0xffff) < 1) {
        fprintf(stderr, "list: libturtlefinder speaks C API %u.%u, this program needs %d.1\n", tfc_api_version() >> 16,
                tfc_api_version() & 0xffff, TFC_API_VERSION_MAJOR);
        return 1;
    }
    tfc_error err;
    tfc_finder *finder = NULL;
    int rc = tfc_finder_new(NULL, &finder, &err);
    if (rc < 0) {
        fprintf(stderr, "list: %s\n", err.message);
        return 1;
    }
    tfc_snapshot *snapshot = NULL;
    rc = tfc_finder_snapshot(finder, &snapshot, &err);
    if (rc < 0) {
        fprintf(stderr, "list: %s\n", err.message);
        tfc_finder_free(finder);
        return 1;
    }
    for (size_t i = 0; i < tfc_snapshot_container_count(snapshot); ++i) {
        const tfc_container *c = tfc_snapshot_container(snapshot, i);
        const tfc_engine *e = tfc_container_engine(c);
        const char *prefix = tfc_engine_prefix(e);
        printf("%s\t%d\t%s\t%s\t%d\t%s\t%s\n", tfc_engine_api(e), tfc_engine_pid(e), prefix[0] != '\0' ? prefix : "-",
               tfc_container_name(c), tfc_container_pid(c), tfc_engine_state_name(tfc_engine_get_state(e)),
               tfc_container_stale(c) ? "stale" : "-");
    }
    tfc_snapshot_free(snapshot); /* everything read from it goes with it */
    tfc_finder_free(finder);
    return 0;
}
