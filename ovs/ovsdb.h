// OVSDB's values and transactions (RFC 7047 sections 5.1 and 5.2), on a Connection: the
// encodings of sets, maps and UUIDs, their decoding (a one-element set comes back as the bare
// atom), and "transact" with each operation's error read back.
#pragma once

#ifdef PLUMB_FRONT_END
#error "front ends speak only to the engine: include plugin/core/{engine,host,in_guest}.h"
#endif

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ovs/jsonrpc.h"

namespace plumb::ovs {

// Encodings.
json uuid(const std::string& id);                           // ["uuid", id]
json namedUuid(const std::string& name);                    // ["named-uuid", name]
json set(std::vector<json> atoms);                          // ["set", [...]]
json map(const std::map<std::string, std::string>& pairs);  // ["map", [[k, v], ...]]

// Decodings; a value of the wrong shape is an error naming what was expected.
Result<std::vector<json>> setAtoms(const json& value);  // a set, or one bare atom
Result<std::map<std::string, std::string>> stringMap(const json& value);
Result<std::string> uuidOf(const json& value);  // ["uuid", id]
// An optional integer column (a set of at most one): empty when the set is empty.
Result<std::optional<long long>> optionalInt(const json& value);

// One "transact" on a database. The reply holds one result per operation and, when the
// commit itself failed (a constraint or referential integrity), one more: any of them with an
// "error" fails the call with the first error and its details. Returns the results, one per
// operation.
// failed_op, when given, is set to the index of the operation that failed (ops.size() for
// the commit), or left alone.
Result<std::vector<json>> transact(Connection& conn, const std::string& db, const json& ops,
                                   std::chrono::milliseconds timeout, size_t* failed_op = nullptr);

}  // namespace plumb::ovs
