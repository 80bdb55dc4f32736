/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The C API of libturtlefinder.so (C11), for hosts in C and for bindings
 * (Python ctypes, Go cgo, ...). It wraps the C++ Finder.
 *
 * Names: every function and type starts with `tfc_` (macros `TFC_`), apart
 * from the plugin ABI's `tf_` names (turtlefinder/plugin.h), which a host
 * linking plugins in (tfc_options.builtin_plugins) may use alongside.
 *
 * Versioning, as for the plugin ABI: TFC_API_VERSION_MAJOR changes only when
 * something breaks; a minor version appends functions, enum values or
 * members at the end of a struct (tfc_options starts with struct_size, so the
 * library reads only what the caller's header had). tfc_api_version() tells
 * which version the library implements. What a minor added says "since 1.N";
 * a host using it needs a library of at least that minor.
 *
 * Errors: a function that can fail returns 0 (or a count or handle >= 0) or a
 * negative errno, and writes a message into the caller-owned `err` when it is
 * not NULL. A NULL handle is -EINVAL, never a crash. Accessors of snapshot
 * data answer NULL / 0 for a NULL argument or an index out of range.
 *
 * Threads: a finder may be used from several threads at once. Callbacks
 * (events, log) run on the library's threads or the caller's, and must not
 * call tfc_finder_free on the finder that calls them, nor tfc_set_log_callback
 * from the log callback; see each below.
 */
#ifndef TURTLEFINDER_TURTLEFINDER_H
#define TURTLEFINDER_TURTLEFINDER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A plugin's entry (turtlefinder/plugin.h), for plugins linked into the host. */
struct tf_plugin_descriptor;

#if defined(__GNUC__)
#define TFC_PUBLIC __attribute__((visibility("default")))
#else
#define TFC_PUBLIC
#endif

#define TFC_API_VERSION_MAJOR 1
#define TFC_API_VERSION_MINOR 1

/* The version the library implements: (major << 16) | minor. A host built
 * with this header works with any library of the same major and a minor at
 * least TFC_API_VERSION_MINOR. */
TFC_PUBLIC uint32_t tfc_api_version(void);
/* The library's release, e.g. "0.1.0". */
TFC_PUBLIC const char *tfc_library_version(void);

#define TFC_ERROR_MAX 256
/* An error message, NUL-terminated, written by a failing call. */
typedef struct tfc_error {
    char message[TFC_ERROR_MAX];
} tfc_error;

/* ---- finder ----------------------------------------------------------------- */

/* How a finder is made. Zero means the default for every member, so
 *   tfc_options o = {sizeof o};
 * is a finder with the installed plugins and default settings. */
typedef struct tfc_options {
    uint32_t struct_size; /* sizeof(tfc_options) as the caller's header has it */
    uint32_t no_default_plugin_dirs; /* nonzero: only plugin_dirs (and built-ins), not the
                                        environment's TURTLEFINDER_PLUGIN_PATH and installed dir */
    const char *const *plugin_dirs; /* searched first, in order */
    size_t n_plugin_dirs;
    const char *const *disabled_plugins; /* plugin names not to use */
    size_t n_disabled_plugins;
    /* Plugins linked into the host (plugin ABI descriptors), checked like
     * files; each must outlive the finder. */
    const struct tf_plugin_descriptor *const *builtin_plugins;
    size_t n_builtin_plugins;
    const char *procfs_root; /* NULL: "/proc" */
    const char *config_file; /* NULL: none; else read like the CLI's --config */
    uint32_t online_wait_ms; /* 0: 2000 */
    uint32_t workers; /* ignored: probes run side by side (kept for the v1.0 layout) */
} tfc_options;

typedef struct tfc_finder tfc_finder;

/* Makes a finder (loads its plugins; no engine is contacted yet). `options`
 * may be NULL for the defaults. On success *out holds it: free it with
 * tfc_finder_free. */
TFC_PUBLIC int tfc_finder_new(const tfc_options *options, tfc_finder **out, tfc_error *err);
/* Stops every watch and joins every thread of the finder, then frees it; no
 * event callback of it runs after this returns. NULL is ignored. Must not be
 * called from one of its event callbacks. It waits for no probe: a probe of a
 * socket that does not answer ends by its own timeout on a thread that keeps
 * its plugin loaded and touches nothing of the finder. */
TFC_PUBLIC void tfc_finder_free(tfc_finder *finder);

/* ---- snapshot ---------------------------------------------------------------- */

typedef struct tfc_snapshot tfc_snapshot;
typedef struct tfc_engine tfc_engine;
typedef struct tfc_container tfc_container;

/* Discovers (scans, probes new engines, waits for their first sync at most
 * online_wait) and copies every alive container and every engine into one
 * snapshot, freed as a whole by tfc_snapshot_free; everything read from it
 * (engines, containers, strings) stays valid until then, whatever the
 * finder does meanwhile. */
TFC_PUBLIC int tfc_finder_snapshot(tfc_finder *finder, tfc_snapshot **out, tfc_error *err);
/* NULL is ignored. */
TFC_PUBLIC void tfc_snapshot_free(tfc_snapshot *snapshot);

TFC_PUBLIC size_t tfc_snapshot_container_count(const tfc_snapshot *snapshot);
TFC_PUBLIC const tfc_container *tfc_snapshot_container(const tfc_snapshot *snapshot, size_t index);
/* Every engine, nested ones after the engine whose container holds them. */
TFC_PUBLIC size_t tfc_snapshot_engine_count(const tfc_snapshot *snapshot);
TFC_PUBLIC const tfc_engine *tfc_snapshot_engine(const tfc_snapshot *snapshot, size_t index);

TFC_PUBLIC const char *tfc_container_id(const tfc_container *container);
TFC_PUBLIC const char *tfc_container_name(const tfc_container *container);
/* Init process in the finder's PID namespace; 0 when unknown. */
TFC_PUBLIC int tfc_container_pid(const tfc_container *container);
TFC_PUBLIC int tfc_container_paused(const tfc_container *container);
TFC_PUBLIC const tfc_engine *tfc_container_engine(const tfc_container *container);
/* Labels, sorted by key; the prefix label "turtlefinder/container/prefix" is
 * one of them. */
TFC_PUBLIC size_t tfc_container_label_count(const tfc_container *container);
TFC_PUBLIC const char *tfc_container_label_key(const tfc_container *container, size_t index);
TFC_PUBLIC const char *tfc_container_label_value(const tfc_container *container, size_t index);
/* The value of label `key`, or NULL. */
TFC_PUBLIC const char *tfc_container_label(const tfc_container *container, const char *key);

TFC_PUBLIC const char *tfc_engine_id(const tfc_engine *engine);
/* API kind: "docker.com", "containerd.io", "k8s.io/cri-api", "podman.io" */
TFC_PUBLIC const char *tfc_engine_type(const tfc_engine *engine);
TFC_PUBLIC const char *tfc_engine_flavor(const tfc_engine *engine);
TFC_PUBLIC const char *tfc_engine_version(const tfc_engine *engine);
/* API path as reachable from here. */
TFC_PUBLIC const char *tfc_engine_api(const tfc_engine *engine);
TFC_PUBLIC int tfc_engine_pid(const tfc_engine *engine);
TFC_PUBLIC const char *tfc_engine_plugin(const tfc_engine *engine);
/* Enclosing container names, outermost first, joined with '/'; "" on the host. */
TFC_PUBLIC const char *tfc_engine_prefix(const tfc_engine *engine);
/* The engine whose container holds this one, in the same snapshot; NULL on the host. */
TFC_PUBLIC const tfc_engine *tfc_engine_parent(const tfc_engine *engine);
/* Since 1.1. The engine's owner: the real UID of its process as the finder's
 * user namespace sees it (a rootless engine's user); -1 when unknown or for
 * NULL. */
TFC_PUBLIC int64_t tfc_engine_uid(const tfc_engine *engine);

/* ---- engine state (since 1.1) ------------------------------------------------- */

typedef enum tfc_engine_state {
    TFC_ENGINE_SYNCING = 1, /* found; its first list is not complete yet */
    TFC_ENGINE_ONLINE = 2, /* its view is current */
    TFC_ENGINE_STALE = 3 /* its API fails while its process lives: its containers are its last good view */
} tfc_engine_state;

/* The engine's state as of the snapshot (or event); 0 for NULL. Since 1.1. */
TFC_PUBLIC tfc_engine_state tfc_engine_get_state(const tfc_engine *engine);
/* "syncing", "online", "stale" (as the CLI's JSON has it); NULL for another value. Since 1.1. */
TFC_PUBLIC const char *tfc_engine_state_name(tfc_engine_state state);
/* The last error of the engine's API; "" when none since it was last online. Since 1.1. */
TFC_PUBLIC const char *tfc_engine_error(const tfc_engine *engine);
/* When the engine entered its state: milliseconds since the Unix epoch (UTC);
 * 0 for NULL. Since 1.1. */
TFC_PUBLIC int64_t tfc_engine_since_ms(const tfc_engine *engine);
/* 1 for a container of a stale engine (from its last good view), else 0. Since 1.1. */
TFC_PUBLIC int tfc_container_stale(const tfc_container *container);

/* ---- cancellation (since 1.1) ------------------------------------------------- */

/* A token that cuts calls short, from any thread. Since 1.1. */
typedef struct tfc_cancel tfc_cancel;

/* Makes a token (not requested yet); free it with tfc_cancel_free. Since 1.1. */
TFC_PUBLIC int tfc_cancel_new(tfc_cancel **out, tfc_error *err);
/* Requests the cancellation: every call given this token, running or to
 * come, returns promptly. Irreversible; may be called from any thread, a
 * signal handler excepted, and more than once. NULL is ignored. Since 1.1. */
TFC_PUBLIC void tfc_cancel_request(tfc_cancel *cancel);
/* 1 once requested, else 0 (also for NULL). Since 1.1. */
TFC_PUBLIC int tfc_cancel_requested(const tfc_cancel *cancel);
/* NULL is ignored. No call given the token may still run. Since 1.1. */
TFC_PUBLIC void tfc_cancel_free(tfc_cancel *cancel);

/* tfc_finder_snapshot, cut short when `cancel` (may be NULL) is requested or
 * `timeout_ms` (0: no timeout) have passed, whichever comes first. Cut short,
 * it returns promptly with what the finder has: the containers of the engines
 * it watches already, and new engines with what their first sync listed so
 * far. Probes of new engine processes still running are not waited for: each
 * ends by its own probe timeout, and a later snapshot collects what it finds.
 * Returns 0 for a complete snapshot, 1 for one cut short (*out is set in both
 * cases), or a negative errno. Since 1.1. */
TFC_PUBLIC int tfc_finder_snapshot_bounded(tfc_finder *finder, tfc_cancel *cancel, uint32_t timeout_ms,
                                           tfc_snapshot **out, tfc_error *err);

/* ---- events ------------------------------------------------------------------ */

typedef enum tfc_event_kind {
    TFC_EVENT_ENGINE_FOUND = 1,
    TFC_EVENT_ENGINE_LOST = 2,
    TFC_EVENT_STARTED = 3,
    TFC_EVENT_EXITED = 4,
    TFC_EVENT_PAUSED = 5,
    TFC_EVENT_UNPAUSED = 6
} tfc_event_kind;

/* One change, valid during the callback only (with its engine and container).
 * The event's engine has no parent here (tfc_engine_parent is NULL): its
 * prefix says where it runs; a snapshot has the whole hierarchy. */
typedef struct tfc_event tfc_event;
TFC_PUBLIC tfc_event_kind tfc_event_get_kind(const tfc_event *event); /* 0 for NULL */
TFC_PUBLIC const tfc_engine *tfc_event_engine(const tfc_event *event);
/* NULL for engine events; for exited, the container as last known. Its
 * engine is the event's. */
TFC_PUBLIC const tfc_container *tfc_event_container(const tfc_event *event);

/* Runs on one of the finder's threads for container events, and on the thread
 * calling tfc_finder_snapshot for engine found/lost. It may call
 * tfc_unsubscribe (its own handle included) and read snapshots of its own,
 * but must not call tfc_finder_free. */
typedef void (*tfc_event_fn)(void *user, const tfc_event *event);

/* Returns a handle (> 0) for tfc_unsubscribe, or a negative errno. */
TFC_PUBLIC int tfc_subscribe(tfc_finder *finder, tfc_event_fn callback, void *user, tfc_error *err);
/* Once this returns, the callback is not running (unless this is called from
 * that very callback, which then finishes) and is never called again: `user`
 * may be freed. -ENOENT for an unknown or already removed handle. */
TFC_PUBLIC int tfc_unsubscribe(tfc_finder *finder, int handle, tfc_error *err);

/* ---- log --------------------------------------------------------------------- */

typedef enum tfc_log_level {
    TFC_LOG_TRACE = 0,
    TFC_LOG_DEBUG = 1,
    TFC_LOG_INFO = 2,
    TFC_LOG_WARN = 3,
    TFC_LOG_ERROR = 4,
    TFC_LOG_CRITICAL = 5,
    TFC_LOG_OFF = 6
} tfc_log_level;

/* Process-wide, for the library and every plugin; initially TFC_LOG_WARN or
 * the environment's TURTLEFINDER_LOG_LEVEL. -EINVAL for another value. */
TFC_PUBLIC int tfc_set_log_level(tfc_log_level level);

/* One record: `component` is "turtlefinder" for the library, else the
 * plugin's name; both strings are valid during the call only. Runs on the
 * thread that logs (a caller's, the finder's or a plugin's), one record at a
 * time; must not call into the library. */
typedef void (*tfc_log_fn)(void *user, tfc_log_level level, const char *component, const char *message);

/* Sends every record at or above the level to `callback` instead of stderr;
 * NULL restores stderr. Process-wide. Once this returns, the previous
 * callback is not running and never called again. Must not be called from
 * the log callback. */
TFC_PUBLIC void tfc_set_log_callback(tfc_log_fn callback, void *user);

#ifdef __cplusplus
}
#endif

#endif /* TURTLEFINDER_TURTLEFINDER_H */
