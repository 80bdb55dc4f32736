// SPDX-License-Identifier: Apache-2.0
// plugin.hpp's trampolines keep the C contract the host relies on: a sink
// that asks to stop is obeyed by inspect as by list, a watch never returns
// 0, and a probe request carries the host's log to whatever the plugin
// hands it to.
#include <turtlefinder/plugin.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace {

namespace sdk = turtlefinder::sdk;

class OneContainer final : public sdk::EngineClient {
public:
    OneContainer() : sdk::EngineClient({"test", "test", "id", "1", "/api", 1}) {}
    void list(const std::function<bool(const sdk::Container &)> &emit) override {
        for (int i = 0; i < 3 && emit(container()); ++i) {
        }
    }
    std::optional<sdk::Container> inspect(const std::string &) override { return container(); }
    void watch(sdk::WatchSink &sink) override { sink.subscribed(); } // returns: the host asked to stop
    void cancel() override {}

private:
    static sdk::Container container() { return {"c1", "one", 7, false, {}}; }
};

struct Engine {
    tf_engine *e = sdk::detail::make_engine(std::make_unique<OneContainer>());
    ~Engine() { e->destroy(e); }
};

int refuse(void *, const tf_container *) { return 1; }
int take(void *ctx, const tf_container *) {
    ++*static_cast<int *>(ctx);
    return 0;
}

TEST(SdkTrampolines, InspectStopsWhenTheSinkSaysSo) {
    Engine engine;
    tf_error err{};
    tf_container_sink stop{sizeof(tf_container_sink), nullptr, &refuse};
    EXPECT_EQ(engine.e->inspect(engine.e, "c1", &stop, &err), -ECANCELED);
    EXPECT_EQ(engine.e->list(engine.e, &stop, &err), -ECANCELED);

    int taken = 0;
    tf_container_sink go{sizeof(tf_container_sink), &taken, &take};
    EXPECT_EQ(engine.e->inspect(engine.e, "c1", &go, &err), 0);
    EXPECT_EQ(taken, 1);
}

TEST(SdkTrampolines, WatchThatReturnsIsCancelledNeverSuccess) {
    Engine engine;
    tf_error err{};
    tf_event_sink sink{sizeof(tf_event_sink), nullptr, [](void *) { return 0; },
                       [](void *, const tf_container_event *) { return 0; }};
    EXPECT_EQ(engine.e->watch(engine.e, &sink, &err), -ECANCELED);
    EXPECT_STRNE(err.message, "");
}

TEST(SdkTrampolines, ProbeRequestCarriesTheHostLog) {
    std::vector<std::pair<tf_log_level, std::string>> lines;
    tf_host host{};
    host.struct_size = sizeof host;
    host.abi = {TF_ABI_VERSION_MAJOR, TF_ABI_VERSION_MINOR, TF_ABI_VERSION_PATCH};
    host.ctx = &lines;
    host.log = [](void *ctx, tf_log_level level, const char *message) {
        static_cast<std::vector<std::pair<tf_log_level, std::string>> *>(ctx)->emplace_back(level, message);
    };
    sdk::detail::host_slot() = &host; // as init does
    tf_probe_request c{};
    c.struct_size = sizeof c;
    sdk::ProbeRequest request = sdk::detail::to_request(&c);
    sdk::detail::host_slot() = nullptr; // as deinit does: copies keep the host

    sdk::Log kept = request.log;
    kept(TF_LOG_INFO, "from a library");
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0].first, TF_LOG_INFO);
    EXPECT_EQ(lines[0].second, "from a library");
    sdk::Log{}(TF_LOG_WARN, "dropped"); // no host: nothing, no crash
    EXPECT_EQ(lines.size(), 1u);
}

// ProbeRequest::report reaches a 1.1 host's report function, and is a no-op
// with a 1.0 host (whose request ends before it) or none.
TEST(SdkTrampolines, ProbeReportReachesTheHostOnlyWhenItTakesReports) {
    std::vector<std::tuple<std::string, int, std::string>> reports;
    tf_probe_request c{};
    c.struct_size = sizeof c;
    c.report_ctx = &reports;
    c.report = [](void *ctx, const char *path, int32_t outcome, const char *message) {
        static_cast<std::vector<std::tuple<std::string, int, std::string>> *>(ctx)->emplace_back(path, outcome,
                                                                                                 message);
    };
    sdk::detail::to_request(&c).report("/run/a.sock", -ETIMEDOUT, "no answer");
    ASSERT_EQ(reports.size(), 1u);
    EXPECT_EQ(reports[0], std::make_tuple(std::string("/run/a.sock"), -ETIMEDOUT, std::string("no answer")));

    c.struct_size = offsetof(tf_probe_request, report_ctx); // what a 1.0 host hands over
    sdk::detail::to_request(&c).report("/run/a.sock", -ETIMEDOUT, "dropped");
    c.struct_size = sizeof c;
    c.report = nullptr; // a 1.1 host that takes no reports
    sdk::detail::to_request(&c).report("/run/a.sock", -ETIMEDOUT, "dropped");
    sdk::ProbeReport{}("/run/a.sock", 0, "dropped");
    EXPECT_EQ(reports.size(), 1u);
}

} // namespace
