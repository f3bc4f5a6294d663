// What etcd's JSON gateway answers: range, txn and error answers, key-values with their
// base64 fields, and the lines of a watch stream.
#include <cstdint>
#include <string>

#include "base/json.h"
#include "etcd/codec.h"

using namespace plumb;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  (void)etcd::codec::unbase64(text);
  if (auto b = etcd::codec::unbase64(etcd::codec::base64(text)); !b.ok() || *b != text)
    __builtin_trap();  // base64 must round-trip any bytes
  (void)etcd::codec::watchLine(text);
  auto j = json_read::parse(text);
  if (!j.ok()) return 0;
  (void)etcd::codec::errorOf(*j);
  (void)etcd::codec::revision(*j);
  (void)etcd::codec::rangeResult(*j);
  (void)etcd::codec::txnResult(*j);
  (void)etcd::codec::keyValue(*j);
  (void)etcd::codec::number(*j, "count");
  return 0;
}
