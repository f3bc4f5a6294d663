#include "plugin/core/cluster_ipam.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <system_error>
#include <thread>

#include "base/fd.h"
#include "base/json.h"
#include "base/log.h"
#include "base/process.h"
#include "etcd/client.h"
#include "plugin/core/cluster_blocks.h"

namespace plumb::core {
namespace {

using Clock = std::chrono::steady_clock;

// steady_clock is CLOCK_MONOTONIC: one clock for every process of this boot, so a renewal one
// CNI run made is measured by the next; a renewal of another boot is no renewal.
const std::string& bootId() {
  static const std::string id = [] {
    std::ifstream f("/proc/sys/kernel/random/boot_id");
    std::string s;
    std::getline(f, s);
    return s;
  }();
  return id;
}

int blockLen(const ClusterIpamConfig& c, const IpPrefix& subnet) {
  if (subnet.isV4()) return c.block_size;
  if (c.block_size_v6 != 0) return c.block_size_v6;
  return std::max(subnet.len(), std::min(subnet.len() + 16, 122));
}

std::vector<IpPrefix> subnetsOf(const std::vector<RangeSet>& sets) {
  std::set<IpPrefix> seen;
  for (const auto& set : sets)
    for (const auto& r : set) seen.insert(r.subnet.network());
  return {seen.begin(), seen.end()};
}

// cluster.lock: held across a host's dealings with etcd (renewing, claiming, giving back) and,
// shared, across an allocation from its blocks: a block goes back only while no allocation
// can land in it. cluster-claim.lock: held by whoever claims a block (a helper ahead of need,
// or an ADD that found none free), taken before cluster.lock, so that an ADD waits for the
// block a helper is claiming rather than claiming a second one beside it.
constexpr const char* kHostLock = "cluster.lock";
constexpr const char* kClaimLock = "cluster-claim.lock";

class ClusterLock {
 public:
  // op: LOCK_SH or LOCK_EX, waited for; with LOCK_NB, EWOULDBLOCK when another holds it.
  // With a deadline, waited for until then only (flock has no timed wait: tried again every
  // 5 ms on the one descriptor): for a claim ahead of need, which no caller waits for and
  // which must not outlast its process.
  static Result<ClusterLock> take(Store& store, int op, const char* name = kHostLock,
                                  std::optional<Clock::time_point> deadline = std::nullopt) {
    std::string path = (std::filesystem::path(store.path()).parent_path() / name).string();
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd.valid()) return failErrno(errno, "failed to open " + path);
    auto start = Clock::now();
    while (::flock(fd.get(), deadline ? op | LOCK_NB : op) != 0) {
      if (errno == EINTR) continue;
      if (errno != EWOULDBLOCK || !deadline) return failErrno(errno, "failed to lock " + path);
      if (Clock::now() >= *deadline) {
        auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
        return fail(Errc::kTryAgain, "the host's " + std::string(name) + " beside " + store.path() +
                                         " was still held after " + std::to_string(waited.count()) +
                                         " ms");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return ClusterLock(std::move(fd));
  }

 private:
  explicit ClusterLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

struct LocalLease {
  int64_t id = 0;
  Clock::time_point renewed{};
};

Result<std::optional<LocalLease>> loadLease(Store& store, const ClusterSpec& spec) {
  std::optional<LocalLease> out;
  PLUMB_TRY(store.read([&](Db& db) -> Status {
    PLUMB_ASSIGN(auto q, db.prepare("SELECT lease, renewed, boot FROM cluster_leases WHERE "
                                    "prefix=? AND host=?"));
    q.bind(1, spec.prefix).bind(2, spec.host);
    PLUMB_ASSIGN(bool row, q.step());
    if (!row) return {};
    LocalLease l;
    l.id = q.integer(0);
    // Another boot's renewal says nothing of now: the lease is renewed before it is trusted.
    if (q.text(2) == bootId()) l.renewed = Clock::time_point(Clock::duration(q.integer(1)));
    out = l;
    return {};
  }));
  return out;
}

Status saveLease(Store& store, const ClusterSpec& spec, const HostLease& lease) {
  return store.write([&](Db& db) -> Status {
    PLUMB_ASSIGN(auto q, db.prepare("INSERT OR REPLACE INTO cluster_leases VALUES(?,?,?,?,?)"));
    q.bind(1, spec.prefix)
        .bind(2, spec.host)
        .bind(3, static_cast<long long>(lease.id()))
        .bind(4, static_cast<long long>(lease.renewed().time_since_epoch().count()))
        .bind(5, bootId());
    return q.run();
  });
}

Result<std::vector<IpPrefix>> localBlocks(Store& store, const ClusterSpec& spec,
                                          const IpPrefix& subnet) {
  std::vector<IpPrefix> out;
  PLUMB_TRY(store.read([&](Db& db) -> Status {
    PLUMB_ASSIGN(auto q, db.prepare("SELECT block FROM cluster_blocks WHERE prefix=? AND host=? "
                                    "AND subnet=?"));
    q.bind(1, spec.prefix).bind(2, spec.host).bind(3, subnet.str());
    for (;;) {
      PLUMB_ASSIGN(bool row, q.step());
      if (!row) break;
      PLUMB_ASSIGN(auto b, IpPrefix::parse(q.text(0)));
      out.push_back(b);
    }
    return {};
  }));
  std::sort(out.begin(), out.end());
  return out;
}

Status addLocalBlock(Store& store, const ClusterSpec& spec, const IpPrefix& subnet,
                     const IpPrefix& block) {
  return store.write([&](Db& db) -> Status {
    PLUMB_ASSIGN(auto q, db.prepare("INSERT OR IGNORE INTO cluster_blocks VALUES(?,?,?,?)"));
    q.bind(1, spec.prefix).bind(2, spec.host).bind(3, subnet.str()).bind(4, block.str());
    return q.run();
  });
}

Status removeLocalBlock(Store& store, const ClusterSpec& spec, const IpPrefix& block) {
  return store.write([&](Db& db) -> Status {
    PLUMB_ASSIGN(auto q,
                 db.prepare("DELETE FROM cluster_blocks WHERE prefix=? AND host=? AND block=?"));
    q.bind(1, spec.prefix).bind(2, spec.host).bind(3, block.str());
    return q.run();
  });
}

// The part of range r inside block, if any: [lo, hi], and how many addresses it offers (the
// gateway is never handed out).
struct Slice {
  IpRange range;
  long long capacity = 0;
};

std::optional<Slice> slice(const IpRange& r, const IpPrefix& block) {
  IpAddr lo = std::max(block.first(), *r.start);
  IpAddr hi = std::min(block.last(), *r.end);
  if (hi < lo) return std::nullopt;
  unsigned __int128 n = hi.number() - lo.number() + 1;
  long long capacity = n > LLONG_MAX ? LLONG_MAX : static_cast<long long>(n);
  if (r.gateway && !(*r.gateway < lo) && !(hi < *r.gateway)) --capacity;
  if (capacity <= 0) return std::nullopt;
  return Slice{IpRange{r.subnet, lo, hi, r.gateway}, capacity};
}

}  // namespace

std::string clusterHostName() {
  const char* env = std::getenv("PLUMB_HOST");
  if (env && *env) return env;
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "";
  return name;
}

Result<std::vector<std::string>> parseEtcdEndpoints(const std::string& list) {
  return etcd::parseEndpoints(list);
}

Status validateClusterIpam(const ClusterIpamConfig& config, const std::vector<RangeSet>& ranges) {
  if (config.endpoints.empty())
    return fail(Errc::kInvalid, "etcd needs at least one endpoint (\"http://HOST:PORT\")");
  for (const auto& e : config.endpoints) PLUMB_TRY(etcd::validateEndpoint(e));
  PLUMB_TRY(validateClusterSpec({config.prefix, config.host, config.lease_ttl_s}));
  if (config.timeout_ms < 100 || config.timeout_ms > 60000)
    return fail(Errc::kInvalid, "an etcd timeout of " + std::to_string(config.timeout_ms) +
                                    " ms is out of range (100-60000)");
  for (const auto& subnet : subnetsOf(ranges))
    PLUMB_TRY(BlockClaims::validate(subnet, blockLen(config, subnet)));
  return {};
}

namespace {

// Claims made ahead of need on threads of a long-lived process; waited for as it ends.
std::mutex claims_mu;
std::condition_variable claims_done;
int claims_running = 0;

void claimDone() {
  std::lock_guard lock(claims_mu);
  if (--claims_running == 0) claims_done.notify_all();
}

void claimOnThread(std::string spec) {
  {
    std::lock_guard lock(claims_mu);
    ++claims_running;
  }
  try {
    std::thread([spec = std::move(spec)] {
      (void)ClusterAddresses::claimMain(spec);
      claimDone();
    }).detach();
  } catch (const std::system_error&) {
    claimDone();  // no thread to be had: the ADD that needs the block claims it
  }
}

}  // namespace

struct ClusterAddresses::Impl {
  Store& store;
  ClusterIpamConfig config;
  IpamRequest req;
  std::vector<RouteSpec> routes;
  ClusterSpec spec;
  std::vector<IpPrefix> subnets;
  std::unique_ptr<etcd::Client> own;
  etcd::Kv* client = nullptr;  // own, or the caller's
  std::optional<HostLease> lease;

  Impl(Store& s, ClusterIpamConfig c, IpamRequest r, std::vector<RouteSpec> rt)
      : store(s), config(std::move(c)), req(std::move(r)), routes(std::move(rt)) {
    spec = {config.prefix, config.host, config.lease_ttl_s};
    subnets = subnetsOf(req.range_sets);
  }

  Status connect() {
    if (!client) {
      PLUMB_ASSIGN(own, etcd::Client::create({config.endpoints, config.timeout_ms}));
      client = own.get();
    }
    if (!lease) lease.emplace(*client, spec);
    return {};
  }

  BlockClaims claims(const IpPrefix& subnet) {
    return BlockClaims(*client, spec, subnet, blockLen(config, subnet));
  }

  // Whether the lease the store holds was renewed less than half a TTL ago.
  Result<bool> leaseTrusted() {
    PLUMB_ASSIGN(auto l, loadLease(store, spec));
    if (!l || l->renewed == Clock::time_point{}) return false;
    return Clock::now() - l->renewed < std::chrono::milliseconds(config.lease_ttl_s * 500);
  }

  // The request over this host's blocks (each range cut to the blocks of its subnet), with
  // whether every range set has a block with room and every requested address a block.
  struct Local {
    IpamRequest req;
    std::vector<bool> set_has_room;
    std::vector<IpAddr> outside;  // requested addresses in no block of this host's
  };
  Result<Local> local(bool count) {
    Local out;
    out.req = req;
    for (auto& set : out.req.range_sets) set.clear();
    for (size_t i = 0; i < req.range_sets.size(); ++i) {
      bool room = false;
      for (const auto& r : req.range_sets[i]) {
        PLUMB_ASSIGN(auto blocks, localBlocks(store, spec, r.subnet.network()));
        // In address order: the local IPAM fills the first with room, so a block claimed ahead
        // of need stays empty until the others are full (a full one costs two look-ups).
        for (const auto& b : blocks) {
          auto s = slice(r, b);
          if (!s) continue;
          out.req.range_sets[i].push_back(s->range);
          if (!count || room) continue;
          PLUMB_ASSIGN(long long held,
                       Ipam(store).countHeld(r.subnet, *s->range.start, *s->range.end));
          room = held < s->capacity;
        }
      }
      // A set a requested address picks needs that address's block, not one with room.
      for (const auto& want : req.requested)
        for (const auto& r : req.range_sets[i]) room |= inRange(r, want);
      out.set_has_room.push_back(room);
    }
    for (const auto& want : req.requested) {
      bool inside = false;
      for (const auto& set : out.req.range_sets)
        for (const auto& r : set) inside |= !(want < *r.start) && !(*r.end < want);
      if (!inside) out.outside.push_back(want);
    }
    return out;
  }

  static Addressing addressing(const std::vector<Allocation>& got,
                               const std::vector<RouteSpec>& routes) {
    Addressing out;
    for (const auto& a : got) out.addresses.push_back({a.address, a.gateway, a.fresh});
    out.routes = routes;
    return out;
  }

  static bool inRange(const IpRange& r, const IpAddr& addr) {
    return !(addr < *r.start) && !(*r.end < addr) && !(r.gateway && *r.gateway == addr);
  }

  // The range of the request's that holds addr (a requested address).
  const IpRange* rangeHolding(const IpAddr& addr) const {
    for (const auto& set : req.range_sets)
      for (const auto& r : set)
        if (inRange(r, addr)) return &r;
    return nullptr;
  }

  // This host's blocks of subnet as etcd has them, taken into the store (a block marked used
  // by a run that died before it recorded it).
  Status adopt(const IpPrefix& subnet) {
    PLUMB_ASSIGN(auto mine, claims(subnet).mine());
    PLUMB_ASSIGN(auto known, localBlocks(store, spec, subnet));
    for (const auto& b : mine) {
      if (std::find(known.begin(), known.end(), b) == known.end())
        PLUMB_TRY(addLocalBlock(store, spec, subnet, b));
    }
    for (const auto& b : known) {
      // Gone from etcd (deleted by hand): no longer this host's to hand out.
      if (std::find(mine.begin(), mine.end(), b) == mine.end())
        PLUMB_TRY(removeLocalBlock(store, spec, b));
    }
    return {};
  }

  // A new block of subnet for this host, claimed as used (in the one transaction that claims
  // it): a used block is never reclaimed by another host, so no address of it is ever handed
  // out twice, even when this run dies before it records the block (the host takes such a
  // block back when it next holds no address in the subnet, or starts on a new store).
  Status take(const IpPrefix& subnet, int64_t lease_id, const std::optional<IpAddr>& holding) {
    auto c = claims(subnet);
    Result<IpPrefix> block = holding ? c.claimHolding(lease_id, *holding, /*used=*/true)
                                     : c.claim(lease_id, /*used=*/true);
    if (!block.ok()) return std::move(block).error();
    log::get("core")->debug("host {} claimed block {} of {}", spec.host, block->str(),
                            subnet.str());
    return addLocalBlock(store, spec, subnet, *block);
  }

  Result<std::vector<Allocation>> allocateUnderLock() {
    PLUMB_TRY(connect());
    PLUMB_ASSIGN(auto saved, loadLease(store, spec));
    if (saved) lease->restore(saved->id, saved->renewed);
    bool lapsed = false;
    PLUMB_ASSIGN(int64_t id, lease->current(&lapsed));
    if (!saved || saved->id != id || saved->renewed != lease->renewed())
      PLUMB_TRY(saveLease(store, spec, *lease));
    if (lapsed || !saved) {
      // A lease that lapsed: its blocks move to the new one (an unused one another host
      // reclaimed meanwhile is no longer this host's). A store without a lease is new: the
      // blocks etcd holds for this host are taken up.
      for (const auto& s : subnets) {
        if (lapsed) PLUMB_TRY(claims(s).rebind(id));
        PLUMB_TRY(adopt(s));
      }
    }
    PLUMB_ASSIGN(auto l, local(/*count=*/true));
    for (size_t i = 0; i < l.set_has_room.size(); ++i) {
      if (l.set_has_room[i]) continue;
      // A block of the set's first subnet that has one free, else the next subnet's.
      Status took = fail(Errc::kExhausted, "the range set is empty");
      for (const auto& r : req.range_sets[i]) {
        took = take(r.subnet.network(), id, std::nullopt);
        if (took.ok() || took.error().code != Errc::kExhausted) break;
      }
      PLUMB_TRY(took);
    }
    for (const auto& want : l.outside) {
      // An address in none of the ranges: the local IPAM names it below.
      if (const IpRange* r = rangeHolding(want)) PLUMB_TRY(take(r->subnet.network(), id, want));
    }
    PLUMB_ASSIGN(l, local(/*count=*/false));
    return Ipam(store).allocate(l.req);
  }

  Result<std::vector<Allocation>> allocate() {
    auto got = allocateOnce();
    if (got.ok()) topUp();
    return got;
  }

  Result<std::vector<Allocation>> allocateOnce() {
    {
      PLUMB_ASSIGN(auto shared, ClusterLock::take(store, LOCK_SH));
      // The common case, in one transaction (its reads are savepoints of it): the owner's
      // addresses already held (an ADD run again), or new ones from this host's blocks under
      // a lease renewed recently. Anything else (no trusted lease, no room, an address in no
      // block of this host's) goes on to etcd below, outside any transaction.
      std::optional<std::vector<Allocation>> done;
      PLUMB_TRY(store.write([&](Db&) -> Status {
        PLUMB_ASSIGN(auto held, Ipam(store).lookup(req.owner));
        if (!held.empty()) {
          done = std::move(held);
          return {};
        }
        PLUMB_ASSIGN(bool trusted, leaseTrusted());
        if (!trusted) return {};
        PLUMB_ASSIGN(auto l, local(/*count=*/false));
        bool every_set = std::all_of(l.req.range_sets.begin(), l.req.range_sets.end(),
                                     [](const RangeSet& s) { return !s.empty(); });
        if (!every_set || !l.outside.empty()) return {};
        auto got = Ipam(store).allocate(l.req);
        if (got.ok()) {
          done = std::move(*got);
          return {};
        }
        if (got.error().code == Errc::kExhausted) return {};
        return std::move(got).error();
      }));
      if (done) return std::move(*done);
    }
    PLUMB_ASSIGN(auto claiming, ClusterLock::take(store, LOCK_EX, kClaimLock));
    PLUMB_ASSIGN(auto exclusive, ClusterLock::take(store, LOCK_EX));
    // Again under the locks: a concurrent ADD of the same owner may have allocated meanwhile.
    PLUMB_ASSIGN(auto held, Ipam(store).lookup(req.owner));
    if (!held.empty()) return held;
    return allocateUnderLock();
  }

  // This host's blocks of subnet, with how many addresses of the request's ranges each offers
  // and holds.
  struct BlockRoom {
    IpPrefix block;
    long long capacity = 0, held = 0;
  };
  Result<std::vector<BlockRoom>> room(const IpPrefix& subnet) {
    PLUMB_ASSIGN(auto blocks, localBlocks(store, spec, subnet));
    std::vector<BlockRoom> out;
    for (const auto& b : blocks) {
      BlockRoom r{b};
      for (const auto& set : req.range_sets) {
        for (const auto& range : set) {
          if (range.subnet.network() != subnet) continue;
          auto sl = slice(range, b);
          if (!sl) continue;
          r.capacity += sl->capacity;
          PLUMB_ASSIGN(long long held,
                       Ipam(store).countHeld(subnet, *sl->range.start, *sl->range.end));
          r.held += held;
        }
      }
      out.push_back(r);
    }
    return out;
  }
  static long long freeIn(const std::vector<BlockRoom>& rooms) {
    long long free = 0;
    for (const auto& r : rooms) free += r.capacity - r.held;
    return free;
  }
  // The free addresses a host keeps in a subnet ahead of need: a quarter of a block. Below
  // it, a helper claims the next block in the background; above it, an emptied block goes.
  long long spare(const IpPrefix& subnet) const {
    int bits = (subnet.isV4() ? 32 : 128) - blockLen(config, subnet);
    long long size = bits >= 62 ? (1LL << 62) : (1LL << bits);
    return std::max(1LL, size / 4);
  }

  // Blocks of the request's subnets that can go back to etcd: empty ones the host does not
  // need as its spare; with `orphans`, the subnets where this host holds no address at all
  // (where every block goes, and where a block an interrupted run claimed but never
  // recorded may hide).
  Result<std::vector<std::pair<IpPrefix, IpPrefix>>> emptyBlocks(std::vector<IpPrefix>* orphans) {
    std::vector<std::pair<IpPrefix, IpPrefix>> out;
    for (const auto& s : subnets) {
      PLUMB_ASSIGN(long long total, Ipam(store).countHeld(s, s.first(), s.last()));
      if (total == 0 && orphans) orphans->push_back(s);
      PLUMB_ASSIGN(auto rooms, room(s));
      long long free = freeIn(rooms);
      for (const auto& r : rooms) {
        if (r.held != 0) continue;
        if (total != 0 && free - r.capacity < spare(s)) continue;  // kept as the spare
        free -= r.capacity;
        out.emplace_back(s, r.block);
      }
    }
    return out;
  }

  // After an allocation: a subnet whose free addresses on this host fell to the spare gets
  // a block claimed by a helper process, so that the ADD that would have needed it does not
  // wait for etcd.
  void topUp() {
    if (!helper_available) return;
    std::vector<IpPrefix> short_of_room;
    // One read transaction for every block's count.
    auto counted = store.read([&](Db&) -> Status {
      for (const auto& s : subnets) {
        PLUMB_ASSIGN(auto rooms, room(s));
        if (freeIn(rooms) <= spare(s)) short_of_room.push_back(s);
      }
      return {};
    });
    if (!counted.ok()) return;
    for (const auto& s : short_of_room) spawnClaimHelper(s);
  }

  void spawnClaimHelper(const IpPrefix& subnet) {
    // One helper at a time: a running one holds the claim lock (checked, not kept).
    if (!ClusterLock::take(store, LOCK_EX | LOCK_NB, kClaimLock).ok()) return;
    std::string dir = std::filesystem::path(store.path()).parent_path().string();
    nlohmann::json ranges = nlohmann::json::array();
    for (const auto& set : req.range_sets) {
      for (const auto& r : set) {
        if (r.subnet.network() != subnet) continue;
        ranges.push_back({{"subnet", r.subnet.str()},
                          {"start", r.start->str()},
                          {"end", r.end->str()},
                          {"gateway", r.gateway ? r.gateway->str() : ""}});
      }
    }
    nlohmann::json j = {{"dir", dir},
                        {"endpoints", config.endpoints},
                        {"prefix", config.prefix},
                        {"blockSize", config.block_size},
                        {"blockSizeV6", config.block_size_v6},
                        {"host", config.host},
                        {"timeoutMs", config.timeout_ms},
                        {"leaseTtl", config.lease_ttl_s},
                        {"ranges", ranges}};
    if (isLongLived()) {
      // The daemon and the resident CNI service have plumb and libcurl loaded already: a
      // thread of theirs claims (on a store connection of its own), where a helper process
      // would pay exec and loading first, on the same cores as the ADDs that follow.
      claimOnThread(j.dump());
      return;
    }
    std::string env = "PLUMB_CLUSTER_CLAIM=" + j.dump();
    char* argv[] = {const_cast<char*>("plumb-cluster-claim"), nullptr};
    char* envp[] = {env.data(), nullptr};
    (void)spawnSelf(argv, envp);
  }

  // The helper's work: one block claimed for subnet if the host still needs it.
  Status claimSpare() {
    auto claiming = ClusterLock::take(store, LOCK_EX | LOCK_NB, kClaimLock);
    if (!claiming.ok()) return {};
    for (const auto& s : subnets) {
      PLUMB_ASSIGN(long long total, Ipam(store).countHeld(s, s.first(), s.last()));
      if (total == 0) continue;  // nothing held: nothing to keep room for
      PLUMB_ASSIGN(auto rooms, room(s));
      if (freeIn(rooms) > spare(s)) continue;
      PLUMB_TRY(connect());
      PLUMB_ASSIGN(auto saved, loadLease(store, spec));
      if (!saved) return {};  // a new store: the next ADD takes up what etcd holds first
      lease->restore(saved->id, saved->renewed);
      bool lapsed = false;
      PLUMB_ASSIGN(int64_t id, lease->current(&lapsed));
      if (lapsed) return {};  // the next ADD moves the blocks to the new lease first
      if (saved->id != id || saved->renewed != lease->renewed())
        PLUMB_TRY(saveLease(store, spec, *lease));
      // Claimed in etcd without holding the host's lock (ADDs go on meanwhile), then recorded
      // under it.
      auto c = claims(s);
      PLUMB_ASSIGN(auto block, c.claim(id, /*used=*/true));
      // Held by an ADD or DEL (each bounded by its etcd calls) or by something stuck: the
      // claim waits one etcd timeout for it, then gives its block back to etcd.
      auto exclusive = ClusterLock::take(
          store, LOCK_EX, kHostLock, Clock::now() + std::chrono::milliseconds(config.timeout_ms));
      if (!exclusive.ok()) {
        (void)c.release(block);
        return std::move(exclusive).error().wrap("block " + block.str() + " given back");
      }
      // The host may have given back its last address meanwhile (and its blocks with it):
      // then this one goes back too.
      PLUMB_ASSIGN(long long still, Ipam(store).countHeld(s, s.first(), s.last()));
      if (still == 0) return c.release(block);
      PLUMB_TRY(addLocalBlock(store, spec, s, block));
      log::get("core")->debug("host {} claimed block {} of {} ahead of need", spec.host,
                              block.str(), s.str());
    }
    return {};
  }

  static inline bool helper_available = false;

  Status release(const std::function<Status()>& local) {
    PLUMB_TRY(local());
    std::vector<IpPrefix> orphans;
    PLUMB_ASSIGN(auto empty, emptyBlocks(&orphans));
    if (empty.empty() && orphans.empty()) return {};
    PLUMB_ASSIGN(auto exclusive, ClusterLock::take(store, LOCK_EX));
    // Once etcd has failed to answer, it is not asked again in this release: DEL returns.
    Status reach = connect();
    orphans.clear();
    // An allocation may have landed meanwhile: counted again under the lock.
    PLUMB_ASSIGN(empty, emptyBlocks(&orphans));
    if (reach.ok() && !orphans.empty()) {
      for (const auto& s : orphans) {
        reach = adopt(s);
        if (!reach.ok()) break;
      }
      PLUMB_ASSIGN(empty, emptyBlocks(nullptr));
    }
    for (const auto& [s, b] : empty) {
      Status st = reach;
      if (st.ok()) st = claims(s).release(b);
      if (st.ok() || st.error().code == Errc::kNotFound) {
        PLUMB_TRY(removeLocalBlock(store, spec, b));
        continue;
      }
      reach = st;
      // Still this host's in etcd: used again, or given back by a later release.
      log::get("core")->warn("block {} stays host {}'s: {}", b.str(), spec.host,
                             st.error().message);
    }
    return {};
  }
};

ClusterAddresses::ClusterAddresses(Store& store, ClusterIpamConfig config, IpamRequest req,
                                   std::vector<RouteSpec> routes)
    : impl_(std::make_unique<Impl>(store, std::move(config), std::move(req), std::move(routes))) {}

ClusterAddresses::ClusterAddresses(Store& store, ClusterIpamConfig config, IpamRequest req,
                                   std::vector<RouteSpec> routes, etcd::Kv& kv)
    : ClusterAddresses(store, std::move(config), std::move(req), std::move(routes)) {
  impl_->client = &kv;
}

ClusterAddresses::~ClusterAddresses() = default;

std::string ClusterAddresses::describe() const {
  std::string out;
  for (const auto& s : impl_->subnets) out += (out.empty() ? "" : ", ") + s.str();
  return "allocate addresses in " + out + " from host " + impl_->spec.host + "'s etcd blocks";
}

Result<Addressing> ClusterAddresses::allocate() {
  auto got = impl_->allocate();
  if (!got.ok())
    return std::move(got).error().wrap("failed to allocate an address for " +
                                       impl_->req.owner.str());
  return Impl::addressing(*got, impl_->routes);
}

void ClusterAddresses::helperIsThisProgram() { Impl::helper_available = true; }

void ClusterAddresses::waitForClaims() {
  std::unique_lock lock(claims_mu);
  claims_done.wait(lock, [] { return claims_running == 0; });
}

int ClusterAddresses::claimMain(const std::string& spec) {
  auto j = json_read::parse(spec);
  if (!j.ok() || !j->is_object()) return 2;
  try {
    ClusterIpamConfig c;
    c.endpoints = j->at("endpoints").get<std::vector<std::string>>();
    c.prefix = j->at("prefix").get<std::string>();
    c.block_size = j->at("blockSize").get<int>();
    c.block_size_v6 = j->at("blockSizeV6").get<int>();
    c.host = j->at("host").get<std::string>();
    c.timeout_ms = j->at("timeoutMs").get<long>();
    c.lease_ttl_s = j->at("leaseTtl").get<int64_t>();
    IpamRequest req;
    RangeSet set;
    for (const auto& r : j->at("ranges")) {
      auto subnet = IpPrefix::parse(r.at("subnet").get<std::string>());
      auto start = IpAddr::parse(r.at("start").get<std::string>());
      auto end = IpAddr::parse(r.at("end").get<std::string>());
      std::string gw_text = r.at("gateway").get<std::string>();
      auto gw = gw_text.empty() ? Result<IpAddr>(IpAddr()) : IpAddr::parse(gw_text);
      if (!subnet.ok() || !start.ok() || !end.ok() || !gw.ok()) return 2;
      IpRange range;
      range.subnet = *subnet;
      range.start = *start;
      range.end = *end;
      if (!gw_text.empty()) range.gateway = *gw;
      set.push_back(range);
    }
    req.range_sets = {set};
    if (!validateClusterIpam(c, req.range_sets).ok()) return 2;
    auto store = Store::open(j->at("dir").get<std::string>());
    if (!store.ok()) return 1;
    ClusterAddresses claimer(**store, c, req, {});
    auto st = claimer.impl_->claimSpare();
    if (!st.ok()) log::get("core")->warn("no block claimed ahead: {}", st.error().message);
    return st.ok() ? 0 : 1;
  } catch (const std::exception&) {
    return 2;
  }
}

Status ClusterAddresses::release() {
  return impl_->release([this] { return Ipam(impl_->store).release(impl_->req.owner); });
}

Status ClusterAddresses::releaseAddress(const IpAddr& addr) {
  for (const auto& s : impl_->subnets) {
    if (!s.contains(addr)) continue;
    return impl_->release([&] { return Ipam(impl_->store).releaseAddress(s, addr); });
  }
  return fail(Errc::kInvalid, addr.str() + " is in none of " + describe());
}

Result<ClusterView> clusterView(Store& store, const ClusterIpamConfig& config) {
  ClusterView view;
  view.host = config.host;
  ClusterSpec spec{config.prefix, config.host, config.lease_ttl_s};
  PLUMB_ASSIGN(auto saved, loadLease(store, spec));
  if (saved) view.lease = saved->id;
  PLUMB_ASSIGN(auto client, etcd::Client::create({config.endpoints, config.timeout_ms}));
  std::string hosts_dir = config.prefix + "/hosts/";
  PLUMB_ASSIGN(auto hosts, client->range(hosts_dir, etcd::prefixEnd(hosts_dir)));
  for (const auto& kv : hosts.kvs) {
    if (kv.key.compare(0, hosts_dir.size(), hosts_dir) != 0)
      continue;  // not under it: a peer's answer
    std::string h = kv.key.substr(hosts_dir.size());
    view.hosts.push_back(h);
    if (h == config.host) view.lease_alive = view.lease != 0 && kv.lease == view.lease;
  }
  // Every block etcd holds for this host, and every block the store names.
  std::string ipam_dir = config.prefix + "/ipam/";
  PLUMB_ASSIGN(auto blocks, client->range(ipam_dir, etcd::prefixEnd(ipam_dir)));
  auto prefixOf = [](std::string seg) -> std::optional<IpPrefix> {
    auto dash = seg.rfind('-');
    if (dash == std::string::npos) return std::nullopt;
    seg[dash] = '/';
    auto p = IpPrefix::parse(seg);
    return p.ok() ? std::optional<IpPrefix>(*p) : std::nullopt;
  };
  std::map<IpPrefix, ClusterBlockView> by_block;
  for (const auto& kv : blocks.kvs) {
    if (kv.key.compare(0, ipam_dir.size(), ipam_dir) != 0)
      continue;  // not under it: a peer's answer
    std::string rest = kv.key.substr(ipam_dir.size());
    auto mid = rest.find("/blocks/");
    if (mid == std::string::npos) continue;
    auto subnet = prefixOf(rest.substr(0, mid));
    auto block = prefixOf(rest.substr(mid + 8));
    auto v = json_read::parse(kv.value);
    if (!subnet || !block || !v.ok() || !v->is_object()) continue;
    std::string holder = json_read::valueOr(*v, "host", std::string());
    if (holder != config.host) continue;
    ClusterBlockView b;
    b.subnet = subnet->str();
    b.block = block->str();
    b.holder = holder;
    b.used = json_read::valueOr(*v, "state", std::string()) == "used";
    by_block[*block] = b;
  }
  PLUMB_TRY(store.read([&](Db& db) -> Status {
    PLUMB_ASSIGN(auto q, db.prepare("SELECT subnet, block FROM cluster_blocks WHERE prefix=? AND "
                                    "host=?"));
    q.bind(1, config.prefix).bind(2, config.host);
    for (;;) {
      PLUMB_ASSIGN(bool row, q.step());
      if (!row) break;
      PLUMB_ASSIGN(auto block, IpPrefix::parse(q.text(1)));
      auto& b = by_block[block];
      b.subnet = q.text(0);
      b.block = block.str();
      b.local = true;
    }
    return {};
  }));
  for (auto& [block, b] : by_block) {
    PLUMB_ASSIGN(auto subnet, IpPrefix::parse(b.subnet));
    PLUMB_ASSIGN(b.addresses, Ipam(store).countHeld(subnet, block.first(), block.last()));
    view.blocks.push_back(b);
  }
  // This host's registrations: <prefix>/services/NAME/PROTO/HOST/GUEST.
  std::string svc_dir = config.prefix + "/services/";
  PLUMB_ASSIGN(auto services, client->range(svc_dir, etcd::prefixEnd(svc_dir)));
  for (const auto& kv : services.kvs) {
    std::vector<std::string> parts;
    if (kv.key.compare(0, svc_dir.size(), svc_dir) != 0) continue;  // not under it: a peer's answer
    std::string rest = kv.key.substr(svc_dir.size());
    for (size_t start = 0;;) {
      size_t slash = rest.find('/', start);
      parts.push_back(
          rest.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
    if (parts.size() != 4 || parts[2] != config.host) continue;
    auto v = json_read::parse(kv.value);
    std::string address =
        v.ok() && v->is_object() ? json_read::valueOr(*v, "address", std::string()) : "";
    view.services.push_back({parts[0], parts[1], parts[3], address});
  }
  return view;
}

}  // namespace plumb::core
