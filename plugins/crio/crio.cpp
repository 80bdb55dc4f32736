// SPDX-License-Identifier: Apache-2.0
// CRI-O engine detector: a CRI client on the socket that answers runtime.v1.
#include <array>
#include <cerrno>
#include <string>

#include <turtlefinder/plugin.hpp>
#include <turtlefinder/clients/grpc/cri.hpp>

namespace tfplugin::crio {

namespace gc = turtlefinder::clients::grpc;
namespace sdk = turtlefinder::sdk;

struct Plugin {
    static constexpr const char *name = "crio";
    static constexpr const char *version = "0.1.0";
    static constexpr const char *description = "finds CRI-O (CRI API)";
    static constexpr std::array<const char *, 1> process_names{"crio"};

    static sdk::Engines probe(const sdk::ProbeRequest &request) {
        sdk::Engines engines;
        for (const auto &path : request.api_paths) {
            if (gc::socket_name(path).ends_with(".ttrpc")) { // never a CRI endpoint
                request.report(path, -EPROTO, "a ttrpc socket (containerd's shim protocol), not the CRI");
                continue;
            }
            gc::ProbeFailure failure;
            auto cri = gc::probe_cri_engine(request, path, "cri-o.io", &failure);
            if (!cri) {
                request.log(TF_LOG_DEBUG, "crio " + std::to_string(request.pid) + ": " + path +
                                              " does not answer CRI Version; skipped");
                request.report(path, failure.code, failure.message);
                continue;
            }
            engines.push_back(std::move(cri));
            request.report(path, 0, "CRI");
            break; // one CRI endpoint per engine process
        }
        return engines;
    }
};

} // namespace tfplugin::crio

TF_PLUGIN(tfplugin::crio::Plugin)
