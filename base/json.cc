#include "base/json.h"

namespace plumb::json_read {
namespace {

std::string name(const std::string& path, const char* key) {
  return path.empty() ? key : path + "." + key;
}

Status wrongType(const std::string& path, const char* key, const char* type) {
  return fail(Errc::kInvalid, "field '" + name(path, key) + "' must be " + type);
}

}  // namespace

Result<json> parse(std::string_view text) {
  // Copying, encoding and destroying a json value recurse once per level: a value nested
  // 100,000 deep (a prevResult) overflowed the stack after the attach was made. Refused here,
  // before anything is parsed.
  Nesting nesting;
  for (char c : text) {
    if (nesting.step(c) > kMaxDepth)
      return fail(Errc::kDecode,
                  "malformed JSON: nested deeper than " + std::to_string(kMaxDepth) + " levels");
  }
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return fail(Errc::kDecode, "malformed JSON");
  return j;
}

Status str(const json& obj, const char* key, std::string& out, const std::string& path) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return {};
  if (!it->is_string()) return wrongType(path, key, "a string");
  out = it->get_ref<const std::string&>();
  return {};
}

Status boolean(const json& obj, const char* key, bool& out, const std::string& path) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return {};
  if (!it->is_boolean()) return wrongType(path, key, "true or false");
  out = it->get<bool>();
  return {};
}

Status integer(const json& obj, const char* key, int& out, const std::string& path) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return {};
  if (!it->is_number_integer()) return wrongType(path, key, "an integer");
  auto v = it->get<long long>();
  if (v < INT32_MIN || v > INT32_MAX) return wrongType(path, key, "an integer in range");
  out = static_cast<int>(v);
  return {};
}

Status strList(const json& obj, const char* key, std::vector<std::string>& out,
               const std::string& path) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return {};
  if (!it->is_array()) return wrongType(path, key, "a list of strings");
  out.clear();
  for (const auto& v : *it) {
    if (!v.is_string()) return wrongType(path, key, "a list of strings");
    out.push_back(v.get_ref<const std::string&>());
  }
  return {};
}

Result<const json*> object(const json& obj, const char* key, const std::string& path) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return static_cast<const json*>(nullptr);
  if (!it->is_object()) return wrongType(path, key, "an object").error();
  return &*it;
}

Result<const json*> array(const json& obj, const char* key, const std::string& path) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return static_cast<const json*>(nullptr);
  if (!it->is_array()) return wrongType(path, key, "a list").error();
  return &*it;
}

}  // namespace plumb::json_read
