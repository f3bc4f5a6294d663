#include "plugin/docker/labels.h"

#include <chrono>
#include <nlohmann/json.hpp>

#include "base/endpoint.h"
#include "base/json.h"
#include "base/log.h"
#include "plugin/core/directory.h"
#include "plugin/core/store.h"
#include "plugin/docker/network.h"

namespace plumb::docker {
namespace {

using json = nlohmann::json;

constexpr const char* kLink = "plumb.link";
constexpr const char* kExpose = "plumb.expose";

// filters={"type":["container"],"event":["start"]}, URL-encoded.
constexpr const char* kStartEvents =
    "%7B%22type%22%3A%5B%22container%22%5D%2C%22event%22%3A%5B%22start%22%5D%7D";

// A string member of j, or "" (a field a dockerd version leaves out, or null).
std::string strOf(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

const json& objectOf(const json& j, const char* key) {
  static const json kEmpty = json::object();
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : kEmpty;
}

bool hasPlumbLabel(const json& labels) {
  return labels.is_object() && (labels.contains(kLink) || labels.contains(kExpose));
}

}  // namespace

Result<std::vector<LabelEntry>> parseLabel(const std::string& value, bool need_port) {
  std::vector<LabelEntry> out;
  std::string form = need_port ? "NAME:PORT[/udp]" : "NAME[:PORT][/udp]";
  for (size_t start = 0; start <= value.size();) {
    size_t comma = value.find(',', start);
    std::string item =
        value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? value.size() + 1 : comma + 1;
    LabelEntry e;
    if (auto slash = item.find('/'); slash != std::string::npos) {
      std::string proto = item.substr(slash + 1);
      if (proto != "udp" && proto != "tcp")
        return fail(Errc::kInvalid, "'" + item + "': the protocol is tcp or udp");
      e.udp = proto == "udp";
      item.resize(slash);
    }
    if (auto colon = item.find(':'); colon != std::string::npos) {
      PLUMB_ASSIGN(uint16_t port, parsePort(item.substr(colon + 1)));
      if (port == 0) return fail(Errc::kInvalid, "'" + item + "': port 0");
      e.port = port;
      item.resize(colon);
    }
    e.name = item;
    if (e.name.empty()) return fail(Errc::kInvalid, "an entry has no name (expected " + form + ")");
    if (need_port && e.port == 0)
      return fail(Errc::kInvalid, "'" + e.name + "' has no port (expected " + form + ")");
    out.push_back(e);
  }
  return out;
}

ContainerLabels::ContainerLabels(std::string socket, std::string state_dir, Handle handle)
    : socket_(std::move(socket)), state_dir_(std::move(state_dir)), handle_(std::move(handle)) {}

std::unique_ptr<ContainerLabels> ContainerLabels::start(std::string socket, std::string state_dir,
                                                        Handle handle) {
  std::unique_ptr<ContainerLabels> l(
      new ContainerLabels(std::move(socket), std::move(state_dir), std::move(handle)));
  l->thread_ = std::thread([p = l.get()] { p->run(); });
  return l;
}

ContainerLabels::~ContainerLabels() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  stream_.stop();
  thread_.join();
}

bool ContainerLabels::pause(int ms) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_; });
}

void ContainerLabels::run() {
  auto log = log::get("docker");
  bool waiting = false;
  while (!stream_.stopped()) {
    // The containers running now (the daemon restarted, or dockerd was away), then every
    // start from that moment on: dockerd replays the events since then, so none falls between.
    std::string since = core::apiSince(std::chrono::system_clock::now());
    auto list = core::apiGet(socket_, "/containers/json");
    Result<json> running = fail(Errc::kNotFound, "");
    if (list.ok() && list->status == 200) running = json_read::parse(list->body);
    if (!running.ok() || !running->is_array()) {
      if (!waiting) {
        log->info("container labels: no dockerd answers on {} ({}): waiting for one", socket_,
                  list.ok() ? "HTTP " + std::to_string(list->status) : list.error().message);
      }
      waiting = true;
      if (!pause(2000)) return;
      continue;
    }
    if (waiting) log->info("container labels: following dockerd on {}", socket_);
    waiting = false;
    for (const auto& c : *running) {
      if (c.is_object() && hasPlumbLabel(objectOf(c, "Labels"))) apply(strOf(c, "Id"));
    }
    std::string path = "/events?since=" + since + "&filters=" + kStartEvents;
    Status st = stream_.run(socket_, path, [&](const std::string& line) {
      auto event = json_read::parse(line);
      if (!event.ok() || !event->is_object() || strOf(*event, "Action") != "start") return;
      const json& actor = objectOf(*event, "Actor");
      // The event carries the container's labels among its attributes.
      if (hasPlumbLabel(objectOf(actor, "Attributes"))) apply(strOf(actor, "ID"));
    });
    if (stream_.stopped()) return;
    log->info("container labels: dockerd's event stream on {} ended{}", socket_,
              st.ok() ? "" : ": " + st.error().message);
    if (!pause(1000)) return;
  }
}

void ContainerLabels::apply(const std::string& id) {
  auto log = log::get("docker");
  if (id.empty() || id.find_first_not_of("0123456789abcdef") != std::string::npos) return;
  auto reply = core::apiGet(socket_, "/containers/" + id + "/json");
  if (!reply.ok() || reply->status != 200) {
    log->warn("container {}: failed to inspect it for its plumb labels: {}", id.substr(0, 12),
              reply.ok() ? "HTTP " + std::to_string(reply->status) : reply.error().message);
    return;
  }
  auto c = json_read::parse(reply->body);
  if (!c.ok() || !c->is_object()) return;
  std::string name = strOf(*c, "Name");
  if (!name.empty() && name[0] == '/') name.erase(0, 1);
  if (name.empty()) name = id.substr(0, 12);
  const json& state = objectOf(*c, "State");
  if (!json_read::valueOr(state, "Running", false)) return;  // stopped again already
  // Its init's netns, as the command line names a Docker guest: dockerd removes a stopped
  // container's sandbox file only on a later sweep, a process's end is seen at once.
  int pid = json_read::valueOr(state, "Pid", 0);
  if (pid <= 0) return;
  std::string netns = "/proc/" + std::to_string(pid) + "/ns/net";
  const json& settings = objectOf(*c, "NetworkSettings");
  // Its addresses on plumb's networks: the first IPv4 one is where an expose is reached.
  auto store = core::Store::open(state_dir_);
  if (!store.ok()) {
    log->warn("container {}: {}", name, store.error().message);
    return;
  }
  std::string address;
  bool on_plumb = false;
  for (const auto& [net, ep] : objectOf(settings, "Networks").items()) {
    if (!ep.is_object()) continue;
    auto rec = (*store)->findNetwork(strOf(ep, "NetworkID"));
    if (!rec.ok() || !*rec || (*rec)->frontend != kFrontend) continue;
    on_plumb = true;
    std::string v4 = strOf(ep, "IPAddress"), v6 = strOf(ep, "GlobalIPv6Address");
    if (!v4.empty() && (address.empty() || address.find(':') != std::string::npos)) address = v4;
    if (address.empty()) address = v6;
  }
  if (!on_plumb) {
    log->info("container {}: plumb labels, but no endpoint on a plumb network: left alone", name);
    return;
  }
  const json& labels = objectOf(objectOf(*c, "Config"), "Labels");
  // Exposes first: a link without a port takes its service's.
  for (bool expose : {true, false}) {
    const char* label = expose ? kExpose : kLink;
    std::string value = strOf(labels, label);
    if (value.empty()) continue;
    auto entries = parseLabel(value, expose);
    if (!entries.ok()) {
      log->warn("container {}: label {}={}: {}", name, label, value, entries.error().message);
      continue;
    }
    for (const auto& e : *entries) {
      json req = {{"op", expose ? "expose" : "link"},
                  {"guest", "docker-" + strOf(*c, "Id")},
                  {"netns", netns},
                  {"name", e.name},
                  {"port", e.port},
                  {"udp", e.udp}};
      if (expose && !address.empty()) req["address"] = address;
      if (!expose && !strOf(*c, "HostsPath").empty()) req["hosts"] = strOf(*c, "HostsPath");
      auto answer = json_read::parse(handle_(req.dump()));
      std::string what =
          std::string(expose ? "expose " : "link ") + e.name + (e.udp ? "/udp" : "/tcp");
      if (!answer.ok() || !answer->is_object() || answer->contains("error")) {
        log->warn("container {}: label {}: failed to {}: {}", name, label, what,
                  answer.ok() && answer->is_object()
                      ? json_read::valueOr(*answer, "error", std::string())
                      : "no answer");
        continue;
      }
      log->info("container {}: {} ({})", name, what,
                expose ? json_read::valueOr(*answer, "endpoint", std::string())
                       : json_read::valueOr(*answer, "listening", std::string()));
    }
  }
}

}  // namespace plumb::docker
