// SPDX-License-Identifier: Apache-2.0
// A server-streaming call read with a deadline per message (the synchronous
// API cannot time out one Read, and "did the stream end at once?" needs that).
// Cancelled through CallSet like any call; the destructor cancels, drains the
// completion queue and returns only when gRPC no longer touches the call.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>

#include <grpcpp/client_context.h>
#include <grpcpp/completion_queue.h>
#include <grpcpp/support/async_stream.h>

#include <turtlefinder/clients/grpc/channel.hpp>

namespace turtlefinder::clients::grpc {

template <typename Response>
class StreamReader {
public:
    using Start = std::function<std::unique_ptr<::grpc::ClientAsyncReader<Response>>(::grpc::ClientContext *,
                                                                                     ::grpc::CompletionQueue *)>;
    enum class Next { message, ended, timeout };

    StreamReader(CallSet &calls, const Start &start, const std::string &containerd_namespace = {})
        : guard_(calls, ctx_) {
        if (!containerd_namespace.empty()) ctx_.AddMetadata("containerd-namespace", containerd_namespace);
        reader_ = start(&ctx_, &cq_);
        reader_->StartCall(tag(Op::start));
        pending_ = true;
    }

    ~StreamReader() {
        if (!finished_) {
            ctx_.TryCancel();
            while (pending_) wait(std::chrono::system_clock::time_point::max());
            finish();
        }
        cq_.Shutdown();
        void *t = nullptr;
        bool ok = false;
        while (cq_.Next(&t, &ok)) {
        }
    }

    StreamReader(const StreamReader &) = delete;
    StreamReader &operator=(const StreamReader &) = delete;

    // The next message into `out`, or ended (see status()), or timeout when
    // nothing came before `deadline` (the read stays pending for the next call).
    Next next(Response &out, std::chrono::system_clock::time_point deadline) {
        while (!finished_) {
            if (!pending_) {
                reader_->Read(&buffer_, tag(Op::read));
                pending_ = true;
                reading_ = true;
            }
            auto got = wait(deadline);
            if (!got) return Next::timeout;
            auto [op, ok] = *got;
            if (!ok) {
                finish();
                return Next::ended;
            }
            if (op == Op::read) {
                out = std::move(buffer_);
                buffer_.Clear();
                return Next::message;
            }
        }
        return Next::ended;
    }

    const ::grpc::Status &status() const noexcept { return status_; }

private:
    enum class Op : intptr_t { start = 1, read = 2, finish = 3 };
    static void *tag(Op op) noexcept { return reinterpret_cast<void *>(static_cast<intptr_t>(op)); }

    struct Done {
        Op op;
        bool ok;
    };

    // Waits for the pending operation; nullopt on timeout.
    std::optional<Done> wait(std::chrono::system_clock::time_point deadline) {
        void *t = nullptr;
        bool ok = false;
        auto r = cq_.AsyncNext(&t, &ok, deadline);
        if (r == ::grpc::CompletionQueue::TIMEOUT) return std::nullopt;
        pending_ = false;
        reading_ = false;
        if (r == ::grpc::CompletionQueue::SHUTDOWN) return Done{Op::finish, false};
        return Done{static_cast<Op>(reinterpret_cast<intptr_t>(t)), ok};
    }

    void finish() {
        if (finished_) return;
        finished_ = true;
        reader_->Finish(&status_, tag(Op::finish));
        void *t = nullptr;
        bool ok = false;
        cq_.Next(&t, &ok);
    }

    ::grpc::ClientContext ctx_;
    ::grpc::CompletionQueue cq_;
    CallSet::Guard guard_;
    std::unique_ptr<::grpc::ClientAsyncReader<Response>> reader_;
    Response buffer_;
    ::grpc::Status status_;
    bool pending_ = false;
    bool reading_ = false;
    bool finished_ = false;
};

} // namespace turtlefinder::clients::grpc
