// What etcd holds for the cluster's address blocks, as a host reads another's claims: a key
// under the blocks' directory and its JSON value (etcd is shared: any host, or anyone with
// access, may have written it). The input is the key, a newline, then the value.
#include <cstdint>
#include <string>

#include "etcd/kv.h"
#include "plugin/core/cluster_blocks.h"

using namespace plumb;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string kDir = "/plumb/ipam/198.18.0.0-15/blocks/";
  std::string text(reinterpret_cast<const char*>(data), size);
  auto nl = text.find('\n');
  etcd::KeyValue kv;
  kv.key = text.substr(0, nl);
  kv.value = nl == std::string::npos ? std::string() : text.substr(nl + 1);
  (void)core::readBlockClaim(kDir, kv);
  kv.key = kDir + kv.key;  // and as if it were under the directory
  auto r = core::readBlockClaim(kDir, kv);
  if (!r.ok()) return 0;
  // The block read back prints as a prefix that parses to itself.
  auto again = IpPrefix::parse(r->block.str());
  if (!again.ok() || !(*again == r->block)) __builtin_trap();
  return 0;
}
