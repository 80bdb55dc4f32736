// SPDX-License-Identifier: Apache-2.0
// Runs one fuzz target over its checked-in corpus, so every build (not only
// the clang fuzzing one) proves the seeds and past crash inputs stay fine.
// A crash or a failed invariant aborts the binary, which fails the test.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "testing.hpp"

namespace {

// The input being run, named on stderr if it aborts the binary (a failed
// invariant or a sanitizer report), since gtest gets no chance to say it.
char current_input[4096];

void name_input_and_die(int signal) {
    const char prefix[] = "\nfuzz replay: this input aborted: ";
    (void)!::write(2, prefix, sizeof prefix - 1);
    (void)!::write(2, current_input, std::strlen(current_input));
    (void)!::write(2, "\n", 1);
    std::signal(signal, SIG_DFL);
    std::raise(signal);
}

[[maybe_unused]] const bool handlers_installed = [] {
    for (int signal : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) std::signal(signal, name_input_and_die);
    return true;
}();

// TF_FUZZ_REPLAY_DIR replays another directory (say, libFuzzer's artifacts).
std::string corpus_dir() {
    const char *other = std::getenv("TF_FUZZ_REPLAY_DIR");
    return other != nullptr && *other != '\0' ? other : TF_FUZZ_CORPUS;
}

std::vector<std::filesystem::path> corpus_files() {
    std::vector<std::filesystem::path> files;
    for (const auto &entry : std::filesystem::directory_iterator(corpus_dir()))
        if (entry.is_regular_file()) files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    return files;
}

void run(const std::string &bytes, const std::string &name = "(empty)") {
    std::snprintf(current_input, sizeof current_input, "%s", name.c_str());
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t *>(bytes.data()), bytes.size());
}

} // namespace

TEST(FuzzCorpus, EveryInputPasses) {
    auto files = corpus_files();
    ASSERT_FALSE(files.empty()) << "no corpus in " << corpus_dir();
    run(""); // targets may set up lasting state (a memfd) on their first call
    tftest::LeakGuard guard;
    for (const auto &file : files) {
        SCOPED_TRACE(file.string());
        std::ifstream in(file, std::ios::binary);
        ASSERT_TRUE(in) << "cannot read " << file;
        run(std::string(std::istreambuf_iterator<char>(in), {}), file.string());
    }
    guard.check();
}

// Cheap mutations of each input (truncations, one flipped byte) catch an
// obvious regression even without a fuzzing build.
TEST(FuzzCorpus, TruncatedAndFlippedInputsPass) {
    run("");
    tftest::LeakGuard guard;
    for (const auto &file : corpus_files()) {
        SCOPED_TRACE(file.string());
        std::ifstream in(file, std::ios::binary);
        std::string bytes(std::istreambuf_iterator<char>(in), {});
        for (std::size_t cut : {bytes.size() / 2, bytes.size() * 9 / 10, bytes.size() > 0 ? bytes.size() - 1 : 0})
            run(bytes.substr(0, cut), file.string() + " cut to " + std::to_string(cut) + " bytes");
        for (std::size_t at = 0; at < bytes.size(); at += 1 + bytes.size() / 16) {
            std::string flipped = bytes;
            flipped[at] = static_cast<char>(flipped[at] ^ 0x5a);
            run(flipped, file.string() + " with byte " + std::to_string(at) + " flipped");
        }
    }
    guard.check();
}
