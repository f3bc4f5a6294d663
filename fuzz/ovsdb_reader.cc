// What ovsdb-server sends on its socket: a byte stream of JSON-RPC values, cut into texts by
// the scanner (fed in pieces as reads arrive), each parsed, and every value in it read as the
// client reads answers: rows of a select, Port and Interface rows, OVSDB atoms (sets, maps,
// uuids, optional integers).
#include <cstdint>
#include <string>

#include "base/json.h"
#include "ovs/jsonrpc.h"
#include "ovs/ovsdb.h"
#include "ovs/vswitch.h"

using namespace plumb;

namespace {

void readAtoms(const nlohmann::json& v, int depth) {
  if (depth > 4) return;
  (void)ovs::setAtoms(v);
  (void)ovs::stringMap(v);
  (void)ovs::uuidOf(v);
  (void)ovs::optionalInt(v);
  (void)ovs::rowsOf(v);
  (void)ovs::portRow(v);
  (void)ovs::interfaceRow(v);
  if (v.is_array() || v.is_object()) {
    for (const auto& e : v) readAtoms(e, depth + 1);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // The first byte says where the stream is cut into reads, as a socket may cut it.
  size_t step = 1 + data[0] % 64;
  ovs::Scanner scanner;
  for (size_t at = 1; at < size; at += step) {
    scanner.feed(text.substr(at, step));
    for (;;) {
      auto next = scanner.next();
      if (!next.ok() || !*next) break;
      auto j = json_read::parse(**next);
      if (j.ok()) readAtoms(*j, 0);
    }
  }
  return 0;
}
