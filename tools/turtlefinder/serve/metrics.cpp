// SPDX-License-Identifier: Apache-2.0
#include "metrics.hpp"

#include <map>

#include <fmt/format.h>

#include "output.hpp"

namespace turtlefinder::serve {

ServiceCounters::ServiceCounters(std::set<std::string> routes) : routes_(std::move(routes)) {}

void ServiceCounters::request(std::string_view path, unsigned code) {
    std::string counted = routes_.contains(std::string(path)) ? std::string(path) : "other";
    std::lock_guard lock(mu_);
    ++requests_[{std::move(counted), code}];
}

void ServiceCounters::subscriber_added() {
    std::lock_guard lock(mu_);
    ++subscribers_;
}

void ServiceCounters::subscriber_removed() {
    std::lock_guard lock(mu_);
    if (subscribers_ > 0) --subscribers_;
}

std::map<std::pair<std::string, unsigned>, std::uint64_t> ServiceCounters::requests() const {
    std::lock_guard lock(mu_);
    return requests_;
}

std::uint64_t ServiceCounters::subscribers() const {
    std::lock_guard lock(mu_);
    return subscribers_;
}

MetricsInput metrics_input(Finder &finder, std::vector<Container> containers) {
    MetricsInput in;
    in.engines = finder.engines();
    in.containers = std::move(containers);
    in.plugins = finder.plugins();
    in.candidates = finder.candidates();
    in.stats = finder.stats();
    return in;
}

std::string escape_label_value(std::string_view value) {
    std::string out;
    for (char c : cli::valid_utf8(value)) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

namespace {

using Labels = std::vector<std::pair<std::string_view, std::string>>;

// Writes families one at a time: HELP and TYPE, then every sample.
class Exposition {
public:
    void family(std::string_view name, std::string_view type, std::string_view help) {
        name_ = name;
        out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
    }
    void sample(const Labels &labels, std::string_view value, std::string_view suffix = {}) {
        out_ += name_;
        out_ += suffix;
        if (!labels.empty()) {
            out_ += '{';
            for (std::size_t i = 0; i < labels.size(); ++i)
                out_ += fmt::format("{}{}=\"{}\"", i ? "," : "", labels[i].first, escape_label_value(labels[i].second));
            out_ += '}';
        }
        out_ += ' ';
        out_ += value;
        out_ += '\n';
    }
    void sample(const Labels &labels, std::uint64_t value) { sample(labels, std::to_string(value)); }
    std::string take() { return std::move(out_); }

private:
    std::string name_;
    std::string out_;
};

std::string number(double v) { return fmt::format("{}", v); }

void engines(Exposition &x, const MetricsInput &in) {
    x.family("turtlefinder_engines", "gauge", "Container engines found, by API type, flavor and state.");
    // Every state of each (type, flavor) present, so a change of state moves
    // the count between series instead of dropping one.
    std::map<std::pair<std::string, std::string>, std::map<std::string, std::uint64_t>> counts;
    for (const auto &e : in.engines) ++counts[{e->type, e->flavor}][to_string(e->state)];
    for (const auto &[kind, states] : counts)
        for (auto state : {Engine::State::syncing, Engine::State::online, Engine::State::stale}) {
            auto it = states.find(to_string(state));
            x.sample({{"type", kind.first}, {"flavor", kind.second}, {"state", to_string(state)}},
                     it == states.end() ? 0 : it->second);
        }
}

void containers(Exposition &x, const MetricsInput &in) {
    x.family("turtlefinder_containers", "gauge",
             "Alive containers by engine (API type and path), state (running or paused) and whether they are the "
             "last good view of a stale engine.");
    // Engines with no container show zeros: "none" differs from "not found".
    // Keyed by the labels: the same view renders the same text, and never one
    // series twice.
    struct Count {
        std::uint64_t running = 0, paused = 0;
        bool stale = false;
    };
    std::map<std::pair<std::string, std::string>, Count> counts;
    for (const auto &e : in.engines) counts[{e->type, e->api}].stale |= e->state == Engine::State::stale;
    for (const auto &c : in.containers) {
        if (!c.engine) continue;
        auto &n = counts[{c.engine->type, c.engine->api}];
        ++(c.paused ? n.paused : n.running);
        n.stale |= c.stale;
    }
    for (const auto &[engine, n] : counts)
        for (auto [state, value] : {std::pair{"running", n.running}, std::pair{"paused", n.paused}})
            x.sample({{"engine_type", engine.first},
                      {"engine_api", engine.second},
                      {"state", state},
                      {"stale", n.stale ? "true" : "false"}},
                     value);
}

void discoveries(Exposition &x, const Stats &s) {
    x.family("turtlefinder_discoveries_total", "counter", "Discoveries run (process scan, probes, placement).");
    x.sample({}, s.discoveries);
    // One at start where the kernel's process events keep the table current;
    // as many as discoveries where they cannot be had.
    x.family("turtlefinder_process_scans_total", "counter",
             "Full scans of /proc (with process events: the first one, and after lost events).");
    x.sample({}, s.process_scans);
    x.family("turtlefinder_discovery_duration_seconds", "histogram", "How long discoveries took.");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < Stats::discovery_bounds.size(); ++i) {
        cumulative += s.discovery_buckets[i];
        x.sample({{"le", number(Stats::discovery_bounds[i])}}, std::to_string(cumulative), "_bucket");
    }
    cumulative += s.discovery_buckets.back();
    x.sample({{"le", "+Inf"}}, std::to_string(cumulative), "_bucket");
    x.sample({}, number(s.discovery_seconds), "_sum");
    x.sample({}, std::to_string(cumulative), "_count");
}

void probes(Exposition &x, const Stats &s) {
    x.family("turtlefinder_probes_total", "counter",
             "Processes a plugin probed for an engine, and sockets an activator started, by plugin.");
    for (const auto &[plugin, counts] : s.probes_by_plugin) x.sample({{"plugin", plugin}}, counts.probes);
    x.family("turtlefinder_probe_failures_total", "counter",
             "Probes that gave no engine, by plugin and reason (no_socket, error, no_engine, activation).");
    for (const auto &[plugin, counts] : s.probes_by_plugin)
        for (const auto &[reason, n] : counts.failures) x.sample({{"plugin", plugin}, {"reason", reason}}, n);
    x.family("turtlefinder_activations_total", "counter", "Services found after activating their socket.");
    x.sample({}, s.activations);
}

void plugins(Exposition &x, const MetricsInput &in) {
    std::uint64_t loaded = 0, deferred = 0, refused = 0;
    for (const auto &p : in.plugins) ++(p.loaded ? loaded : p.deferred ? deferred : refused);
    x.family("turtlefinder_plugins", "gauge",
             "Plugins loaded, known and not loaded yet (no process they claim runs), and refused (see /v1/plugins "
             "for the reasons).");
    x.sample({{"status", "loaded"}}, loaded);
    x.sample({{"status", "deferred"}}, deferred);
    x.sample({{"status", "refused"}}, refused);
    x.family("turtlefinder_candidates", "gauge",
             "Processes a detector claimed whose sockets gave no engine (yet), by plugin.");
    std::map<std::string, std::uint64_t> by_plugin;
    for (const auto &c : in.candidates) ++by_plugin[c.plugin];
    for (const auto &[plugin, n] : by_plugin) x.sample({{"plugin", plugin}}, n);
}

void service(Exposition &x, const ServiceCounters &counters) {
    x.family("turtlefinder_http_requests_total", "counter", "HTTP requests answered, by path and status code.");
    for (const auto &[key, n] : counters.requests())
        x.sample({{"path", key.first}, {"code", std::to_string(key.second)}}, n);
    x.family("turtlefinder_sse_subscribers", "gauge", "Clients subscribed to /v1/events.");
    x.sample({}, counters.subscribers());
}

} // namespace

std::string render_metrics(const MetricsInput &input, const ServiceCounters *service_counters) {
    Exposition x;
    x.family("turtlefinder_build_info", "gauge", "The turtlefinder version serving, as a label; always 1.");
    x.sample({{"version", version()}}, 1);
    engines(x, input);
    containers(x, input);
    discoveries(x, input.stats);
    probes(x, input.stats);
    plugins(x, input);
    x.family("turtlefinder_watch_resyncs_total", "counter",
             "Full lists of an engine's containers after its event stream broke.");
    x.sample({}, input.stats.watch_resyncs);
    if (service_counters != nullptr) service(x, *service_counters);
    return x.take();
}

} // namespace turtlefinder::serve
