// Loading a shared library on first use (dlopen). What plumb needs only on some paths
// (libnftables to write rules, libmicrohttpd for the daemon, libcurl for container guests)
// stays out of every other invocation's start-up, the CNI plugin's above all.
#pragma once

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "base/result.h"

namespace plumb {

class DynamicLibrary {
 public:
  // soname: "libcurl.so.4"; package: the Debian package that ships it, for the error. The
  // library stays loaded for the life of the process.
  static Result<DynamicLibrary> open(const char* soname, const char* package) {
    void* h = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      return fail(Errc::kUnsupported,
                  std::string(soname) + " is not installed (Debian package " + package + ")");
    }
    return DynamicLibrary(h, soname);
  }

  // Resolves name into fn (a function pointer of the right type); false when it is missing.
  template <class F>
  bool resolve(const char* name, F& fn) const {
    fn = reinterpret_cast<F>(::dlsym(handle_, name));
    return fn != nullptr;
  }

  Status missing() const { return fail(Errc::kUnsupported, name_ + " lacks an expected function"); }

 private:
  DynamicLibrary(void* h, std::string name) : handle_(h), name_(std::move(name)) {}
  void* handle_;
  std::string name_;
};

// The entry points of a library, loaded once per process on first use. Symbols is a struct of
// function pointers with `bool resolve(const DynamicLibrary&)`; every caller after the first
// gets the same symbols, or the same error.
template <class Symbols>
Result<const Symbols*> loadOnce(const char* soname, const char* package) {
  static Symbols symbols;
  static Status status;
  static std::once_flag once;
  std::call_once(once, [&] {
    auto lib = DynamicLibrary::open(soname, package);
    if (!lib.ok()) {
      status = lib.error();
    } else if (!symbols.resolve(*lib)) {
      status = lib->missing();
    }
  });
  if (!status.ok()) return status.error();
  return &symbols;
}

// loadOnce for a library plumb cannot run without (a dependency of the package, or part of
// glibc) whose entry points plumb defines under the library's own names and forwards: a
// process that cannot load it says so in one line and exits. Every call after the first
// returns what the first found, at the cost of a guarded static.
template <class Symbols>
const Symbols& loadOrExit(const char* soname, const char* package) {
  static const Symbols* symbols = [&] {
    auto loaded = loadOnce<Symbols>(soname, package);
    if (!loaded.ok()) {
      (void)std::fprintf(stderr, "plumb: %s\n", loaded.error().message.c_str());
      std::_Exit(1);
    }
    return *loaded;
  }();
  return *symbols;
}

}  // namespace plumb
