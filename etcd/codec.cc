#include "etcd/codec.h"

#include <array>

#include "base/json.h"

namespace plumb::etcd {

std::string prefixEnd(const std::string& prefix) {
  // The next key after every key with this prefix: the last byte that is not 0xff, plus one.
  std::string end = prefix;
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key: etcd's "\0" range end
}

namespace codec {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

const char* targetName(Compare::Target t) {
  switch (t) {
    case Compare::Target::kVersion:
      return "VERSION";
    case Compare::Target::kCreate:
      return "CREATE";
    case Compare::Target::kMod:
      return "MOD";
    case Compare::Target::kValue:
      return "VALUE";
    case Compare::Target::kLease:
      return "LEASE";
  }
  return "VERSION";
}

const char* opName(Compare::Op op) {
  switch (op) {
    case Compare::Op::kEqual:
      return "EQUAL";
    case Compare::Op::kGreater:
      return "GREATER";
    case Compare::Op::kLess:
      return "LESS";
    case Compare::Op::kNotEqual:
      return "NOT_EQUAL";
  }
  return "EQUAL";
}

json requestOp(const TxnOp& op) {
  switch (op.kind) {
    case TxnOp::Kind::kPut:
      return {{"request_put", putRequest(op.key, op.value, op.lease)}};
    case TxnOp::Kind::kDelete:
      return {{"request_delete_range", deleteRequest(op.key, op.range_end)}};
    case TxnOp::Kind::kRange:
      return {{"request_range", rangeRequest(op.key, op.range_end)}};
  }
  return json::object();
}

}  // namespace

std::string base64(const std::string& bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t v = static_cast<unsigned char>(bytes[i]) << 16 |
                 static_cast<unsigned char>(bytes[i + 1]) << 8 |
                 static_cast<unsigned char>(bytes[i + 2]);
    for (int shift : {18, 12, 6, 0}) out.push_back(kAlphabet[(v >> shift) & 63]);
  }
  if (size_t left = bytes.size() - i; left > 0) {
    uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    if (left == 2) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(left == 2 ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

Result<std::string> unbase64(const std::string& text) {
  std::array<int, 256> value{};
  value.fill(-1);
  for (int i = 0; i < 64; ++i) value[static_cast<unsigned char>(kAlphabet[i])] = i;
  if (text.size() % 4 != 0) return fail(Errc::kDecode, "malformed base64 (length)");
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    uint32_t v = 0;
    int pad = 0;
    for (size_t j = 0; j < 4; ++j) {
      char c = text[i + j];
      int d = value[static_cast<unsigned char>(c)];
      if (c == '=' && i + 4 == text.size() && j >= 2) {
        ++pad;
        d = 0;
      } else if (d < 0 || pad > 0) {
        return fail(Errc::kDecode, "malformed base64");
      }
      v = v << 6 | static_cast<uint32_t>(d);
    }
    out.push_back(static_cast<char>(v >> 16));
    if (pad < 2) out.push_back(static_cast<char>(v >> 8 & 0xff));
    if (pad < 1) out.push_back(static_cast<char>(v & 0xff));
  }
  return out;
}

json rangeRequest(const std::string& key, const std::string& range_end) {
  json j = {{"key", base64(key)}};
  if (!range_end.empty()) j["range_end"] = base64(range_end);
  return j;
}

json putRequest(const std::string& key, const std::string& value, int64_t lease) {
  json j = {{"key", base64(key)}, {"value", base64(value)}};
  if (lease != 0) j["lease"] = std::to_string(lease);
  return j;
}

json deleteRequest(const std::string& key, const std::string& range_end) {
  return rangeRequest(key, range_end);
}

json txnRequest(const std::vector<Compare>& compares, const std::vector<TxnOp>& success,
                const std::vector<TxnOp>& failure) {
  json j = {{"compare", json::array()}, {"success", json::array()}, {"failure", json::array()}};
  for (const auto& c : compares) {
    json cj = {{"key", base64(c.key)}, {"target", targetName(c.target)}, {"result", opName(c.op)}};
    switch (c.target) {
      case Compare::Target::kVersion:
        cj["version"] = std::to_string(c.number);
        break;
      case Compare::Target::kCreate:
        cj["create_revision"] = std::to_string(c.number);
        break;
      case Compare::Target::kMod:
        cj["mod_revision"] = std::to_string(c.number);
        break;
      case Compare::Target::kValue:
        cj["value"] = base64(c.value);
        break;
      case Compare::Target::kLease:
        cj["lease"] = std::to_string(c.number);
        break;
    }
    j["compare"].push_back(cj);
  }
  for (const auto& op : success) j["success"].push_back(requestOp(op));
  for (const auto& op : failure) j["failure"].push_back(requestOp(op));
  return j;
}

json watchRequest(const std::string& key, const std::string& range_end, int64_t start_revision) {
  json create = rangeRequest(key, range_end);
  if (start_revision > 0) create["start_revision"] = std::to_string(start_revision);
  return {{"create_request", create}};
}

Result<int64_t> number(const json& obj, const char* key) {
  if (!obj.is_object())
    return fail(Errc::kDecode, std::string("'") + key + "' is not in an object");
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return int64_t{0};
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_string()) {
    const auto& s = it->get_ref<const std::string&>();
    try {
      size_t used = 0;
      long long v = std::stoll(s, &used);
      if (used == s.size()) return static_cast<int64_t>(v);
    } catch (const std::exception&) {
    }
  }
  return fail(Errc::kDecode, std::string("'") + key + "' is not a number");
}

Result<int64_t> revision(const json& answer) {
  if (!answer.is_object()) return fail(Errc::kDecode, "an answer is not a JSON object");
  auto it = answer.find("header");
  if (it == answer.end() || !it->is_object()) return fail(Errc::kDecode, "an answer has no header");
  return number(*it, "revision");
}

Result<KeyValue> keyValue(const json& kv) {
  if (!kv.is_object()) return fail(Errc::kDecode, "a key-value is not an object");
  KeyValue out;
  std::string key, value;
  if (kv.contains("key")) PLUMB_TRY(json_read::str(kv, "key", key));
  if (kv.contains("value")) PLUMB_TRY(json_read::str(kv, "value", value));
  PLUMB_ASSIGN(out.key, unbase64(key));
  PLUMB_ASSIGN(out.value, unbase64(value));
  PLUMB_ASSIGN(out.create_revision, number(kv, "create_revision"));
  PLUMB_ASSIGN(out.mod_revision, number(kv, "mod_revision"));
  PLUMB_ASSIGN(out.version, number(kv, "version"));
  PLUMB_ASSIGN(out.lease, number(kv, "lease"));
  return out;
}

Result<RangeResult> rangeResult(const json& answer) {
  RangeResult r;
  PLUMB_ASSIGN(r.revision, revision(answer));
  PLUMB_ASSIGN(r.count, number(answer, "count"));
  if (auto it = answer.find("kvs"); it != answer.end() && !it->is_null()) {
    if (!it->is_array()) return fail(Errc::kDecode, "'kvs' is not an array");
    for (const auto& kv : *it) {
      PLUMB_ASSIGN(auto one, keyValue(kv));
      r.kvs.push_back(std::move(one));
    }
  }
  return r;
}

Result<TxnResult> txnResult(const json& answer) {
  TxnResult r;
  PLUMB_ASSIGN(r.revision, revision(answer));
  if (auto it = answer.find("succeeded"); it != answer.end() && !it->is_null()) {
    if (!it->is_boolean()) return fail(Errc::kDecode, "'succeeded' is not a boolean");
    r.succeeded = it->get<bool>();
  }
  if (auto it = answer.find("responses"); it != answer.end() && !it->is_null()) {
    if (!it->is_array()) return fail(Errc::kDecode, "'responses' is not an array");
    for (const auto& resp : *it) {
      if (!resp.is_object()) return fail(Errc::kDecode, "a txn response is not an object");
      auto range = resp.find("response_range");
      if (range == resp.end()) continue;
      // A response inside a txn has a header with the revision only.
      RangeResult rr;
      rr.revision = r.revision;
      PLUMB_ASSIGN(rr.count, number(*range, "count"));
      if (auto kvs = range->find("kvs"); kvs != range->end() && kvs->is_array()) {
        for (const auto& kv : *kvs) {
          PLUMB_ASSIGN(auto one, keyValue(kv));
          rr.kvs.push_back(std::move(one));
        }
      }
      r.ranges.push_back(std::move(rr));
    }
  }
  return r;
}

Status errorOf(const json& answer) {
  if (!answer.is_object() || !answer.contains("error")) return {};
  int code = json_read::valueOr(answer, "code", -1);
  std::string message = json_read::valueOr(answer, "message", std::string());
  if (message.empty() && answer["error"].is_string()) message = answer["error"].get<std::string>();
  if (message.empty()) message = "error code " + std::to_string(code);
  Errc errc = Errc::kIo;
  switch (code) {
    case 5:  // NotFound
      errc = Errc::kNotFound;
      break;
    case 4:   // DeadlineExceeded
    case 14:  // Unavailable
      errc = Errc::kTryAgain;
      break;
    case 3:  // InvalidArgument
    case 9:  // FailedPrecondition
      errc = Errc::kInvalid;
      break;
    default:
      break;
  }
  return fail(errc, message);
}

Result<WatchLine> watchLine(const std::string& line) {
  PLUMB_ASSIGN(json j, json_read::parse(line));
  if (!j.is_object()) return fail(Errc::kDecode, "a watch answer is not a JSON object");
  if (auto it = j.find("error"); it != j.end()) {
    if (it->is_object()) PLUMB_TRY(errorOf(*it));
    return fail(Errc::kIo, "the watch failed: " + line.substr(0, 200));
  }
  auto result = j.find("result");
  if (result == j.end() || !result->is_object())
    return fail(Errc::kDecode, "a watch answer has no result");
  WatchLine w;
  w.created = json_read::valueOr(*result, "created", false);
  w.canceled = json_read::valueOr(*result, "canceled", false);
  PLUMB_ASSIGN(w.compact_revision, number(*result, "compact_revision"));
  PLUMB_ASSIGN(w.revision, revision(*result));
  if (auto events = result->find("events"); events != result->end() && !events->is_null()) {
    if (!events->is_array()) return fail(Errc::kDecode, "'events' is not an array");
    for (const auto& e : *events) {
      if (!e.is_object()) return fail(Errc::kDecode, "a watch event is not an object");
      WatchEvent we;
      we.deleted = json_read::valueOr(e, "type", std::string()) == "DELETE";
      auto kv = e.find("kv");
      if (kv == e.end()) return fail(Errc::kDecode, "a watch event has no kv");
      PLUMB_ASSIGN(we.kv, keyValue(*kv));
      w.events.push_back(std::move(we));
    }
  }
  return w;
}

}  // namespace codec
}  // namespace plumb::etcd
