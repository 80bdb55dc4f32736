// SPDX-License-Identifier: Apache-2.0
// What the containerd and CRI engine clients share.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include <turtlefinder/plugin.hpp>
#include <turtlefinder/clients/grpc/channel.hpp>

namespace turtlefinder::clients::grpc {

// An engine client over one gRPC channel: the deadline of each unary call,
// the calls in flight (cancel() stops them all, from any thread) and the
// host's log, each line naming the API. Hidden: not part of the library's
// exported client API.
class [[gnu::visibility("hidden")]] ChannelClient : public sdk::EngineClient {
public:
    void cancel() override { calls_.cancel(); }

protected:
    ChannelClient(sdk::EngineInfo info, std::string log_prefix, std::chrono::milliseconds timeout, sdk::Log log,
                  std::unique_ptr<UnixChannel> channel)
        : sdk::EngineClient(std::move(info)),
          timeout_(timeout),
          channel_(std::move(channel)),
          log_prefix_(std::move(log_prefix)),
          log_(std::move(log)) {}

    void log(tf_log_level level, const std::string &message) const { log_(level, log_prefix_ + message); }

    const std::chrono::milliseconds timeout_; // per unary call
    const std::unique_ptr<UnixChannel> channel_;
    CallSet calls_;

private:
    const std::string log_prefix_;
    const sdk::Log log_;
};

} // namespace turtlefinder::clients::grpc
