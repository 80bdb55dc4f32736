// SPDX-License-Identifier: Apache-2.0
#include "event_view.hpp"

#include <sstream>

namespace json = boost::json;

namespace tftest {

namespace {

std::string engine_place(const json::object &e, const std::string &parent_key) {
    return std::string(e.at("prefix").as_string()) + "|" + parent_key;
}

std::string container_state(const json::object &c) {
    return std::to_string(c.at("pid").as_int64()) + "|" + (c.at("paused").as_bool() ? "paused" : "running") + "|" +
           std::string(c.at("prefix").as_string());
}

} // namespace

std::string describe(const EventView &view) {
    std::ostringstream out;
    for (auto &[k, e] : view.engines) out << "engine " << k << " " << e << "\n";
    for (auto &[k, c] : view.containers) out << "container " << k.first << " " << k.second << " " << c << "\n";
    return out.str();
}

EventView document_view(const json::value &doc, const EngineFilter &mine) {
    EventView v;
    auto &engines = doc.at("engines").as_array();
    // In a document a parent is an index into its engines.
    auto key_of = [&](const json::value &index) {
        return std::string(engines.at(static_cast<std::size_t>(index.as_int64())).at("key").as_string());
    };
    for (auto &e : engines) {
        if (!mine(e.as_object())) continue;
        auto &parent = e.at("parent");
        v.engines[std::string(e.at("key").as_string())] =
            engine_place(e.as_object(), parent.is_null() ? "" : key_of(parent));
    }
    if (!doc.as_object().contains("containers")) return v;
    for (auto &c : doc.at("containers").as_array()) {
        std::string key = key_of(c.at("engine"));
        if (!v.engines.contains(key)) continue;
        v.containers[{key, std::string(c.at("id").as_string())}] = container_state(c.as_object());
    }
    return v;
}

void apply_event(EventView &v, const json::value &event, const EngineFilter &mine) {
    auto &o = event.as_object();
    auto &engine = o.at("engine").as_object();
    if (!mine(engine)) return;
    std::string key(engine.at("key").as_string());
    std::string kind(o.at("event").as_string());
    if (kind == "engine-found" || kind == "engine-changed") {
        // In an event a parent is the parent's key.
        auto &parent = engine.at("parent");
        v.engines[key] = engine_place(engine, parent.is_null() ? "" : std::string(parent.as_string()));
    } else if (kind == "engine-lost") {
        v.engines.erase(key);
        std::erase_if(v.containers, [&](auto &c) { return c.first.first == key; });
    } else {
        auto &c = o.at("container").as_object();
        std::pair<std::string, std::string> ck{std::string(c.at("engine").as_string()),
                                               std::string(c.at("id").as_string())};
        if (kind == "exited")
            v.containers.erase(ck);
        else
            v.containers[ck] = container_state(c);
    }
}

EventView replay_lines(const std::string &lines, const EngineFilter &mine) {
    EventView v;
    std::istringstream in(lines);
    for (std::string line; std::getline(in, line);) {
        boost::system::error_code ec;
        auto doc = json::parse(line, ec);
        if (ec || !doc.is_object()) continue;
        apply_event(v, doc, mine);
    }
    return v;
}

} // namespace tftest
