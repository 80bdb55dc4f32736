// SPDX-License-Identifier: Apache-2.0
// An OCI runtime wrapper for engines started by the lab: some hosts (VMs,
// nested containers) lack CAP_SYS_RESOURCE in their bounding set, and runc
// fails with "unable to apply caps" when a privileged container or an exec
// asks for it. This removes CAP_SYS_RESOURCE from the bundle's config.json
// (create/run) or the --process JSON (exec), then runs runc with the same
// arguments. Harmless where the capability exists.
// With TF_LAB_RUNC_ROOT set (the lab sets it for its engines), runc's state
// goes below that directory instead of the host-wide root the shim names
// (/run/containerd/runc/NAMESPACE), which an engine the user runs may share.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <boost/json.hpp>

namespace json = boost::json;

namespace {

void strip_caps(json::value *caps) {
    if (caps == nullptr || !caps->is_object()) return;
    for (auto &set : caps->get_object()) {
        if (!set.value().is_array()) continue;
        auto &arr = set.value().get_array();
        for (auto it = arr.begin(); it != arr.end();) {
            if (it->is_string() && it->get_string() == "CAP_SYS_RESOURCE")
                it = arr.erase(it);
            else
                ++it;
        }
    }
}

// Rewrites `path` with CAP_SYS_RESOURCE removed; `in_process` says the file
// is a process object (exec) rather than a whole config (create).
void rewrite(const std::string &path, bool is_process) {
    std::ifstream in(path);
    if (!in) return;
    std::stringstream text;
    text << in.rdbuf();
    json::error_code ec;
    json::value v = json::parse(text.str(), ec);
    if (ec || !v.is_object()) return;
    json::value *process = is_process ? &v : v.get_object().if_contains("process");
    if (process == nullptr || !process->is_object()) return;
    strip_caps(process->get_object().if_contains("capabilities"));
    std::ofstream out(path, std::ios::trunc);
    out << json::serialize(v);
}

std::string find_runc() {
    if (const char *r = std::getenv("TF_LAB_RUNC"); r != nullptr && *r != '\0') return r;
    std::string path = std::getenv("PATH") != nullptr ? std::getenv("PATH") : "";
    path += ":/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin";
    std::stringstream dirs(path);
    std::string d;
    while (std::getline(dirs, d, ':'))
        if (!d.empty() && ::access((d + "/runc").c_str(), X_OK) == 0) return d + "/runc";
    return "runc";
}

// Where runc's command is in `args`: global options come before it.
std::size_t command_index(const std::vector<std::string> &args) {
    static const char *const commands[] = {"checkpoint", "create", "delete", "events", "exec",    "init",
                                           "kill",       "list",   "pause",  "ps",     "restore", "resume",
                                           "run",        "spec",   "start",  "state",  "update",  "features"};
    for (std::size_t i = 0; i < args.size(); ++i)
        if (std::find(std::begin(commands), std::end(commands), args[i]) != std::end(commands)) return i;
    return args.size();
}

// Replaces the global --root by LAB_ROOT/NAME, NAME being the last component
// of the root asked for (the namespace), so each namespace keeps its own
// state as before; adds one if none was given.
void redirect_root(std::vector<std::string> &args, std::size_t command_at, const std::string &lab_root) {
    auto below_lab = [&](std::string asked) {
        while (asked.size() > 1 && asked.back() == '/') asked.pop_back();
        std::string name = asked.substr(asked.find_last_of('/') + 1);
        return lab_root + "/" + (name.empty() ? "default" : name);
    };
    for (std::size_t i = 0; i < command_at; ++i) {
        const std::string &a = args[i];
        if (a == "--root" && i + 1 < args.size()) {
            args[i + 1] = below_lab(args[i + 1]);
            return;
        }
        if (a.rfind("--root=", 0) == 0) {
            args[i] = "--root=" + below_lab(a.substr(7));
            return;
        }
    }
    args.insert(args.begin(), {"--root", lab_root + "/default"});
}

} // namespace

int main(int argc, char **argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    const std::size_t command_at = command_index(args);
    const std::string command = command_at < args.size() ? args[command_at] : "";
    std::string bundle = ".", process;
    for (std::size_t i = command_at + 1; i < args.size(); ++i) {
        const std::string &a = args[i];
        auto value = [&](const char *long_name, const char *short_name, std::string &out) {
            std::string eq = std::string(long_name) + "=";
            if ((a == long_name || a == short_name) && i + 1 < args.size())
                out = args[i + 1];
            else if (a.rfind(eq, 0) == 0)
                out = a.substr(eq.size());
        };
        value("--bundle", "-b", bundle);
        value("--process", "-p", process);
    }
    if (const char *lab_root = std::getenv("TF_LAB_RUNC_ROOT"); lab_root != nullptr && *lab_root != '\0')
        redirect_root(args, command_at, lab_root);
    if (command == "create" || command == "run") rewrite(bundle + "/config.json", false);
    if (command == "exec" && !process.empty()) rewrite(process, true);
    std::string runc = find_runc();
    std::vector<char *> exec_argv{runc.data()};
    for (auto &a : args) exec_argv.push_back(a.data());
    exec_argv.push_back(nullptr);
    ::execv(runc.c_str(), exec_argv.data());
    std::perror("exec runc");
    return 127;
}
