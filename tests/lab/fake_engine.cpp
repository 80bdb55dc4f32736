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
    : FakeEngine(lab, std::move(process_name), {{behaviour, socket_name}}) {}

FakeEngine::FakeEngine(const Lab &lab, std::string process_name,
                       const std::vector<std::pair<Behaviour, std::string>> &sockets)
    : socket_(lab.path(sockets.at(0).second)), behaviour_(sockets.at(0).first) {
    SpawnOptions so;
    so.args = {TF_LAB_FAKE_ENGINE, process_name};
    for (const auto &[behaviour, name] : sockets) {
        so.args.push_back(to_string(behaviour));
        so.args.push_back(lab.path(name));
    }
    so.log_path = socket_ + ".log";
    process_ = Process(so);
    for (const auto &[behaviour, name] : sockets)
        if (!wait_listening(process_.pid(), lab.path(name), 10s))
            throw Error("fake engine '" + process_name + "' did not listen on " + lab.path(name) + ": " +
                        process_.log_tail());
}

int FakeEngine::connections() const {
    std::ifstream log(socket_ + ".log");
    int n = 0;
    for (std::string line; std::getline(log, line);) n += line == "accepted";
    return n;
}

} // namespace turtlefinder::lab
