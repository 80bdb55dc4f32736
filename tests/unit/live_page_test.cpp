// SPDX-License-Identifier: Apache-2.0
// The live page compiled into the binary: it is page.html byte for byte, and
// self-contained (no script, style or font from elsewhere). A real browser
// renders it in the integration tests.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "page.hpp"

namespace {

TEST(LivePage, IsPageHtmlByteForByte) {
    std::ifstream in(std::string(std::getenv("TF_SOURCE_ROOT")) + "/tools/turtlefinder/serve/page.html",
                     std::ios::binary);
    ASSERT_TRUE(in);
    std::stringstream source;
    source << in.rdbuf();
    EXPECT_EQ(turtlefinder::serve::live_page(), source.str());
}

TEST(LivePage, IsSelfContainedAndFollowsTheEventStream) {
    auto page = turtlefinder::serve::live_page();
    EXPECT_TRUE(page.starts_with("<!DOCTYPE html>"));
    for (std::string_view outside : {"src=", "href=", "@import", "url(", "http://", "https://"})
        EXPECT_EQ(page.find(outside), std::string_view::npos) << "the page loads something: " << outside;
    // Relative, so that the page works behind a proxy that adds a path prefix.
    EXPECT_NE(page.find("new EventSource(\"v1/events\")"), std::string_view::npos);
    EXPECT_EQ(page.find("innerHTML"), std::string_view::npos) << "engine-supplied text is set as text only";
}

} // namespace
