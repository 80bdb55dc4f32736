// SPDX-License-Identifier: Apache-2.0
// turtlefinder: finds every container engine on this host, and what runs in it.
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <thread>
#include <iostream>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <turtlefinder/finder.hpp>

#include "output.hpp"
#include "serve/client.hpp"
#include "serve/service.hpp"
#include "serve/settings.hpp"

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
  plugins       loaded plugins, what they claim, and refused ones with the reason
  serve         run as the node service: discover in the background and serve
                the results read-only over HTTP (see "Node service options")

Options:
  --json               machine-readable output (schema "turtlefinder/v1")
  --watch              stay running and print every change as it happens
  --plugin-dir DIR     also load plugins from DIR (repeatable; searched first)
  --config FILE        configuration file (default: the installed turtlefinder.json, if any)
  --log-level LEVEL    trace, debug, info, warn, error, critical or off
  --online-wait MS     how long to wait for new engines' first sync (default 2000)
  --procfs-root DIR    read processes from the procfs mounted at DIR (default /proc),
                       e.g. the host's /proc mounted into a container
  --no-service         discover here even when a node service runs
  --service-socket PATH
                       the node service to ask first (default
                       /run/turtlefinder/turtlefinder.sock)
  --help               this text
  --version            the version

The default command, `engines` and `--watch` first ask the node service at
its socket and print its view (JSON marked with "service"); when none
answers, or with --no-service, --plugin-dir, --config, --online-wait or
--procfs-root, they discover by themselves.

Node service options (serve):
  --socket PATH        unix socket to listen on (default
                       /run/turtlefinder/turtlefinder.sock, mode 0660; "" none)
  --socket-group GROUP group owning the socket
  --listen [ADDR:]PORT also listen on TCP (repeatable; loopback when no ADDR)
  --discovery-period MS  background discovery period (default 5000)
  --threads N          serving threads (default 2)
  --max-connections N  connections served at once (default 512)
  --max-header-bytes N largest request head (default 8192)
  --header-timeout MS  a request head must arrive within (default 10000)
  --idle-timeout MS    keep-alive wait and write stall limit (default 30000)
  --max-sse-subscribers N  event stream clients at once (default 256)
  --sse-queue N        events a stream client may lag behind before it is
                       dropped (default 1024)
  --event-buffer N     recent events kept for Last-Event-ID (default 4096)
  --keepalive MS       event stream keep-alive comment interval (default 15000)
  Under systemd socket activation (LISTEN_FDS) the passed sockets are used.

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
    bool no_service = false;
    std::string service_socket = tf::serve::default_socket;
    // serve flags, applied over the configuration file's "serve" object
    std::vector<std::function<void(tf::serve::Settings &)>> serve_flags;
    bool serve_flag_seen = false;
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
        } else if (arg == "--no-service") {
            a.no_service = true;
        } else if (is("--service-socket")) {
            a.service_socket = value(i, "--service-socket");
        } else if (is("--socket")) {
            std::string v = value(i, "--socket");
            if (!v.empty() && v[0] != '/') usage_error("--socket takes an absolute path, or \"\" for none");
            a.serve_flags.push_back([v](tf::serve::Settings &s) { s.socket = v; });
            a.serve_flag_seen = true;
        } else if (is("--socket-group")) {
            std::string v = value(i, "--socket-group");
            a.serve_flags.push_back([v](tf::serve::Settings &s) { s.socket_group = v; });
            a.serve_flag_seen = true;
        } else if (is("--listen")) {
            std::string v = value(i, "--listen");
            a.serve_flags.push_back([v](tf::serve::Settings &s) { s.listen.push_back(v); });
            a.serve_flag_seen = true;
        } else if (auto limit = std::find_if(tf::serve::limits().begin(), tf::serve::limits().end(),
                                             [&](const tf::serve::Limit &l) { return is(l.flag); });
                   limit != tf::serve::limits().end()) {
            std::string v = value(i, limit->flag);
            tf::serve::Settings check;
            if (auto bad = tf::serve::parse_limit(*limit, v, check)) usage_error(*bad);
            a.serve_flags.push_back([l = *limit, n = limit->get(check)](tf::serve::Settings &s) { l.set(s, n); });
            a.serve_flag_seen = true;
        } else if (!arg.empty() && arg[0] == '-') {
            usage_error("unknown option " + arg);
        } else if (a.command.empty() && (arg == "engines" || arg == "sockets" || arg == "plugins" || arg == "serve")) {
            a.command = arg;
        } else {
            usage_error("unknown command " + arg);
        }
    }
    if (a.watch && !a.command.empty()) usage_error("--watch goes with the default command only");
    if (a.serve_flag_seen && a.command != "serve") usage_error("node service options go with `serve` only");
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
        std::cout << "{\"schema\":\"" << tf::cli::json_schema << "\",\"processes\":[";
        bool first = true;
        for (const auto &p : list) {
            std::cout << (first ? "" : ",") << fmt::format("{{\"pid\":{},\"name\":\"", p.pid);
            first = false;
            auto quote = [](const std::string &s) {
                std::string out;
                for (unsigned char c : tf::cli::valid_utf8(s)) {
                    if (c == '"' || c == '\\')
                        out += '\\', out += static_cast<char>(c);
                    else if (c < 0x20)
                        out += fmt::format("\\u{:04x}", c);
                    else
                        out += static_cast<char>(c);
                }
                return out;
            };
            std::cout << quote(p.name) << "\",\"sockets\":[";
            for (std::size_t i = 0; i < p.sockets.size(); ++i)
                std::cout << (i ? "," : "")
                          << fmt::format("{{\"inode\":{},\"path\":\"{}\",\"reachable\":\"{}\"}}", p.sockets[i].inode,
                                         quote(p.sockets[i].path), quote(p.sockets[i].reachable));
            std::cout << "]}";
        }
        std::cout << "]}\n";
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
        if (s.loaded) {
            std::string kinds, claims;
            for (const auto &k : s.kinds) kinds += (kinds.empty() ? "" : ",") + k;
            for (const auto &c : s.claims) claims += (claims.empty() ? "" : " ") + c;
            std::cout << fmt::format("{} {}  [{}]  claims: {}\n    {}\n    {}\n", s.name, s.version, kinds, claims,
                                     s.description, s.file);
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

// The node service's answer, printed as the CLI prints its own discovery;
// nullopt when no service answers (then the CLI discovers by itself).
std::optional<int> run_via_service(const Args &args) {
    namespace serve = tf::serve;
    if (args.watch) {
        sigset_t set = termination_signals();
        pthread_sigmask(SIG_BLOCK, &set, nullptr);
        serve::EventReader reader(args.service_socket);
        if (!reader.open(std::chrono::seconds(30))) return std::nullopt;
        std::atomic<bool> ended{false};
        std::map<std::string, std::shared_ptr<const tf::Engine>> engines;
        std::thread thread([&] {
            reader.run([&](const std::string &data) {
                if (args.json) {
                    std::cout << data << std::endl;
                    return;
                }
                try {
                    tf::cli::print_event(std::cout, serve::parse_event(data, engines), false);
                } catch (const std::exception &e) {
                    std::cerr << "turtlefinder: the service sent an event that is not JSON: " << e.what() << '\n';
                }
            });
            ended = true;
        });
        bool interrupted = false;
        while (!ended) {
            timespec period{0, 200 * 1000 * 1000};
            int sig = sigtimedwait(&set, nullptr, &period);
            if (sig == SIGINT || sig == SIGTERM) {
                interrupted = true;
                reader.stop();
                break;
            }
        }
        thread.join();
        if (interrupted) return 0;
        std::cerr << "turtlefinder: the node service ended the event stream\n";
        return 1;
    }
    bool engines_only = args.command == "engines";
    auto body = serve::service_get(args.service_socket, engines_only ? "/v1/engines" : "/v1/containers",
                                   std::chrono::seconds(30));
    if (!body) return std::nullopt;
    if (args.json) {
        std::cout << *body << std::flush;
        return 0;
    }
    serve::View view;
    try {
        view = serve::parse_view(*body);
    } catch (const std::exception &e) {
        std::cerr << "turtlefinder: the node service answered what is not a turtlefinder/v1 document: " << e.what()
                  << '\n';
        return 1;
    }
    tf::cli::warn_not_online(std::cerr, view.engines);
    tf::cli::warn_candidates(std::cerr, view.candidates);
    if (engines_only)
        tf::cli::print_engines(std::cout, view.engines, false, view.candidates);
    else
        tf::cli::print_tree(std::cout, view.engines, view.containers, terminal_style());
    return 0;
}

int run_serve(tf::Finder &finder, tf::serve::Settings settings) {
    tf::serve::Service service(finder, std::move(settings));
    service.run();
    return 0;
}

} // namespace

int main(int argc, char **argv) {
    Args args = parse(argc, argv);
    tf::Options options;
    tf::serve::Settings serve_settings;
    try {
        std::string config = args.config.value_or(tf::default_config_path());
        if (args.config || ::access(config.c_str(), F_OK) == 0) {
            auto file = tf::load_config(config, options);
            if (!file.log_level.empty()) tf::set_log_level(file.log_level);
            if (!file.serve.empty()) tf::serve::apply_config(config, file.serve, serve_settings);
        }
        for (const auto &apply : args.serve_flags) apply(serve_settings);
    } catch (const std::exception &e) {
        std::cerr << "turtlefinder: " << e.what() << '\n';
        return 1;
    }
    if (args.log_level && !tf::set_log_level(*args.log_level)) usage_error("unknown log level " + *args.log_level);
    // A discovery shaped by options of its own is not the service's to answer.
    bool own_discovery =
        args.no_service || !args.plugin_dirs.empty() || args.config || args.online_wait_ms || args.procfs_root;
    if (!own_discovery && (args.command.empty() || args.command == "engines")) {
        if (auto status = run_via_service(args)) return *status;
    }
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
        if (args.command == "serve") {
            warn_if_not_root();
            tf::Finder finder(options);
            return run_serve(finder, std::move(serve_settings));
        }
        if (args.watch) {
            // Blocked before the Finder starts threads, so only sigtimedwait sees them.
            sigset_t set = termination_signals();
            pthread_sigmask(SIG_BLOCK, &set, nullptr);
        }
        tf::Finder finder(options);
        if (args.command == "plugins") return run_plugins(finder, args.json);
        warn_if_not_root();
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
