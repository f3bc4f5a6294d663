// Result<T>: a value or an Error, shaped like std::expected (C++23) so the switch is mechanical
// later. No exception crosses a module boundary; errors carry a code the caller can test.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

namespace plumb {

enum class Errc {
  kInvalid,      // bad input from the user or the runtime
  kNotFound,     // ENODEV, ENOENT, ESRCH: something named does not exist
  kNoNetns,      // the container's network namespace is gone (CNI: an unknown container)
  kExists,       // EEXIST: already there
  kUnsupported,  // the kernel or this build cannot do it
  kIo,           // an I/O or store failure
  kDecode,       // malformed JSON or wire data
  kKernel,       // any other kernel refusal
  kTryAgain,     // transient: the caller may retry
  kExhausted,    // no free address (or subnet) is left in what was configured
  kInternal,
};

struct Error {
  Errc code = Errc::kInternal;
  int sys_errno = 0;  // 0 when the error did not come from a syscall or the kernel
  std::string message;

  // Prefixes context: wrap("failed to attach eth1") turns "no such bridge" into
  // "failed to attach eth1: no such bridge".
  Error wrap(const std::string& context) const& {
    return {code, sys_errno, context + ": " + message};
  }
  Error wrap(const std::string& context) && {
    message = context + ": " + message;
    return std::move(*this);
  }
};

inline Errc errcFromErrno(int e) {
  switch (e) {
    case ENODEV:
    case ENOENT:
    case ESRCH:
    case ENXIO:
      return Errc::kNotFound;
    case EEXIST:
    case EADDRINUSE:
      return Errc::kExists;
    case EOPNOTSUPP:
    case EAFNOSUPPORT:
    case EPROTONOSUPPORT:
      return Errc::kUnsupported;
    case EINVAL:
    case ERANGE:
      return Errc::kInvalid;
    case EAGAIN:
    case EBUSY:
    case EINTR:
      return Errc::kTryAgain;
    default:
      return Errc::kKernel;
  }
}

inline Error errorFromErrno(int e, const std::string& what) {
  return {errcFromErrno(e), e, what + ": " + std::strerror(e)};
}

inline Error makeError(Errc code, std::string message) { return {code, 0, std::move(message)}; }

struct Unexpected {
  Error error;
};
inline Unexpected fail(Error e) { return {std::move(e)}; }
inline Unexpected fail(Errc code, std::string message) { return {{code, 0, std::move(message)}}; }
inline Unexpected failErrno(int e, const std::string& what) { return {errorFromErrno(e, what)}; }

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Unexpected u) : v_(std::in_place_index<1>, std::move(u.error)) {}  // NOLINT
  Result(Error e) : v_(std::in_place_index<1>, std::move(e)) {}             // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Unexpected u) : err_(std::move(u.error)), failed_(true) {}  // NOLINT
  Result(Error e) : err_(std::move(e)), failed_(true) {}             // NOLINT

  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const Error& error() const& { return err_; }
  Error&& error() && { return std::move(err_); }

 private:
  Error err_;
  bool failed_ = false;
};

using Status = Result<void>;

}  // namespace plumb

// Early return of an error from an expression yielding Result<T>.
#define PLUMB_CONCAT_INNER(a, b) a##b
#define PLUMB_CONCAT(a, b) PLUMB_CONCAT_INNER(a, b)
#define PLUMB_TRY(expr) PLUMB_TRY_IMPL(PLUMB_CONCAT(plumb_try_, __COUNTER__), expr)
#define PLUMB_TRY_IMPL(tmp, expr)                 \
  do {                                            \
    auto tmp = (expr);                            \
    if (!tmp.ok()) return std::move(tmp).error(); \
  } while (0)

// PLUMB_ASSIGN(auto x, expr): declares x from a Result's value, or returns its error. A GNU
// statement expression (g++ and clang): its temporary needs no unique name.
#define PLUMB_ASSIGN(decl, expr)                                          \
  decl = ({                                                               \
    auto plumb_assign_r_ = (expr);                                        \
    if (!plumb_assign_r_.ok()) return std::move(plumb_assign_r_).error(); \
    std::move(plumb_assign_r_).value();                                   \
  })
