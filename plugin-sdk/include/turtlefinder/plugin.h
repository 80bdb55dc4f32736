/* SPDX-License-Identifier: Apache-2.0 */
/*
 * turtlefinder plugin ABI, version 1.
 *
 * THE stable C interface between the turtlefinder core (the host) and every
 * engine detector, socket activator and activated engine (the plugins). It is
 * C11 and C++20 clean and depends only on <stdint.h>, <stddef.h>, <stdbool.h>,
 * so a plugin can be built from this header alone.
 *
 * Discovery. A plugin is a shared object exporting exactly one data symbol,
 * `tf_plugin_entry` (a const tf_plugin_descriptor). The host reads its `abi`
 * before calling anything: same major as the host and minor <= the host's,
 * or the plugin is refused. Capabilities are looked up by string id through
 * `get_extension`; an id never changes meaning, a new revision is a new id.
 *
 * Versioned structs. Every struct crossing the boundary carries `struct_size`
 * (set to sizeof of the struct the writer was compiled with). Members are
 * only ever appended; a reader uses a member only if TF_HAS_MEMBER says the
 * writer's struct holds it.
 *
 * Growth. What an older reader can safely ignore bumps TF_ABI_VERSION_MINOR:
 * a member appended to a struct, a new flag bit, event kind or log level, a
 * new extension id with its vtable, a new optional host service; each such
 * addition's comment names the minor that brought it. Readers ignore flag
 * bits and event kinds they do not know (the host logs an unknown level as
 * the nearest known one). Anything else -- a member removed, moved, retyped
 * or given another meaning, a call whose contract (arguments, return values,
 * thread tag, ownership) changes, a new call a plugin must offer -- is not
 * growth: an extension changes as a new id ("tf.engine-detector.v2", offered
 * beside the old one for as long as hosts ask for it), and a change to what
 * every plugin shares (the descriptor, tf_host, containers, sinks, the probe
 * request) is a new major. TF_ABI_VERSION_PATCH changes nothing in the ABI.
 *
 * Errors. Functions return int: 0 or positive on success, a negative errno
 * on failure:
 *   -ENOTSUP       capability absent (e.g. an engine without an event stream)
 *   -ENOENT, -ECONNREFUSED  the engine or its socket is gone
 *   -ETIMEDOUT     the engine did not answer in time
 *   -ECANCELED     the call was cancelled (tf_engine.cancel)
 *   -EPROTO        the peer answered something that is not the expected protocol
 *   -EINVAL        bad arguments
 * plus a human-readable message written into a caller-owned tf_error.
 * No exception, no C++ type, and no ownership of heap memory crosses.
 *
 * Ownership. Whoever allocates frees. Anything passed into a callback is
 * borrowed for the duration of that call; the receiver copies what it keeps.
 * Pointers a plugin returns (descriptor, extension vtables, their strings)
 * live as long as the shared object stays loaded.
 *
 * Thread tags, ending each function's comment:
 *   [any-thread]   may be called from any thread, concurrently with anything.
 *   [serialized]   never called concurrently on the same object.
 *   [blocking]     may block on I/O (always bounded by a timeout or cancel).
 *   [cancellable]  returns -ECANCELED promptly once tf_engine.cancel is called.
 */
#ifndef TURTLEFINDER_PLUGIN_H
#define TURTLEFINDER_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TF_ABI_VERSION_MAJOR 1
#define TF_ABI_VERSION_MINOR 1
#define TF_ABI_VERSION_PATCH 0

#if defined(_WIN32)
#define TF_EXPORT __declspec(dllexport)
#else
#define TF_EXPORT __attribute__((visibility("default")))
#endif

/* True if struct `s` (pointer), whose writer set s->struct_size, holds `member` of type T. */
#define TF_HAS_MEMBER(s, T, member) \
    ((s) != NULL && (size_t)(s)->struct_size >= offsetof(T, member) + sizeof(((T *)0)->member))

typedef struct tf_abi_version {
    uint32_t major;
    uint32_t minor;
    uint32_t patch;
} tf_abi_version;

/* ---- errors ------------------------------------------------------------- */

#define TF_ERROR_MAX 256

/* Caller-owned; a callee that fails writes a NUL-terminated message (truncated
 * to fit). A callee that succeeds leaves it alone. */
typedef struct tf_error {
    char message[TF_ERROR_MAX];
} tf_error;

/* ---- host services ------------------------------------------------------ */

typedef int32_t tf_log_level;
enum {
    TF_LOG_TRACE = 0,
    TF_LOG_DEBUG = 1,
    TF_LOG_INFO = 2,
    TF_LOG_WARN = 3,
    TF_LOG_ERROR = 4,
};

/* Passed to init; valid (and unchanged) until deinit returns: keep the pointer. */
typedef struct tf_host {
    uint32_t struct_size;
    tf_abi_version abi; /* the host's ABI version */
    void *ctx;          /* opaque, passed back to every host function */
    /* Logs one message under the plugin's name; the host copies it. [any-thread] */
    void (*log)(void *ctx, tf_log_level level, const char *message);
    /* Optional host services by id ("tf.host.<x>.v1"); NULL when not offered. [any-thread] */
    const void *(*get_extension)(void *ctx, const char *id);
} tf_host;

/* ---- containers and events ---------------------------------------------- */

/* A UTF-8 key/value pair; both non-NULL. */
typedef struct tf_label {
    const char *key;
    const char *value;
} tf_label;

typedef uint32_t tf_container_flags;
enum {
    TF_CONTAINER_PAUSED = 1u << 0, /* frozen (paused) rather than running */
};

/* One alive (running or paused) container, borrowed for the call it is passed in. */
typedef struct tf_container {
    uint32_t struct_size;
    const char *id;   /* engine-unique id, non-NULL */
    const char *name; /* human name; NULL or "" falls back to the id */
    int32_t pid;      /* PID of the container's init process in the engine's PID
                         namespace; 0 when unknown */
    tf_container_flags flags;
    uint32_t n_labels;
    const tf_label *labels;
} tf_container;

typedef struct tf_container_sink {
    uint32_t struct_size;
    void *ctx;
    /* Receives one container. Return 0 to go on, non-zero to ask the plugin to
     * stop delivering (the plugin's call then returns -ECANCELED). [any-thread] */
    int (*add)(void *ctx, const tf_container *container);
} tf_container_sink;

typedef int32_t tf_event_kind;
enum {
    TF_EVENT_STARTED = 1,  /* a container started (is alive now) */
    TF_EVENT_EXITED = 2,   /* a container's init exited (it is no longer alive) */
    TF_EVENT_PAUSED = 3,   /* a container was frozen */
    TF_EVENT_UNPAUSED = 4, /* a container was thawed */
};

typedef struct tf_container_event {
    uint32_t struct_size;
    tf_event_kind kind;
    const char *id; /* the container's id as tf_container.id has it */
    /* Optional full details for TF_EVENT_STARTED, NULL otherwise or when the
     * plugin does not have them at hand (the host then calls inspect). */
    const tf_container *container;
} tf_container_event;

typedef struct tf_event_sink {
    uint32_t struct_size;
    void *ctx;
    /* Called once the event subscription is established, before any event is
     * delivered. Events that happen from now on are not lost: the host lists
     * the containers from inside this call, and the plugin delivers events
     * that arrived meanwhile after it returns. So this calls back into the
     * plugin: tf_engine.list on the same engine, on the watch thread, before
     * it returns. Watch must not call it holding a lock that list takes;
     * events arriving meanwhile wait in the plugin's stream or buffer.
     * Return non-zero to stop the watch (it then returns -ECANCELED).
     * [serialized] */
    int (*subscribed)(void *ctx);
    /* One lifecycle event, in the order the engine emitted them. For
     * TF_EVENT_STARTED without details the host calls tf_engine.inspect
     * from inside this call, on the watch thread (same rule as above).
     * Return non-zero to stop the watch (it then returns -ECANCELED).
     * [serialized] */
    int (*on_event)(void *ctx, const tf_container_event *event);
} tf_event_sink;

/* ---- engine clients ----------------------------------------------------- */

/* Identity of one engine API endpoint; strings live as long as the engine. */
typedef struct tf_engine_info {
    uint32_t struct_size;
    const char *type;    /* API kind: "docker.com", "containerd.io", "k8s.io/cri-api", "podman.io" */
    const char *flavor;  /* product behind the API ("docker.com", "containerd.io", "cri-o.io", ...) */
    const char *id;      /* engine id as the engine reports it (Docker ID, containerd UUID, ...) */
    const char *version; /* engine version as reported */
    const char *api;     /* the API path this client talks to, as probed */
    int32_t pid;         /* the engine process's PID (in the host's view) */
} tf_engine_info;

typedef struct tf_engine tf_engine;

/* One engine client, created by a probe and owned by the host until it calls
 * destroy. The function pointers are the plugin's; `impl` is the plugin's state. */
struct tf_engine {
    uint32_t struct_size;
    void *impl;
    /* Identity; never NULL, valid until destroy. [any-thread] */
    const tf_engine_info *(*info)(const tf_engine *self);
    /* Delivers every alive (running or paused) container to `sink`, then
     * returns 0. [any-thread][blocking][cancellable] */
    int (*list)(tf_engine *self, const tf_container_sink *sink, tf_error *reterr);
    /* Delivers the container `id` to `sink` if it is alive; returns 0 whether
     * or not it was (a container that is gone is no error).
     * [any-thread][blocking][cancellable] */
    int (*inspect)(tf_engine *self, const char *id, const tf_container_sink *sink, tf_error *reterr);
    /* Subscribes to lifecycle events, calls sink->subscribed once the
     * subscription stands, then delivers events until the stream ends or
     * fails (returns the error), or until cancel (returns -ECANCELED).
     * Returns -ENOTSUP at once when the engine has no event stream; the
     * host then polls `list`. Never returns 0. [serialized][blocking][cancellable] */
    int (*watch)(tf_engine *self, const tf_event_sink *sink, tf_error *reterr);
    /* Makes every blocking call on this engine, running or future, return
     * -ECANCELED promptly. Irreversible; used before destroy. [any-thread] */
    void (*cancel)(tf_engine *self);
    /* Frees the engine. Returns only when no call on it runs any more and no
     * thread of it is left; the host calls cancel first. destroy(NULL) is a
     * no-op. After it, `self` is invalid. [serialized] */
    void (*destroy)(tf_engine *self);
};

/* Collects the engine clients a probe creates; ownership passes to the host,
 * which later frees each through its own destroy. */
typedef struct tf_engine_sink {
    uint32_t struct_size;
    void *ctx;
    /* Returns 0 when taken; non-zero means the host refused it and the plugin
     * must destroy it itself. [serialized] */
    int (*add)(void *ctx, tf_engine *engine);
} tf_engine_sink;

/* What the host knows about a process that may be an engine. */
typedef struct tf_probe_request {
    uint32_t struct_size;
    int32_t pid;             /* engine process PID (host view) */
    const char *process_name;
    /* Candidate API paths: the process's listening unix sockets, each already
     * resolved to a path the host can connect to (through /proc/PID/root).
     * Connect to this path as given; do not rewrite it. It may name a handle
     * the host holds on the socket ("/proc/self/fd/N"), valid while the engine
     * lives; an engine reporting it as its api is shown under the socket's
     * path. */
    uint32_t n_api_paths;
    const char *const *api_paths;
    int32_t timeout_ms;      /* per-candidate probe timeout and per-call default */
    /* Plugin settings from the host's configuration (e.g. "skip-namespaces"). */
    uint32_t n_settings;
    const tf_label *settings;
    /* Since 1.1 (a 1.0 host's request ends before them: check TF_HAS_MEMBER,
     * and `report` may be NULL). Tells the host what one candidate path
     * turned out to be, so that it can say why a process gave no engine.
     * `api_path` is one of api_paths as given; `outcome` is 0 for a path
     * that gave an engine, else a negative errno as for errors: -ETIMEDOUT
     * (no answer in time), -ECONNREFUSED (nothing listens), -EACCES
     * (permission denied), -EPROTO (it answered, but not as this engine:
     * another protocol, or another engine's API), ...; `message` (may be
     * NULL) says more, for humans. The host copies both; a path reported
     * again keeps the last report, one never reported is "not told".
     * Optional for the plugin; only until probe returns. [any-thread] */
    void *report_ctx;
    void (*report)(void *report_ctx, const char *api_path, int32_t outcome, const char *message);
} tf_probe_request;

/* Probes `request` and hands every engine client found to `sink`.
 * Returns the number of engines handed over (0: not an engine of ours).
 * How long: a probe cannot be cancelled. It runs on a thread of its own,
 * which the host does not wait for when it shuts down or gives up on the
 * probe (the plugin stays mapped while the probe runs, and what it hands to
 * `sink` afterwards is dropped). Give each candidate path at most timeout_ms
 * to connect and answer, and each call that identifies an engine found at
 * most timeout_ms, so that a probe ends within a small multiple of
 * n_api_paths * timeout_ms. A probe that outlasts a discovery's wait is
 * collected by a later discovery.
 * [any-thread][blocking] (bounded by timeout_ms per candidate) */
typedef int (*tf_probe_fn)(const tf_probe_request *request, const tf_engine_sink *sink,
                           tf_error *reterr);

/* ---- extensions --------------------------------------------------------- */

/* An engine detector: claims processes by name and probes their sockets. */
#define TF_EXT_ENGINE_DETECTOR "tf.engine-detector.v1"
typedef struct tf_engine_detector {
    uint32_t struct_size;
    uint32_t n_process_names;
    const char *const *process_names; /* exact `comm` values (at most 15 bytes) */
    tf_probe_fn probe;
} tf_engine_detector;

/* A socket activator: a process (e.g. systemd) that listens on sockets on
 * behalf of services it starts on the first connection. */
#define TF_EXT_SOCKET_ACTIVATOR "tf.socket-activator.v1"
typedef struct tf_socket_activator {
    uint32_t struct_size;
    uint32_t n_process_names;
    const char *const *process_names;
} tf_socket_activator;

/* An engine that usually runs only when socket-activated (e.g. podman). */
#define TF_EXT_ACTIVATED_ENGINE "tf.activated-engine.v1"
typedef struct tf_activated_engine {
    uint32_t struct_size;
    uint32_t n_socket_suffixes;
    const char *const *socket_suffixes; /* API socket path suffixes ("podman.sock") */
    uint32_t n_service_names;
    const char *const *service_names;   /* `comm` of the started service ("podman") */
    tf_probe_fn probe;                  /* as for detectors, on the service's PID */
} tf_activated_engine;

/* ---- the entry ---------------------------------------------------------- */

typedef struct tf_plugin_descriptor {
    tf_abi_version abi; /* TF_ABI_VERSION_* the plugin was built with; first, always */
    uint32_t struct_size;
    const char *name;        /* unique plugin name, [a-z0-9-]+ */
    const char *version;     /* the plugin's own version, for humans */
    const char *description; /* one line, for humans */
    /* Process-wide set-up: cheap, no I/O or probing. May be called again after
     * deinit. `host` stays valid until deinit returns. Returns 0 or a negative
     * errno with a message. [serialized] */
    int (*init)(const tf_host *host, tf_error *reterr);
    /* Undoes init; no call into the plugin follows until init again. [serialized] */
    void (*deinit)(void);
    /* The vtable for capability `id`, or NULL when not offered. Valid as long
     * as the shared object is loaded. [any-thread] */
    const void *(*get_extension)(const char *id);
} tf_plugin_descriptor;

#define TF_PLUGIN_ENTRY_SYMBOL "tf_plugin_entry"

/* Every plugin defines exactly this, e.g.
 *   TF_EXPORT const tf_plugin_descriptor tf_plugin_entry = { ... };          */
TF_EXPORT extern const tf_plugin_descriptor tf_plugin_entry;

/* ---- metadata in the file (since 1.1) ----------------------------------- */

/* What a plugin is, readable from its file without loading it, in the spirit
 * of kernel modules' .modinfo: the host learns a plugin's name and claims from
 * this ELF section and dlopens the plugin only once a process it claims runs
 * (an activated engine: once a socket activator runs). The section holds
 * NUL-terminated "key=value" entries, in any order:
 *   abi=MAJOR.MINOR           required, once
 *   name=NAME                 required, once: the descriptor's name
 *   version=V, description=D  optional, once each, for listings
 *   detector=COMM             each tf_engine_detector.process_names entry
 *   activator=COMM            each tf_socket_activator.process_names entry
 *   activated-socket=SUFFIX   each tf_activated_engine.socket_suffixes entry
 *   activated-service=COMM    each tf_activated_engine.service_names entry
 * Empty entries (padding) are skipped; the host ignores keys it does not know.
 * A section larger than TF_PLUGIN_INFO_MAX, not NUL-terminated, or with a
 * malformed entry gets the plugin refused without loading it; so does a
 * descriptor that, once loaded, claims other than its section. A plugin
 * without the section is loaded at start, as by a 1.0 host.
 * TF_PLUGIN (plugin.hpp) writes the section; a C plugin writes one
 * TF_PLUGIN_INFO line per entry, e.g.
 *   TF_PLUGIN_INFO_ABI;
 *   TF_PLUGIN_INFO("name=my-engine");
 *   TF_PLUGIN_INFO("detector=myengined");                                   */
#define TF_PLUGIN_INFO_SECTION ".tf_plugin_info"
#define TF_PLUGIN_INFO_MAX 4096

#define TF_STRINGIFY_(x) #x
#define TF_STRINGIFY(x) TF_STRINGIFY_(x)
#define TF_ABI_VERSION_STRING TF_STRINGIFY(TF_ABI_VERSION_MAJOR) "." TF_STRINGIFY(TF_ABI_VERSION_MINOR)

#define TF_PLUGIN_INFO_CAT_(a, b) a##b
#define TF_PLUGIN_INFO_CAT(a, b) TF_PLUGIN_INFO_CAT_(a, b)
/* One entry; at most one per source line. */
#define TF_PLUGIN_INFO(entry)                                                            \
    __attribute__((section(TF_PLUGIN_INFO_SECTION), used, aligned(1))) static const char \
        TF_PLUGIN_INFO_CAT(tf_plugin_info_, __LINE__)[] = entry
#define TF_PLUGIN_INFO_ABI TF_PLUGIN_INFO("abi=" TF_ABI_VERSION_STRING)

#ifdef __cplusplus
}
#endif

#endif /* TURTLEFINDER_PLUGIN_H */
