// A network configuration as a runtime passes it on stdin, and a CNI result (a prevResult, or
// a delegated IPAM plugin's answer): parsed, and what parses encodes for every version plumb
// speaks without throwing (an exception after the kernel was changed would leave it changed).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "base/json.h"
#include "plugin/cni/config.h"
#include "plugin/cni/result_codec.h"

using namespace plumb;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto conf = cni::parseNetConf(text);
  if (conf.ok() && conf->prev_result) {
    for (const auto& v : cni::supportedVersions()) (void)cni::toJson(*conf->prev_result, v).dump();
  }
  auto j = json_read::parse(text);
  if (!j.ok()) return 0;
  cni::CniResult result;
  if (cni::fromJson(*j, result).ok()) {
    for (const auto& v : cni::supportedVersions()) (void)cni::toJson(result, v).dump();
  }
  cni::Dns dns;
  if (cni::fromJson(*j, dns).ok()) (void)cni::toJson(dns).dump();
  return 0;
}
