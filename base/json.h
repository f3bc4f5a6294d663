// Typed reading of nlohmann::json without exceptions: every front end parses with
// allow_exceptions=false and reads fields through these, which say which field is wrong.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace plumb::json_read {

using json = nlohmann::json;

// Parses text; malformed JSON, or JSON nested deeper than kMaxDepth, is Errc::kDecode.
constexpr size_t kMaxDepth = 128;
Result<json> parse(std::string_view text);

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
// The object or array at key, or nullptr when absent; wrong type fails.
Result<const json*> object(const json& obj, const char* key, const std::string& path = "");
Result<const json*> array(const json& obj, const char* key, const std::string& path = "");

}  // namespace plumb::json_read
