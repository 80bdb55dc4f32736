// SPDX-License-Identifier: Apache-2.0
// containerd engine detector: the native API (containers of every namespace
// but those other clients own) and, when the CRI plugin answers on the same
// socket, a CRI client too.
#include <array>
#include <cerrno>
#include <set>
#include <string>

#include <turtlefinder/plugin.hpp>
#include <turtlefinder/clients/grpc/containerd.hpp>
#include <turtlefinder/clients/grpc/cri.hpp>

namespace tfplugin::containerd {

namespace gc = turtlefinder::clients::grpc;
namespace sdk = turtlefinder::sdk;

struct Plugin {
    static constexpr const char *name = "containerd";
    static constexpr const char *version = "0.1.0";
    static constexpr const char *description = "finds containerd (native API and CRI)";
    // `comm` holds at most 15 bytes: old Docker's docker-containerd shows as "docker-containe".
    static constexpr std::array<const char *, 2> process_names{"containerd", "docker-containe"};

    static sdk::Engines probe(const sdk::ProbeRequest &request) {
        sdk::Engines engines;
        std::set<std::string> skip = gc::split_list(gc::default_skip_namespaces);
        if (auto it = request.settings.find("skip-namespaces"); it != request.settings.end())
            skip = gc::split_list(it->second);
        for (const auto &path : request.api_paths) {
            // The ttrpc socket speaks a different protocol (shims use it).
            if (gc::socket_name(path).ends_with(".ttrpc")) {
                request.report(path, -EPROTO, "a ttrpc socket (the shims' protocol), not containerd's API");
                continue;
            }
            gc::ProbeFailure failure;
            auto version = gc::probe_containerd(path, request.timeout, &failure);
            if (!version) {
                request.log(TF_LOG_DEBUG, "containerd " + std::to_string(request.pid) + ": " + path +
                                              " does not answer containerd's Version; skipped");
                request.report(path, failure.code, failure.message);
                continue;
            }
            try {
                engines.push_back(gc::make_containerd_client(request, {path, *version, skip}));
            } catch (const sdk::Error &e) { // e.g. a containerd too busy to answer its identity in time
                request.report(path, e.code(), e.what());
                throw;
            }
            request.report(path, 0, "containerd's API");
            if (auto cri = gc::probe_cri_engine(request, path, "containerd.io")) engines.push_back(std::move(cri));
            break; // one API socket per engine process
        }
        return engines;
    }
};

} // namespace tfplugin::containerd

TF_PLUGIN(tfplugin::containerd::Plugin)
