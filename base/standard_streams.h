#pragma once
// std::cin, std::cout, std::cerr and std::clog without the static initializer that <iostream>
// puts in every file that includes it (libstdc++ before GCC 13: a static std::ios_base::Init).
//
// That initializer builds the eight standard streams and the classic locale's facets at
// every start of the process, whether a stream is used or not: 10 page faults and about 50 us
// on every exec of plumb here (VERSION p50, interleaved with the build before), so on every
// CNI call, which never touches a stream (only the command line and `plumb daemon` do).
//
// Use: include this before <iostream> and before any header that includes it (CLI11 does; an
// earlier <iostream> is a compile error here), and call plumb::standardStreams() on the way
// into the code that uses the streams, before the first use.
#include <istream>
#include <ostream>

#if defined(__GLIBCXX__)
#if defined(_GLIBCXX_IOSTREAM) && !defined(PLUMB_STANDARD_STREAMS)
#error \
    "<iostream> was included before base/standard_streams.h: its initializer would run at every exec"
#endif
#define PLUMB_STANDARD_STREAMS 1
// <iostream>'s include guard: what it would declare is declared here, without its initializer.
#define _GLIBCXX_IOSTREAM 1  // NOLINT(bugprone-reserved-identifier)
namespace std {              // NOLINT(cert-dcl58-cpp): the same declarations as <iostream>
extern istream cin;
extern ostream cout;
extern ostream cerr;
extern ostream clog;
}  // namespace std
#else
#include <iostream>
#endif

namespace plumb {

// Builds the standard streams on the first call (a no-op after): std::ios_base::Init, the
// object <iostream> would have made at start-up, kept until exit, when it flushes them.
inline void standardStreams() {
  static const std::ios_base::Init init;
  (void)init;
}

}  // namespace plumb
