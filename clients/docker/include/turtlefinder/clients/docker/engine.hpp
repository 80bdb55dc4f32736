// SPDX-License-Identifier: Apache-2.0
// An engine client (plugin.hpp's sdk::EngineClient) for any Docker-compatible
// API: Docker itself, and podman's compat API. Lists running and paused
// containers (inspecting each for its init PID), inspects one, and streams
// start/die/pause/unpause events. Plugins set the identity; this does the calls.
// Convenience code, not the plugin ABI: same-toolchain C++ with no ABI
// promise; a plugin that links it is rebuilt with each turtlefinder release.
#pragma once

#include <memory>

#include <turtlefinder/clients/docker/client.hpp>
#include <turtlefinder/plugin.hpp>

namespace turtlefinder::clients::docker {

// Uses `client` (typically the one that probed the socket, API version already negotiated).
std::unique_ptr<sdk::EngineClient> make_docker_engine(std::unique_ptr<Client> client, sdk::EngineInfo info);
// Opens its own client with `options`.
std::unique_ptr<sdk::EngineClient> make_docker_engine(Options options, sdk::EngineInfo info);

} // namespace turtlefinder::clients::docker
