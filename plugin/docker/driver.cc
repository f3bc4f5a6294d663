#include "plugin/docker/driver.h"

#include <map>

#include "base/json.h"
#include "base/log.h"

namespace plumb::docker {

StorePool::Lease::~Lease() {
  if (!store_) return;
  std::lock_guard lock(pool_.mu_);
  pool_.idle_.push_back(std::move(store_));
}

Result<StorePool::Lease> StorePool::acquire() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      auto s = std::move(idle_.back());
      idle_.pop_back();
      return Lease(*this, std::move(s));
    }
  }
  PLUMB_ASSIGN(auto s, core::Store::open(dir_));
  return Lease(*this, std::move(s));
}

Driver::Driver(DriverConfig cfg) : cfg_(std::move(cfg)), stores_(cfg_.state_dir) {}

HttpReply Driver::handle(const std::string& method, const std::string& path,
                         const std::string& body) {
  static const std::map<std::string, Handler> kHandlers = {
      {"NetworkDriver.GetCapabilities", &Driver::capabilities},
      {"NetworkDriver.CreateNetwork", &Driver::createNetwork},
      {"NetworkDriver.DeleteNetwork", &Driver::deleteNetwork},
      {"NetworkDriver.CreateEndpoint", &Driver::createEndpoint},
      {"NetworkDriver.EndpointOperInfo", &Driver::endpointOperInfo},
      {"NetworkDriver.DeleteEndpoint", &Driver::deleteEndpoint},
      {"NetworkDriver.Join", &Driver::join},
      {"NetworkDriver.Leave", &Driver::leave},
      {"NetworkDriver.ProgramExternalConnectivity", &Driver::programExternalConnectivity},
      {"NetworkDriver.RevokeExternalConnectivity", &Driver::revokeExternalConnectivity},
      {"NetworkDriver.DiscoverNew", &Driver::nothingToDo},
      {"NetworkDriver.DiscoverDelete", &Driver::nothingToDo},
      {"NetworkDriver.AllocateNetwork", &Driver::nothingToDo},
      {"NetworkDriver.FreeNetwork", &Driver::nothingToDo},
      {"IpamDriver.GetCapabilities", &Driver::ipamCapabilities},
      {"IpamDriver.GetDefaultAddressSpaces", &Driver::defaultAddressSpaces},
      {"IpamDriver.RequestPool", &Driver::requestPool},
      {"IpamDriver.ReleasePool", &Driver::releasePool},
      {"IpamDriver.RequestAddress", &Driver::requestAddress},
      {"IpamDriver.ReleaseAddress", &Driver::releaseAddress},
  };
  std::string call = path.empty() || path[0] != '/' ? path : path.substr(1);
  bool ipam = call.rfind("IpamDriver.", 0) == 0;
  // The network driver's errors are HTTP 500 with "Err" (dockerd shows "NetworkDriver.Join:
  // <Err>"); the IPAM driver's travel in "Error" of a 200 reply, as libnetwork's IPAM API says.
  auto error = [&](int status, const std::string& msg) -> HttpReply {
    log::get("docker")->warn("{}: {}", call, msg);
    if (ipam) return {200, json{{"Error", msg}}.dump()};
    return {status, json{{"Err", msg}}.dump()};
  };
  if (method != "POST") return error(405, "method " + method + " is not allowed; use POST");
  if (call == "Plugin.Activate")
    return {200, json{{"Implements", {"NetworkDriver", "IpamDriver"}}}.dump()};
  auto it = kHandlers.find(call);
  if (it == kHandlers.end()) return error(404, "plumb does not implement " + call);
  json req = json::object();
  // dockerd sends no body at all for the calls without arguments.
  if (body.find_first_not_of(" \t\r\n") != std::string::npos) {
    auto parsed = json_read::parse(body);
    if (!parsed.ok()) return error(400, call + ": malformed JSON: " + parsed.error().message);
    req = std::move(parsed).value();
    if (req.is_null()) req = json::object();
    if (!req.is_object()) return error(400, call + ": the request must be a JSON object");
  }
  auto store = stores_.acquire();
  if (!store.ok()) return error(500, store.error().message);
  auto out = (this->*(it->second))(**store, req);
  if (!out.ok()) return error(500, out.error().message);
  log::get("docker")->debug("{} done", call);
  return {200, out->dump()};
}

Result<json> Driver::nothingToDo(core::Store&, const json&) { return json::object(); }

}  // namespace plumb::docker
