// SPDX-License-Identifier: Apache-2.0
#include "output.hpp"

#include <algorithm>
#include <ctime>
#include <map>

#include <boost/json.hpp>
#include <fmt/format.h>

namespace turtlefinder::cli {

namespace json = boost::json;

std::string valid_utf8(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    const auto *s = reinterpret_cast<const unsigned char *>(in.data());
    std::size_t i = 0, n = in.size();
    while (i < n) {
        unsigned char c = s[i];
        std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
        bool ok = len > 0 && i + len <= n;
        for (std::size_t k = 1; ok && k < len; ++k) ok = (s[i + k] & 0xC0) == 0x80;
        if (ok && len > 1) { // reject overlongs, surrogates and > U+10FFFF
            std::uint32_t cp = c & (0xFF >> (len + 1));
            for (std::size_t k = 1; k < len; ++k) cp = (cp << 6) | (s[i + k] & 0x3F);
            ok = !((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
                   (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF);
        }
        if (ok) {
            out.append(in.substr(i, len));
            i += len;
        } else {
            out += "\xEF\xBF\xBD";
            ++i;
        }
    }
    return out;
}

std::string printable(std::string_view in) {
    std::string out = valid_utf8(in);
    for (auto &ch : out)
        if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7F) ch = '?';
    return out;
}

std::string utc_time(std::chrono::system_clock::time_point t) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                       tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
}

namespace {

// "stale since 2026-…Z: error", "syncing", "online"
std::string state_text(const Engine &e) {
    if (e.state == Engine::State::online) return to_string(e.state);
    std::string text = fmt::format("{} since {}", to_string(e.state), utc_time(e.since));
    if (!e.error.empty()) text += ": " + printable(e.error);
    return text;
}

std::string short_id(const std::string &id) {
    // "namespace/id" ids keep their namespace; hex ids are cut like docker ps does.
    auto slash = id.rfind('/');
    std::string base = slash == std::string::npos ? id : id.substr(slash + 1);
    if (base.size() > 12) base.resize(12);
    return slash == std::string::npos ? base : id.substr(0, slash + 1) + base;
}

std::string group_of(const Container &c) {
    if (auto p = c.labels.find("com.docker.compose.project"); p != c.labels.end()) return "project " + p->second;
    if (auto p = c.labels.find("io.kubernetes.pod.name"); p != c.labels.end()) {
        auto ns = c.labels.find("io.kubernetes.pod.namespace");
        return "pod " + (ns != c.labels.end() ? ns->second + "/" : "") + p->second;
    }
    return {};
}

struct Painter {
    const Style &style;
    std::string paint(const std::string &text, const char *code) const {
        return style.color ? fmt::format("\x1b[{}m{}\x1b[0m", code, text) : text;
    }
};

class TreePrinter {
public:
    TreePrinter(std::ostream &out, const std::vector<std::shared_ptr<const Engine>> &engines,
                const std::vector<Container> &containers, const Style &style)
        : out_(out), engines_(engines), style_(style), painter_{style} {
        for (const auto &c : containers) by_engine_[c.engine.get()].push_back(&c);
        for (auto &[e, list] : by_engine_)
            std::sort(list.begin(), list.end(), [](auto *a, auto *b) { return a->name < b->name; });
    }

    void print() {
        std::vector<const Engine *> top;
        for (const auto &e : engines_)
            if (!e->parent || !known(e->parent.get())) top.push_back(e.get());
        if (top.empty()) {
            line("", "no container engines found");
            return;
        }
        sort_engines(top);
        for (std::size_t i = 0; i < top.size(); ++i) engine(top[i], "", i + 1 == top.size());
    }

private:
    bool known(const Engine *e) const {
        return std::any_of(engines_.begin(), engines_.end(), [&](auto &x) { return x.get() == e; });
    }
    static void sort_engines(std::vector<const Engine *> &list) {
        std::sort(list.begin(), list.end(), [](auto *a, auto *b) {
            return std::tie(a->type, a->api, a->pid) < std::tie(b->type, b->api, b->pid);
        });
    }

    // Prints one line, cut to the terminal width; colour escapes take no columns.
    void line(const std::string &indent, const std::string &text) {
        std::string l = indent + text;
        if (style_.width > 0) {
            std::size_t cols = 0, i = 0, cut = std::string::npos;
            while (i < l.size()) {
                if (l[i] == '\x1b') { // skip "ESC [ ... m"
                    auto m = l.find('m', i);
                    i = m == std::string::npos ? l.size() : m + 1;
                    continue;
                }
                if ((static_cast<unsigned char>(l[i]) & 0xC0) != 0x80 && ++cols == style_.width) cut = i;
                ++i;
            }
            if (cols > style_.width && cut != std::string::npos)
                l = l.substr(0, cut) + "…" + (style_.color ? "\x1b[0m" : "");
        }
        out_ << l << '\n';
    }

    void engine(const Engine *e, const std::string &indent, bool last) {
        std::string head =
            fmt::format("{} {} {} PID {} {} [{}]", painter_.paint(printable(e->type), "1;36"), printable(e->version),
                        painter_.paint(printable(e->flavor), "2"), e->pid, printable(e->api),
                        e->state == Engine::State::online ? painter_.paint("online", "32")
                                                          : painter_.paint(state_text(*e), "1;31"));
        line(indent, (indent.empty() ? "" : (last ? "└─ " : "├─ ")) + head);
        std::string child_indent = indent.empty() ? "" : indent + (last ? "   " : "│  ");
        auto it = by_engine_.find(e);
        std::vector<const Container *> list = it == by_engine_.end() ? std::vector<const Container *>{} : it->second;
        for (std::size_t i = 0; i < list.size(); ++i) container(e, list[i], child_indent, i + 1 == list.size());
        if (list.empty())
            line(child_indent,
                 e->state == Engine::State::syncing ? "   (containers not listed yet)" : "   (no containers)");
    }

    void container(const Engine *e, const Container *c, const std::string &indent, bool last) {
        std::string state = c->paused ? painter_.paint("paused", "33") : painter_.paint("running", "32");
        std::string group = group_of(*c);
        std::string text = fmt::format(
            "{} {} PID {} {}{}{}", painter_.paint(printable(c->name), "1"), short_id(printable(c->id)), c->pid, state,
            c->stale ? painter_.paint(" (stale view)", "33") : "", group.empty() ? "" : "  " + printable(group));
        line(indent, (last ? "└─ " : "├─ ") + text);
        // engines that run inside this container
        std::vector<const Engine *> nested;
        for (const auto &x : engines_)
            if (x->parent.get() == e && x->prefix == inner_prefix(*e, *c)) nested.push_back(x.get());
        sort_engines(nested);
        std::string nested_indent = indent + (last ? "   " : "│  ");
        for (std::size_t i = 0; i < nested.size(); ++i) engine(nested[i], nested_indent, i + 1 == nested.size());
    }

    static std::string inner_prefix(const Engine &e, const Container &c) {
        return e.prefix.empty() ? c.name : e.prefix + "/" + c.name;
    }

    std::ostream &out_;
    const std::vector<std::shared_ptr<const Engine>> &engines_;
    const Style &style_;
    Painter painter_;
    std::map<const Engine *, std::vector<const Container *>> by_engine_;
};

} // namespace

std::string engine_key(const Engine &e);

namespace {

json::object engine_json(const Engine &e, const std::map<const Engine *, std::size_t> &index) {
    json::object o;
    o["id"] = valid_utf8(e.id);
    o["type"] = valid_utf8(e.type);
    o["flavor"] = valid_utf8(e.flavor);
    o["version"] = valid_utf8(e.version);
    o["api"] = valid_utf8(e.api);
    o["pid"] = e.pid;
    o["plugin"] = valid_utf8(e.plugin);
    o["prefix"] = valid_utf8(e.prefix);
    auto p = e.parent ? index.find(e.parent.get()) : index.end();
    o["parent"] = p == index.end() ? json::value(nullptr) : json::value(p->second);
    o["state"] = to_string(e.state);
    o["error"] = valid_utf8(e.error);
    o["since"] = utc_time(e.since);
    o["key"] = valid_utf8(engine_key(e));
    return o;
}

json::object container_json(const Container &c, const std::map<const Engine *, std::size_t> &index) {
    json::object o;
    o["id"] = valid_utf8(c.id);
    o["name"] = valid_utf8(c.name);
    o["type"] = valid_utf8(c.type);
    o["flavor"] = valid_utf8(c.flavor);
    o["pid"] = c.pid;
    o["paused"] = c.paused;
    o["stale"] = c.stale;
    auto e = index.find(c.engine.get());
    o["engine"] = e == index.end() ? json::value(nullptr) : json::value(e->second);
    o["prefix"] = valid_utf8(c.engine ? c.engine->prefix : "");
    json::object labels;
    for (const auto &[k, v] : c.labels) labels[valid_utf8(k)] = valid_utf8(v);
    o["labels"] = std::move(labels);
    return o;
}

std::map<const Engine *, std::size_t> index_of(const std::vector<std::shared_ptr<const Engine>> &engines) {
    std::map<const Engine *, std::size_t> index;
    for (std::size_t i = 0; i < engines.size(); ++i) index[engines[i].get()] = i;
    return index;
}

} // namespace

void warn_not_online(std::ostream &err, const std::vector<std::shared_ptr<const Engine>> &engines) {
    for (const auto &e : engines) {
        if (e->state == Engine::State::online) continue;
        err << fmt::format("turtlefinder: warning: {} engine {} (PID {}{}) is {}{}\n", printable(e->type),
                           printable(e->api), e->pid, e->prefix.empty() ? "" : ", in " + printable(e->prefix),
                           state_text(*e),
                           e->state == Engine::State::stale ? "; its containers are its last good view"
                                                            : "; its containers are not listed yet");
    }
}

void warn_candidates(std::ostream &err, const std::vector<Candidate> &candidates) {
    for (const auto &c : candidates) {
        std::string sockets;
        for (const auto &s : c.sockets) sockets += (sockets.empty() ? "" : ", ") + printable(s);
        err << fmt::format("turtlefinder: warning: {} (PID {}) claimed by plugin \"{}\" gave no engine: {}{}\n",
                           printable(c.process), c.pid, printable(c.plugin), printable(c.reason),
                           sockets.empty() ? "" : " (sockets tried: " + sockets + ")");
    }
}

namespace {

json::array candidates_array(const std::vector<Candidate> &candidates) {
    json::array out;
    for (const auto &c : candidates) {
        json::object o;
        o["pid"] = c.pid;
        o["process"] = valid_utf8(c.process);
        o["plugin"] = valid_utf8(c.plugin);
        json::array sockets;
        for (const auto &s : c.sockets) sockets.push_back(json::value(valid_utf8(s)));
        o["sockets"] = std::move(sockets);
        o["reason"] = valid_utf8(c.reason);
        out.push_back(std::move(o));
    }
    return out;
}

} // namespace

std::string candidates_json(const std::vector<Candidate> &candidates) {
    return json::serialize(candidates_array(candidates));
}

void print_tree(std::ostream &out, const std::vector<std::shared_ptr<const Engine>> &engines,
                const std::vector<Container> &containers, const Style &style) {
    TreePrinter(out, engines, containers, style).print();
}

void print_json(std::ostream &out, const std::vector<std::shared_ptr<const Engine>> &engines,
                const std::vector<Container> &containers, const std::vector<Candidate> &candidates) {
    auto index = index_of(engines);
    json::object doc;
    doc["schema"] = json_schema;
    json::array es, cs;
    for (const auto &e : engines) es.push_back(engine_json(*e, index));
    for (const auto &c : containers) cs.push_back(container_json(c, index));
    doc["engines"] = std::move(es);
    doc["containers"] = std::move(cs);
    doc["candidates"] = candidates_array(candidates);
    out << json::serialize(doc) << '\n';
}

void print_engines(std::ostream &out, const std::vector<std::shared_ptr<const Engine>> &engines, bool json,
                   const std::vector<Candidate> &candidates) {
    auto index = index_of(engines);
    if (json) {
        json::object doc;
        doc["schema"] = json_schema;
        json::array es;
        for (const auto &e : engines) es.push_back(engine_json(*e, index));
        doc["engines"] = std::move(es);
        doc["candidates"] = candidates_array(candidates);
        out << json::serialize(doc) << '\n';
        return;
    }
    for (const auto &c : candidates)
        out << fmt::format("no engine\t{}\tPID {}\tplugin {}\t{}\n", printable(c.process), c.pid, printable(c.plugin),
                           printable(c.reason));
    if (engines.empty()) out << "no container engines found\n";
    for (const auto &e : engines)
        out << fmt::format("{}\t{}\t{}\tPID {}\t{}\t{}\t{}\n", printable(e->type), printable(e->version),
                           printable(e->flavor), e->pid, printable(e->api),
                           e->prefix.empty() ? "(host)" : "in " + printable(e->prefix), state_text(*e));
}

std::string engine_key(const Engine &e) { return fmt::format("{}:{}:{}", e.pid, e.type, e.api); }

void print_event(std::ostream &out, const Event &event, bool json) {
    const bool engine_event = event.kind == EventKind::engine_found || event.kind == EventKind::engine_lost ||
                              event.kind == EventKind::engine_changed;
    if (json) {
        // A stream has no engine array to index into: engines are named by key.
        json::object o;
        o["schema"] = json_schema;
        o["event"] = to_string(event.kind);
        o["time"] = utc_time(event.time);
        o["initial"] = event.initial;
        if (event.engine) {
            auto e = engine_json(*event.engine, {});
            e["key"] = valid_utf8(engine_key(*event.engine));
            e["parent"] = event.engine->parent ? json::value(valid_utf8(engine_key(*event.engine->parent)))
                                               : json::value(nullptr);
            o["engine"] = std::move(e);
        }
        if (!engine_event) {
            auto c = container_json(event.container, {});
            c["engine"] = event.container.engine ? json::value(valid_utf8(engine_key(*event.container.engine)))
                                                 : json::value(nullptr);
            o["container"] = std::move(c);
        }
        out << json::serialize(o) << std::endl;
        return;
    }
    std::string head = utc_time(event.time) + (event.initial ? " initial " : " ") + to_string(event.kind);
    if (engine_event) {
        const Engine &e = *event.engine;
        out << fmt::format("{} {} {} PID {} {} [{}]", head, printable(e.type), printable(e.api), e.pid,
                           e.prefix.empty() ? "(host)" : "in " + printable(e.prefix), state_text(e))
            << std::endl;
        return;
    }
    const auto &c = event.container;
    out << fmt::format("{} {} {} PID {}{} on {} {}{}", head, printable(c.name), short_id(printable(c.id)), c.pid,
                       c.paused ? " paused" : "", event.engine ? printable(event.engine->type) : "?",
                       event.engine ? printable(event.engine->api) : "",
                       event.engine && !event.engine->prefix.empty() ? " in " + printable(event.engine->prefix) : "")
        << std::endl;
}

void print_plugins_json(std::ostream &out, const std::vector<PluginStatus> &plugins) {
    auto strings = [](const std::vector<std::string> &list) {
        json::array a;
        for (const auto &s : list) a.push_back(json::value(valid_utf8(s)));
        return a;
    };
    json::array list;
    for (const auto &p : plugins) {
        json::object o;
        o["file"] = valid_utf8(p.file);
        o["name"] = valid_utf8(p.name);
        o["version"] = valid_utf8(p.version);
        o["description"] = valid_utf8(p.description);
        o["kinds"] = strings(p.kinds);
        o["claims"] = strings(p.claims);
        o["loaded"] = p.loaded;
        o["builtin"] = p.builtin;
        o["reason"] = valid_utf8(p.reason);
        list.push_back(std::move(o));
    }
    json::object doc;
    doc["schema"] = json_schema;
    doc["plugins"] = std::move(list);
    out << json::serialize(doc) << '\n';
}

} // namespace turtlefinder::cli
