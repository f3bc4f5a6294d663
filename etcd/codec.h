// etcd's JSON gateway, as text: request bodies and answers (keys and values in base64, 64-bit
// numbers as decimal strings). No I/O: etcd/client.h sends what this builds.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/result.h"
#include "etcd/kv.h"

namespace plumb::etcd::codec {

using json = nlohmann::json;

std::string base64(const std::string& bytes);
Result<std::string> unbase64(const std::string& text);

json rangeRequest(const std::string& key, const std::string& range_end);
json putRequest(const std::string& key, const std::string& value, int64_t lease);
json deleteRequest(const std::string& key, const std::string& range_end);
json txnRequest(const std::vector<Compare>& compares, const std::vector<TxnOp>& success,
                const std::vector<TxnOp>& failure);
json watchRequest(const std::string& key, const std::string& range_end, int64_t start_revision);

// A 64-bit field: etcd sends "123", a missing field is 0.
Result<int64_t> number(const json& obj, const char* key);
// The header's revision.
Result<int64_t> revision(const json& answer);
Result<RangeResult> rangeResult(const json& answer);
Result<TxnResult> txnResult(const json& answer);
Result<KeyValue> keyValue(const json& kv);

// An answer that is an error: {"error": ..., "message": ..., "code": N} -> its Error (the
// gRPC code mapped: NotFound -> kNotFound, Unavailable and DeadlineExceeded -> kTryAgain,
// InvalidArgument and FailedPrecondition -> kInvalid); ok when it is no error.
Status errorOf(const json& answer);

// One line of a watch's stream.
struct WatchLine {
  bool created = false;
  bool canceled = false;
  int64_t compact_revision = 0;  // set when etcd compacted past the revision asked for
  int64_t revision = 0;
  std::vector<WatchEvent> events;
};
Result<WatchLine> watchLine(const std::string& line);

}  // namespace plumb::etcd::codec
