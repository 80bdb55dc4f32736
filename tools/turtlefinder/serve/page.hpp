// SPDX-License-Identifier: Apache-2.0
// GET /: the live page (page.html, compiled into the binary at build time).
#pragma once

#include <string_view>

namespace turtlefinder::serve {

inline constexpr std::string_view live_page_content_type = "text/html; charset=utf-8";

// The page, as page.html holds it.
std::string_view live_page();

} // namespace turtlefinder::serve
