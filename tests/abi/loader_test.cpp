// SPDX-License-Identifier: Apache-2.0
// Loading real shared objects: the C and C++ fixtures through the full ABI,
// each kind of broken plugin refused with its own reason, permissions, and
// the lifetime of a plugin and its engines.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <turtlefinder/plugin.h>

#include "abi_helpers.hpp"
#include "log.hpp"
#include "plugins/engine_handle.hpp"
#include "plugins/registry.hpp"
#include "plugins/search_path.hpp"
#include "testing.hpp"

namespace {

using namespace turtlefinder;
using namespace turtlefinder::plugins;
using abitest::LogCapture;
using abitest::TempDir;

const PluginStatus *status_of(const Registry &r, const std::string &file) {
    for (const auto &s : r.statuses())
        if (s.file == file) return &s;
    return nullptr;
}

std::shared_ptr<const Plugin> load_one(Registry &r, const char *path) {
    EXPECT_TRUE(r.load_file(path)) << path;
    return r.plugins().empty() ? nullptr : r.plugins().back();
}

TEST(Loader, CFixtureLoadsAndReportsIdentity) {
    Registry r;
    auto p = load_one(r, TF_FIXTURE_C);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->name(), "fixture-c");
    EXPECT_EQ(p->version(), "1.2.3");
    EXPECT_EQ(p->file(), TF_FIXTURE_C);
    ASSERT_TRUE(p->is_detector());
    EXPECT_FALSE(p->is_activator());
    EXPECT_FALSE(p->is_activated_engine());
    EXPECT_EQ(r.detector_for("fixture-c-eng"), p);
    EXPECT_EQ(r.detector_for("dockerd"), nullptr);
    const PluginStatus *s = status_of(r, TF_FIXTURE_C);
    ASSERT_NE(s, nullptr);
    EXPECT_TRUE(s->loaded);
    EXPECT_EQ(s->kinds, std::vector<std::string>{"engine-detector"});
    EXPECT_EQ(s->claims, std::vector<std::string>{"fixture-c-eng"});
    EXPECT_EQ(s->description, "plain C test fixture");
}

// A plugin built against the released 1.1 header loads, and its reports are read.
TEST(Loader, PluginBuiltAgainstFrozenV1_1Loads) {
    Registry r;
    auto p = load_one(r, TF_FIXTURE_V1_1);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->name(), "fixture-c-v1-1");
    EXPECT_EQ(p->abi_major(), 1u);
    EXPECT_EQ(p->abi_minor(), 1u);
    ProbeInput in;
    in.api_paths = {"/run/c-engine.sock", "/run/other.sock"};
    auto out = p->probe(in);
    ASSERT_EQ(out.engines.size(), 1u);
    std::size_t n = 0;
    EXPECT_TRUE(out.engines[0]->list([&](ReportedContainer &&) { ++n; }).ok());
    EXPECT_EQ(n, 2u);
}

// A plugin built against the oldest supported header still loads and works.
TEST(Loader, PluginBuiltAgainstFrozenV1_0Loads) {
    Registry r;
    auto p = load_one(r, TF_FIXTURE_V1_0);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->name(), "fixture-c-v1-0");
    EXPECT_EQ(p->abi_major(), 1u);
    EXPECT_EQ(p->abi_minor(), 0u);
    ProbeInput in;
    in.api_paths = {"/run/c-engine.sock", "/run/other.sock"};
    int reports = 0;
    in.on_report = [&](const std::string &, int, const std::string &) { ++reports; };
    auto out = p->probe(in);
    ASSERT_EQ(out.engines.size(), 1u);
    std::size_t n = 0;
    EXPECT_TRUE(out.engines[0]->list([&](ReportedContainer &&) { ++n; }).ok());
    EXPECT_EQ(n, 2u);
    EXPECT_EQ(reports, 0) << "a 1.0 plugin's request has no report member to call";
}

// A plugin built for 1.1 tells what each path was; the host reads it.
TEST(Loader, PluginReportsEachPathsOutcome) {
    Registry r;
    auto p = load_one(r, TF_FIXTURE_C);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->abi_minor(), static_cast<unsigned>(TF_ABI_VERSION_MINOR));
    ProbeInput in;
    in.api_paths = {"/run/c-engine.sock", "/run/other.sock"};
    std::map<std::string, std::pair<int, std::string>> reports;
    in.on_report = [&](const std::string &path, int outcome, const std::string &message) {
        reports[path] = {outcome, message};
    };
    auto out = p->probe(in);
    EXPECT_EQ(out.engines.size(), 1u);
    EXPECT_EQ(reports, (std::map<std::string, std::pair<int, std::string>>{
                           {"/run/c-engine.sock", {0, "a c-engine"}},
                           {"/run/other.sock", {-ECONNREFUSED, "fixture: nothing listens here"}}}));
    // Without a taker the plugin gets no report function and probes all the same.
    in.on_report = nullptr;
    EXPECT_EQ(p->probe(in).engines.size(), 1u);
}

TEST(Loader, CppFixtureLoadsWithTwoCapabilities) {
    Registry r;
    auto p = load_one(r, TF_FIXTURE_CPP);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->name(), "fixture-cpp");
    EXPECT_TRUE(p->is_detector());
    EXPECT_TRUE(p->is_activated_engine());
    EXPECT_EQ(r.detector_for("fixture-cppeng"), p);
    EXPECT_EQ(r.activated_engine_for_socket("/run/x/fixture.sock"), p);
    EXPECT_EQ(r.activated_engine_for_socket("/run/x/other.sock"), nullptr);
    EXPECT_EQ(r.claimed_process_names(), (std::set<std::string, std::less<>>{"fixture-cppeng", "fixture-svc"}));
    const PluginStatus *s = status_of(r, TF_FIXTURE_CPP);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->kinds, (std::vector<std::string>{"engine-detector", "activated-engine"}));
    EXPECT_EQ(r.find("fixture-cpp"), p);
}

TEST(Loader, PluginMessagesLandUnderThePluginsName) {
    abitest::LevelScope level("info");
    LogCapture c_log(plugin_logger("fixture-c"));
    LogCapture cpp_log(plugin_logger("fixture-cpp"));
    {
        Registry r;
        ASSERT_TRUE(r.load_file(TF_FIXTURE_C));
        ASSERT_TRUE(r.load_file(TF_FIXTURE_CPP));
        EXPECT_EQ(c_log.count(spdlog::level::info, {"fixture-c initialised"}), 1u);
        EXPECT_EQ(cpp_log.count(spdlog::level::info, {"fixture-cpp initialised"}), 1u);
        EXPECT_EQ(c_log.count(spdlog::level::info, {"deinit"}), 0u);
    }
    ASSERT_FALSE(c_log.lines().empty());
    EXPECT_EQ(c_log.lines().front().logger, "fixture-c");
    EXPECT_EQ(cpp_log.lines().front().logger, "fixture-cpp");
    // The registry was the last holder: deinit ran, and could still log.
    EXPECT_EQ(c_log.count(spdlog::level::info, {"fixture-c deinit"}), 1u);
}

TEST(Loader, CEngineCopiedDefensively) {
    Registry r;
    auto p = load_one(r, TF_FIXTURE_C);
    ASSERT_TRUE(p);
    ProbeInput in;
    in.pid = 77;
    in.process_name = "fixture-c-eng";
    in.api_paths = {"/run/c-engine.sock", "/run/unrelated.sock"};
    auto out = p->probe(in);
    ASSERT_TRUE(out.result.ok()) << out.result.message;
    ASSERT_EQ(out.engines.size(), 1u);
    EngineHandle &e = *out.engines[0];
    EXPECT_EQ(e.identity().type, "example.org/c");
    EXPECT_EQ(e.identity().flavor, "example.org/c"); // NULL flavor falls back to the type
    EXPECT_EQ(e.identity().id, "c-engine-1");
    EXPECT_EQ(e.identity().api, "/run/c-engine.sock");
    EXPECT_EQ(e.identity().pid, 77);
    EXPECT_EQ(e.identity().plugin, "fixture-c");

    std::vector<ReportedContainer> got;
    auto rc = e.list([&](ReportedContainer &&c) { got.push_back(std::move(c)); });
    ASSERT_TRUE(rc.ok()) << rc.message;
    ASSERT_EQ(got.size(), 2u) << "the container without id must be dropped";
    EXPECT_EQ(got[0].id, "c1");
    EXPECT_EQ(got[0].pid, 4242);
    EXPECT_EQ(got[0].labels, (Labels{{"com.example.role", "web"}, {"com.example.tier", "front"}}));
    EXPECT_EQ(got[1].id, "c2");
    EXPECT_EQ(got[1].name, "c2"); // NULL name falls back to the id
    EXPECT_TRUE(got[1].paused);
    EXPECT_TRUE(got[1].labels.empty()); // n_labels without an array

    ReportedContainer one;
    bool found = false;
    EXPECT_TRUE(e.inspect("c1", one, found).ok());
    EXPECT_TRUE(found);
    EXPECT_EQ(one.name, "first");
    EXPECT_TRUE(e.inspect("gone", one, found).ok());
    EXPECT_FALSE(found);

    EngineHandle::WatchHandler h{[] { return true; },
                                 [](EventKind, const std::string &, const ReportedContainer *) { return true; }};
    auto w = e.watch(h);
    EXPECT_EQ(w.code, -ENOTSUP);
    EXPECT_EQ(w.message, "the C fixture engine has no event stream");

    e.cancel();
    rc = e.list([](ReportedContainer &&) {});
    EXPECT_EQ(rc.code, -ECANCELED);
}

TEST(Loader, CppEngineThroughTheTrampolines) {
    Registry r;
    auto p = load_one(r, TF_FIXTURE_CPP);
    ASSERT_TRUE(p);
    ProbeInput in;
    in.pid = 5;
    in.api_paths = {"/run/fake.sock"};
    auto out = p->probe(in);
    ASSERT_TRUE(out.result.ok()) << out.result.message;
    ASSERT_EQ(out.engines.size(), 1u);
    EngineHandle &e = *out.engines[0];
    EXPECT_EQ(e.identity().type, "example.org/fake");
    EXPECT_EQ(e.identity().flavor, "fake-flavor");
    EXPECT_EQ(e.identity().version, "9.9");
    EXPECT_EQ(e.identity().plugin, "fixture-cpp");

    std::vector<ReportedContainer> got;
    ASSERT_TRUE(e.list([&](ReportedContainer &&c) { got.push_back(std::move(c)); }).ok());
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].labels, (Labels{{"app", "web"}, {"tier", "front"}}));
    EXPECT_TRUE(got[1].paused);

    ReportedContainer one;
    bool found = false;
    EXPECT_TRUE(e.inspect("db", one, found).ok());
    EXPECT_TRUE(found);
    EXPECT_EQ(one.pid, 102);
    EXPECT_TRUE(e.inspect("nope", one, found).ok());
    EXPECT_FALSE(found);

    // A C++ exception inside the plugin comes back as a code and a message.
    auto boom = e.inspect("boom", one, found);
    EXPECT_EQ(boom.code, -EIO);
    EXPECT_EQ(boom.message, "fake engine exploded on inspect");
    EXPECT_FALSE(found);
    auto refused = e.inspect("refused", one, found);
    EXPECT_EQ(refused.code, -EACCES);
    EXPECT_EQ(refused.message, "fake engine refuses this inspect");

    // The activated-engine probe is the same function through the other vtable.
    auto activated = p->probe_activated(in);
    EXPECT_EQ(activated.engines.size(), 1u);

    // A probe that throws.
    in.settings = {{"probe-throws", "1"}};
    auto failed = p->probe(in);
    EXPECT_EQ(failed.result.code, -EIO);
    EXPECT_EQ(failed.result.message, "fixture probe exploded");
    EXPECT_TRUE(failed.engines.empty());
}

TEST(Loader, WatchDeliversEventsAndEndsOnCancel) {
    tftest::LeakGuard guard;
    {
        Registry r;
        auto p = load_one(r, TF_FIXTURE_CPP);
        ASSERT_TRUE(p);
        ProbeInput in;
        in.api_paths = {"/run/fake.sock"};
        auto out = p->probe(in);
        ASSERT_EQ(out.engines.size(), 1u);
        EngineHandle &e = *out.engines[0];

        std::atomic<bool> subscribed{false};
        std::atomic<int> events{0};
        std::vector<std::pair<EventKind, std::string>> seen;
        std::string started_label;
        EngineHandle::WatchHandler h;
        h.subscribed = [&] {
            subscribed = true;
            return true;
        };
        h.event = [&](EventKind kind, const std::string &id, const ReportedContainer *details) {
            seen.emplace_back(kind, id);
            if (kind == EventKind::started && details != nullptr) started_label = details->labels.at("fresh");
            ++events;
            return true;
        };
        CallResult result;
        std::thread watcher([&] { result = e.watch(h); });
        ASSERT_TRUE(tftest::eventually([&] { return events.load() == 4; }));
        e.cancel();
        watcher.join();
        EXPECT_TRUE(subscribed);
        EXPECT_EQ(result.code, -ECANCELED);
        EXPECT_EQ(result.message, "fake engine: watch cancelled");
        ASSERT_EQ(seen.size(), 4u);
        EXPECT_EQ(seen[0], (std::pair<EventKind, std::string>{EventKind::started, "new"}));
        EXPECT_EQ(seen[1].first, EventKind::paused);
        EXPECT_EQ(seen[2].first, EventKind::unpaused);
        EXPECT_EQ(seen[3].first, EventKind::exited);
        EXPECT_EQ(started_label, "yes");
    }
    guard.check();
}

TEST(Loader, HostStopsWatchByReturningFalse) {
    Registry r;
    auto p = load_one(r, TF_FIXTURE_CPP);
    ASSERT_TRUE(p);
    ProbeInput in;
    in.api_paths = {"/run/fake.sock"};
    auto out = p->probe(in);
    ASSERT_EQ(out.engines.size(), 1u);
    int events = 0;
    EngineHandle::WatchHandler h{
        [] { return true; }, [&](EventKind, const std::string &, const ReportedContainer *) { return ++events < 2; }};
    auto result = out.engines[0]->watch(h);
    EXPECT_EQ(result.code, -ECANCELED);
    EXPECT_EQ(events, 2);
}

TEST(Loader, HostCallbackExceptionDoesNotCrossThePlugin) {
    Registry r;
    auto p = load_one(r, TF_FIXTURE_C);
    ASSERT_TRUE(p);
    ProbeInput in;
    in.api_paths = {"/run/c-engine.sock"};
    auto out = p->probe(in);
    ASSERT_EQ(out.engines.size(), 1u);
    int calls = 0;
    // Thrown inside the host's callback, parked while the C plugin unwinds normally, rethrown here.
    EXPECT_THROW(out.engines[0]->list([&](ReportedContainer &&) {
        ++calls;
        throw std::runtime_error("host side failure");
    }),
                 std::runtime_error);
    EXPECT_EQ(calls, 1) << "the plugin must have been told to stop";
}

// Every refusal with its own reason; the good plugins in the same directory load.
TEST(Loader, BrokenPluginsRefusedOthersLoad) {
    TempDir dir;
    abitest::install(TF_FIXTURE_C, dir, "good-c.so");
    abitest::install(TF_FIXTURE_CPP, dir, "good-cpp.so");
    struct Case {
        const char *from;
        std::string file;
        std::string reason;
    };
    const std::string minor = std::to_string(TF_ABI_VERSION_MINOR);
    std::vector<Case> cases{
        {TF_BROKEN_NO_ENTRY, "broken-no-entry.so", "no tf_plugin_entry symbol"},
        {TF_BROKEN_ABI_MAJOR, "broken-abi-major.so",
         "ABI major version differs: plugin 2." + minor + ", host 1." + minor},
        {TF_BROKEN_ABI_MINOR, "broken-abi-minor.so",
         "ABI minor version too new: plugin 1." + std::to_string(TF_ABI_VERSION_MINOR + 1) + ", host 1." + minor},
        {TF_BROKEN_INIT_FAILS, "broken-init-fails.so",
         "init failed: -13 (Permission denied): fixture refuses to start"},
        {TF_BROKEN_DUPLICATE, "zz-duplicate.so", "name \"fixture-c\" already taken by \"" + (dir / "good-c.so") + "\""},
        {TF_BROKEN_TOO_SMALL, "broken-too-small.so", "entry struct too small: 56 bytes, at least 64 expected"},
        {TF_BROKEN_NO_CAPABILITY, "broken-no-capability.so", "offers no capability"},
        {TF_BROKEN_NULL_NAME, "broken-null-name.so", "entry has a NULL name"},
    };
    for (const auto &c : cases) abitest::install(c.from, dir, c.file);
    {
        std::ofstream text(dir / "x.so");
        text << "this is not a shared object\n";
    }
    cases.push_back({nullptr, "x.so", "not a shared object"});

    LogCapture core(log());
    Registry r;
    r.load_directories({dir.path().string()});
    ASSERT_EQ(r.plugins().size(), 2u);
    EXPECT_EQ(r.plugins()[0]->name(), "fixture-c");
    EXPECT_EQ(r.plugins()[1]->name(), "fixture-cpp");
    for (const auto &c : cases) {
        std::string file = dir / c.file;
        const PluginStatus *s = status_of(r, file);
        ASSERT_NE(s, nullptr) << file;
        EXPECT_FALSE(s->loaded) << file;
        EXPECT_NE(s->reason.find(c.reason), std::string::npos) << file << ": " << s->reason;
        // Exactly one warning, naming the file and the reason.
        EXPECT_EQ(core.count(spdlog::level::warn, {"\"" + file + "\"", c.reason}), 1u) << file;
    }
    EXPECT_EQ(r.statuses().size(), cases.size() + 2);
}

TEST(Loader, InMemoryDescriptorsAreCheckedToo) {
    static const char *const names[] = {"mem-eng"};
    static const tf_engine_detector detector{
        sizeof(tf_engine_detector), 1, names,
        [](const tf_probe_request *, const tf_engine_sink *, tf_error *) { return 0; }};
    auto get = [](const char *id) -> const void * {
        return std::string_view(id) == TF_EXT_ENGINE_DETECTOR ? &detector : nullptr;
    };
    tf_plugin_descriptor good{{TF_ABI_VERSION_MAJOR, TF_ABI_VERSION_MINOR, 0},
                              sizeof(tf_plugin_descriptor),
                              "in-memory",
                              "1",
                              "test",
                              nullptr,
                              nullptr,
                              get};
    Registry r;
    EXPECT_TRUE(r.add(&good, ""));
    EXPECT_EQ(r.plugins().back()->file(), "<builtin:in-memory>");
    EXPECT_EQ(r.detector_for("mem-eng")->name(), "in-memory");

    tf_plugin_descriptor no_ext = good;
    no_ext.name = "no-ext";
    no_ext.get_extension = nullptr;
    EXPECT_FALSE(r.add(&no_ext, "no-ext"));
    EXPECT_EQ(r.statuses().back().reason, "entry has a NULL get_extension");

    tf_plugin_descriptor bad_name = good;
    bad_name.name = "Bad Name";
    EXPECT_FALSE(r.add(&bad_name, "bad-name"));
    EXPECT_NE(r.statuses().back().reason.find("invalid name"), std::string::npos);

    EXPECT_FALSE(r.add(nullptr, "null"));
    EXPECT_EQ(r.plugins().size(), 1u);
}

TEST(Loader, DisabledPluginIsNotInitialised) {
    abitest::LevelScope level("info");
    LogCapture c_log(plugin_logger("fixture-c"));
    Registry r;
    EXPECT_FALSE(r.load_file(TF_FIXTURE_C, {"fixture-c"}));
    EXPECT_TRUE(r.plugins().empty());
    ASSERT_EQ(r.statuses().size(), 1u);
    EXPECT_EQ(r.statuses()[0].reason, "disabled");
    EXPECT_EQ(r.statuses()[0].name, "fixture-c");
    EXPECT_EQ(c_log.count(spdlog::level::info, {"initialised"}), 0u);
}

// A disabled plugin whose file carries its name is never even dlopen'ed:
// dlopen alone runs its constructors and maps its libraries (gRPC's stay
// mapped for good). Under another file name it must be read to learn its
// name, then is refused all the same.
TEST(Loader, DisabledByFileNameIsNeverLoaded) {
    TempDir dir;
    const std::string marker = dir / "loads";
    ASSERT_EQ(::setenv("TF_FIXTURE_LOAD_MARKER", marker.c_str(), 1), 0);
    auto loads = [&] {
        std::ifstream in(marker);
        int n = 0;
        for (std::string line; std::getline(in, line);) ++n;
        return n;
    };
    const std::set<std::string> disabled{"marks-load"};

    Registry by_file;
    EXPECT_FALSE(by_file.load_file(abitest::install(TF_BROKEN_MARKS_LOAD, dir, "marks-load.so"), disabled));
    ASSERT_EQ(by_file.statuses().size(), 1u);
    EXPECT_EQ(by_file.statuses()[0].reason, "disabled");
    EXPECT_EQ(by_file.statuses()[0].name, "marks-load");
    EXPECT_EQ(loads(), 0);

    Registry by_name;
    EXPECT_FALSE(by_name.load_file(abitest::install(TF_BROKEN_MARKS_LOAD, dir, "renamed.so"), disabled));
    ASSERT_EQ(by_name.statuses().size(), 1u);
    EXPECT_EQ(by_name.statuses()[0].reason, "disabled");
    EXPECT_EQ(by_name.statuses()[0].name, "marks-load");
    EXPECT_EQ(loads(), 1) << "the control: loading it leaves the marker";
    ::unsetenv("TF_FIXTURE_LOAD_MARKER");
}

// Engines and plugins keep the shared object loaded; the last holder deinits.
TEST(Loader, LastHolderDeinits) {
    abitest::LevelScope level("info");
    LogCapture c_log(plugin_logger("fixture-c"));
    std::unique_ptr<EngineHandle> engine;
    {
        auto first = std::make_unique<Registry>();
        auto second = std::make_unique<Registry>();
        ASSERT_TRUE(first->load_file(TF_FIXTURE_C));
        ASSERT_TRUE(second->load_file(TF_FIXTURE_C));
        EXPECT_EQ(c_log.count(spdlog::level::info, {"fixture-c initialised"}), 1u) << "init is per process";
        ProbeInput in;
        in.api_paths = {"/c-engine"};
        auto out = first->plugins()[0]->probe(in);
        ASSERT_EQ(out.engines.size(), 1u);
        engine = std::move(out.engines[0]);
        first.reset();
        second.reset();
    }
    EXPECT_EQ(c_log.count(spdlog::level::info, {"deinit"}), 0u) << "an engine still holds the plugin";
    std::size_t n = 0;
    ASSERT_TRUE(engine->list([&](ReportedContainer &&) { ++n; }).ok()); // the code is still mapped
    EXPECT_EQ(n, 2u);
    engine.reset();
    EXPECT_EQ(c_log.count(spdlog::level::info, {"fixture-c deinit"}), 1u);
}

TEST(Loader, SameFileTwiceLoadsOnce) {
    Registry r;
    ASSERT_TRUE(r.load_file(TF_FIXTURE_C));
    EXPECT_TRUE(r.load_file(TF_FIXTURE_C));
    EXPECT_EQ(r.plugins().size(), 1u);
    EXPECT_EQ(r.statuses().size(), 1u);
}

TEST(Loader, MissingDirectoriesSkippedQuietly) {
    LogCapture core(log());
    Registry r;
    r.load_directories({"/nonexistent/turtlefinder/plugins"});
    EXPECT_TRUE(r.statuses().empty());
    EXPECT_EQ(core.count(spdlog::level::warn, {}), 0u);
}

class LoaderAsRoot : public ::testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) TF_SKIP_OR_FAIL("permission checks apply only when running as root");
    }
};

TEST_F(LoaderAsRoot, GroupWritablePluginRefused) {
    TempDir dir;
    std::string file = abitest::install(TF_FIXTURE_C, dir, "good-c.so");
    ASSERT_EQ(::chmod(file.c_str(), 0775), 0);
    Registry r;
    EXPECT_FALSE(r.load_file(file));
    ASSERT_EQ(r.statuses().size(), 1u);
    EXPECT_NE(r.statuses()[0].reason.find("writable by group or others (mode 0775)"), std::string::npos)
        << r.statuses()[0].reason;
    ASSERT_EQ(::chmod(file.c_str(), 0755), 0);
    Registry fixed;
    EXPECT_TRUE(fixed.load_file(file)) << "the same file with safe permissions loads";
}

TEST_F(LoaderAsRoot, OtherWritableDirectoryRefused) {
    TempDir dir;
    std::string file = abitest::install(TF_FIXTURE_C, dir, "good-c.so");
    ASSERT_EQ(::chmod(dir.path().c_str(), 0757), 0);
    Registry r;
    r.load_directories({dir.path().string()});
    EXPECT_TRUE(r.plugins().empty());
    ASSERT_EQ(r.statuses().size(), 1u);
    EXPECT_NE(r.statuses()[0].reason.find("directory " + dir.path().string() + " is writable by group or others"),
              std::string::npos)
        << r.statuses()[0].reason;
}

TEST_F(LoaderAsRoot, PluginOwnedByAnotherUserRefused) {
    TempDir dir;
    std::string file = abitest::install(TF_FIXTURE_C, dir, "good-c.so");
    ASSERT_EQ(::chown(file.c_str(), 1000, 1000), 0);
    Registry r;
    EXPECT_FALSE(r.load_file(file));
    ASSERT_EQ(r.statuses().size(), 1u);
    EXPECT_NE(r.statuses()[0].reason.find("owned by uid 1000, not root"), std::string::npos) << r.statuses()[0].reason;
}

TEST(Loader, NoLeaksAfterManyLoadsAndUnloads) {
    TempDir dir;
    abitest::install(TF_FIXTURE_C, dir, "c.so");
    abitest::install(TF_FIXTURE_CPP, dir, "cpp.so");
    abitest::install(TF_BROKEN_INIT_FAILS, dir, "init-fails.so");
    abitest::install(TF_BROKEN_NO_ENTRY, dir, "no-entry.so");
    // Warm-up: the first load maps libraries and creates loggers once for good.
    {
        Registry r;
        r.load_directories({dir.path().string()});
    }
    tftest::LeakGuard guard;
    for (int i = 0; i < 50; ++i) {
        Registry r;
        r.load_directories({dir.path().string()});
        ASSERT_EQ(r.plugins().size(), 2u);
        auto p = r.find("fixture-cpp");
        ProbeInput in;
        in.api_paths = {"/a", "/b"};
        auto out = p->probe(in);
        ASSERT_EQ(out.engines.size(), 2u);
        std::thread t([&] {
            EngineHandle::WatchHandler h{
                [] { return true; }, [](EventKind, const std::string &, const ReportedContainer *) { return true; }};
            out.engines[0]->watch(h);
        });
        out.engines[0]->cancel();
        t.join();
    }
    guard.check();
}

TEST(DefaultPluginDirs, EnvironmentFirstThenTheInstallation) {
    const char *was = std::getenv("TURTLEFINDER_PLUGIN_PATH"); // the build tree's, from meson test
    const std::string saved = was ? was : "";
    ASSERT_EQ(::setenv("TURTLEFINDER_PLUGIN_PATH", "/first::/second", 1), 0);
    auto dirs = default_plugin_dirs();
    if (was)
        ::setenv("TURTLEFINDER_PLUGIN_PATH", saved.c_str(), 1);
    else
        ::unsetenv("TURTLEFINDER_PLUGIN_PATH");
    ASSERT_EQ(dirs.size(), 3u);
    EXPECT_EQ(dirs[0], "/first");
    EXPECT_EQ(dirs[1], "/second");
    // This test binary is not installed: the configured installation's folder,
    // never one of the build tree (the build tree is found through the environment).
    EXPECT_TRUE(dirs[2].ends_with("/turtlefinder/plugins")) << dirs[2];
    EXPECT_EQ(dirs[2].find(TF_BUILD_ROOT_FOR_TEST), std::string::npos) << dirs[2];
}

} // namespace
