// SPDX-License-Identifier: Apache-2.0
// Inputs fuzzing found to break a parser's contract, pinned so they stay
// fixed. Each input is also in the target's corpus (corpus/NAME/).
#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include <turtlefinder/clients/docker/decode.hpp>

namespace docker = turtlefinder::clients::docker;

namespace {

// Feeds `pieces` one after the other; returns the objects delivered, or the
// error code the splitter threw.
struct Fed {
    std::vector<std::string> objects;
    int error = 0;
};

Fed feed(std::size_t max, const std::vector<std::string> &pieces) {
    docker::JsonStreamSplitter splitter(max);
    Fed fed;
    try {
        for (const auto &piece : pieces)
            splitter.feed(piece, [&](boost::json::value &&v) {
                fed.objects.push_back(boost::json::serialize(v));
                return true;
            });
    } catch (const docker::Error &e) {
        fed.error = e.code();
    }
    return fed;
}

// {"a":"xx…"} of exactly `size` bytes.
std::string object_of_size(std::size_t size) { return R"({"a":")" + std::string(size - 8, 'x') + R"("})"; }

} // namespace

// corpus/docker-stream/regression-limit-with-trailing-newline: an event of
// exactly max_object_bytes followed by the newline dockerd puts after every
// event was refused when the newline came in the same read() (the splitter
// counted it as part of the object) and accepted when it came in the next
// one. The limit is on the object; how reads are cut must not matter.
TEST(FuzzRegressions, EventAtTheSizeLimitDoesNotDependOnHowReadsAreCut) {
    const std::size_t max = 512;
    const std::string event = object_of_size(max);
    Fed apart = feed(max, {event, "\n"});
    Fed together = feed(max, {event + "\n"});
    EXPECT_EQ(apart.error, 0);
    EXPECT_EQ(apart.objects.size(), 1u);
    EXPECT_EQ(together.error, apart.error);
    EXPECT_EQ(together.objects, apart.objects);
    // Trailing whitespace before the next event is not counted either.
    Fed two = feed(max, {event + " \r\n" + event});
    EXPECT_EQ(two.error, 0);
    EXPECT_EQ(two.objects.size(), 2u);
    // One byte more is refused, however it arrives.
    const std::string over = object_of_size(max + 1);
    EXPECT_EQ(feed(max, {over + "\n"}).error, -EPROTO);
    EXPECT_EQ(feed(max, {over.substr(0, 100), over.substr(100), "\n"}).error, -EPROTO);
}

// corpus/docker-stream/regression-number-split-across-reads: Boost.JSON
// (1.81) parses a long decimal number on a fast path when the bytes after it
// are in the same buffer, and on a slow one, which may round differently,
// when they are not. So an event delivered with the next one in the same
// read() could carry another value than the same event read in pieces. The
// splitter now parses each completed object from its own bytes in one go.
TEST(FuzzRegressions, NumberValueDoesNotDependOnHowReadsAreCut) {
    const std::string event = R"({"time":1795768287,"timeNano":179576828.230549149})";
    const std::string stream = event + "\r\n" + event + "\r\n";
    Fed whole = feed(512, {stream});
    ASSERT_EQ(whole.error, 0);
    ASSERT_EQ(whole.objects.size(), 2u);
    EXPECT_EQ(whole.objects[0], whole.objects[1]);
    std::vector<std::string> bytes;
    for (char c : stream) bytes.emplace_back(1, c);
    Fed byte_by_byte = feed(512, bytes);
    EXPECT_EQ(byte_by_byte.error, 0);
    EXPECT_EQ(byte_by_byte.objects, whole.objects);
}
