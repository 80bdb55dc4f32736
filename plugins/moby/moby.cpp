// SPDX-License-Identifier: Apache-2.0
// The moby (Docker) engine detector: claims `dockerd`, keeps the first
// candidate socket that answers like Docker (and not like podman), and serves
// containers and lifecycle events through the shared Docker-API engine client.
#include <turtlefinder/clients/docker/client.hpp>
#include <turtlefinder/clients/docker/engine.hpp>
#include <turtlefinder/plugin.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <memory>
#include <string>
#include <vector>

namespace tfplugin::moby {

namespace docker = turtlefinder::clients::docker;
namespace sdk = turtlefinder::sdk;

struct Plugin {
    static constexpr const char *name = "moby";
    static constexpr const char *version = "0.1.0";
    static constexpr const char *description = "Docker Engine (dockerd) detector";
    static constexpr std::array<const char *, 1> process_names{"dockerd"};

    static sdk::Engines probe(const sdk::ProbeRequest &request) {
        std::vector<std::string> candidates = request.api_paths;
        std::sort(candidates.begin(), candidates.end()); // stable choice whatever the fd order
        candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
        sdk::Engines engines;
        for (const auto &path : candidates) {
            docker::Options options;
            options.socket_path = path;
            options.timeout = request.timeout;
            auto client = std::make_unique<docker::Client>(options);
            try {
                docker::Ping ping = client->ping();
                if (ping.is_podman()) {
                    request.log(TF_LOG_DEBUG, "'" + path + "' is podman's API (Libpod-Api-Version), not Docker's");
                    request.report(path, -EPROTO, "podman's API (Libpod-Api-Version), not Docker's");
                    continue;
                }
                docker::VersionInfo version = client->negotiate();
                docker::Info info = client->info();
                sdk::EngineInfo ei;
                ei.type = "docker.com";
                ei.flavor = "docker.com";
                ei.id = info.id;
                ei.version = version.version;
                ei.api = path;
                ei.pid = request.pid;
                engines.push_back(docker::make_docker_engine(std::move(client), std::move(ei)));
                request.report(path, 0, "Docker API");
                break; // one dockerd serves one API; its other sockets (metrics, libnetwork) are not it
            } catch (const docker::Error &e) {
                request.log(TF_LOG_DEBUG, "'" + path + "' is not a Docker API: " + e.what());
                request.report(path, e.code(), e.what());
            }
        }
        return engines;
    }
};

} // namespace tfplugin::moby

TF_PLUGIN(tfplugin::moby::Plugin)
