// SPDX-License-Identifier: Apache-2.0
// turtlefinder: finds every container engine on this host, and what runs in it.
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <turtlefinder/finder.hpp>

#include "output.hpp"

namespace tf = turtlefinder;

#ifdef TF_CLI_BUILTIN_PLUGINS
std::vector<const tf_plugin_descriptor *> cli_builtin_plugins(); // builtin_plugins.cpp, generated
#endif

namespace {

constexpr const char *usage = R"(usage: turtlefinder [COMMAND] [OPTIONS]

Finds every container engine on this host — including engines running inside
containers of other engines — and lists their alive containers.

Commands:
  (none)        one discovery, printed as a tree of engines and containers
  engines       the engines only
  sockets       every process holding listening unix sockets, with their paths
  plugins       plugins (loaded, or known and not loaded yet), what they claim,
                and refused ones with the reason

Options:
  --json               machine-readable output (schema "turtlefinder/v1")
  --watch              stay running and print every change as it happens
  --plugin-dir DIR     also load plugins from DIR (repeatable; searched first)
  --config FILE        configuration file (default: the installed turtlefinder.json, if any)
  --log-level LEVEL    trace, debug, info, warn, error, critical or off
  --online-wait MS     how long to wait for new engines' first sync (default 2000)
  --procfs-root DIR    read processes from the procfs mounted at DIR (default /proc),
                       e.g. the host's /proc mounted into a container
  --help               this text
  --version            the version

Exit status: 0 ok, 1 failure, 2 bad usage.
)";

struct Args {
    std::string command;
    bool json = false;
    bool watch = false;
    std::vector<std::string> plugin_dirs;
    std::optional<std::string> config;
    std::optional<std::string> log_level;
    std::optional<long> online_wait_ms;
    std::optional<std::string> procfs_root;
};

[[noreturn]] void usage_error(const std::string &message) {
    std::cerr << "turtlefinder: " << message << "\nTry 'turtlefinder --help'.\n";
    std::exit(2);
}

Args parse(int argc, char **argv) {
    Args a;
    auto value = [&](int &i, const std::string &flag) -> std::string {
        std::string arg = argv[i];
        if (auto eq = arg.find('='); eq != std::string::npos) return arg.substr(eq + 1);
        if (i + 1 >= argc) usage_error(flag + " needs a value");
        return argv[++i];
    };
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        auto is = [&](const char *flag) { return arg == flag || arg.rfind(std::string(flag) + "=", 0) == 0; };
        if (arg == "--help" || arg == "-h") {
            std::cout << usage;
            std::exit(0);
        } else if (arg == "--version") {
            std::cout << "turtlefinder " << tf::version() << '\n';
            std::exit(0);
        } else if (arg == "--json") {
            a.json = true;
        } else if (arg == "--watch") {
            a.watch = true;
        } else if (is("--plugin-dir")) {
            a.plugin_dirs.push_back(value(i, "--plugin-dir"));
        } else if (is("--config")) {
            a.config = value(i, "--config");
        } else if (is("--log-level")) {
            a.log_level = value(i, "--log-level");
        } else if (is("--online-wait")) {
            std::string v = value(i, "--online-wait");
            char *end = nullptr;
            long ms = std::strtol(v.c_str(), &end, 10);
            if (v.empty() || *end != '\0' || ms < 0 || ms > 600000)
                usage_error("--online-wait takes milliseconds from 0 to 600000");
            a.online_wait_ms = ms;
        } else if (is("--procfs-root")) {
            a.procfs_root = value(i, "--procfs-root");
            if (a.procfs_root->empty() || (*a.procfs_root)[0] != '/')
                usage_error("--procfs-root takes an absolute path");
        } else if (!arg.empty() && arg[0] == '-') {
            usage_error("unknown option " + arg);
        } else if (a.command.empty() && (arg == "engines" || arg == "sockets" || arg == "plugins")) {
            a.command = arg;
        } else {
            usage_error("unknown command " + arg);
        }
    }
    if (a.watch && !a.command.empty()) usage_error("--watch goes with the default command only");
    return a;
}

void warn_if_not_root() {
    if (::geteuid() == 0) return;
    std::cerr << "turtlefinder: not running as root: the fds, sockets and roots of other users' processes "
                 "cannot be read, so engines run by root (most) are not found; showing what is visible.\n";
}

int run_sockets(const tf::Options &options, bool json) {
    auto list = tf::listening_sockets(options.procfs_root);
    if (json) {
        tf::cli::print_sockets_json(std::cout, list);
        return 0;
    }
    for (const auto &p : list) {
        std::cout << fmt::format("{} {}\n", p.pid, tf::cli::printable(p.name));
        for (const auto &s : p.sockets)
            std::cout << fmt::format("    {}  ({})\n", tf::cli::printable(s.path), tf::cli::printable(s.reachable));
    }
    return 0;
}

int run_plugins(const tf::Finder &finder, bool json) {
    auto statuses = finder.plugins();
    if (json) {
        tf::cli::print_plugins_json(std::cout, statuses);
        return 0;
    }
    if (statuses.empty()) std::cout << "no plugins found (a build tree's are found when run through `meson devenv`)\n";
    for (const auto &s : statuses) {
        if (s.loaded || s.deferred) {
            std::string kinds, claims;
            for (const auto &k : s.kinds) kinds += (kinds.empty() ? "" : ",") + k;
            for (const auto &c : s.claims) claims += (claims.empty() ? "" : " ") + c;
            std::cout << fmt::format("{} {}  [{}]  claims: {}{}\n    {}\n    {}\n", s.name, s.version, kinds, claims,
                                     s.deferred ? "  (not loaded: none of its processes runs)" : "", s.description,
                                     s.file);
        } else {
            std::cout << fmt::format("REFUSED {}\n    {}\n", s.file, s.reason);
        }
    }
    return 0;
}

tf::cli::Style terminal_style() {
    tf::cli::Style style;
    bool tty = ::isatty(STDOUT_FILENO) == 1;
    const char *no_color = std::getenv("NO_COLOR");
    style.color = tty && (no_color == nullptr || no_color[0] == '\0');
    if (tty) {
        winsize ws{};
        if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) style.width = ws.ws_col;
    }
    return style;
}

// A short status on stderr while engines come online; erased when done.
class Status {
public:
    explicit Status(const char *text) : shown_(::isatty(STDERR_FILENO) == 1) {
        if (shown_) std::cerr << text << std::flush;
    }
    ~Status() {
        if (shown_) std::cerr << "\r\x1b[K" << std::flush;
    }

private:
    bool shown_;
};

sigset_t termination_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    return set;
}

// Expects termination_signals() blocked in every thread (done before the Finder starts any).
int run_watch(tf::Finder &finder, bool json) {
    sigset_t set = termination_signals();
    std::mutex out_mu;
    // The state as it is first (marked initial), then every change.
    finder.containers();
    tf::cli::warn_denied(std::cerr, finder.candidates());
    int handle = finder.subscribe(
        [&](const tf::Event &e) {
            std::lock_guard lock(out_mu);
            tf::cli::print_event(std::cout, e, json);
        },
        tf::Finder::Replay::state);
    // Discoveries find new and lost engines; watchers report container changes in between.
    while (true) {
        finder.containers();
        timespec period{1, 0};
        int sig = sigtimedwait(&set, nullptr, &period);
        if (sig == SIGINT || sig == SIGTERM) break;
    }
    finder.unsubscribe(handle);
    return 0;
}

} // namespace

int main(int argc, char **argv) {
    Args args = parse(argc, argv);
    tf::Options options;
    try {
        std::string config = args.config.value_or(tf::default_config_path());
        if (args.config || ::access(config.c_str(), F_OK) == 0) {
            auto file = tf::load_config(config, options);
            if (!file.log_level.empty()) tf::set_log_level(file.log_level);
        }
    } catch (const std::exception &e) {
        std::cerr << "turtlefinder: " << e.what() << '\n';
        return 1;
    }
    if (args.log_level && !tf::set_log_level(*args.log_level)) usage_error("unknown log level " + *args.log_level);
    options.plugin_dirs.insert(options.plugin_dirs.begin(), args.plugin_dirs.begin(), args.plugin_dirs.end());
#ifdef TF_CLI_BUILTIN_PLUGINS
    options.builtin_plugins = cli_builtin_plugins();
#endif
    if (args.online_wait_ms) options.online_wait = std::chrono::milliseconds(*args.online_wait_ms);
    if (args.procfs_root) options.procfs_root = *args.procfs_root;
    // Every process has a stat file; without one this is not a procfs.
    if (::access((options.procfs_root + "/1/stat").c_str(), R_OK) != 0) {
        std::cerr << "turtlefinder: " << options.procfs_root << ": not a procfs (no " << options.procfs_root
                  << "/1/stat)\n";
        return 1;
    }

    try {
        if (args.command == "sockets") {
            warn_if_not_root();
            return run_sockets(options, args.json);
        }
        if (args.watch) {
            // Blocked before the Finder starts threads, so only sigtimedwait sees them.
            sigset_t set = termination_signals();
            pthread_sigmask(SIG_BLOCK, &set, nullptr);
        }
        tf::Finder finder(options);
        if (args.command == "plugins") return run_plugins(finder, args.json);
        if (args.watch) return run_watch(finder, args.json);
        std::vector<tf::Container> containers;
        {
            Status status("discovering container engines…");
            containers = finder.containers();
        }
        auto engines = finder.engines();
        auto candidates = finder.candidates();
        tf::cli::warn_not_online(std::cerr, engines);
        tf::cli::warn_candidates(std::cerr, candidates);
        if (args.command == "engines")
            tf::cli::print_engines(std::cout, engines, args.json, candidates);
        else if (args.json)
            tf::cli::print_json(std::cout, engines, containers, candidates);
        else
            tf::cli::print_tree(std::cout, engines, containers, terminal_style());
        return 0;
    } catch (const std::exception &e) {
        std::cerr << "turtlefinder: " << e.what() << '\n';
        return 1;
    }
}
