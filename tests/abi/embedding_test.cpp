// SPDX-License-Identifier: Apache-2.0
// What a host application embedding the library relies on: its log callback
// receives the core's and the plugins' records under the right names (and
// stderr stays silent), and plugins linked into the host are used like files.
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <turtlefinder/plugin.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <turtlefinder/finder.hpp>

#include "abi_helpers.hpp"
#include "log.hpp"
#include "testing.hpp"

// The two built-in fixtures (fixtures/builtin_cpp.cpp), linked into this program.
extern "C" const tf_plugin_descriptor tf_plugin_entry_builtin_a;
extern "C" const tf_plugin_descriptor tf_plugin_entry_builtin_b;

namespace {

using tftest::NamedProcess;

namespace tf = turtlefinder;
using abitest::TempDir;

struct Record {
    tf::LogLevel level;
    std::string component;
    std::string message;
};

// Collects what reaches the log callback while in scope; restores stderr
// logging and the warn level after.
class CollectLogs {
public:
    CollectLogs() {
        tf::set_log_level("debug");
        tf::set_log_callback([this](const tf::LogRecord &r) {
            std::lock_guard lock(mutex_);
            records_.push_back({r.level, std::string(r.component), std::string(r.message)});
        });
    }
    ~CollectLogs() {
        tf::set_log_callback({});
        tf::set_log_level("warn");
    }
    CollectLogs(const CollectLogs &) = delete;
    CollectLogs &operator=(const CollectLogs &) = delete;

    bool has(const std::string &component, tf::LogLevel level, const std::string &message) const {
        std::lock_guard lock(mutex_);
        return std::any_of(records_.begin(), records_.end(), [&](const Record &r) {
            return r.component == component && r.level == level && r.message == message;
        });
    }
    bool has_from(const std::string &component) const {
        std::lock_guard lock(mutex_);
        return std::any_of(records_.begin(), records_.end(), [&](const Record &r) { return r.component == component; });
    }

private:
    mutable std::mutex mutex_;
    std::vector<Record> records_;
};

// Sends fd 2 into a file while in scope; text() reads what arrived.
class CaptureStderr {
public:
    CaptureStderr() : file_(dir_ / "stderr") {
        std::fflush(stderr);
        saved_ = ::dup(2);
        int fd = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ::dup2(fd, 2);
        ::close(fd);
    }
    ~CaptureStderr() { restore(); }
    CaptureStderr(const CaptureStderr &) = delete;
    CaptureStderr &operator=(const CaptureStderr &) = delete;
    void restore() {
        if (saved_ < 0) return;
        std::fflush(stderr);
        ::dup2(saved_, 2);
        ::close(saved_);
        saved_ = -1;
    }
    std::string text() const {
        std::ifstream in(file_);
        return {std::istreambuf_iterator<char>(in), {}};
    }

private:
    TempDir dir_;
    std::string file_;
    int saved_ = -1;
};

tf::Options fixture_options(const TempDir &dir) {
    tf::Options o;
    o.plugin_dirs = {dir.path().string()};
    o.default_plugin_dirs = false;
    return o;
}

TEST(Embedding, LogRecordsReachTheCallbackWithTheirNamesAndNotStderr) {
    TempDir dir;
    abitest::install(TF_FIXTURE_C, dir, "fixture-c.so");
    abitest::install(TF_FIXTURE_CPP, dir, "fixture-cpp.so");
    CaptureStderr err;
    {
        CollectLogs logs;
        {
            tf::Finder finder(fixture_options(dir));
            finder.containers();
        }
        // The plugins log through the host services their init received.
        EXPECT_TRUE(logs.has("fixture-c", tf::LogLevel::info, "fixture-c initialised"));
        EXPECT_TRUE(logs.has("fixture-c", tf::LogLevel::info, "fixture-c deinit"));
        // fixture-cpp carries metadata: without a process it claims it is never loaded.
        EXPECT_FALSE(logs.has_from("fixture-cpp"));
        EXPECT_TRUE(logs.has_from("turtlefinder")); // the core's own lines, e.g. plugins loaded
        tf::log().error("through the callback");
        EXPECT_TRUE(logs.has("turtlefinder", tf::LogLevel::error, "through the callback"));
    }
    // Without a callback, lines go to stderr again.
    tf::log().error("back on stderr");
    err.restore();
    const std::string text = err.text();
    EXPECT_EQ(text.find("initialised"), std::string::npos) << text;
    EXPECT_EQ(text.find("through the callback"), std::string::npos) << text;
    EXPECT_NE(text.find("back on stderr"), std::string::npos) << text;
}

// True when a mapping of this process is the file at `path`.
bool mapped(const std::string &path) {
    const std::string real = std::filesystem::canonical(path).string();
    std::ifstream maps("/proc/self/maps");
    for (std::string line; std::getline(maps, line);)
        if (line.ends_with(" " + real)) return true;
    return false;
}

// A process named `name` listening on the unix socket `path`; killed and
// reaped at scope exit.
class ListeningProcess {
public:
    ListeningProcess(const char *name, const std::string &path) {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 || ::listen(fd, 4) != 0)
            throw std::runtime_error("cannot listen on " + path);
        pid_ = ::fork();
        if (pid_ == 0) {
            ::prctl(PR_SET_NAME, name, 0, 0, 0);
            ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
            while (true) ::pause();
        }
        ::close(fd);
        if (pid_ < 0) throw std::runtime_error("fork failed");
        // The child names itself after fork: a scan before that sees our name.
        const std::string comm = "/proc/" + std::to_string(pid_) + "/comm";
        for (int i = 0; i < 3000; ++i) { // a hang guard only
            std::ifstream in(comm);
            std::string now;
            if (std::getline(in, now) && now == name) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        throw std::runtime_error(std::string("the child never took the name ") + name);
    }
    ~ListeningProcess() {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    ListeningProcess(const ListeningProcess &) = delete;
    ListeningProcess &operator=(const ListeningProcess &) = delete;

private:
    pid_t pid_ = -1;
};

std::optional<tf::PluginStatus> status_named(const tf::Finder &finder, const std::string &name) {
    for (auto &s : finder.plugins())
        if (s.name == name) return s;
    return std::nullopt;
}

// A plugin with metadata is listed from it, and dlopen'ed only once a
// process it claims shows up; then it finds its engine in that discovery.
TEST(Embedding, APluginIsLoadedOnlyOnceAProcessItClaimsRuns) {
    TempDir dir;
    const std::string file = abitest::install(TF_FIXTURE_CPP, dir, "fixture-cpp.so");
    tf::Options options = fixture_options(dir);
    options.online_wait = std::chrono::seconds(5);
    tf::Finder finder(options);
    finder.containers();
    auto before = status_named(finder, "fixture-cpp");
    ASSERT_TRUE(before.has_value());
    EXPECT_TRUE(before->deferred);
    EXPECT_FALSE(before->loaded);
    EXPECT_EQ(before->claims, (std::vector<std::string>{"fixture-cppeng", "fixture-svc", "fixture.sock"}));
    EXPECT_FALSE(mapped(file));
    EXPECT_EQ(finder.engine_count(), 0u);

    {
        ListeningProcess engine("fixture-cppeng", dir / "engine.sock");
        finder.containers();
        auto after = status_named(finder, "fixture-cpp");
        ASSERT_TRUE(after.has_value());
        EXPECT_TRUE(after->loaded);
        EXPECT_FALSE(after->deferred);
        EXPECT_TRUE(mapped(file));
        auto engines = finder.engines();
        ASSERT_EQ(engines.size(), 1u);
        EXPECT_EQ(engines[0]->type, "example.org/fake");
        EXPECT_EQ(engines[0]->plugin, "fixture-cpp");
    }
}

TEST(Embedding, ReplacingTheLogCallbackWaitsForARunningOne) {
    std::atomic<bool> inside{false}, release{false}, finished{false};
    tf::set_log_callback([&](const tf::LogRecord &) {
        inside = true;
        while (!release) std::this_thread::yield();
        finished = true;
    });
    std::thread logger([] { tf::log().error("slow delivery"); });
    ASSERT_TRUE(tftest::eventually([&] { return inside.load(); }, tftest::hang_guard));
    std::thread replacer([&] {
        tf::set_log_callback({});
        EXPECT_TRUE(finished.load()) << "set_log_callback returned while the old callback ran";
    });
    release = true;
    replacer.join();
    logger.join();
}

tf::Options builtin_only() {
    tf::Options o;
    o.default_plugin_dirs = false; // and no plugin_dirs: no file is looked at
    o.builtin_plugins = {&tf_plugin_entry_builtin_a, &tf_plugin_entry_builtin_b};
    o.relist_interval = std::chrono::milliseconds(50);
    return o;
}

TEST(Embedding, BuiltInDetectorsFindTheirEnginesWithoutAPluginDirectory) {
    NamedProcess a("builtin-a-eng"), b("builtin-b-eng");
    CollectLogs logs;
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(builtin_only());
        std::map<std::string, tf::Container> found;
        for (const auto &c : finder.containers()) found.emplace(c.id, c);
        ASSERT_EQ(found.count("builtin-a-box"), 1u);
        ASSERT_EQ(found.count("builtin-b-box"), 1u);
        EXPECT_EQ(found["builtin-a-box"].engine->pid, a.pid());
        EXPECT_EQ(found["builtin-a-box"].engine->plugin, "builtin-a");
        EXPECT_EQ(found["builtin-b-box"].engine->pid, b.pid());
        EXPECT_EQ(found["builtin-b-box"].engine->plugin, "builtin-b");

        auto statuses = finder.plugins();
        ASSERT_EQ(statuses.size(), 2u);
        for (const auto &s : statuses) {
            EXPECT_TRUE(s.loaded) << s.file << ": " << s.reason;
            EXPECT_TRUE(s.builtin) << s.file;
            EXPECT_EQ(s.file, "<builtin:" + s.name + ">");
            EXPECT_EQ(s.claims, std::vector<std::string>{s.name + "-eng"});
        }
    }
    leaks.check();
    // Each copy of the SDK code logs under its own plugin's name.
    EXPECT_TRUE(logs.has("builtin-a", tf::LogLevel::info, "builtin-a initialised"));
    EXPECT_TRUE(logs.has("builtin-b", tf::LogLevel::info, "builtin-b initialised"));
    EXPECT_TRUE(logs.has("builtin-a", tf::LogLevel::info, "builtin-a probed"));
    EXPECT_TRUE(logs.has("builtin-b", tf::LogLevel::info, "builtin-b probed"));
}

TEST(Embedding, BuiltInPluginsAreCheckedAndWinOverFilesOfTheirName) {
    TempDir dir;
    // A file named like a built-in plugin is not even loaded.
    abitest::install(TF_FIXTURE_C, dir, "builtin-a.so");
    tf_plugin_descriptor too_new = tf_plugin_entry_builtin_b;
    too_new.abi.major = TF_ABI_VERSION_MAJOR + 1;
    tf::Options o;
    o.plugin_dirs = {dir.path().string()};
    o.default_plugin_dirs = false;
    o.builtin_plugins = {&tf_plugin_entry_builtin_a, &too_new, nullptr};
    tf::Finder finder(o);
    auto statuses = finder.plugins();
    ASSERT_EQ(statuses.size(), 3u);
    EXPECT_EQ(statuses[0].file, "<builtin:builtin-a>");
    EXPECT_TRUE(statuses[0].loaded);
    EXPECT_EQ(statuses[1].file, "<builtin:builtin-b>");
    EXPECT_FALSE(statuses[1].loaded);
    EXPECT_TRUE(statuses[1].builtin);
    EXPECT_NE(statuses[1].reason.find("ABI major version differs"), std::string::npos) << statuses[1].reason;
    EXPECT_FALSE(statuses[2].loaded);
    EXPECT_EQ(statuses[2].reason, "no descriptor");
}

} // namespace
