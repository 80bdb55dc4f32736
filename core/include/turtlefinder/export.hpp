// SPDX-License-Identifier: Apache-2.0
// TF_PUBLIC marks what libturtlefinder.so exports. The library is built with
// -fvisibility=hidden and a version script, so everything else in it (the
// internals, and the spdlog, fmt and Boost code it uses) stays private to it
// and cannot clash with a host application's own copies.
#pragma once

#define TF_PUBLIC __attribute__((visibility("default")))
// TF_PRIVATE keeps a member type of a TF_PUBLIC class (its implementation)
// unexported, which it would otherwise be like its enclosing class.
#define TF_PRIVATE __attribute__((visibility("hidden")))
