// SPDX-License-Identifier: Apache-2.0
// Where this installation keeps its files, found from where the core's own
// code lives, so that a relocated or DESTDIR-staged install uses its own
// plugins and configuration rather than those of the configured prefix.
#pragma once

#include <string>

namespace turtlefinder {

// PREFIX/`relative`, where PREFIX is the installation prefix of the code
// running this (libturtlefinder.so in PREFIX/LIBDIR, or a program in
// PREFIX/BINDIR that links the core statically), if that path exists;
// otherwise `installed`, the path compiled in for the configured prefix.
std::string installation_path(const std::string &relative, const std::string &installed);

} // namespace turtlefinder
