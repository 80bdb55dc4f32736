// SPDX-License-Identifier: Apache-2.0
#include "discoverer.hpp"

#include <iostream>
#include <sstream>

#include <boost/json.hpp>

#include "output.hpp"

namespace turtlefinder::serve {

namespace json = boost::json;

std::string mark_as_service(const std::string &document, std::chrono::system_clock::time_point discovered) {
    json::value doc = json::parse(document);
    json::object marker;
    marker["discovered"] = cli::utc_time(discovered);
    doc.as_object()["service"] = std::move(marker);
    return json::serialize(doc) + "\n";
}

Discoverer::Discoverer(Finder &finder, std::chrono::milliseconds period)
    : finder_(finder), period_(period), thread_([this] { run(); }) {}

Discoverer::~Discoverer() { stop(); }

void Discoverer::stop() {
    std::vector<Done> waiting;
    std::shared_ptr<const Snapshot> latest;
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
    {
        std::lock_guard lock(mu_);
        waiting.swap(waiting_);
        latest = latest_;
    }
    for (auto &done : waiting) done(latest);
}

std::shared_ptr<const Snapshot> Discoverer::latest() const {
    std::lock_guard lock(mu_);
    return latest_;
}

void Discoverer::fresh(Done done) {
    std::shared_ptr<const Snapshot> now;
    {
        std::lock_guard lock(mu_);
        bool young = latest_ && std::chrono::steady_clock::now() - latest_->finished < period_;
        if (!(young && !dirty_) && !stopping_) {
            waiting_.push_back(std::move(done));
            wake_.notify_all();
            return;
        }
        now = latest_;
    }
    done(now);
}

void Discoverer::changed() {
    std::lock_guard lock(mu_);
    dirty_ = true;
}

void Discoverer::reload_plugins() {
    {
        std::lock_guard lock(mu_);
        reload_ = true;
    }
    wake_.notify_all();
}

std::shared_ptr<const Snapshot> Discoverer::discover() {
    auto snapshot = std::make_shared<Snapshot>();
    auto start = std::chrono::steady_clock::now();
    snapshot->containers = finder_.containers();
    snapshot->engines = finder_.engines();
    snapshot->candidates = finder_.candidates();
    snapshot->finished = std::chrono::steady_clock::now();
    snapshot->took = snapshot->finished - start;
    snapshot->time = std::chrono::system_clock::now();
    std::ostringstream containers, engines;
    cli::print_json(containers, snapshot->engines, snapshot->containers, snapshot->candidates);
    cli::print_engines(engines, snapshot->engines, true, snapshot->candidates);
    snapshot->containers_json = mark_as_service(containers.str(), snapshot->time);
    snapshot->engines_json = mark_as_service(engines.str(), snapshot->time);
    return snapshot;
}

void Discoverer::run() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
        bool due = !latest_ || std::chrono::steady_clock::now() - latest_->finished >= period_;
        if (!due && waiting_.empty() && !reload_) {
            auto until = latest_->finished + period_;
            wake_.wait_until(lock, until, [&] { return stopping_ || !waiting_.empty() || reload_; });
            continue;
        }
        // Whoever waits now is served by this discovery; a change or a
        // request from here on waits for the next one.
        std::vector<Done> served;
        served.swap(waiting_);
        bool reload = std::exchange(reload_, false);
        dirty_ = false;
        lock.unlock();
        std::shared_ptr<const Snapshot> snapshot;
        try {
            if (reload) finder_.reload_plugins();
            snapshot = discover();
        } catch (const std::exception &e) {
            std::cerr << "turtlefinder: serve: discovery failed: " << e.what() << '\n';
        }
        lock.lock();
        if (snapshot) latest_ = snapshot;
        auto latest = latest_;
        lock.unlock();
        for (auto &done : served) done(latest);
        lock.lock();
        if (!snapshot) wake_.wait_for(lock, period_, [&] { return stopping_; }); // not again at once
    }
}

} // namespace turtlefinder::serve
