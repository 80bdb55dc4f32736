// SPDX-License-Identifier: Apache-2.0
// TEST DOUBLE launcher: starts the misbehaving-engine helper program.
#include <fstream>

#include "lab.hpp"

namespace turtlefinder::lab {

const char *to_string(FakeEngine::Behaviour behaviour) {
    switch (behaviour) {
    case FakeEngine::Behaviour::garbage: return "garbage";
    case FakeEngine::Behaviour::hang: return "hang";
    case FakeEngine::Behaviour::slow: return "slow";
    case FakeEngine::Behaviour::close: return "close";
    case FakeEngine::Behaviour::endless: return "endless";
    }
    return "?";
}

FakeEngine::FakeEngine(const Lab &lab, std::string process_name, Behaviour behaviour, const std::string &socket_name)
    : socket_(lab.path(socket_name)) {
    SpawnOptions so;
    so.args = {TF_LAB_FAKE_ENGINE, process_name, to_string(behaviour), socket_};
    so.log_path = socket_ + ".log";
    process_ = Process(so);
    if (!wait_listening(process_.pid(), socket_, 10s))
        throw Error("fake engine '" + process_name + "' did not listen on " + socket_ + ": " + process_.log_tail());
}

int FakeEngine::connections() const {
    std::ifstream log(socket_ + ".log");
    int n = 0;
    for (std::string line; std::getline(log, line);) n += line == "accepted";
    return n;
}

} // namespace turtlefinder::lab
