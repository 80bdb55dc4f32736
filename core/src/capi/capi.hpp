// SPDX-License-Identifier: Apache-2.0
// The C API's handles (turtlefinder/turtlefinder.h) and what its two halves
// share: handles are checked, nothing throws across the API, snapshots own
// copies of what they show.
#pragma once

#include <turtlefinder/turtlefinder.h>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <turtlefinder/finder.hpp>

namespace turtlefinder::capi {

namespace tf = turtlefinder;

// Writes the message (when err is given) and returns code.
int fail(tfc_error *err, int code, const char *format, ...) __attribute__((format(printf, 3, 4)));

// Runs `body`, turning what it throws into a negative errno and a message.
template <typename F>
int guarded(tfc_error *err, const char *what, F &&body) {
    try {
        return body();
    } catch (const std::bad_alloc &) {
        return fail(err, -ENOMEM, "%s: out of memory", what);
    } catch (const std::exception &e) {
        return fail(err, -EIO, "%s: %s", what, e.what());
    } catch (...) {
        return fail(err, -EIO, "%s: unknown error", what);
    }
}

// A C subscription: unsubscribe waits for a delivery in progress (except
// the one running on the unsubscribing thread itself).
struct Subscription {
    tfc_event_fn callback;
    void *user;
    std::mutex mutex;
    std::condition_variable idle;
    bool removed = false;
    std::multiset<std::thread::id> delivering; // threads inside the callback now
};

} // namespace turtlefinder::capi

struct tfc_engine {
    std::shared_ptr<const turtlefinder::Engine> engine;
    const tfc_engine *parent = nullptr;
};

struct tfc_container {
    turtlefinder::Container container;
    const tfc_engine *engine = nullptr;
    std::vector<std::pair<const std::string *, const std::string *>> labels; // into container.labels
};

struct tfc_snapshot {
    std::vector<std::unique_ptr<tfc_engine>> engines;
    std::vector<std::unique_ptr<tfc_container>> containers;
};

struct tfc_event {
    tfc_event_kind kind;
    tfc_engine engine;
    tfc_container container;
    bool has_container;
};

struct tfc_cancel {
    std::stop_source source;
};

struct tfc_finder {
    // In place, not behind a unique_ptr: std::unique_ptr<Finder>'s helper
    // templates would carry the public Finder's visibility into the exports.
    std::optional<turtlefinder::Finder> finder;
    std::mutex mutex; // guards subscriptions
    std::map<int, std::shared_ptr<turtlefinder::capi::Subscription>> subscriptions;
};

namespace turtlefinder::capi {

// Fills a container entry pointing at its engine's entry.
void fill_container(tfc_container &out, Container c, const tfc_engine *engine);
// One entry per engine met in `containers`, the finder's list or as a parent.
std::unique_ptr<tfc_snapshot> make_snapshot(std::vector<Container> containers,
                                            const std::vector<std::shared_ptr<const Engine>> &engines);

} // namespace turtlefinder::capi
