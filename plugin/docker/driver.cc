#include "plugin/docker/driver.h"

#include <chrono>
#include <map>

#include "base/json.h"
#include "base/log.h"

namespace plumb::docker {

Driver::Driver(DriverConfig cfg) : cfg_(std::move(cfg)), stores_(cfg_.state_dir) {}

namespace {
// Upper bounds of the call duration histogram's buckets, in seconds (then +Inf).
constexpr double kBounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
}  // namespace

HttpReply Driver::handle(const std::string& method, const std::string& path,
                         const std::string& body) {
  std::string name = path.empty() || path[0] != '/' ? path : path.substr(1);
  auto start = std::chrono::steady_clock::now();
  HttpReply reply = call(method, name, body);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::lock_guard lock(calls_mu_);
  if (calls_.size() > 64 && !calls_.count(name)) return reply;  // a path dockerd never sends
  auto& h = calls_[name];
  if (h.buckets.empty()) h.buckets.assign(std::size(kBounds), 0);
  for (size_t i = 0; i < std::size(kBounds); ++i)
    if (seconds <= kBounds[i]) ++h.buckets[i];
  ++h.count;
  h.sum += seconds;
  bool failed = reply.status != 200 || reply.body.find("\"Error\":\"") != std::string::npos;
  if (failed) ++h.errors;
  return reply;
}

std::string Driver::metrics() {
  std::string out =
      "# HELP plumb_docker_call_duration_seconds Docker driver calls, by call.\n"
      "# TYPE plumb_docker_call_duration_seconds histogram\n";
  std::string errors =
      "# HELP plumb_docker_call_errors_total Docker driver calls that failed.\n"
      "# TYPE plumb_docker_call_errors_total counter\n";
  std::lock_guard lock(calls_mu_);
  for (const auto& [name, h] : calls_) {
    std::string label = "call=\"" + name + "\"";
    for (size_t i = 0; i < std::size(kBounds); ++i)
      out += fmt::format("plumb_docker_call_duration_seconds_bucket{{{},le=\"{}\"}} {}\n", label,
                         kBounds[i], h.buckets[i]);
    out += fmt::format("plumb_docker_call_duration_seconds_bucket{{{},le=\"+Inf\"}} {}\n", label,
                       h.count);
    out += fmt::format("plumb_docker_call_duration_seconds_sum{{{}}} {}\n", label, h.sum);
    out += fmt::format("plumb_docker_call_duration_seconds_count{{{}}} {}\n", label, h.count);
    errors += fmt::format("plumb_docker_call_errors_total{{{}}} {}\n", label, h.errors);
  }
  return out + errors;
}

HttpReply Driver::call(const std::string& method, const std::string& call,
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
