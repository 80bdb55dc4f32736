// SPDX-License-Identifier: Apache-2.0
// Plugin metadata (plugin.h, since 1.1): read from every built plugin and
// from fixtures with good and malformed sections without mapping the file;
// plugins loaded on demand once a process they claim runs; a plugin whose
// descriptor claims other than its metadata refused.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include <turtlefinder/plugin.h>

#include "abi_helpers.hpp"
#include "plugins/metadata.hpp"
#include "plugins/registry.hpp"
#include "testing.hpp"

namespace {

using namespace turtlefinder;
using namespace turtlefinder::plugins;
using abitest::TempDir;
namespace fs = std::filesystem;

// True when a mapping of this process is the file at `path`.
bool mapped(const std::string &path) {
    const std::string real = fs::canonical(path).string();
    std::ifstream maps("/proc/self/maps");
    for (std::string line; std::getline(maps, line);)
        if (line.ends_with(" " + real)) return true;
    return false;
}

// Counts the lines the fixtures' constructors append when dlopen'ed.
class LoadMarker {
public:
    LoadMarker() : file_(dir_ / "loads") { ::setenv("TF_FIXTURE_LOAD_MARKER", file_.c_str(), 1); }
    ~LoadMarker() { ::unsetenv("TF_FIXTURE_LOAD_MARKER"); }
    LoadMarker(const LoadMarker &) = delete;
    LoadMarker &operator=(const LoadMarker &) = delete;
    int loads() const {
        std::ifstream in(file_);
        int n = 0;
        for (std::string line; std::getline(in, line);) ++n;
        return n;
    }

private:
    TempDir dir_;
    std::string file_;
};

const PluginStatus *status_of(const Registry &r, const std::string &file) {
    for (const auto &s : r.statuses())
        if (s.file == file) return &s;
    return nullptr;
}

TEST(Metadata, EveryBuiltPluginCarriesItsOwnWithoutBeingMapped) {
    std::vector<fs::path> built;
    for (const char *dir : {"plugins", "activators"})
        for (const auto &sub : fs::directory_iterator(fs::path(TF_BUILD_ROOT_FOR_TEST) / dir))
            if (sub.is_directory())
                for (const auto &f : fs::directory_iterator(sub.path()))
                    if (f.path().extension() == ".so") built.push_back(f.path());
    ASSERT_GE(built.size(), 5u);
    for (const auto &path : built) {
        SCOPED_TRACE(path.string());
        ParsedInfo parsed = read_plugin_info(path.string());
        ASSERT_TRUE(parsed.refusal.empty()) << parsed.refusal;
        ASSERT_TRUE(parsed.info.has_value());
        EXPECT_EQ(parsed.info->name, path.stem().string());
        EXPECT_EQ(parsed.info->abi_major, TF_ABI_VERSION_MAJOR);
        EXPECT_EQ(parsed.info->abi_minor, TF_ABI_VERSION_MINOR);
        EXPECT_FALSE(parsed.info->claims().empty());
        EXPECT_FALSE(mapped(path.string()));
        // Loaded eagerly, its descriptor is checked against the metadata.
        Registry r;
        EXPECT_TRUE(r.load_file(path.string())) << (r.statuses().empty() ? "" : r.statuses().back().reason);
    }
}

TEST(Metadata, TheCppSdkWritesWhatTheDescriptorOffers) {
    ParsedInfo parsed = read_plugin_info(TF_FIXTURE_CPP);
    ASSERT_TRUE(parsed.info.has_value()) << parsed.refusal;
    EXPECT_EQ(parsed.info->name, "fixture-cpp");
    EXPECT_EQ(parsed.info->version, "4.5.6");
    EXPECT_EQ(parsed.info->process_names, std::vector<std::string>{"fixture-cppeng"});
    EXPECT_EQ(parsed.info->socket_suffixes, std::vector<std::string>{"fixture.sock"});
    EXPECT_EQ(parsed.info->service_names, std::vector<std::string>{"fixture-svc"});
    EXPECT_EQ(parsed.info->kinds(), (std::vector<std::string>{"engine-detector", "activated-engine"}));
}

TEST(Metadata, WithoutTheSectionAPluginIsLoadedAtOnce) {
    EXPECT_FALSE(read_plugin_info(TF_FIXTURE_C).info.has_value());
    EXPECT_TRUE(read_plugin_info(TF_FIXTURE_C).refusal.empty());
    Registry r(Registry::Loading::on_demand);
    EXPECT_TRUE(r.load_file(TF_FIXTURE_C));
    EXPECT_NE(r.find("fixture-c"), nullptr);
    EXPECT_FALSE(r.has_deferred());
}

TEST(Metadata, MalformedSectionsAreRefusedWithoutLoading) {
    LoadMarker marker;
    TempDir dir;
    const std::pair<const char *, const char *> cases[] = {
        {TF_BROKEN_INFO_TOO_LONG, "bytes, more than 4096"},
        {TF_BROKEN_INFO_NO_NUL, "is not NUL-terminated"},
        {TF_BROKEN_INFO_BAD_NAME, "invalid name \"Bad_Name\" in metadata"},
    };
    for (const auto &[fixture, reason] : cases) {
        SCOPED_TRACE(fixture);
        const std::string file = abitest::install(fixture, dir, fs::path(fixture).filename().string());
        for (auto loading : {Registry::Loading::eager, Registry::Loading::on_demand}) {
            Registry r(loading);
            EXPECT_FALSE(r.load_file(file));
            const auto *s = status_of(r, file);
            ASSERT_NE(s, nullptr);
            EXPECT_NE(s->reason.find(reason), std::string::npos) << s->reason;
            EXPECT_FALSE(mapped(file));
        }
    }
    EXPECT_EQ(marker.loads(), 0);
}

TEST(Metadata, ParsingBoundsEveryEntry) {
    auto refusal = [](std::string_view s) { return parse_plugin_info(s).refusal; };
    using namespace std::string_view_literals;
    EXPECT_TRUE(refusal("abi=1.0\0name=ok\0detector=eng\0"sv).empty());
    EXPECT_TRUE(refusal("\0\0abi=1.0\0\0name=ok\0future-key=x\0detector=eng\0\0"sv).empty());
    EXPECT_NE(refusal(""sv).find("empty"), std::string::npos);
    EXPECT_NE(refusal("name=ok\0detector=eng\0"sv).find("no abi="), std::string::npos);
    EXPECT_NE(refusal("abi=1.0\0detector=eng\0"sv).find("no name="), std::string::npos);
    EXPECT_NE(refusal("abi=1.0\0name=ok\0"sv).find("claims nothing"), std::string::npos);
    EXPECT_NE(refusal("abi=2.0\0name=ok\0detector=eng\0"sv).find("major"), std::string::npos);
    EXPECT_NE(refusal("abi=1.999\0name=ok\0detector=eng\0"sv).find("too new"), std::string::npos);
    EXPECT_NE(refusal("abi=1.0\0abi=1.0\0name=ok\0detector=eng\0"sv).find("twice"), std::string::npos);
    EXPECT_NE(refusal("abi=1.0\0name=ok\0detector=a-name-of-16-byte\0"sv).find("1 to 15"), std::string::npos);
    EXPECT_NE(refusal("abi=1.0\0name=ok\0detector=a/b\0"sv).find("not allowed"), std::string::npos);
    EXPECT_NE(refusal("abi=1.0\0name=ok\0detector=eng\0novalue\0"sv).find("key=value"), std::string::npos);
    EXPECT_NE(refusal("abi=1.0\0name=ok\0description=a\nb\0detector=eng\0"sv).find("control"), std::string::npos);
}

TEST(Metadata, OnDemandLoadsOnlyOnceAClaimedProcessRuns) {
    LoadMarker marker;
    TempDir dir;
    const std::string file = abitest::install(TF_BROKEN_INFO, dir, "info-ok.so");
    Registry r(Registry::Loading::on_demand);
    EXPECT_TRUE(r.load_file(file));
    EXPECT_TRUE(r.plugins().empty());
    ASSERT_EQ(r.statuses().size(), 1u);
    EXPECT_TRUE(r.statuses()[0].deferred);
    EXPECT_FALSE(r.statuses()[0].loaded);
    EXPECT_EQ(r.statuses()[0].name, "info-ok");
    EXPECT_EQ(r.statuses()[0].claims, std::vector<std::string>{"broken-eng"});
    EXPECT_EQ(r.wanted_process_names(), (std::set<std::string, std::less<>>{"broken-eng"}));
    EXPECT_FALSE(mapped(file));

    EXPECT_EQ(r.load_for({"bash", "sshd"}), 0u);
    EXPECT_EQ(marker.loads(), 0);
    EXPECT_EQ(r.load_for({"broken-eng"}), 1u);
    EXPECT_EQ(marker.loads(), 1);
    EXPECT_TRUE(mapped(file));
    EXPECT_NE(r.detector_for("broken-eng"), nullptr);
    ASSERT_EQ(r.statuses().size(), 1u);
    EXPECT_TRUE(r.statuses()[0].loaded);
    EXPECT_FALSE(r.statuses()[0].deferred);
    EXPECT_FALSE(r.has_deferred());
}

TEST(Metadata, APluginLyingAboutItsClaimsIsRefusedOnceLoaded) {
    LoadMarker marker;
    TempDir dir;
    const std::string file = abitest::install(TF_BROKEN_INFO_LIES, dir, "info-lies.so");
    Registry r(Registry::Loading::on_demand);
    EXPECT_TRUE(r.load_file(file));
    EXPECT_EQ(r.wanted_process_names(), (std::set<std::string, std::less<>>{"other-eng"}));
    EXPECT_EQ(r.load_for({"other-eng"}), 0u);
    EXPECT_EQ(marker.loads(), 1);
    EXPECT_TRUE(r.plugins().empty());
    ASSERT_EQ(r.statuses().size(), 1u);
    EXPECT_FALSE(r.statuses()[0].deferred);
    EXPECT_EQ(r.statuses()[0].reason,
              "metadata does not match the plugin: its metadata claims detector process names [other-eng], its "
              "entry [broken-eng]");
    // Loaded eagerly, the same.
    Registry eager;
    EXPECT_FALSE(eager.load_file(file));
    EXPECT_NE(eager.statuses().back().reason.find("metadata does not match"), std::string::npos);
}

TEST(Metadata, DisabledUnderAnotherFileNameIsNeverLoaded) {
    LoadMarker marker;
    TempDir dir;
    const std::string file = abitest::install(TF_BROKEN_INFO, dir, "renamed.so");
    for (auto loading : {Registry::Loading::eager, Registry::Loading::on_demand}) {
        Registry r(loading);
        EXPECT_FALSE(r.load_file(file, {"info-ok"}));
        ASSERT_EQ(r.statuses().size(), 1u);
        EXPECT_EQ(r.statuses()[0].reason, "disabled");
        EXPECT_EQ(r.statuses()[0].name, "info-ok");
    }
    EXPECT_EQ(marker.loads(), 0);
    EXPECT_FALSE(mapped(file));
}

TEST(Metadata, ANameTakenByADeferredPluginIsRefused) {
    TempDir dir;
    Registry r(Registry::Loading::on_demand);
    EXPECT_TRUE(r.load_file(abitest::install(TF_BROKEN_INFO, dir, "a.so")));
    EXPECT_FALSE(r.load_file(abitest::install(TF_BROKEN_INFO, dir, "b.so")));
    EXPECT_NE(r.statuses().back().reason.find("already taken"), std::string::npos);
}

TEST(Metadata, AnActivatedEngineIsLoadedOnceAnActivatorRuns) {
    TempDir dir;
    Registry r(Registry::Loading::on_demand);
    EXPECT_TRUE(r.load_file(abitest::install(TF_FIXTURE_CPP, dir, "fixture-cpp.so")));
    EXPECT_EQ(r.wanted_process_names(), (std::set<std::string, std::less<>>{"fixture-cppeng", "fixture-svc"}));
    EXPECT_EQ(r.load_for({"systemd"}), 0u) << "no activator plugin: systemd is nobody's";
    // An activator known from its metadata makes its name wanted, and the
    // activated engine with it.
    const std::string systemd = fs::path(TF_BUILD_ROOT_FOR_TEST) / "activators" / "systemd" / "systemd.so";
    EXPECT_TRUE(r.load_file(systemd));
    EXPECT_TRUE(r.wanted_process_names().contains("systemd"));
    EXPECT_EQ(r.load_for({"systemd"}), 2u);
    EXPECT_NE(r.find("fixture-cpp"), nullptr);
    EXPECT_NE(r.find("systemd"), nullptr);
}

} // namespace
