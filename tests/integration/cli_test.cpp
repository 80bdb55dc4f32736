// SPDX-License-Identifier: Apache-2.0
// The turtlefinder CLI as a user runs it, against real Docker on top of a
// real containerd with CRI: tree, JSON, watch, exit codes.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <boost/json.hpp>

#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "containerd.hpp"
#include "event_view.hpp"
#include "cri_admin.hpp"
#include "lab.hpp"
#include "nested.hpp"
#include "systemd.hpp"
#include "testing.hpp"

namespace {

using namespace std::chrono_literals;
namespace lab = turtlefinder::lab;
namespace json = boost::json;

using tftest::cli;
using tftest::describe;

using tftest::slurp;

class Cli : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        if (::geteuid() != 0 || !lab::which("dockerd") || !lab::which("containerd")) return;
        lab_ = new lab::Lab("cli");
        containerd_ = new lab::Containerd(*lab_);
        lab::DockerdConfig dc;
        dc.containerd_socket = containerd_->socket(); // Docker on top of this containerd
        dockerd_ = new lab::Dockerd(*lab_, dc);
        dockerd_->import_busybox();
        docker_id_ = dockerd_->run_container({"--name", "web", "--label", "com.docker.compose.project=shop"});
        containerd_->import_busybox("tfns");
        containerd_->run_task("tfns", "t1");
        containerd_->import_pause();
        containerd_->import_busybox("k8s.io"); // the CRI pulls nothing: images are local
        cri_ = new lab::CriAdmin(containerd_->socket());
        pod_id_ = cri_->run_pod("cli-pod", "testns", "uid-cli-1");
        cri_container_id_ =
            cri_->create_container(pod_id_, "sleeper", lab::Containerd::busybox_image, {"sleep", "infinity"});
        cri_->start_container(cri_container_id_);
    }
    static void TearDownTestSuite() {
        delete cri_;
        delete dockerd_;
        delete containerd_;
        delete lab_;
    }
    void SetUp() override {
        TF_REQUIRE_ROOT();
        if (lab_ == nullptr) TF_SKIP_OR_FAIL("dockerd or containerd is not installed");
    }

    // Our engines' containers (engine api ends with one of our sockets), by engine type.
    static std::map<std::string, std::set<std::string>> ours(const json::value &doc) {
        std::map<std::string, std::set<std::string>> out;
        auto &engines = doc.at("engines").as_array();
        for (auto &c : doc.at("containers").as_array()) {
            auto &e = engines.at(c.at("engine").as_int64());
            std::string api(e.at("api").as_string());
            if (api.ends_with(dockerd_->socket()) || api.ends_with(containerd_->socket()))
                out[std::string(e.at("type").as_string())].insert(std::string(c.at("id").as_string()));
        }
        return out;
    }

    static inline lab::Lab *lab_ = nullptr;
    static inline lab::Containerd *containerd_ = nullptr;
    static inline lab::Dockerd *dockerd_ = nullptr;
    static inline lab::CriAdmin *cri_ = nullptr;
    static inline std::string docker_id_, pod_id_, cri_container_id_;
};

TEST_F(Cli, JsonListsWhatTheEnginesReportExactlyOnce) {
    auto r = lab::run({cli(), "--json", "--online-wait", "5000"}, {}, 60s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    boost::system::error_code ec;
    auto doc = json::parse(r.out, ec);
    ASSERT_FALSE(ec) << ec.message() << "\n" << r.out;
    EXPECT_EQ(doc.at("schema").as_string(), "turtlefinder/v1");
    EXPECT_EQ(tftest::schema_errors(r.out), "");
    auto found = ours(doc);
    // Docker's own view, and containerd's own view of the tfns namespace.
    std::set<std::string> docker_ps;
    std::istringstream ids(dockerd_->docker_ok({"ps", "-q", "--no-trunc"}));
    for (std::string id; ids >> id;) docker_ps.insert(id);
    EXPECT_EQ(found["docker.com"], docker_ps);
    EXPECT_TRUE(found["containerd.io"].contains("tfns/t1"));
    for (auto &id : found["containerd.io"])
        EXPECT_FALSE(docker_ps.contains(id) || docker_ps.contains("moby/" + id)) << "moby container twice: " << id;
    EXPECT_EQ(found["k8s.io/cri-api"], (std::set<std::string>{pod_id_, cri_container_id_}));
    for (auto &c : doc.at("containers").as_array())
        if (c.at("id").as_string() == cri_container_id_) {
            EXPECT_EQ(c.at("labels").at("io.kubernetes.pod.name").as_string(), "cli-pod");
            EXPECT_GT(c.at("pid").as_int64(), 0);
        }
}

TEST_F(Cli, TreeShowsTheSameContainers) {
    auto r = lab::run({cli(), "--online-wait", "5000"}, {{"NO_COLOR", "1"}}, 60s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.find("\x1b["), std::string::npos) << "no colour when not on a terminal";
    EXPECT_NE(r.out.find(dockerd_->socket()), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(containerd_->socket()), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("web " + docker_id_.substr(0, 12)), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("project shop"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("tfns/t1"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("pod testns/cli-pod"), std::string::npos) << r.out;
    auto engines = lab::run({cli(), "engines", "--json", "--online-wait", "5000"}, {}, 60s);
    ASSERT_EQ(engines.exit_code, 0);
    EXPECT_EQ(tftest::schema_errors(engines.out), "");
    auto doc = json::parse(engines.out);
    std::set<std::string> types;
    for (auto &e : doc.at("engines").as_array())
        if (std::string_view(e.at("api").as_string()).ends_with(containerd_->socket()) ||
            std::string_view(e.at("api").as_string()).ends_with(dockerd_->socket()))
            types.insert(std::string(e.at("type").as_string()));
    EXPECT_EQ(types, (std::set<std::string>{"docker.com", "containerd.io", "k8s.io/cri-api"}));
}

TEST_F(Cli, WatchPrintsAStartedContainerAndEndsCleanlyOnSigterm) {
    std::string log = lab_->path("watch.log");
    lab::Process watch(lab::SpawnOptions{{cli(), "--watch", "--json", "--online-wait", "5000"}, {}, log, {}});
    ASSERT_TRUE(tftest::eventually([&] { return slurp(log).find(dockerd_->socket()) != std::string::npos; }, 20s))
        << slurp(log);
    auto id = dockerd_->run_container({"--name", "watched"});
    bool seen = tftest::eventually(
        [&] {
            std::istringstream lines(slurp(log));
            for (std::string line; std::getline(lines, line);) {
                boost::system::error_code ec;
                auto v = json::parse(line, ec);
                if (ec || !v.is_object()) continue;
                if (v.at("event").as_string() == "started" && v.at("container").at("id").as_string() == id) return true;
            }
            return false;
        },
        10s);
    EXPECT_TRUE(seen) << slurp(log);
    int status = watch.stop(5s, SIGTERM);
    EXPECT_EQ(tftest::schema_errors(slurp(log)), "");
    ASSERT_TRUE(WIFEXITED(status)) << "killed instead of ending cleanly: " << status;
    EXPECT_EQ(WEXITSTATUS(status), 0);
    dockerd_->docker_ok({"rm", "-f", id});
}

TEST_F(Cli, SocketsShowsEveryEnginesListeningPaths) {
    auto r = lab::run({cli(), "sockets"}, {}, 60s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // Each process is a line "PID name", its sockets indented below it.
    std::map<pid_t, std::string> blocks;
    pid_t current = 0;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) {
        if (!line.empty() && line[0] != ' ') current = std::stoi(line);
        blocks[current] += line + "\n";
    }
    auto block_of = [&](pid_t pid) { return blocks[pid]; };
    std::string dockerd = block_of(dockerd_->pid());
    EXPECT_NE(dockerd.find("dockerd"), std::string::npos) << r.out;
    EXPECT_NE(dockerd.find(dockerd_->socket()), std::string::npos) << dockerd;
    std::string containerd = block_of(containerd_->pid());
    EXPECT_NE(containerd.find(containerd_->socket() + "  "), std::string::npos) << containerd;
    EXPECT_NE(containerd.find(containerd_->socket() + ".ttrpc"), std::string::npos) << containerd;

    // The same as JSON, and the plugins too.
    auto sockets = lab::run({cli(), "sockets", "--json"}, {}, 60s);
    ASSERT_EQ(sockets.exit_code, 0) << sockets.err;
    EXPECT_EQ(tftest::schema_errors(sockets.out), "");
    bool listed = false;
    auto sockets_doc = json::parse(sockets.out);
    for (auto &p : sockets_doc.at("processes").as_array())
        if (p.at("pid").as_int64() == dockerd_->pid())
            for (auto &s : p.at("sockets").as_array())
                listed = listed || s.at("path").as_string() == dockerd_->socket();
    EXPECT_TRUE(listed) << sockets.out;
    auto plugins = lab::run({cli(), "plugins", "--json"}, {}, 60s);
    ASSERT_EQ(plugins.exit_code, 0) << plugins.err;
    EXPECT_EQ(tftest::schema_errors(plugins.out), "");
    // Listed without being refused: loaded, or known from their metadata and
    // loaded once a process they claim runs (`plugins` runs no discovery).
    std::set<std::string> usable;
    auto plugins_doc = json::parse(plugins.out);
    for (auto &p : plugins_doc.at("plugins").as_array())
        if (p.at("loaded").as_bool() || p.at("deferred").as_bool())
            usable.insert(std::string(p.at("name").as_string()));
    EXPECT_TRUE(usable.contains("moby") && usable.contains("containerd")) << plugins.out;
}

TEST_F(Cli, ExitCodes) {
    EXPECT_EQ(lab::run({cli(), "--no-such-flag"}).exit_code, 2);
    EXPECT_EQ(lab::run({cli(), "frobnicate"}).exit_code, 2);
    EXPECT_EQ(lab::run({cli(), "--online-wait", "soon"}).exit_code, 2);
    auto help = lab::run({cli(), "--help"});
    EXPECT_EQ(help.exit_code, 0);
    EXPECT_NE(help.out.find("usage: turtlefinder"), std::string::npos);
    std::string bad = lab_->write_file("bad.json", R"({"probe_timeout_ms": "many"})");
    auto r = lab::run({cli(), "--config", bad});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find(bad), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("\"probe_timeout_ms\""), std::string::npos) << r.err;
    // Flags override the file: the file turns logging off, the flag turns it on.
    std::string quick = lab_->write_file("quick.json", R"({"online_wait_ms": 0, "log_level": "off"})");
    auto ok = lab::run({cli(), "engines", "--config", quick, "--log-level", "info", "--online-wait", "5000"});
    EXPECT_EQ(ok.exit_code, 0);
    EXPECT_NE(ok.err.find("found"), std::string::npos) << "--log-level must override the file: " << ok.err;
}

// A process named like an engine whose sockets give none — one accepts and
// never answers, one answers garbage — costs the real engines nothing: exit
// 0, they are listed, and the double is named on stderr, socket by socket
// with its reason, and in the JSON's candidates.
TEST_F(Cli, AFakeEngineIsNamedSocketBySocketAndHidesNothing) {
    using B = lab::FakeEngine::Behaviour;
    lab::FakeEngine fake(*lab_, "dockerd", {{B::hang, "fake-hang.sock"}, {B::garbage, "fake-junk.sock"}});
    const std::string root = "/proc/" + std::to_string(fake.pid()) + "/root";
    const std::string hang = root + lab_->path("fake-hang.sock"), junk = root + lab_->path("fake-junk.sock");
    const std::string who = "turtlefinder: warning: dockerd (PID " + std::to_string(fake.pid()) +
                            ", plugin \"moby\") gave no engine: socket ";

    auto r = lab::run({cli(), "--json", "--online-wait", "5000"}, {}, 60s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(tftest::schema_errors(r.out), "");
    auto doc = json::parse(r.out);
    auto found = ours(doc);
    EXPECT_FALSE(found["docker.com"].empty()) << r.out;
    EXPECT_TRUE(found["containerd.io"].contains("tfns/t1")) << r.out;
    EXPECT_EQ(found["k8s.io/cri-api"], (std::set<std::string>{pod_id_, cri_container_id_}));
    // On stderr: the process, its PID, each socket and why (the probe timeout is 1000 ms).
    // (A loaded machine may stop waiting before the probe gives up: "… (still being probed)".)
    EXPECT_NE(r.err.find(who + hang + ": timeout: no answer within 1000 ms"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(who + junk + ": not-this-protocol: "), std::string::npos) << r.err;
    // In the JSON: the same, among the candidates.
    const json::object *candidate = nullptr;
    for (auto &c : doc.at("candidates").as_array())
        if (c.at("pid").as_int64() == fake.pid()) candidate = &c.as_object();
    ASSERT_NE(candidate, nullptr) << r.out;
    EXPECT_EQ(candidate->at("process").as_string(), "dockerd");
    EXPECT_EQ(candidate->at("plugin").as_string(), "moby");
    std::map<std::string, std::string> errors;
    for (auto &s : candidate->at("sockets").as_array()) {
        errors[std::string(s.at("path").as_string())] = s.at("error").as_string();
        EXPECT_TRUE(std::string_view(s.at("reason").as_string()).starts_with(s.at("error").as_string()));
    }
    EXPECT_EQ(errors, (std::map<std::string, std::string>{{hang, "timeout"}, {junk, "not-this-protocol"}}));
    for (auto &e : doc.at("engines").as_array()) EXPECT_NE(e.at("pid").as_int64(), fake.pid()) << "a test double";

    // `engines` shows it too, in text and JSON.
    auto engines = lab::run({cli(), "engines", "--online-wait", "5000"}, {}, 60s);
    ASSERT_EQ(engines.exit_code, 0) << engines.err;
    EXPECT_NE(engines.out.find("no engine\tdockerd\tPID " + std::to_string(fake.pid()) + "\tplugin moby\t"),
              std::string::npos)
        << engines.out;
    EXPECT_NE(engines.out.find("\tsocket " + hang + "\ttimeout: "), std::string::npos) << engines.out;
    auto engines_json = lab::run({cli(), "engines", "--json", "--online-wait", "5000"}, {}, 60s);
    ASSERT_EQ(engines_json.exit_code, 0) << engines_json.err;
    EXPECT_EQ(tftest::schema_errors(engines_json.out), "");
    EXPECT_NE(engines_json.out.find("\"pid\":" + std::to_string(fake.pid()) + ",\"process\":\"dockerd\""),
              std::string::npos)
        << engines_json.out;
}

// --watch starts with the state as it is (every line marked initial until
// the first change), then changes; replaying every line gives what a
// one-shot run shows.
TEST_F(Cli, WatchStartsWithTheStateAndReplaysToTheOneShotView) {
    auto mine = [](const json::object &engine) {
        std::string_view api = engine.at("api").as_string();
        return api.ends_with(dockerd_->socket()) || api.ends_with(containerd_->socket());
    };
    auto doomed = dockerd_->run_container({"--name", "doomed"});
    std::string log = lab_->path("replay.log");
    lab::Process watch(lab::SpawnOptions{{cli(), "--watch", "--json", "--online-wait", "5000"}, {}, log, {}});
    // The initial state names the container that existed before the watch.
    ASSERT_TRUE(tftest::eventually([&] { return slurp(log).find(doomed) != std::string::npos; }, tftest::hang_guard))
        << slurp(log);
    {
        std::istringstream lines(slurp(log));
        std::string first;
        std::getline(lines, first);
        auto v = json::parse(first);
        EXPECT_TRUE(v.at("initial").as_bool()) << first;
        EXPECT_FALSE(v.at("time").as_string().empty());
    }
    auto paused = dockerd_->run_container({"--name", "paused"});
    dockerd_->docker_ok({"pause", paused});
    dockerd_->docker_ok({"rm", "-f", doomed});
    ASSERT_TRUE(
        tftest::eventually([&] { return slurp(log).find("\"exited\"") != std::string::npos; }, tftest::hang_guard))
        << slurp(log);

    tftest::EventView streamed, shot;
    bool equal = tftest::eventually(
        [&] {
            auto r = lab::run({cli(), "--json", "--online-wait", "5000"}, {}, 60s);
            if (r.exit_code != 0) return false;
            shot = tftest::document_view(json::parse(r.out), mine);
            streamed = tftest::replay_lines(slurp(log), mine);
            return streamed == shot;
        },
        tftest::hang_guard, 500ms);
    EXPECT_TRUE(equal) << "replayed:\n" << describe(streamed) << "one-shot:\n" << describe(shot);
    bool paused_seen = false;
    for (auto &[key, state] : shot.containers)
        paused_seen = paused_seen || (key.second == paused && state.find("|paused|") != std::string::npos);
    EXPECT_TRUE(paused_seen) << describe(shot);
    int status = watch.stop(5s, SIGTERM);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    EXPECT_EQ(tftest::schema_errors(slurp(log)), "");
    dockerd_->docker_ok({"rm", "-f", paused});
}

// The lines of a --watch --json log, parsed.
std::vector<json::object> events_of(const std::string &log) {
    std::vector<json::object> out;
    std::istringstream lines(log);
    for (std::string line; std::getline(lines, line);) {
        boost::system::error_code ec;
        auto v = json::parse(line, ec);
        if (!ec && v.is_object()) out.push_back(v.as_object());
    }
    return out;
}

// The stream over a nested engine (docker-in-docker, its containers and its
// own containerd), container starts, stops, pauses and an engine restart
// (containerd crashes and comes back under a new PID): it starts with the
// state as it is, every line follows the schema, and replaying it gives
// exactly what a one-shot run shows — containers, engines, prefixes,
// parents and PIDs.
TEST_F(Cli, WatchReplaysNestingPausesAndAnEngineRestart) {
    if (!lab::which("runc")) TF_SKIP_OR_FAIL("runc is not installed");
    lab::NestedDockerd dind(*lab_, lab::docker_api(*lab_, *dockerd_), "tf-dind");
    dind.import_busybox();
    auto inner = dind.run_busybox("inner-web");
    auto mine = [](const json::object &engine) {
        std::string_view api = engine.at("api").as_string(), prefix = engine.at("prefix").as_string();
        return api.ends_with(dockerd_->socket()) || api.ends_with(containerd_->socket()) || prefix == "tf-dind";
    };
    std::string log = lab_->path("nested-replay.log");
    lab::Process watch(lab::SpawnOptions{{cli(), "--watch", "--json", "--online-wait", "5000"}, {}, log, {}});
    // The initial state already holds the nested engine's container.
    ASSERT_TRUE(tftest::eventually([&] { return slurp(log).find(inner) != std::string::npos; }, tftest::hang_guard))
        << slurp(log);
    {
        auto events = events_of(slurp(log));
        ASSERT_FALSE(events.empty());
        EXPECT_TRUE(events.front().at("initial").as_bool());
        // Initial lines come first: none after the first change.
        auto change = std::find_if(events.begin(), events.end(), [](auto &e) { return !e.at("initial").as_bool(); });
        EXPECT_TRUE(std::none_of(change, events.end(), [](auto &e) { return e.at("initial").as_bool(); }));
        bool inner_initial = std::any_of(events.begin(), change, [&](auto &e) {
            return e.contains("container") && e.at("container").at("id").as_string() == inner;
        });
        EXPECT_TRUE(inner_initial) << "the nested container is not part of the initial state:\n" << slurp(log);
    }

    auto late = dind.run_busybox("inner-late");
    auto outer = dockerd_->run_container({"--name", "outer-paused"});
    dockerd_->docker_ok({"pause", outer});
    dind.docker_ok({"rm", "-f", inner});
    dind.docker_ok({"pause", late});
    dind.docker_ok({"unpause", late});
    const pid_t old_containerd = containerd_->pid();
    containerd_->crash_and_restart();
    const std::string new_key = std::to_string(containerd_->pid()) + ":containerd.io:";
    ASSERT_TRUE(tftest::eventually(
        [&] {
            auto events = events_of(slurp(log));
            return std::any_of(events.begin(), events.end(), [&](auto &e) {
                return e.at("event").as_string() == "engine-found" &&
                       std::string_view(e.at("engine").at("key").as_string()).starts_with(new_key);
            });
        },
        tftest::hang_guard))
        << "containerd restarted (PID " << old_containerd << " → " << containerd_->pid() << ") is not found again:\n"
        << slurp(log);

    tftest::EventView streamed, shot;
    bool equal = tftest::eventually(
        [&] {
            auto r = lab::run({cli(), "--json", "--online-wait", "5000"}, {}, 60s);
            if (r.exit_code != 0) return false;
            shot = tftest::document_view(json::parse(r.out), mine);
            streamed = tftest::replay_lines(slurp(log), mine);
            return streamed == shot;
        },
        tftest::hang_guard, 500ms);
    EXPECT_TRUE(equal) << "replayed:\n" << describe(streamed) << "one-shot:\n" << describe(shot);
    // What the view must hold: the nested engines under their container, the paused and the late containers.
    bool nested = false, late_seen = false, paused_seen = false, inner_gone = true;
    for (auto &[key, place] : shot.engines) nested = nested || place.starts_with("tf-dind|");
    for (auto &[key, state] : shot.containers) {
        late_seen = late_seen || (key.second == late && state.find("|running|tf-dind") != std::string::npos);
        paused_seen = paused_seen || (key.second == outer && state.find("|paused|") != std::string::npos);
        inner_gone = inner_gone && key.second != inner;
    }
    EXPECT_TRUE(nested && late_seen && paused_seen && inner_gone) << describe(shot);
    int status = watch.stop(5s, SIGTERM);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    EXPECT_EQ(tftest::schema_errors(slurp(log)), "");
    // Docker runs on the containerd that restarted: until it has its event
    // stream back, killing the paused container times out waiting for the exit.
    lab::RunResult removed;
    EXPECT_TRUE(tftest::eventually(
        [&] {
            return (removed = dockerd_->docker({"rm", "-f", outer})).ok();
        },
        60s))
        << removed.err;
}

// --online-wait 0 waits for no engine's first sync, but still finds Docker
// and containerd and activates a socket-activated podman.
TEST_F(Cli, OnlineWaitZeroFindsAndActivatesEngines) {
    if (!lab::which("podman") || !lab::which("systemd-socket-activate"))
        TF_SKIP_OR_FAIL("podman or systemd-socket-activate is not installed");
    auto sa = lab::SocketActivate::podman(*lab_, lab_->path("zero/podman.sock"));
    const std::set<std::string> all{"docker.com", "containerd.io", "k8s.io/cri-api", "podman.io"};
    std::set<std::string> types;
    lab::RunResult r;
    // Each run is one discovery; on a loaded machine an engine may not answer
    // its probe in time (it is then a candidate with its reason): run again.
    bool found = tftest::eventually(
        [&] {
            r = lab::run({cli(), "engines", "--json", "--online-wait", "0"}, {}, 60s);
            if (r.exit_code != 0) return true;
            EXPECT_EQ(tftest::schema_errors(r.out), "");
            types.clear();
            auto doc = json::parse(r.out);
            for (auto &e : doc.at("engines").as_array()) {
                std::string_view api = e.at("api").as_string();
                if (api.ends_with(dockerd_->socket()) || api.ends_with(containerd_->socket()) ||
                    api.ends_with(sa.socket()))
                    types.insert(std::string(e.at("type").as_string()));
            }
            return types == all;
        },
        tftest::hang_guard, 100ms);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(found) << r.out;
    EXPECT_EQ(types, all) << r.out;
}

// Bad input is an error that names what was wrong, by exact message.
TEST_F(Cli, BadInputIsNamedWithItsReason) {
    auto expect_error = [](const std::vector<std::string> &args, const std::string &message) {
        std::vector<std::string> argv{cli()};
        argv.insert(argv.end(), args.begin(), args.end());
        auto r = lab::run(argv);
        EXPECT_EQ(r.exit_code, 1) << r.err;
        EXPECT_EQ(r.err, "turtlefinder: " + message + "\n");
    };
    expect_error({"engines", "--plugin-dir", "/nonexistent"},
                 "plugin directory \"/nonexistent\": No such file or directory");
    std::string file = lab_->write_file("not-a-dir", "x");
    expect_error({"engines", "--plugin-dir", file}, "plugin directory \"" + file + "\": Not a directory");
    std::string dirs = lab_->write_file("dirs.json", R"({"plugin_dirs": ["/nonexistent/plugins"]})");
    expect_error({"engines", "--config", dirs}, "plugin directory \"/nonexistent/plugins\": No such file or directory");
    expect_error({"--config", "/nonexistent.json"},
                 "/nonexistent.json: cannot read the configuration file: No such file or directory");
    expect_error({"--config", "/tmp"}, "/tmp: cannot read the configuration file: Is a directory");
    std::string syntax = lab_->write_file("syntax.json", "{\n  \"online_wait_ms\": 2,\n  \"log_level\" \"info\"\n}\n");
    expect_error({"--config", syntax}, syntax + ":3:15: not valid JSON: syntax error");
    std::string twice = lab_->write_file("twice.json", R"({"online_wait_ms": 2, "online_wait_ms": 3})");
    expect_error({"--config", twice}, twice + ":1:38: duplicate key \"online_wait_ms\"");
    // A disabled plugin that matches none is a warning, not an error.
    std::string typo = lab_->write_file("typo.json", R"({"disabled_plugins": ["mobby"], "log_level": "warn"})");
    auto r = lab::run({cli(), "plugins", "--config", typo});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("disabled_plugins names \"mobby\", which matches no plugin"), std::string::npos) << r.err;
}

} // namespace
