// libm, loaded the first time one of its functions is called: in practice never.
//
// The only callers are in Debian's SQLite archive (its SQL math functions, acos() to trunc(),
// and the ranking of its full-text search), which plumb links statically and never asks for
// any of them. A linked libm still cost every plumb process about 80 us between exec and exit
// (the dynamic loader maps and relocates it, and the process faults its pages in and unmaps
// them again: p50 of 2,000 runs of the same empty program with and without it), and every
// CNI call is such a process. The functions SQLite calls are defined here under their own
// names, with the signatures <math.h> declares (one that drifts fails to compile); each
// forwards to libm's, resolved once per process. libm is part of glibc: a process that cannot
// load it says so in one line and exits.
//
// Linked only with the SQLite archive (CMakeLists.txt: plumb_sqlite); the sanitizer build
// links the shared SQLite, and libm with it.
#include <math.h>

#include <cerrno>

#include "base/dl.h"

namespace {

using Unary = double (*)(double);
using Binary = double (*)(double, double);

struct MathLib {
  Unary acos = nullptr, acosh = nullptr, asin = nullptr, asinh = nullptr, atan = nullptr,
        atanh = nullptr, cos = nullptr, cosh = nullptr, exp = nullptr, log = nullptr, sin = nullptr,
        sinh = nullptr, sqrt = nullptr, tan = nullptr, tanh = nullptr, trunc = nullptr;
  Binary atan2 = nullptr, fmod = nullptr, pow = nullptr;

  bool resolve(const plumb::DynamicLibrary& lib) {
    return lib.resolve("acos", acos) && lib.resolve("acosh", acosh) && lib.resolve("asin", asin) &&
           lib.resolve("asinh", asinh) && lib.resolve("atan", atan) &&
           lib.resolve("atanh", atanh) && lib.resolve("cos", cos) && lib.resolve("cosh", cosh) &&
           lib.resolve("exp", exp) && lib.resolve("log", log) && lib.resolve("sin", sin) &&
           lib.resolve("sinh", sinh) && lib.resolve("sqrt", sqrt) && lib.resolve("tan", tan) &&
           lib.resolve("tanh", tanh) && lib.resolve("trunc", trunc) &&
           lib.resolve("atan2", atan2) && lib.resolve("fmod", fmod) && lib.resolve("pow", pow);
  }
};

const MathLib& libm() {
  // Loading libm may leave errno set; a math function sets it only for its own errors.
  const int saved = errno;
  const MathLib& lib = plumb::loadOrExit<MathLib>("libm.so.6", "libc6");
  errno = saved;
  return lib;
}

}  // namespace

// NOLINTBEGIN(bugprone-reserved-identifier,cert-dcl58-cpp): libm's own names, on purpose
extern "C" {

double acos(double x) noexcept { return libm().acos(x); }
double acosh(double x) noexcept { return libm().acosh(x); }
double asin(double x) noexcept { return libm().asin(x); }
double asinh(double x) noexcept { return libm().asinh(x); }
double atan(double x) noexcept { return libm().atan(x); }
double atanh(double x) noexcept { return libm().atanh(x); }
double cos(double x) noexcept { return libm().cos(x); }
double cosh(double x) noexcept { return libm().cosh(x); }
double exp(double x) noexcept { return libm().exp(x); }
double log(double x) noexcept { return libm().log(x); }
double sin(double x) noexcept { return libm().sin(x); }
double sinh(double x) noexcept { return libm().sinh(x); }
double sqrt(double x) noexcept { return libm().sqrt(x); }
double tan(double x) noexcept { return libm().tan(x); }
double tanh(double x) noexcept { return libm().tanh(x); }
double trunc(double x) noexcept { return libm().trunc(x); }
double atan2(double y, double x) noexcept { return libm().atan2(y, x); }
double fmod(double x, double y) noexcept { return libm().fmod(x, y); }
double pow(double x, double y) noexcept { return libm().pow(x, y); }

}  // extern "C"
// NOLINTEND(bugprone-reserved-identifier,cert-dcl58-cpp)
