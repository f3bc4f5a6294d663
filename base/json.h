// Typed reading of nlohmann::json without exceptions: every front end parses with
// allow_exceptions=false and reads fields through these, which say which field is wrong.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "base/result.h"

namespace plumb::json_read {

using json = nlohmann::json;

// Parses text; malformed JSON, or JSON nested deeper than kMaxDepth, is Errc::kDecode.
constexpr size_t kMaxDepth = 128;
Result<json> parse(std::string_view text);

// How deeply a JSON text is nested, byte by byte: brackets inside strings (escaped quotes
// included) do not count. parse bounds the depth with it before parsing; ovs/ finds where
// each value of a stream ends with it.
class Nesting {
 public:
  // Takes the next byte; returns the depth after it.
  size_t step(char c) {
    if (in_string_) {
      if (escaped_) {
        escaped_ = false;
      } else if (c == '\\') {
        escaped_ = true;
      } else if (c == '"') {
        in_string_ = false;
      }
    } else if (c == '"') {
      in_string_ = true;
    } else if (c == '[' || c == '{') {
      ++depth_;
    } else if ((c == ']' || c == '}') && depth_ > 0) {
      --depth_;
    }
    return depth_;
  }
  size_t depth() const { return depth_; }

 private:
  size_t depth_ = 0;
  bool in_string_ = false;
  bool escaped_ = false;
};

// j as text, with bytes that are not UTF-8 (from the environment, a name in the kernel)
// replaced by U+FFFD rather than thrown over: output is written after the kernel changed.
inline std::string text(const json& j, int indent = -1) {
  return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

// Each reader: a missing key leaves out untouched and succeeds; a key of the wrong type fails
// with "field 'path' must be a string" and so on.
Status str(const json& obj, const char* key, std::string& out, const std::string& path = "");
Status boolean(const json& obj, const char* key, bool& out, const std::string& path = "");
Status integer(const json& obj, const char* key, int& out, const std::string& path = "");
Status strList(const json& obj, const char* key, std::vector<std::string>& out,
               const std::string& path = "");
// For answers from peers (etcd, ovsdb-server, dockerd), where json::value would throw: the
// value at key when obj is an object holding one of T's type (a string, a bool, an integer
// that fits T, or any json), else fallback.
template <class T>
T valueOr(const json& obj, const char* key, T fallback) {
  if (!obj.is_object()) return fallback;
  auto it = obj.find(key);
  if (it == obj.end()) return fallback;
  if constexpr (std::is_same_v<T, json>) {
    return *it;
  } else if constexpr (std::is_same_v<T, std::string>) {
    return it->is_string() ? it->template get<std::string>() : fallback;
  } else if constexpr (std::is_same_v<T, bool>) {
    return it->is_boolean() ? it->template get<bool>() : fallback;
  } else {
    static_assert(std::is_integral_v<T>, "valueOr reads strings, bools, integers or json");
    if (it->is_number_unsigned()) {
      auto v = it->template get<uint64_t>();
      return v <= static_cast<uint64_t>(std::numeric_limits<T>::max()) ? static_cast<T>(v)
                                                                       : fallback;
    }
    if (!it->is_number_integer()) return fallback;
    auto v = it->template get<int64_t>();
    if (v < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
        (v > 0 && static_cast<uint64_t>(v) > static_cast<uint64_t>(std::numeric_limits<T>::max())))
      return fallback;
    return static_cast<T>(v);
  }
}

// The object or array at key, or nullptr when absent; wrong type fails.
Result<const json*> object(const json& obj, const char* key, const std::string& path = "");
Result<const json*> array(const json& obj, const char* key, const std::string& path = "");

}  // namespace plumb::json_read
