// SPDX-License-Identifier: Apache-2.0
// What runs on a probe's own thread: the probe of a process's sockets, the
// activation of a socket, and what they share with the Prober (its Board),
// which they may outlive.
#include "discovery/prober.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "log.hpp"

namespace turtlefinder::discovery {

namespace {

// A plugin's message is for a log line, not a novel.
constexpr std::size_t max_report = 512;

} // namespace

void record_outcome(CandidateSocket &socket, int outcome, std::string message) {
    switch (-outcome) {
    case ETIMEDOUT: socket.error = "timeout"; break;
    case ECONNREFUSED: socket.error = "refused"; break;
    case EACCES:
    case EPERM: socket.error = "permission-denied"; break;
    case EPROTO:
    case EBADMSG:
    case EPROTONOSUPPORT: socket.error = "not-this-protocol"; break;
    case ECONNRESET:
    case ECONNABORTED:
    case EPIPE: socket.error = "closed"; break;
    case ENOENT:
    case ENOTSOCK: socket.error = "gone"; break;
    default: socket.error = "error"; break;
    }
    if (message.size() > max_report) message.resize(max_report);
    if (message.empty()) message = outcome < 0 ? std::strerror(-outcome) : "it gave an engine the host refused";
    socket.reason = socket.error + ": " + message;
}

void Prober::launch(const std::shared_ptr<Run> &run, std::function<std::vector<FoundEngine>()> work) {
    std::thread([board = board_, run, work = std::move(work)]() mutable {
        std::vector<FoundEngine> found;
        try {
            found = work();
        } catch (const std::exception &e) {
            log().warn("probe failed: {}", e.what());
        } catch (...) {
            log().warn("probe failed");
        }
        work = nullptr; // its plugin and sockets: what it found holds its own
        {
            std::lock_guard lock(board->mu);
            run->done = true;
            if (!run->abandoned) run->found = std::move(found);
        }
        board->ended.notify_all();
        // Abandoned: `found` is destroyed here, each engine holding its plugin.
    }).detach();
}

std::vector<FoundEngine> Prober::activate(Board &board, const ProbeSettings &settings, const ActivationJob &job,
                                          const std::string &procfs_root) {
    std::vector<FoundEngine> found;
    auto service = run_activation(procfs_root, job, settings.timeout);
    if (!service) {
        board.count(job.plugin->name(), "activation");
        return found;
    }
    ++board.activations;
    for (auto &f : probe(board, settings, service->service, service->plugin, true, {service->socket})) {
        f.api_inode = service->socket.socket.inode;
        f.api_handle = service->socket.handle;
        f.pidns_pid = service->activator_pid;
        f.activated = true;
        found.push_back(std::move(f));
    }
    return found;
}

std::vector<FoundEngine> Prober::probe(Board &board, const ProbeSettings &settings, const procfs::Process &process,
                                       const std::shared_ptr<const plugins::Plugin> &plugin, bool activated,
                                       const std::vector<Candidate> &sockets,
                                       const std::shared_ptr<Progress> &progress) {
    ++board.probes;
    plugins::ProbeInput input;
    input.pid = process.pid;
    input.process_name = process.name;
    // Plugins connect through the handles only: the paths they are given
    // cannot be redirected by the engine's container (see SocketHandle).
    for (auto &s : sockets) input.api_paths.push_back(s.handle->connect_path());
    input.timeout = settings.timeout;
    input.settings = settings.settings;
    if (progress)
        input.on_report = [&progress = *progress, &input](const std::string &path, int outcome,
                                                          const std::string &message) {
            auto given = std::find(input.api_paths.begin(), input.api_paths.end(), path);
            if (given == input.api_paths.end()) return; // not one of the paths it was given
            std::lock_guard lock(progress.mu);
            auto &sockets = progress.candidate.sockets;
            auto i = static_cast<std::size_t>(given - input.api_paths.begin());
            if (i < sockets.size()) record_outcome(sockets[i], outcome, message);
        };
    auto outcome = activated ? plugin->probe_activated(input) : plugin->probe(input);
    std::vector<FoundEngine> found;
    for (auto &e : outcome.engines) {
        FoundEngine f;
        hand_over_handle(*e, sockets, f);
        f.engine = std::move(e);
        f.process = {process.pid, process.starttime};
        f.pidns_pid = process.pid;
        found.push_back(std::move(f));
    }
    if (!outcome.result.ok())
        log().debug("plugin \"{}\" probing {} (PID {}): {}", plugin->name(), process.name, process.pid,
                    outcome.result.message);
    else if (found.empty())
        log().debug("plugin \"{}\" found no engine at {} (PID {}, {} sockets)", plugin->name(), process.name,
                    process.pid, input.api_paths.size());
    const char *failure = !found.empty()         ? nullptr
                          : sockets.empty()      ? "no_socket"
                          : !outcome.result.ok() ? "error"
                                                 : "no_engine";
    board.count(plugin->name(), failure);
    if (progress && found.empty()) {
        std::lock_guard lock(progress->mu);
        auto &candidate = progress->candidate;
        for (auto &s : candidate.sockets) {
            if (!s.error.empty()) continue;
            s.error = "unknown";
            s.reason =
                plugin->abi_minor() < 1
                    ? fmt::format("unknown: plugin \"{}\" is built for ABI 1.0, which tells no reason", plugin->name())
                    : fmt::format("unknown: plugin \"{}\" did not say", plugin->name());
        }
        if (sockets.empty())
            candidate.reason = "no listening unix socket";
        else if (!outcome.result.ok())
            candidate.reason = outcome.result.message;
        else
            candidate.reason = "no socket answered as this engine";
    }
    return found;
}

void Prober::Board::count(const std::string &plugin, const char *failure) {
    std::lock_guard lock(counts_mu);
    auto &counts = by_plugin[plugin];
    ++counts.probes;
    if (failure != nullptr) ++counts.failures[failure];
}

void Prober::hand_over_handle(plugins::EngineHandle &engine, const std::vector<Candidate> &sockets,
                              FoundEngine &found) {
    for (const auto &s : sockets) {
        if (s.handle->connect_path() != engine.identity().api) continue;
        engine.show_api_as(s.handle->connect_path(), s.socket.reachable);
        engine.keep_until_destroyed(s.handle);
        found.api_inode = s.socket.inode;
        found.api_handle = s.handle;
        return;
    }
    // An engine reporting an api it was not given may connect to any of them.
    auto all = std::make_shared<std::vector<std::shared_ptr<const SocketHandle>>>();
    for (const auto &s : sockets) all->push_back(s.handle);
    engine.keep_until_destroyed(std::move(all));
}

} // namespace turtlefinder::discovery
